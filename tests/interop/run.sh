#!/usr/bin/env bash
# Runs the interop tests against natterd: slixmpp (Python) on TCP, and
# xmpp.js (@xmpp/client, run by node) over WebSocket.
#
#   bash tests/interop/run.sh [extra pytest args]
#
# NATTERD_BIN=/path/to/natterd skips the build. Needs python3 (>= 3.11) with
# venv, pip access to PyPI, node with npm and access to the npm registry,
# and cargo when NATTERD_BIN is not given.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "interop: creating $venv" >&2
    python3 -m venv "$venv"
fi
# Reinstall when requirements.txt changed since the last install.
stamp="$venv/.requirements.installed"
if [[ ! -f "$stamp" ]] || ! cmp -s "$req" "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
fi

# xmpp.js for the WebSocket test, in tests/interop/js/node_modules
# (git-ignored), reinstalled when package-lock.json changed.
js="$here/js"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "interop: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
    exit 2
fi
js_stamp="$js/node_modules/.package-lock.installed"
if [[ ! -f "$js_stamp" ]] || ! cmp -s "$js/package-lock.json" "$js_stamp"; then
    echo "interop: installing @xmpp/client into $js/node_modules" >&2
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$js/package-lock.json" "$js_stamp"
fi

if [[ -z "${NATTERD_BIN:-}" ]]; then
    echo "interop: building natterd" >&2
    (cd "$root" && cargo build --quiet -p natterd)
    target="${CARGO_TARGET_DIR:-$root/target}"
    [[ "$target" = /* ]] || target="$root/$target"
    export NATTERD_BIN="$target/debug/natterd"
fi
if [[ ! -x "$NATTERD_BIN" ]]; then
    echo "interop: natterd binary not found at $NATTERD_BIN" >&2
    exit 2
fi

cd "$root"
exec "$venv/bin/python" -m pytest -v -p no:cacheprovider --timeout=60 tests/interop "$@"
