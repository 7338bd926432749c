#!/usr/bin/env bash
# bench/compare.sh — natterd, ejabberd and Prosody side by side, in one run.
#
# Installs ejabberd and Prosody from Debian if missing, runs each server
# itself (its own config and data under a temp dir, its own loopback port,
# pinned to CPU 0), creates the same accounts in each through its fastest bulk
# path, drives every scenario of natter-bench (pinned to CPU 1) against each,
# appends the JSON lines to bench/results/<date>.jsonl and writes the table
# (with natterd/ejabberd and natterd/Prosody ratios) and
# bench/results/compare.png into BENCHMARKS.md between
# <!-- compare:begin --> and <!-- compare:end -->.
#
# Servers (--only): natterd ([store] fsync = false), natterd-fsync (the same
# natterd with [store] fsync = true, run for the scenarios that write:
# $BENCH_FSYNC_SCENARIOS), ejabberd, prosody.
# Scenarios (--scenarios): idle, idle-tls (idle over STARTTLS), login, pairs,
# rate, offline.
#
#   bench/compare.sh                      full run (about 15-20 minutes)
#   bench/compare.sh --dry-run            natterd and natterd-fsync only, tiny sizes,
#                                         no BENCHMARKS.md
#   bench/compare.sh --only natterd       chosen servers, full sizes
#   bench/compare.sh --scenarios idle,pairs
#   bench/compare.sh --report FILE.jsonl  only rebuild the table and plot
#
# Sizes and ports come from the environment (defaults in brackets):
#   BENCH_IDLE_NS       session counts `idle` steps through      ["1000 5000 10000"]
#   BENCH_IDLE_TLS_NS   session counts `idle-tls` steps through  [$BENCH_IDLE_NS]
#   BENCH_FSYNC_SCENARIOS  scenarios natterd-fsync runs         ["pairs,rate,offline"]
#   BENCH_LOGIN_N       logins per `login` run                  [2000]
#   BENCH_LOGIN_MECHS   SASL mechanisms for `login`             ["scram-sha-1 scram-sha-256"]
#   BENCH_PAIRS         sender/receiver pairs in `pairs`        [50]
#   BENCH_WINDOW        messages in flight per pair             [20]
#   BENCH_SECONDS       measured seconds of `pairs`              [10]
#   BENCH_RATES         aggregate msg/s steps of `rate` (comma) ["1000,2000,5000,10000,20000,40000"]
#   BENCH_STEP_SECONDS  seconds of each `rate` step              [5]
#   BENCH_RATE_PAIRS    pairs carrying the `rate` load          [50]
#   BENCH_LOGIN_CONCURRENCY logins in progress at once           [50]
#   BENCH_OFFLINE_K     messages queued for one offline user     [20000]
#   BENCH_WORKERS       natter-bench worker processes            [1]
#   BENCH_SOURCE_ADDRS  extra source addresses (comma)           ["" ; auto past 15000 sessions]
#   BENCH_MECH          SASL mechanism outside `login`           [scram-sha-1]
#                       (with PLAIN the server runs PBKDF2 at every login:
#                       ejabberd then needs ~20 ms of CPU per session set up)
#   BENCH_PASSWORD      the shared password                      [benchpw]
#   NATTERD_PORT NATTERD_FSYNC_PORT EJABBERD_PORT PROSODY_PORT   [25222 25232 25322 25422]
#   NATTERD NATTER_BENCH  binaries (default: cargo build --release into
#                         ${CARGO_TARGET_DIR:-target})
#   SERVER_CPU BENCH_CPU  CPUs for taskset                        [0 1]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
RESULTS="$HERE/results"

