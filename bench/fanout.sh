#!/usr/bin/env bash
# bench/fanout.sh — fan-out of one publish (issue 9 item 7), in one run:
#   ws     rtcd channel → NSUBS WebSocket subscribers (/api/v1/channels/ws)
#   sip    rtcd channel → NSUBS SIP users who joined it (a MESSAGE to each, answered 200)
#   redis  Redis pub/sub (redis-server on 127.0.0.1:16379) → NSUBS subscribers, the same
#          message text as rtcd sends to a WebSocket subscriber
# Each part publishes NPUB messages (NPUB_SIP for SIP) one after another and waits until
# every subscriber has every message. Figures: deliveries per second (all deliveries /
# time from the first publish to the last delivery) and the server's CPU time
# (utime + stime of all its threads, /proc/PID/stat) per delivered message.
# Subscribers are spread over PROCS processes (a process may hold at most 20,000 files).
# rtcd runs with W = 1, then 2 workers (WS="1 2"). Bounded: every wait has a timeout.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build-bench}
NSUBS=${NSUBS:-10000}
PROCS=${PROCS:-2}
NPUB=${NPUB:-20}
NPUB_SIP=${NPUB_SIP:-5}
WS=${WS:-1 2}
SIP_PORT=15850 HTTP_PORT=18250 TURN_PORT=15851 SIPU_PORT0=15852 REDIS_PORT=16379
T=$(mktemp -d "${TMPDIR:-/tmp}/rtcd-bench-fanout.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    [ "${KEEP_BENCH_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
for b in rtcd rtcctl bench/fanout/fanout_client; do
    [ -x "$BUILD/$b" ] || { echo "fanout: $BUILD/$b missing (make bench-fanout builds it)" >&2; exit 2; }
done
CLIENT=$BUILD/bench/fanout/fanout_client
per=$((NSUBS / PROCS))

cpu_ticks() { # PID → utime+stime of the whole process (clock ticks)
    awk '{print $14 + $15}' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

# start_clients MODE PORT EXPECT SECS [sip] → waits for READY from each
start_clients() {
    local mode=$1 port=$2 expect=$3 secs=$4 i
    CLIENTS=()
    for i in $(seq 0 $((PROCS - 1))); do
        if [ "${mode%%-*}" = sip ]; then
            "$CLIENT" sip 127.0.0.1 "$port" $per bench "$expect" "$secs" $((SIPU_PORT0 + i)) \
                $((i * per)) >"$T/c$mode$i.out" 2>"$T/c$mode$i.err" &
        else
            "$CLIENT" "${mode%%-*}" 127.0.0.1 "$port" $per bench "$expect" "$secs" \
                >"$T/c$mode$i.out" 2>"$T/c$mode$i.err" &
        fi
        CLIENTS+=($!)
        PIDS+=($!)
    done
    for i in $(seq 0 $((PROCS - 1))); do
        local k
        for k in $(seq 1 1200); do
            grep -q READY "$T/c$mode$i.out" && break
            kill -0 "${CLIENTS[$i]}" 2>/dev/null || break
            sleep 0.1
        done
        grep -q READY "$T/c$mode$i.out" || {
            echo "fanout: $mode clients not ready: $(tail -2 "$T/c$mode$i.err")" >&2; return 1; }
    done
}

# measure NAME SERVER_PID PUBLISH_CMD N → one result line
measure() {
    local name=$1 spid=$2 pubcmd=$3 n=$4 i
    local c0 t0 c1 total=0 last=0
    c0=$(cpu_ticks "$spid")
    eval "$pubcmd" >"$T/pub-$name.txt" 2>&1
    t0=$(awk '/^T0/ {print $2}' "$T/pub-$name.txt")
    for i in "${!CLIENTS[@]}"; do
        wait "${CLIENTS[$i]}" 2>/dev/null
        local cnt=0 ns=0
        read -r _ cnt ns < <(grep DONE "$T/c$name$i.out" || echo "DONE 0 0")
        total=$((total + cnt))
        [ "$ns" -gt "$last" ] && last=$ns
    done
    c1=$(cpu_ticks "$spid")
    python3 - "$name" "$total" "$((NSUBS * n))" "$t0" "$last" "$((c1 - c0))" "$hz" <<'PY'
import sys
name, got, want, t0, t1, ticks, hz = sys.argv[1], *map(int, sys.argv[2:])
secs = max(t1 - t0, 1) / 1e9
cpu_us = ticks / hz * 1e6
print(f"{name:8s} deliveries {got}/{want}  {got / secs:10.0f} /s  "
      f"cpu {cpu_us / max(got, 1):7.2f} us/delivery  ({secs:.2f} s, cpu {ticks / hz:.2f} s)")
PY
}

payload=$(python3 -c 'print("x" * 100)')
echo "fanout: $NSUBS subscribers in $PROCS processes; rtcd W in {$WS}; $NPUB publishes (SIP: $NPUB_SIP)"

# ---- rtcd (W workers) ----
run_rtcd() {
local W=$1
rm -rf "$T/rtcd"
ctl() { "$BUILD/rtcctl" --set server.data_dir="$T/rtcd" "$@"; }
python3 -c "
for i in range($NSUBS): print(f'b{i},secret')" >"$T/users.csv"
ctl user import "$T/users.csv" >/dev/null || exit 1
key=$(ctl app add pub --scopes channels --rate 0 | tail -1)
ctl channel add bench --subscribe any --publish app:pub >/dev/null
"$BUILD/rtcd" --set server.data_dir="$T/rtcd" --set server.workers=$W --set log.level=warn \
    --set "sip.listen=udp:127.0.0.1:$SIP_PORT" --set "http.listen=tcp:127.0.0.1:$HTTP_PORT" \
    --set "turn.listen=udp:127.0.0.1:$TURN_PORT" --set auth.challenge=none \
    --set sip.max_connections=30000 --set sip.max_connections_per_ip=30000 \
    --set apps.channel_queue=1024 >"$T/rtcd.log" 2>&1 &
RTCD=$!
PIDS+=($RTCD)
for i in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT) 2>/dev/null && break
    sleep 0.1
done
publish_rtcd() { # N
    python3 - "$1" "$HTTP_PORT" "$key" "$payload" <<'PY'
import http.client, json, sys
n, port, key, payload = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
import time
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.connect()
print("T0", time.monotonic_ns(), flush=True)
for i in range(n):
    c.request("POST", "/api/v1/channels/bench/publish", json.dumps({"data": payload}),
              {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 200:
        print("publish failed", r.status); sys.exit(1)
PY
}
if start_clients ws-W$W $HTTP_PORT $((per * NPUB)) 60; then
    measure ws-W$W $RTCD "publish_rtcd $NPUB" $NPUB >>"$T/results"
fi
for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
sleep 1
if start_clients sip-W$W $SIP_PORT $((per * NPUB_SIP)) 120; then
    measure sip-W$W $RTCD "publish_rtcd $NPUB_SIP" $NPUB_SIP >>"$T/results"
fi
for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
kill -TERM $RTCD; wait $RTCD 2>/dev/null
}
for w in $WS; do run_rtcd $w; done

# ---- Redis ----
msg=$(python3 -c "import json; print(json.dumps({'op':'message','channel':'bench','seq':1,'from':'app:pub','data':'$payload'}, separators=(',',':')))")
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no \
    --maxclients $((NSUBS + 100)) --daemonize no --dir "$T" >"$T/redis.log" 2>&1 &
REDIS=$!
PIDS+=($REDIS)
for i in $(seq 1 100); do redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && break; sleep 0.1; done
publish_redis() { # N
    python3 - "$1" "$REDIS_PORT" "$msg" <<'PY'
import socket, sys
n, port, msg = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
import time
s = socket.create_connection(("127.0.0.1", port))
print("T0", time.monotonic_ns(), flush=True)
cmd = b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$%d\r\n%s\r\n" % (len(msg), msg)
for i in range(n):
    s.sendall(cmd)
    line = b""
    while not line.endswith(b"\r\n"):
        line += s.recv(100)
PY
}
if start_clients redis $REDIS_PORT $((per * NPUB)) 60; then
    measure redis $REDIS "publish_redis $NPUB" $NPUB >>"$T/results"
fi
kill -TERM $REDIS; wait $REDIS 2>/dev/null
cat "$T/results"
