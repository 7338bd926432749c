#!/usr/bin/env bash
# Instruction count of the routing path (parse envelope -> stamp -> forward
# bytes; no store, no sockets) under callgrind: runs
# crates/natter-xml/examples/route_path with N and with 0 messages and
# prints (Ir(N) - Ir(0)) / N. Deterministic, so usable as a regression check.
#
# Usage: bench/callgrind.sh [N]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
TARGET="${CARGO_TARGET_DIR:-target}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

cargo build --release -p natter-xml --example route_path >&2
BIN="$TARGET/release/examples/route_path"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

ir() { # $1 = message count; prints the total Ir
    local f="$OUT/callgrind.out.$1"
    valgrind --tool=callgrind --callgrind-out-file="$f" "$BIN" "$1" >"$OUT/stdout.$1" 2>"$OUT/stderr.$1" \
        || { cat "$OUT/stderr.$1" >&2; exit 1; }
    cat "$OUT/stdout.$1" >&2
    # "summary: <Ir>" (older valgrind) or "totals: <Ir>" line.
    awk '/^(summary|totals):/ { print $2; exit }' "$f"
}

IR_N="$(ir "$N")"
IR_0="$(ir 0)"
echo "Ir($N) = $IR_N"
echo "Ir(0) = $IR_0"
awk -v a="$IR_N" -v b="$IR_0" -v n="$N" \
    'BEGIN { printf "instructions per message = %.1f\n", (a - b) / n }'