ALL_SERVERS="natterd natterd-fsync ejabberd prosody"
# offline before pairs and rate: an overloaded rate step leaves messages
# queued for the accounts offline uses, and every scenario reuses the data.
ALL_SCENARIOS="idle idle-tls login offline pairs rate"
ONLY="natterd,natterd-fsync,ejabberd,prosody"
SCENARIOS="idle,idle-tls,login,offline,pairs,rate"
DRY=0
WRITE=1
KEEP=0
REPORT_ONLY=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
        --only) ONLY=$2; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --scenarios=*) SCENARIOS=${1#*=}; shift ;;
        --dry-run) DRY=1; ONLY=natterd,natterd-fsync; WRITE=0; shift ;;
        --no-write) WRITE=0; shift ;;
        --keep) KEEP=1; shift ;;
        --report) REPORT_ONLY=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$DRY" = 1 ]; then
    : "${BENCH_IDLE_NS:=200 500}"
    : "${BENCH_LOGIN_N:=200}"
    : "${BENCH_PAIRS:=4}"
    : "${BENCH_SECONDS:=2}"
    : "${BENCH_RATES:=500,1000}"
    : "${BENCH_RATE_PAIRS:=4}"
    : "${BENCH_STEP_SECONDS:=2}"
    : "${BENCH_OFFLINE_K:=1000}"
fi
: "${BENCH_IDLE_NS:=1000 5000 10000}"
: "${BENCH_IDLE_TLS_NS:=$BENCH_IDLE_NS}"
: "${BENCH_FSYNC_SCENARIOS:=pairs,rate,offline}"
: "${BENCH_LOGIN_N:=2000}"
: "${BENCH_LOGIN_MECHS:=scram-sha-1 scram-sha-256}"
: "${BENCH_PAIRS:=50}"
: "${BENCH_WINDOW:=20}"
: "${BENCH_SECONDS:=10}"
: "${BENCH_RATES:=1000,2000,5000,10000,20000,40000}"
: "${BENCH_RATE_PAIRS:=50}"
: "${BENCH_STEP_SECONDS:=5}"
: "${BENCH_LOGIN_CONCURRENCY:=50}"
: "${BENCH_OFFLINE_K:=20000}"
: "${BENCH_WORKERS:=1}"
: "${BENCH_SOURCE_ADDRS:=}"
: "${BENCH_MECH:=scram-sha-1}"
: "${BENCH_PASSWORD:=benchpw}"
: "${BENCH_PREFIX:=user}"
: "${NATTERD_PORT:=25222}"
: "${NATTERD_FSYNC_PORT:=25232}"
: "${EJABBERD_PORT:=25322}"
: "${PROSODY_PORT:=25422}"
: "${SERVER_CPU:=0}"
: "${BENCH_CPU:=1}"
DOMAIN=localhost

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- report only
ensure_venv() { # matplotlib for the plot, in bench/.venv (gitignored)
    [ -x "$HERE/.venv/bin/python" ] && "$HERE/.venv/bin/python" -c 'import matplotlib' 2>/dev/null && return 0
    log "making bench/.venv with matplotlib for the plot"
    if ! python3 -m venv "$HERE/.venv" >/dev/null 2>&1; then
        apt-get install -y -qq python3-venv >&2 || true
        python3 -m venv "$HERE/.venv" >&2 || { log "no venv: the plot is skipped"; return 0; }
    fi
    "$HERE/.venv/bin/pip" install -q matplotlib >&2 || log "matplotlib did not install: the plot is skipped"
}

report() { # report JSONL [--write]
    local py=python3
    case " $* " in *" --write "*) ensure_venv ;; esac
    [ -x "$HERE/.venv/bin/python" ] && py="$HERE/.venv/bin/python"
    "$py" "$HERE/report.py" table "$@" --benchmarks "$ROOT/BENCHMARKS.md" --plot "$RESULTS/compare.png"
}
if [ -n "$REPORT_ONLY" ]; then
    report "$REPORT_ONLY" --write
    exit 0
fi

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
scenario_on() { case ",$SCENARIOS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for x in ${ONLY//,/ }; do
    case " $ALL_SERVERS " in *" $x "*) ;; *) die "--only: unknown server $x (known: $ALL_SERVERS)" ;; esac
done
for x in ${SCENARIOS//,/ }; do
    case " $ALL_SCENARIOS " in *" $x "*) ;; *) die "--scenarios: unknown scenario $x (known: $ALL_SCENARIOS)" ;; esac
