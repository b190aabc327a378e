#!/usr/bin/env bash
# bench/turn.sh — rtcd's TURN relay against coturn (Debian turnserver), same run,
# same load generator (bench/turn/turnload.c), same machine, loopback only.
#
# For each server: relayed packets/s and server CPU µs per relayed packet at a
# fixed offered rate (ChannelData, client → peer) with 160- and 1200-byte
# payloads over 10 and 100 allocations; Binding requests answered/s and CPU µs each; memory per
# allocation (RSS delta over ALLOCS_MEM held allocations).
# Server CPU = utime + stime of the whole process from /proc/PID/stat.
# Both servers run W worker threads (coturn: --relay-threads=W), W = 1 and 2 (WORKERS).
# Both are up together and every case alternates between them REPS times (median kept).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-$PWD/build-bench}
RTCD=${RTCD:-$BUILD/rtcd}
LOAD=${LOAD:-$BUILD/bench/turn/turnload}
RATE=${RATE:-20000}       # offered packets/s for the fixed-rate runs
SECS=${SECS:-5}
REPS=${REPS:-3}           # runs of each case per server (alternating); the median is kept
BRATE=${BRATE:-20000}     # offered Binding requests/s
ALLOCS_MEM=${ALLOCS_MEM:-400}
WORKERS=${WORKERS:-1 2}
POLL_US=${POLL_US:-}      # rtcd's turn.poll_us for a sensitivity run; empty = rtcd's default
SECRET=bench-secret
REALM=example.org
RPORT=13450 CPORT=13451
TICK=$(getconf CLK_TCK)
T=$(mktemp -d "${TMPDIR:-/tmp}/rtcd-bench-turn.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

for f in "$RTCD" "$LOAD"; do [ -x "$f" ] || { echo "bench/turn: $f missing (make bench builds it)" >&2; exit 2; }; done
command -v turnserver >/dev/null || { echo "bench/turn: turnserver missing (Debian coturn)" >&2; exit 2; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

start_rtcd() {
    mkdir -p "$T/rtcd"
    "$RTCD" --only turn --set server.data_dir="$T/rtcd" --set server.workers=$W --set log.level=warn \
        --set turn.listen="udp:127.0.0.1:$RPORT" --set turn.realm=$REALM \
        --set turn.rest_secret=$SECRET --set turn.allow_peers=127.0.0.0/8 \
        --set turn.relay_port_min=20000 --set turn.relay_port_max=20499 \
        --set turn.max_allocations_per_user=100000 ${POLL_US:+--set turn.poll_us=$POLL_US} \
        >"$T/rtcd.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    SPORT=$RPORT
}

start_coturn() {
    turnserver -n --listening-ip=127.0.0.1 --listening-port=$CPORT --relay-ip=127.0.0.1 \
        --min-port=20500 --max-port=20999 --use-auth-secret --static-auth-secret=$SECRET \
        --realm=$REALM --allow-loopback-peers --no-cli --no-tls --no-dtls --no-tcp \
        --no-tcp-relay --relay-threads=$W --log-file="$T/coturn.log" --simple-log \
        --pidfile="$T/coturn.pid" >"$T/coturn.out" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    SPORT=$CPORT
}

stop_server() {
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
}

wait_up() {
    local i
    for i in $(seq 1 50); do
        if "$LOAD" binding 127.0.0.1 "$SPORT" 100 0.1 2>/dev/null | grep -q "received [1-9]"; then return 0; fi
        sleep 0.1
    done
    echo "bench/turn: server on port $SPORT did not answer" >&2
    exit 1
}

# relay NAME ALLOCS PAYLOAD RATE SECS → "pps us_per_pkt loss%" (one retry when the
# load generator fails to set its allocations up)
relay() {
    local out attempt
    for attempt in 1 2; do
        out=$(relay_once "$@")
        if [ -n "$out" ]; then echo "$out"; return 0; fi
        echo "bench/turn: $1 relay run failed: $(tail -2 "$T/load.out" | tr '\n' ' ')" >&2
    done
    echo "0 0 100"
}

relay_once() {
    local allocs=$2 payload=$3 rate=$4 secs=$5
    : >"$T/load.out"
    "$LOAD" relay 127.0.0.1 "$SPORT" $SECRET $REALM "$allocs" "$payload" "$rate" "$secs" >"$T/load.out" 2>&1 &
    local lp=$!
    local i
    for i in $(seq 1 400); do
        grep -q ready "$T/load.out" && break
        kill -0 $lp 2>/dev/null || break
        sleep 0.05
    done
    local c0 t0 c1 t1
    c0=$(cpu_ticks "$SPID"); t0=$(date +%s.%N)
    wait $lp || return 0
    c1=$(cpu_ticks "$SPID"); t1=$(date +%s.%N)
    local sent recv
    read -r sent recv < <(awk '/^sent/ {print $2, $4}' "$T/load.out")
    [ -n "$sent" ] || return 0
    awk -v s="$sent" -v r="$recv" -v c=$((c1 - c0)) -v tk="$TICK" -v secs="$secs" 'BEGIN {
        printf "%d %.2f %.2f\n", r / secs, (r > 0 ? c / tk * 1e6 / r : 0), (s > 0 ? 100 * (s - r) / s : 0) }'
}

binding() {
    local c0 c1
    c0=$(cpu_ticks "$SPID")
    "$LOAD" binding 127.0.0.1 "$SPORT" "$BRATE" "$SECS" >"$T/load.out" 2>&1
    c1=$(cpu_ticks "$SPID")
    local sent recv
    read -r sent recv < <(awk '/^sent/ {print $2, $4}' "$T/load.out")
    awk -v s="$sent" -v r="$recv" -v c=$((c1 - c0)) -v tk="$TICK" -v secs="$SECS" 'BEGIN {
        printf "%d %.2f %.2f\n", r / secs, (r > 0 ? c / tk * 1e6 / r : 0), (s > 0 ? 100 * (s - r) / s : 0) }'
}

