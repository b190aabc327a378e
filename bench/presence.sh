#!/usr/bin/env bash
# bench/presence.sh — presence fan-out (run by bench/run.sh presence, make bench-presence).
#
#   bench/presence.sh             Kamailio's presence module, then rtcd (W=1, W=2)
#   bench/presence.sh rtcd W      rtcd alone with W workers
#   bench/presence.sh kamailio    the Kamailio anchor alone
#
# USERS users (default 10,000) each watched by WATCHERS others (default 20: 200,000
# subscriptions), every NOTIFY answered 200 by bench/presence/presload (UDP sockets on
# 127.0.0.1 acting as the watchers' UAS endpoints); then a burst of PUBLISHES (default
# 10,000) at PUB_RATE/s (default 500), each fanning out to WATCHERS NOTIFYs. Figures (presload prints
# them): subscriptions/s, server CPU µs per subscription, memory per subscription (Pss
# growth after the transactions have ended), NOTIFYs delivered per second during the
# burst, server CPU µs per NOTIFY (utime + stime of every process/thread of the server).
# Bounded: every phase has a deadline; each server is stopped at the end. The load
# generator shares the machine's cores with the server.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$PWD
BIN=${BUILD:-$ROOT/build-bench}
USERS=${USERS:-10000}
WATCHERS=${WATCHERS:-20}
SOCKETS=${SOCKETS:-16}
SUB_RATE=${SUB_RATE:-2500}
PUBLISHES=${PUBLISHES:-10000}
PUB_RATE=${PUB_RATE:-500}
SETTLE=${SETTLE:-64}
PORT_RTCD=15500 PORT_KAM=15600
T=$(mktemp -d "${TMPDIR:-/tmp}/rtcd-bench-presence.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    [ "${KEEP_BENCH_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'trap - TERM INT; cleanup; exit 143' TERM INT


wait_port() { # PORT PID LOG
    local i
    for i in $(seq 1 100); do
        ss -lnu | grep -q "127.0.0.1:$1 " && { sleep 1; return 0; }
        kill -0 "$2" 2>/dev/null || { tail "$3" >&2; return 1; }
        sleep 0.2
    done
    return 1
}

# run NAME PID PORT — presload against a running server; figures to results.
run() {
    local name=$1 pid=$2 port=$3 pids
    pids=$(tree_pids "$pid" | paste -sd, -)
    echo "presence fan-out: $name — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores shared with the load generator"
    echo "users $USERS, watchers per user $WATCHERS, SUBSCRIBE at $SUB_RATE/s, $PUBLISHES PUBLISHes at $PUB_RATE/s"
    timeout 900 "$BIN/bench/presence/presload" "127.0.0.1:$port" "$USERS" "$WATCHERS" "$SOCKETS" "$SUB_RATE" \
        "$PUBLISHES" "$PUB_RATE" "$pids" "$SETTLE" | tee "$T/$name.out"
    awk -v n="$name" '{ v[$1] = $2 } END {
        printf "presence-summary %s subs=%s notifies_per_s=%s cpu_us_notify=%s cpu_us_sub=%s bytes_sub=%s notifies=%s/%s retrans=%s publish_200=%s/%s\n",
            n, v["subscribe_200"], v["notifies_per_s"], v["cpu_us_per_notify"], v["cpu_us_per_subscription"],
            v["bytes_per_subscription"], v["notifies_received"], v["notifies_expected"],
            v["notify_retransmissions"], v["publish_200"], v["publishes"] }' "$T/$name.out"
}

rtcd_side() {
    local w=$1 dir=$T/rtcd-w$1 pid
    mkdir -p "$dir"
    awk -v n="$USERS" 'BEGIN { for (i = 1; i <= n; i++) printf "u%06d,secret\n", i }' >"$dir/import.csv"
    "$BIN/rtcctl" --set server.data_dir="$dir" user import "$dir/import.csv" >/dev/null ||
        { echo "presence: rtcctl user import failed" >&2; return 1; }
    "$BIN/rtcd" --set server.data_dir="$dir" --set server.workers="$w" \
        --set auth.challenge=register --set sip.listen="udp:127.0.0.1:$PORT_RTCD" \
        --set http.listen= --set turn.listen= --set log.level=warn \
        --set presence.default_rule=allow --set presence.max_subscriptions_per_presentity=1000 \
        >"$dir/rtcd.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$PORT_RTCD" "$pid" "$dir/rtcd.log" || return 1
    run "rtcd-w$w" "$pid" "$PORT_RTCD"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
}

kamailio_side() {
    local dir=$T/kam pid
    mkdir -p "$dir/db"
    for t in version presentity active_watchers watchers xcap; do
        cp /usr/share/kamailio/dbtext/kamailio/$t "$dir/db/$t"
    done
    kamailio -f "$ROOT/bench/kamailio/presence.cfg" -DD -E -m 2048 -M 32 -w "$dir" \
        -A "DBURL=\"text://$dir/db\"" >"$dir/kamailio.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$PORT_KAM" "$pid" "$dir/kamailio.log" || return 1
    run kamailio "$pid" "$PORT_KAM"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    grep -iE "error|warn" "$dir/kamailio.log" | sort | uniq -c | sort -rn | head -5 >&2
}

[ -x "$BIN/bench/presence/presload" ] || { echo "presence: build $BIN/bench/presence/presload first (make bench-presence)" >&2; exit 2; }
case "${1:-all}" in
    rtcd) rtcd_side "${2:-1}" ;;
    kamailio) kamailio_side ;;
    all) kamailio_side; rtcd_side 1; rtcd_side 2 ;;
    *) echo "usage: $0 [all | rtcd W | kamailio]" >&2; exit 2 ;;
esac