done

# ---------------------------------------------------------------- install
install_servers() {
    local need=()
    want ejabberd && ! command -v ejabberdctl >/dev/null && need+=(ejabberd)
    want prosody && ! command -v prosody >/dev/null && need+=(prosody)
    if [ ${#need[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "installing ${need[*]} needs root"
        log "installing ${need[*]} from Debian"
        apt-get update -qq
        # Keep the packages' own services from starting on the standard ports.
        local made_policy=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            made_policy=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
        [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    fi
    # Whatever the packages started (or an earlier boot did), stop it: only
    # our own instances may run, on our own ports.
    if want ejabberd && command -v ejabberdctl >/dev/null; then
        if ejabberdctl status >/dev/null 2>&1; then
            log "stopping the system ejabberd service"
            service ejabberd stop >/dev/null 2>&1 || ejabberdctl stop >/dev/null 2>&1 || true
        fi
    fi
    if want prosody && command -v prosodyctl >/dev/null; then
        if [ -s /run/prosody/prosody.pid ] && kill -0 "$(cat /run/prosody/prosody.pid)" 2>/dev/null; then
            log "stopping the system prosody service"
            service prosody stop >/dev/null 2>&1 || prosodyctl stop >/dev/null 2>&1 || true
        fi
    fi
}

version_of() {
    case $1 in
        natterd|natterd-fsync)
            local rev
            rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
            git -C "$ROOT" diff --quiet HEAD 2>/dev/null || rev="$rev+dirty"
            echo "natterd $rev" ;;
        ejabberd) echo "ejabberd $(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo '?')" ;;
        prosody) echo "prosody $(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo '?')" ;;
    esac
}

# ---------------------------------------------------------------- binaries
build_binaries() {
    if [ -z "${NATTERD:-}" ] || [ -z "${NATTER_BENCH:-}" ]; then
        local target=${CARGO_TARGET_DIR:-$ROOT/target}
        log "building natterd and natter-bench (release) into $target"
        (cd "$ROOT" && CARGO_TARGET_DIR=$target cargo build --release -q -p natterd -p natter-bench) >&2
        : "${NATTERD:=$target/release/natterd}"
        : "${NATTER_BENCH:=$target/release/natter-bench}"
    fi
    [ -x "$NATTERD" ] || die "no natterd at $NATTERD"
    [ -x "$NATTER_BENCH" ] || die "no natter-bench at $NATTER_BENCH"
}

# ---------------------------------------------------------------- helpers
port_of() {
    case $1 in natterd) echo "$NATTERD_PORT" ;; natterd-fsync) echo "$NATTERD_FSYNC_PORT" ;; ejabberd) echo "$EJABBERD_PORT" ;; prosody) echo "$PROSODY_PORT" ;; esac
}

