#!/usr/bin/env bash
# Runs every check and test of natter: formatting, lints, the Rust test
# suites of every crate (unit, integration, store conformance, corpus
# replay), and the interop tests with slixmpp (installed into a venv).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== interop (slixmpp)"
cargo build -p natterd
target="${CARGO_TARGET_DIR:-$PWD/target}"
[[ "$target" = /* ]] || target="$PWD/$target"
NATTERD_BIN="$target/debug/natterd" bash tests/interop/run.sh