memory() {
    local r0 r1
    # Warm up first (crypto libraries, thread arenas, first relay sockets), then measure.
    "$LOAD" hold 127.0.0.1 "$SPORT" $SECRET $REALM 20 0 >/dev/null 2>&1 || true
    sleep 0.5
    r0=$(rss_kb "$SPID")
    : >"$T/hold.out"
    "$LOAD" hold 127.0.0.1 "$SPORT" $SECRET $REALM "$ALLOCS_MEM" 3 >"$T/hold.out" 2>&1 &
    local lp=$!
    local i
    for i in $(seq 1 600); do grep -q ready "$T/hold.out" && break; sleep 0.05; done
    sleep 0.5
    r1=$(rss_kb "$SPID")
    wait $lp || true
    awk -v a="$r0" -v b="$r1" -v n="$ALLOCS_MEM" 'BEGIN { printf "%.0f\n", (b - a) * 1024 / n }'
}

use() { if [ "$1" = rtcd ]; then SPID=$RPID SPORT=$RPORT; else SPID=$CPID SPORT=$CPORT; fi; }

declare -A R
for W in $WORKERS; do
    # Both servers up at once; each case runs on rtcd, then on coturn, REPS times
    # (the run with the median CPU is kept), so a change in the load of the shared
    # machine falls on both alike.
    start_rtcd
    RPID=$SPID
    wait_up
    start_coturn
    CPID=$SPID
    wait_up
    for rep in $(seq 1 "$REPS"); do
        for payload in 160 1200; do
            for allocs in 10 100; do
                for srv in rtcd coturn; do
                    use $srv
                    R[$srv,$payload,$allocs,$rep]=$(relay "$srv" $allocs $payload "$RATE" "$SECS")
                done
            done
        done
        for srv in rtcd coturn; do
            use $srv
            R[$srv,bind,$rep]=$(binding)
        done
    done
    for srv in rtcd coturn; do
        use $srv
        stop_server
        for k in 160,10 160,100 1200,10 1200,100 bind; do
            R[$srv,$k]=$(for rep in $(seq 1 "$REPS"); do echo "${R[$srv,$k,$rep]}"; done |
                sort -g -k2 | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }')
        done
    done
    for srv in rtcd coturn; do
        # Memory on a fresh server, so earlier runs leave nothing behind.
        start_$srv
        wait_up
        R[$srv,mem]=$(memory)
        stop_server
    done

    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
    f() { echo "${R[$1]}" | awk -v k="$2" '{print $k}'; }

    echo "TURN relay, $RATE packets/s offered for $SECS s (ChannelData client → peer), W=$W worker thread(s) each, median of $REPS runs alternating rtcd/coturn${POLL_US:+, rtcd turn.poll_us=$POLL_US}"
    printf "%-22s %12s %12s %8s %12s %12s %8s %10s\n" case rtcd_pps rtcd_us/pkt loss% coturn_pps coturn_us/pkt loss% cpu_ratio
    for payload in 160 1200; do
        for allocs in 10 100; do
            k=$payload,$allocs
            printf "%-22s %12s %12s %8s %12s %12s %8s %10s\n" "${payload} B, $allocs allocs" \
                "$(f rtcd,$k 1)" "$(f rtcd,$k 2)" "$(f rtcd,$k 3)" \
                "$(f coturn,$k 1)" "$(f coturn,$k 2)" "$(f coturn,$k 3)" \
                "$(ratio "$(f rtcd,$k 2)" "$(f coturn,$k 2)")"
        done
    done
    printf "%-22s %12s %12s %8s %12s %12s %8s %10s\n" "Binding @ $BRATE/s" \
        "$(f rtcd,bind 1)" "$(f rtcd,bind 2)" "$(f rtcd,bind 3)" \
        "$(f coturn,bind 1)" "$(f coturn,bind 2)" "$(f coturn,bind 3)" \
        "$(ratio "$(f rtcd,bind 2)" "$(f coturn,bind 2)")"
    echo "memory per allocation ($ALLOCS_MEM allocations, RSS delta): rtcd ${R[rtcd,mem]} B, coturn ${R[coturn,mem]} B, ratio $(ratio "${R[rtcd,mem]}" "${R[coturn,mem]}")"
    echo "turn W=$W: rtcd/coturn CPU per relayed packet (160 B, 100 allocs) $(ratio "$(f rtcd,160,100 2)" "$(f coturn,160,100 2)"), per Binding $(ratio "$(f rtcd,bind 2)" "$(f coturn,bind 2)"), memory per allocation $(ratio "${R[rtcd,mem]}" "${R[coturn,mem]}")"
    echo
done