# PID of the process listening on 127.0.0.1:PORT (the server itself: natterd,
# ejabberd's beam.smp, Prosody's lua), or nothing.
listener_pid() {
    ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

wait_listen() { # port seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ -n "$(listener_pid "$1")" ] && return 0
        sleep 0.1
    done
    return 1
}

wait_gone() { # pid seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- configs
# natterd runs twice when natterd-fsync is wanted: the same binary with its own
# data under $WORK/natterd or $WORK/natterd-fsync, differing only in
# [store] fsync. natterd's delivery contract is on in both (a message is
# committed to the recipient's queue before the sender's ack covers it):
# fsync = false (SQLite WAL, synchronous=NORMAL) keeps it across a crash of
# natterd, fsync = true (synchronous=FULL) across a power loss as well.
setup_natterd_as() { # name port fsync
    local name=$1 port=$2 fsync=$3 d=$WORK/$1
    mkdir -p "$d/data"
    cat >"$d/natterd.toml" <<EOF
# natter bench: $name on loopback (generated by bench/compare.sh)
domain = "$DOMAIN"
data_dir = "$d/data"
log_level = "warn"

[listen]
# STARTTLS is offered on c2s too (natterd makes its own self-signed
# certificate under data_dir)
c2s = "127.0.0.1:$port"
c2s_tls = "127.0.0.1:$((port + 1))"
# away from ejabberd's and Prosody's HTTP ports
http = "127.0.0.1:$((port + 2))"
admin = "127.0.0.1:$((port + 3))"

[c2s]
# plain c2s on loopback, like the others
require_tls = false
max_stanza_bytes = 262144
max_unacked = 1000

[store]
fsync = $fsync

[archive]
# issue 4 compares the servers with message archiving off in all three
enabled = false
EOF
    local t0=$SECONDS
    python3 "$HERE/accounts.py" natterd --count "$ACCOUNTS" --prefix "$BENCH_PREFIX" \
        --domain "$DOMAIN" --password "$BENCH_PASSWORD" --out "$d/accounts.txt"
    "$NATTERD" --config "$d/natterd.toml" user import <"$d/accounts.txt" >&2
    log "$name: $ACCOUNTS accounts via \`natterd user import\` in $((SECONDS - t0)) s"
}

start_natterd_as() { # name port
    local d=$WORK/$1
    taskset -c "$SERVER_CPU" "$NATTERD" --config "$d/natterd.toml" run >>"$d/natterd.log" 2>&1 &
    wait_listen "$2" 30 || die "$1 did not listen on $2 (see $d/natterd.log)"
}

stop_natterd_as() { # port
    local pid
    pid=$(listener_pid "$1")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid"
    wait_gone "$pid" 30 || kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
}

setup_natterd() { setup_natterd_as natterd "$NATTERD_PORT" false; }
start_natterd() { start_natterd_as natterd "$NATTERD_PORT"; }
stop_natterd() { stop_natterd_as "$NATTERD_PORT"; }
setup_natterd_fsync() { setup_natterd_as natterd-fsync "$NATTERD_FSYNC_PORT" true; }
start_natterd_fsync() { start_natterd_as natterd-fsync "$NATTERD_FSYNC_PORT"; }
stop_natterd_fsync() { stop_natterd_as "$NATTERD_FSYNC_PORT"; }

# setup_/start_/stop_ of a server name (natterd-fsync -> natterd_fsync).
server_do() { # action server
    "${1}_${2//-/_}"
}

# A self-signed certificate for ejabberd's and Prosody's STARTTLS (idle-tls),
# the same kind natterd makes for itself: ECDSA P-256, CN and SAN = the domain.
make_cert() {
    CERT_DIR=$WORK/cert
    mkdir -p "$CERT_DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
        -keyout "$CERT_DIR/$DOMAIN.key" -out "$CERT_DIR/$DOMAIN.crt" 2>/dev/null \
        || die "openssl could not make a self-signed certificate"
    cat "$CERT_DIR/$DOMAIN.crt" "$CERT_DIR/$DOMAIN.key" >"$CERT_DIR/$DOMAIN.pem"
}

EJ_NODE="natbench$$@localhost"
ejctl() {
    local d=$WORK/ejabberd
    ejabberdctl --config-dir "$d" --config "$d/ejabberd.yml" --ctl-config "$d/ejabberdctl.cfg" \
        --logs "$d/logs" --spool "$d/spool" --node "$EJ_NODE" "$@"
}

setup_ejabberd() {
    local d=$WORK/ejabberd
    mkdir -p "$d/logs" "$d/spool"
    cp /etc/ejabberd/inetrc "$d/inetrc" 2>/dev/null || echo '{file, resolv, "/etc/resolv.conf"}.' >"$d/inetrc"
    cp "$CERT_DIR/$DOMAIN.pem" "$d/$DOMAIN.pem"
    cat >"$d/ejabberdctl.cfg" <<EOF
ERL_MAX_PORTS=65536
ERL_PROCESSES=2000000
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EOF
    cat >"$d/ejabberd.yml" <<EOF
# natter bench: ejabberd on loopback (generated by bench/compare.sh)
hosts:
  - $DOMAIN
loglevel: warning
log_rotate_count: 0
# self-signed certificate for STARTTLS, made by compare.sh (ECDSA P-256)
certfiles:
  - "$d/$DOMAIN.pem"
listen:
  -
    port: $EJABBERD_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    # same stanza limit as natterd and Prosody (256 KiB)
    max_stanza_size: 262144
    # no traffic shaping (Debian's default is 3000 B/s per client)
    shaper: none
    access: c2s
    # STARTTLS offered (idle-tls), not required (every other scenario)
    starttls: true
    starttls_required: false
    # Debian's listener backlog is 5: bursts of connects then wait for SYN
    # retransmits (1 s, 3 s, ...). natterd (tokio) and Prosody here use 1024.
    backlog: 1024
# accounts stored as SCRAM-SHA-1 keys, like Prosody's internal_hashed
# (PLAIN works without TLS: ejabberd checks it against the stored keys)
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
default_db: mnesia
disable_sasl_mechanisms:
  - "digest-md5"
  - "x-oauth2"
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 1000
  # Debian's default caps offline queues at 100 messages
  max_user_offline_messages: 100000000
# no mod_mam (archiving off), no mod_fail2ban / mod_pres_counter (rate limits)
modules:
  mod_disco: {}
  mod_roster: {}
  mod_ping: {}
  mod_carboncopy: {}
  mod_privacy: {}
  mod_blocking: {}
  mod_caps: {}
  mod_version: {}
  mod_stream_mgmt:
    resend_on_timeout: if_offline
    # ejabberd pushes a whole offline queue at login and cuts the session
    # once more than max_ack_queue stanzas are unacked (default 5000): lift it
    max_ack_queue: infinity
  mod_offline:
    access_max_user_messages: max_user_offline_messages
EOF
    chown -R ejabberd:ejabberd "$d"
    start_ejabberd
    local t0=$SECONDS
    python3 "$HERE/accounts.py" ejabberd --count "$ACCOUNTS" --prefix "$BENCH_PREFIX" \
        --domain "$DOMAIN" --password "$BENCH_PASSWORD" --out "$d/spool/accounts.txt"
    chown ejabberd:ejabberd "$d/spool/accounts.txt"
    ejctl load "$d/spool/accounts.txt" >&2
    log "ejabberd: $ACCOUNTS accounts via \`ejabberdctl load\` (Mnesia text dump) in $((SECONDS - t0)) s"
    # Restart so no auth cache entry predates the load.
    stop_ejabberd
}

start_ejabberd() {
    local d=$WORK/ejabberd
    # As the ejabberd user through setpriv, not ejabberdctl's own `su`: su
    # goes through PAM, which puts the open-file limit back to 1024 (ejabberd
    # then spins on "Failed TCP accept: too many open files").
    (cd "$d" && setpriv --reuid ejabberd --regid ejabberd --init-groups \
        env HOME="$(getent passwd ejabberd | cut -d: -f6)" \
        taskset -c "$SERVER_CPU" ejabberdctl --config-dir "$d" --config "$d/ejabberd.yml" \
        --ctl-config "$d/ejabberdctl.cfg" --logs "$d/logs" --spool "$d/spool" --node "$EJ_NODE" \
        foreground >>"$d/foreground.log" 2>&1) &
    wait_listen "$EJABBERD_PORT" 120 || die "ejabberd did not listen on $EJABBERD_PORT (see $d/logs)"
    ejctl started >/dev/null 2>&1 || true
}

stop_ejabberd() {
    local pid
    pid=$(listener_pid "$EJABBERD_PORT")
    [ -n "$pid" ] || return 0
    ejctl stop >/dev/null 2>&1 || kill -TERM "$pid"
    wait_gone "$pid" 60 || kill -KILL "$pid"
    wait 2>/dev/null || true
}

setup_prosody() {
    local d=$WORK/prosody
    mkdir -p "$d/data" "$d/certs"
    cp "$CERT_DIR/$DOMAIN.crt" "$CERT_DIR/$DOMAIN.key" "$d/certs/"
    cat >"$d/prosody.cfg.lua" <<EOF
-- natter bench: Prosody on loopback (generated by bench/compare.sh)
pidfile = "$d/prosody.pid"
data_path = "$d/data"
certificates = "$d/certs"
log = { warn = "$d/prosody.log" }
interfaces = { "127.0.0.1" }
c2s_ports = { $PROSODY_PORT }
c2s_direct_tls_ports = {}
s2s_ports = {}
http_ports = {}
https_ports = {}
component_ports = {}
admin_interfaces = {}
-- plain c2s on loopback, PLAIN allowed, like the other two
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
-- STARTTLS offered (idle-tls) with the self-signed certificate compare.sh made
-- (ECDSA P-256); mod_tls is not loaded on its own
-- same stanza limit as natterd and ejabberd
c2s_stanza_size_limit = 262144
authentication = "internal_hashed"
storage = "internal"
-- offline messages live in the internal archive store, capped at 10,000 per
-- user by default: lift the cap (ejabberd's is lifted the same way)
storage_archive_item_limit = 1000000000
-- smacks_max_queue_size stays at its default (500): past it Prosody drops
-- the oldest unacked stanzas from the resumption queue but keeps the session
-- (so an offline queue still drains), and the queue is preallocated per
-- session, so raising it would add memory to every idle session
-- listen backlog (default 128), the same as natterd's and ejabberd's here
network_settings = { tcp_backlog = 1024 }
-- no mod_mam (archiving off), no mod_limits (rate limits) and no
-- mod_register_limits; mod_offline is loaded by Prosody on its own
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons"; "blocklist"; "version"; "smacks";
}
modules_disabled = { "s2s"; "s2s_auth_certs"; }
VirtualHost "$DOMAIN"
  ssl = { certificate = "$d/certs/$DOMAIN.crt"; key = "$d/certs/$DOMAIN.key"; }
EOF
    local t0=$SECONDS
    python3 "$HERE/accounts.py" prosody --count "$ACCOUNTS" --prefix "$BENCH_PREFIX" \
        --domain "$DOMAIN" --password "$BENCH_PASSWORD" --out "$d/data"
    log "prosody: $ACCOUNTS accounts as internal_hashed files in $((SECONDS - t0)) s"
    chown -R prosody:prosody "$d"
}

start_prosody() {
    local d=$WORK/prosody
    # Prosody refuses to run as root: drop to its user without a wrapper
    # process, so the listener's PID is Prosody's own.
    setpriv --reuid prosody --regid prosody --init-groups \
        taskset -c "$SERVER_CPU" prosody --config "$d/prosody.cfg.lua" -F >>"$d/foreground.log" 2>&1 &
    wait_listen "$PROSODY_PORT" 30 || die "prosody did not listen on $PROSODY_PORT (see $d)"
}

stop_prosody() {
    local pid
    pid=$(listener_pid "$PROSODY_PORT")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid"
    wait_gone "$pid" 30 || kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    set +e
    for s in $ALL_SERVERS; do
        want "$s" && [ -n "${WORK:-}" ] && [ -d "$WORK/$s" ] && server_do stop "$s"
    done
    if [ -n "${WORK:-}" ] && [ "$KEEP" = 0 ]; then rm -rf "$WORK"; fi
}

# ---------------------------------------------------------------- scenarios
# Source addresses beyond one process's 20,000 open files: spread connections.
source_args() { # sessions
    local addrs=$BENCH_SOURCE_ADDRS
    if [ -z "$addrs" ] && [ "$1" -gt 15000 ]; then addrs="127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5"; fi
    local workers=$BENCH_WORKERS
    if [ "$1" -gt 15000 ] && [ "$workers" -lt 2 ]; then workers=$(( ($1 + 14999) / 15000 )); fi
    printf -- '--workers %s' "$workers"
    [ -n "$addrs" ] && printf -- ' --source-addrs %s' "$addrs"
    return 0
}

# natter-bench's spelling of a SASL mechanism (scram-sha-1 or scram-sha1).
bench_mech() {
    local m=$1
    if ! "$NATTER_BENCH" login --help 2>/dev/null | grep -q -- "$m"; then
        local alt=${m/sha-/sha}
        "$NATTER_BENCH" login --help 2>/dev/null | grep -q -- "$alt" && m=$alt
    fi
    printf '%s' "$m"
}

# run_bench SERVER SCENARIO PARAMS-JSON natter-bench-args...
# SCENARIO names the result (idle-tls); natter-bench runs its base (idle).
run_bench() {
    local server=$1 scenario=$2 params=$3
    shift 3
    local command=${scenario%-tls}
    local port pid out rc=0
    port=$(port_of "$server")
    pid=$(listener_pid "$port")
    log "$server: $scenario: $command $*"
    local t0=$SECONDS
    out=$(taskset -c "$BENCH_CPU" "$NATTER_BENCH" "$command" --host 127.0.0.1 --port "$port" \
        --domain "$DOMAIN" --password "$BENCH_PASSWORD" --prefix "$BENCH_PREFIX" \
        --server-pid "$pid" --label "$server" "$@" 2>"$WORK/bench.err") || rc=$?
    local line
    line=$(printf '%s\n' "$out" | grep '^{' | tail -1 || true)
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        local err
        err=$(tail -3 "$WORK/bench.err" | tr '\n' ' ')
        log "$server: $scenario failed (exit $rc): $err"
        line="{\"error\": $(printf '%s' "exit $rc: $err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}"
    fi
    printf '%s\n' "$line" | python3 "$HERE/report.py" tag --server "$server" \
        --version "$(version_of "$server")" --scenario "$scenario" --params "$params" \
        --run "$RUN_ID" --seconds $((SECONDS - t0)) >>"$JSONL"
    tail -1 "$JSONL" | cut -c1-400 >&2
}

# Start SERVER fresh, run one scenario, stop it: every measurement starts
# from a server that has just booted with the same data.
fresh() { # server scenario params args...
    local server=$1
    server_do start "$server"
    run_bench "$@" || true
    server_do stop "$server"
}

# "1000 5000 10000" (spaces or commas) -> "1000,5000,10000", ascending.
idle_ns() {
    echo "$1" | tr ' ,' '\n\n' | grep -v '^$' | sort -n | uniq | paste -sd, -
}

# Does SERVER run SCENARIO? natterd-fsync only runs the scenarios that write
# messages to the store ($BENCH_FSYNC_SCENARIOS).
runs() { # server scenario
    [ "$1" != natterd-fsync ] && return 0
    case ",$BENCH_FSYNC_SCENARIOS," in *",$2,"*) return 0 ;; *) return 1 ;; esac
}

