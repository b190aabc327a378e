#!/usr/bin/env bash
# bench/conns.sh — idle registered connections (issue 7 item 6): N clients hold
# one connection each, REGISTERed (digest MD5), sending an RFC 5626 CRLFCRLF
# keep-alive every KA seconds; figures per connection:
#   mem   memory growth / N (sum of Pss over the server's process tree, read
#         SETTLE s after the last REGISTER; = VmRSS for rtcd, one process)
#   cpu   server CPU while idle (utime + stime of every process and thread,
#         /proc/PID/stat) over IDLE seconds, in microseconds per second per
#         connection (keep-alives included)
# for rtcd (server.workers = RTCD_WORKERS, default 1) and Kamailio 5.6 (tls
# module, one TCP/TLS worker, -m 1024; bench/conns/kamailio.cfg), over TCP and
# TLS, each server started fresh per transport; then the ratios.
#
#   bench/conns.sh              everything (about 4 x (set-up + SETTLE + IDLE) s)
#   bench/conns.sh rtcd|kamailio [tcp|tls]
#
# Clients: bench/conns/connload (C, OpenSSL), PROCS processes of N/PROCS
# connections each (a process may hold at most 20,000 files here), each from
# its own loopback address 127.0.R.P so that no run runs out of local ports
# (TIME_WAIT of the previous run). Bounded: set-up 300 s at most, then IDLE s.
# Transport ws: SIP over WebSocket (RFC 7118) on rtcd's http.listen at /sip,
# keep-alives as WebSocket pings (connload --ws). rtcd only: Kamailio's websocket
# module needs its xhttp event route and a TCP worker set of its own to stand
# beside this configuration, which bench/conns/kamailio.cfg does not have yet.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$PWD
BIN=${BUILD:-$ROOT/build-bench}
CLIENT=${CLIENT:-$BIN/bench/conns/connload}
N=${N:-10000}
PROCS=${PROCS:-2}
KA=${KA:-20}
IDLE=${IDLE:-30}
SETTLE=${SETTLE:-5}
RTCD_WORKERS=${RTCD_WORKERS:-1}
TRANSPORTS=${TRANSPORTS:-"tcp tls ws"}
T=$(mktemp -d "${TMPDIR:-/tmp}/rtcd-bench-conns.XXXXXX")
PIDS=()
RUN=0
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    [ "${KEEP_BENCH_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'trap - TERM INT; cleanup; exit 143' TERM INT

# busy ticks of the whole machine (all cores) from /proc/stat
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

users_csv() { awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "u%05d,secret\n", i }' >"$1"; }

wait_port() { # PORT PID LOG
    local i
    for i in $(seq 1 100); do
        ss -lnt | grep -q "127.0.0.1:$1 " && { sleep 1; return 0; }
        kill -0 "$2" 2>/dev/null || { tail "$3" >&2; return 1; }
        sleep 0.2
    done
    return 1
}

start_rtcd() { # TRANSPORT — sets SPID SADDR
    local dir=$T/rtcd-$1
    rm -rf "$dir" && mkdir -p "$dir"
    users_csv "$dir/users.csv"
    "$BIN/rtcctl" --set server.data_dir="$dir" user import "$dir/users.csv" >/dev/null ||
        { echo "conns: rtcctl user import failed" >&2; return 1; }
    "$BIN/rtcd" --set server.data_dir="$dir" --set server.workers="$RTCD_WORKERS" \
        --set auth.challenge=register --set "sip.listen=tcp:127.0.0.1:16000, tls:127.0.0.1:16001" \
        --set sip.max_connections=30000 --set sip.max_connections_per_ip=30000 \
        --set http.listen=tcp:127.0.0.1:16090 --set turn.listen= --set log.level=warn \
        >"$dir/rtcd.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    case $1 in tls) SADDR=127.0.0.1:16001 ;; ws) SADDR=127.0.0.1:16090 ;; *) SADDR=127.0.0.1:16000 ;; esac
    wait_port 16001 "$SPID" "$dir/rtcd.log"
}

start_kamailio() { # TRANSPORT — sets SPID SADDR
    local dir=$T/kam-$1
    rm -rf "$dir" && mkdir -p "$dir/db"
    python3 - "$dir/db/users" "$N" <<'EOF'
import hashlib, sys
with open(sys.argv[1], "w") as f:
    f.write("key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n")
    for i in range(1, int(sys.argv[2]) + 1):
        u = "u%05d" % i
        f.write("%s:0:0:%s:0\n" % (u, hashlib.md5(("%s:localhost:secret" % u).encode()).hexdigest()))
EOF
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
    printf '[server:default]\nmethod = TLSv1.2+\ncertificate = %s\nprivate_key = %s\nverify_certificate = no\nrequire_certificate = no\n\n[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n' \
        "$dir/cert.pem" "$dir/key.pem" >"$dir/tls.cfg"
    kamailio -f "$ROOT/bench/conns/kamailio.cfg" -DD -E -m 1024 -M 32 -w "$dir" \
        -A "DBURL=\"text://$dir/db\"" -A "TLSCFG=\"$dir/tls.cfg\"" >"$dir/kamailio.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    SADDR=127.0.0.1:$([ "$1" = tls ] && echo 16011 || echo 16010)
    wait_port 16011 "$SPID" "$dir/kamailio.log"
}

# measure NAME TRANSPORT — one server, one transport: set-up, settle, idle window.
measure() {
    local name=$1 tp=$2 hz p i
    hz=$(getconf CLK_TCK)
    RUN=$((RUN + 1))
    "start_$name" "$tp" || { echo "conns: $name did not start" >&2; return 1; }
    sleep 2
    local m0 m1 c0 c1 b0 b1 t0 t1 ready per=$((N / PROCS)) tls=()
    [ "$tp" = tls ] && tls=(--tls)
    [ "$tp" = ws ] && tls=(--ws /sip)
    m0=$(mem_kb "$SPID")
    rm -f "$T"/ready.* "$T/stop"
    local cl=()
    t0=$(date +%s.%N)
    for p in $(seq 1 "$PROCS"); do
        "$CLIENT" --server "$SADDR" "${tls[@]}" --local "127.0.$RUN.$p" --count "$per" \
            --first $(((p - 1) * per + 1)) --keepalive "$KA" --hold $((300 + IDLE + SETTLE + 30)) \
            --ready "$T/ready.$p" --stop "$T/stop" >"$T/cl-$name-$tp.$p" 2>&1 &
        cl+=($!)
        PIDS+=($!)
    done
    for i in $(seq 1 3000); do
        ready=$(ls "$T"/ready.* 2>/dev/null | wc -l)
        [ "$ready" -ge "$PROCS" ] && break
        local alive=0
        for p in "${cl[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
        [ "$alive" -eq 0 ] && { cat "$T"/cl-* >&2; echo "conns: the clients died" >&2; return 1; }
        sleep 0.1
    done
    t1=$(date +%s.%N)
    local reg=0 fail=0
    for p in $(seq 1 "$PROCS"); do
        read -r _ r _ f _ _ < <(grep registered "$T/cl-$name-$tp.$p")
        reg=$((reg + ${r:-0}))
        fail=$((fail + ${f:-0}))
    done
    log "$name $tp: $reg registered, $fail failed, set-up $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
    sleep "$SETTLE"
    m1=$(mem_kb "$SPID")
    c0=$(cpu_ticks "$SPID")
    b0=$(machine_busy)
    local k0=0 k1=0
    for p in "${cl[@]}"; do k0=$((k0 + $(cpu_ticks "$p"))); done
    sleep "$IDLE"
    c1=$(cpu_ticks "$SPID")
    b1=$(machine_busy)
    for p in "${cl[@]}"; do k1=$((k1 + $(cpu_ticks "$p"))); done
    touch "$T/stop"
    for p in "${cl[@]}"; do wait "$p" 2>/dev/null; done
    local pings=0 pongs=0 closed=0
    for p in $(seq 1 "$PROCS"); do
        read -r _ a _ b _ c < <(grep pings "$T/cl-$name-$tp.$p")
        pings=$((pings + ${a:-0})) pongs=$((pongs + ${b:-0})) closed=$((closed + ${c:-0}))
    done
    kill -TERM "$SPID"
    wait "$SPID" 2>/dev/null
    local memc cpuc other clients
    memc=$(((m1 - m0) * 1024 / (reg > 0 ? reg : 1)))
    cpuc=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$IDLE" -v n="$reg" \
        'BEGIN { printf "%.2f", n ? d / hz * 1e6 / s / n : 0 }')
    # the rest of the machine during the idle window (other users' builds, the clients)
    # the rest of the machine during the idle window: our clients, and everything else
    # (other users' builds and tests), in % of all cores
    clients=$(awk -v k=$((k1 - k0)) -v hz="$hz" -v s="$IDLE" -v c="$(nproc)" \
        'BEGIN { printf "%.0f", k / hz / s / c * 100 }')
    other=$(awk -v b=$((b1 - b0)) -v d=$((c1 - c0 + k1 - k0)) -v hz="$hz" -v s="$IDLE" -v c="$(nproc)" \
        'BEGIN { v = (b - d) / hz / s / c * 100; printf "%.0f", v < 0 ? 0 : v }')
    printf '%-9s %-4s %6d conns %6d failed  mem %6d B/conn (Pss %d -> %d MiB)  idle CPU %6s us/s/conn  pings %d pongs %d closed %d  clients %s%% others %s%%\n' \
        "$name" "$tp" "$reg" "$fail" "$memc" $((m0 / 1024)) $((m1 / 1024)) "$cpuc" "$pings" "$pongs" "$closed" "$clients" "$other"
    echo "conns-summary $name $tp conns=$reg mem_b=$memc cpu_us=$cpuc" >>"$T/summary"
    sleep 2
}

echo "idle connections: N=$N over $PROCS client processes, keep-alive every ${KA}s, idle window ${IDLE}s, rtcd workers $RTCD_WORKERS — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
servers=(rtcd kamailio)
[ $# -ge 1 ] && servers=("$1")
[ $# -ge 2 ] && TRANSPORTS=$2
for tp in $TRANSPORTS; do
    for s in "${servers[@]}"; do
        if [ "$s" = kamailio ] && [ "$tp" = ws ]; then
            echo "kamailio  ws   not measured (see the comment at the top)"
            continue
        fi
        measure "$s" "$tp" || exit 1
    done
done
if [ ${#servers[@]} -eq 2 ]; then
    echo "rtcd / Kamailio (lower is better):"
    for tp in $TRANSPORTS; do
        [ "$tp" = ws ] && continue
        awk -v tp="$tp" '$3 == tp { for (i = 4; i <= NF; i++) { split($i, kv, "="); v[$2, kv[1]] = kv[2] } }
            END { printf "  %-4s memory per connection %.2f, idle CPU per connection %.2f\n", tp,
                  v["rtcd", "mem_b"] / v["kamailio", "mem_b"],
                  (v["kamailio", "cpu_us"] > 0 ? v["rtcd", "cpu_us"] / v["kamailio", "cpu_us"] : 0) }' "$T/summary"
    done
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
