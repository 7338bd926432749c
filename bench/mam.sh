#!/usr/bin/env bash
# bench/mam.sh — natterd's archive query on a large archive (XEP-0313).
#
# Makes a fresh data dir, imports user0 and user1, fills user0's archive
# with MAM_COUNT messages of its conversation with user1 (natter-store's
# archive_fill example, through the store's writer in batches), starts
# natterd and times MAM_QUERIES queries for the newest 50 of that
# conversation (natter-bench mam: one query at a time, p50/p99), then stops
# natterd and removes the data dir (MAM_KEEP=1 keeps it).
#
#   bench/mam.sh                      # 1,000,000 messages, 200 queries
#   MAM_COUNT=100000 bench/mam.sh
#
# Environment: MAM_COUNT (1000000), MAM_QUERIES (200), MAM_PORT (26222),
# CARGO_TARGET_DIR, NICE (a prefix such as "nice -n 19"), SERVER_CPU and
# BENCH_CPU (taskset CPU lists; unset: no pinning).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
count=${MAM_COUNT:-1000000}
queries=${MAM_QUERIES:-200}
port=${MAM_PORT:-26222}
target=${CARGO_TARGET_DIR:-$root/target}
nice=${NICE:-}
pin() { if [ -n "${1:-}" ]; then echo "taskset -c $1"; fi; }

# shellcheck disable=SC2086
(cd "$root" && $nice cargo build --release -q -p natterd -p natter-bench \
    && $nice cargo build --release -q -p natter-store --example archive_fill)
natterd=$target/release/natterd
bench=$target/release/natter-bench
fill=$target/release/examples/archive_fill

work=$(mktemp -d /tmp/natter-mam.XXXXXX)
cleanup() {
    if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"; wait "$pid" || true
    fi
    if [ "${MAM_KEEP:-0}" = 1 ]; then echo "mam: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

cat >"$work/natterd.toml" <<CONF
domain = "localhost"
data_dir = "$work/data"
log_level = "warn"
[listen]
c2s = "127.0.0.1:$port"
c2s_tls = "127.0.0.1:$((port + 1))"
http = "127.0.0.1:$((port + 2))"
admin = "127.0.0.1:$((port + 3))"
[c2s]
require_tls = false
[archive]
enabled = true
# the fill is spread over the last MAM_COUNT seconds: keep it all
retention_days = 0
CONF

printf 'user0@localhost pw\nuser1@localhost pw\n' \
    | "$natterd" --config "$work/natterd.toml" user import >&2
t0=$SECONDS
# shellcheck disable=SC2086
$nice "$fill" "$work/data/natter.sqlite3" user0@localhost user1@localhost "$count"
echo "mam: filled $count messages in $((SECONDS - t0)) s" \
     "($(du -sh "$work/data" | cut -f1) on disk)" >&2

# shellcheck disable=SC2046,SC2086
$nice $(pin "${SERVER_CPU:-}") "$natterd" --config "$work/natterd.toml" run \
    >"$work/natterd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
# shellcheck disable=SC2046,SC2086
$nice $(pin "${BENCH_CPU:-}") "$bench" mam --port "$port" --password pw \
    --server-pid "$pid" --label natterd --queries "$queries" --max 50