scenario_runs() { # server
    local s=$1 mech
    local ns max
    if scenario_on idle; then
        # One run steps up through the session counts (memory sampled at each).
        ns=$(idle_ns "$BENCH_IDLE_NS")
        max=$(echo "$ns" | tr ',' '\n' | tail -1)
        # shellcheck disable=SC2046
        fresh "$s" idle "{\"sessions\":\"$ns\"}" --sessions "$ns" --mech "$(bench_mech "$BENCH_MECH")" $(source_args "$max")
    fi
    if scenario_on idle-tls; then
        # The same over STARTTLS (natter-bench accepts any certificate).
        ns=$(idle_ns "$BENCH_IDLE_TLS_NS")
        max=$(echo "$ns" | tr ',' '\n' | tail -1)
        # shellcheck disable=SC2046
        fresh "$s" idle-tls "{\"sessions\":\"$ns\",\"tls\":true}" --sessions "$ns" --tls \
            --mech "$(bench_mech "$BENCH_MECH")" $(source_args "$max")
    fi
    if scenario_on login; then
        for mech in $BENCH_LOGIN_MECHS; do
            fresh "$s" login "{\"count\":$BENCH_LOGIN_N,\"mech\":\"$mech\",\"concurrency\":$BENCH_LOGIN_CONCURRENCY}" \
                --count "$BENCH_LOGIN_N" --concurrency "$BENCH_LOGIN_CONCURRENCY" --mech "$(bench_mech "$mech")"
        done
    fi
    if scenario_on pairs; then
        fresh "$s" pairs "{\"pairs\":$BENCH_PAIRS,\"window\":$BENCH_WINDOW,\"secs\":$BENCH_SECONDS}" \
            --pairs "$BENCH_PAIRS" --window "$BENCH_WINDOW" --duration "$BENCH_SECONDS" --mech "$(bench_mech "$BENCH_MECH")"
    fi
    if scenario_on rate; then
        fresh "$s" rate "{\"pairs\":$BENCH_RATE_PAIRS,\"rates\":\"$BENCH_RATES\",\"step_secs\":$BENCH_STEP_SECONDS}" \
            --pairs "$BENCH_RATE_PAIRS" --rates "$BENCH_RATES" --step-secs "$BENCH_STEP_SECONDS" --mech "$(bench_mech "$BENCH_MECH")"
    fi
    if scenario_on offline; then
        fresh "$s" offline "{\"count\":$BENCH_OFFLINE_K}" --count "$BENCH_OFFLINE_K" --mech "$(bench_mech "$BENCH_MECH")"
    fi
}

# ---------------------------------------------------------------- main
main() {
    install_servers
    build_binaries

    local max_idle=0 n
    for n in $(idle_ns "$BENCH_IDLE_NS,$BENCH_IDLE_TLS_NS" | tr ',' ' '); do
        [ "$n" -gt "$max_idle" ] && max_idle=$n
    done
    ACCOUNTS=$(( max_idle > BENCH_LOGIN_N ? max_idle : BENCH_LOGIN_N ))
    [ $((2 * BENCH_PAIRS)) -gt "$ACCOUNTS" ] && ACCOUNTS=$((2 * BENCH_PAIRS))
    [ $((2 * BENCH_RATE_PAIRS)) -gt "$ACCOUNTS" ] && ACCOUNTS=$((2 * BENCH_RATE_PAIRS))
    ACCOUNTS=$((ACCOUNTS + 2))

    mkdir -p "$RESULTS"
    RUN_ID=$(date -u +%Y-%m-%dT%H%M%SZ)
    if [ "$DRY" = 1 ]; then JSONL="$RESULTS/dry-run-$RUN_ID.jsonl"; else JSONL="$RESULTS/$RUN_ID.jsonl"; fi
    WORK=$(mktemp -d /tmp/natter-compare.XXXXXX)
    chmod 755 "$WORK"
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    local s servers=()
    for s in $ALL_SERVERS; do want "$s" && servers+=("$s"); done
    [ ${#servers[@]} -gt 0 ] || die "--only names none of $ALL_SERVERS"
    if want ejabberd || want prosody; then make_cert; fi
    for s in "${servers[@]}"; do
        local p
        p=$(port_of "$s")
        [ -z "$(listener_pid "$p")" ] || die "port $p for $s is already in use"
    done
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

    log "run $RUN_ID: servers ${servers[*]}, scenarios $SCENARIOS, $ACCOUNTS accounts, work dir $WORK"
    for s in "${servers[@]}"; do
        server_do setup "$s"
        server_do start "$s"
        python3 "$HERE/smoke.py" --port "$(port_of "$s")" --domain "$DOMAIN" \
            --prefix "$BENCH_PREFIX" --password "$BENCH_PASSWORD" >&2 \
            || die "$s: smoke test (PLAIN + SCRAM-SHA-1 login, bind, XEP-0198, offline) failed"
        server_do stop "$s"
    done

    # Scenario-major order, so that slow drifts of a shared machine fall on
    # every server alike.
    local scen
    for scen in $ALL_SCENARIOS; do
        scenario_on "$scen" || continue
        for s in "${servers[@]}"; do
            runs "$s" "$scen" || continue
            SCENARIOS=$scen scenario_runs "$s"
        done
    done

    log "results: $JSONL"
    if [ "$WRITE" = 1 ]; then
        report "$JSONL" --write
        log "wrote the table into BENCHMARKS.md and $RESULTS/compare.png"
    else
        report "$JSONL"
    fi
}

main
