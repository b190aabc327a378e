#!/usr/bin/env bash
# bench/sipinstr.sh — instructions per REGISTER and per MESSAGE, rtcd beside Kamailio,
# counted by valgrind's callgrind over every process and thread of each server.
#
# bench/sip.sh measures CPU time, which on this shared 2-core machine moves by
# ±10-40 % between runs with whatever else runs. Instruction counts do not: for
# the same binaries and inputs they are the same whatever the machine is doing.
# They cover user space only (the system calls' kernel work is not counted; both
# servers make about the same calls per message: one receive, one send), so they
# compare the servers' own code, not the kernel's.
#
# Per server: started under callgrind (--trace-children for Kamailio's processes),
# the counters zeroed (callgrind_control -z) after the warm-up, then
#   reg   NREQ REGISTERs with digest auth (401 + 200 each) of distinct users, and
#   msg   NREQ MESSAGEs alice -> carol through the server (a sipp UAS as carol),
# each phase dumped (callgrind_control -d) and summed over the dumps. An idle phase
# of the same length (no requests) is measured first and subtracted: both servers
# run timers (Kamailio's timer processes, rtcd's ticks and the store thread's
# credential poll) whose cost is not per request. rtcd's threads are counted
# separately too, to show what its store thread (the message archive: SQLite with
# full-text indexing, which Kamailio's configuration does not do) takes.
# Same setting as bench/sip.sh: auth.challenge = register, one worker / one child.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build-bench}
SCEN=$ROOT/tests/sip/scenarios
NREQ=${NREQ:-600}
RATE=${RATE:-50}
LOCAL_IP=127.0.0.1
ADDR=127.0.0.1:15100
T=$(mktemp -d "${TMPDIR:-/tmp}/rtcd-bench-instr.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    [ "${KEEP_BENCH_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'trap - TERM INT; cleanup; exit 143' TERM INT

command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    { echo "sipinstr: valgrind is not installed" >&2; exit 1; }

awk -v n="$NREQ" 'BEGIN { print "SEQUENTIAL";
    for (i = 1; i <= n; i++) printf "u%06d;[authentication username=u%06d password=secret]\n", i, i }' \
    >"$T/users.csv"
one_csv() { printf 'SEQUENTIAL\n%s;[authentication username=%s password=%s]\n' "$2" "$2" "$3" >"$1"; }
one_csv "$T/alice.csv" alice secret
one_csv "$T/carol.csv" carol secret

# sipp_run NAME RATE COUNT SCENARIO CSV [args] — prints "completed failed".
sipp_run() {
    local name=$1 rate=$2 count=$3 scen=$4 csv=$5
    shift 5
    timeout $((count / rate * 4 + 60)) sipp "$ADDR" -sf "$SCEN/$scen" -inf "$csv" -t u1 \
        -i "$LOCAL_IP" -p 15120 -key domain localhost -key expires 3600 -r "$rate" -rp 1000 \
        -m "$count" -l 200 -recv_timeout 20000 -timeout $((count / rate * 3 + 60))s \
        -timeout_error -default_behaviors all,-bye -nostdin -nr -max_reconnect 0 \
        -trace_err -error_file "$T/$name.err" "$@" >"$T/$name.out" 2>&1
    local succ fail
    succ=$(awk -F'|' '/Successful call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$T/$name.out")
    fail=$(awk -F'|' '/Failed call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$T/$name.out")
    echo "$succ $fail"
}

# total_ir PREFIX — instructions summed over callgrind dumps PREFIX.*
total_ir() {
    local f sum=0 v
    for f in "$1".*; do
        [ -f "$f" ] || continue
        v=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# store_ir PREFIX — of rtcd's dumps (one per thread), the instructions of its store thread
# (the thread whose dump names store_thread's main function)
store_ir() {
    local f sum=0 v
    for f in "$1".*; do
        [ -f "$f" ] || continue
        grep -q "^fn=.* thread_main$" "$f" 2>/dev/null || continue
        grep -q "^fn=.* worker_main$" "$f" && continue
        v=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# phase NAME SCENARIO CSV [sipp args] — zero the counters, run the load, dump; prints
# "instr_per_req ok fail store_instr_per_req" (the idle phase's count subtracted)
phase() {
    local name=$1 scen=$2 csv=$3
    shift 3
    rm -f "$T/$SERVER".*
    callgrind_control -z >/dev/null 2>&1
    local r t0 t1
    t0=$(date +%s.%N)
    if [ "$name" = idle ]; then
        sleep $((NREQ / RATE))
        r="1 0"
    else
        r=$(sipp_run "$SERVER-$name" "$RATE" "$NREQ" "$scen" "$csv" "$@")
    fi
    t1=$(date +%s.%N)
    callgrind_control -d >/dev/null 2>&1
    sleep 2
    local ir sir idle=0
    ir=$(total_ir "$T/$SERVER")
    sir=$(store_ir "$T/$SERVER")
    read -r succ fail <<<"$r"
    if [ "$name" = idle ]; then
        IDLE_PER_S=$(awk -v i="$ir" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", i / (b - a) }')
        log "$SERVER idle: $IDLE_PER_S instructions/s"
        return
    fi
    idle=$(awk -v r="$IDLE_PER_S" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", r * (b - a) }')
    log "$SERVER $name: $succ done, $fail failed, $ir instructions ($idle idle, $sir store thread)"
    if [ "${succ:-0}" -gt 0 ]; then
        echo "$(((ir - idle) / succ)) $succ $fail $((sir / succ))"
    else
        echo "- 0 $fail -"
    fi
}

wait_udp() {
    local i
    for i in $(seq 1 300); do
        ss -lnu | grep -q "${ADDR} " && { sleep 2; return 0; }
        sleep 0.2
    done
    return 1
}

# measure SERVER — registers carol's UAS, runs both phases; appends to $T/results
measure() {
    SERVER=$1
    sipp -sf "$SCEN/uas_message.xml" -t u1 -i "$LOCAL_IP" -p 15122 -m 100000000 -timeout 900s \
        -default_behaviors all,-bye -nostdin -nr -bg >/dev/null 2>&1
    sleep 0.3
    local r
    r=$(sipp_run "$SERVER-carol" 1 1 reg.xml "$T/carol.csv" -key ct "$LOCAL_IP:15122" -p 15123)
    [ "${r%% *}" = 1 ] || log "$SERVER: registering carol failed ($r)"
    local reg msg
    phase idle - -
    reg=$(phase reg reg.xml "$T/users.csv" -key ct "$LOCAL_IP:15124")
    msg=$(phase msg uac_message.xml "$T/alice.csv" -s carol)
    pkill -f "sipp -sf $SCEN/uas_message.xml -t u1 -i $LOCAL_IP -p 15122" 2>/dev/null
    echo "$SERVER $reg | $msg" >>"$T/results"
}

rtcd_run() {
    mkdir -p "$T/rtcd"
    awk -v n="$NREQ" 'BEGIN { for (i = 1; i <= n; i++) printf "u%06d,secret\n", i;
        print "alice,secret"; print "bob,secret"; print "carol,secret" }' >"$T/rtcd/users"
    "$BUILD/rtcctl" --set server.data_dir="$T/rtcd" user import "$T/rtcd/users" >/dev/null ||
        return 1
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$T/rtcd.%p" "$BUILD/rtcd" \
        --set server.data_dir="$T/rtcd" --set server.workers=1 --set auth.challenge=register \
        --set "sip.listen=udp:$ADDR" --set http.listen= --set turn.listen= \
        --set log.level=warn ${RTCD_ARGS:-} >"$T/rtcd.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_udp || { tail "$T/rtcd.log" >&2; return 1; }
    measure rtcd
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
}

kamailio_run() {
    command -v kamailio >/dev/null || { log "kamailio not installed (scripts/deps.sh --bench)"; return 1; }
    mkdir -p "$T/kam/db"
    python3 - "$T/kam/db/users" "$NREQ" <<'EOF'
import hashlib, sys
n = int(sys.argv[2])
names = ["u%06d" % i for i in range(1, n + 1)] + ["alice", "bob", "carol"]
with open(sys.argv[1], "w") as f:
    f.write("key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n")
    for u in names:
        f.write("%s:0:0:%s:0\n" % (u, hashlib.md5(("%s:localhost:secret" % u).encode()).hexdigest()))
EOF
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$T/kamailio.%p" \
        kamailio -f "$ROOT/bench/kamailio/kamailio.cfg" -DD -E -m 256 -M 16 -w "$T/kam" \
        -A "DBURL=\"text://$T/kam/db\"" -A CHILDREN=1 >"$T/kam/kamailio.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_udp || { tail "$T/kam/kamailio.log" >&2; return 1; }
    sleep 5
    measure kamailio
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
}

: >"$T/results"
[ "${1:-all}" = rtcd ] || kamailio_run || log "kamailio: not measured"
[ "${1:-all}" = kamailio ] || rtcd_run || log "rtcd: not measured"

echo "SIP instructions per request (callgrind, user space, every process and thread) — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "$NREQ requests per phase at $RATE/s; auth.challenge = register; one worker / one child"
printf '%-10s %24s %24s %28s\n' server "per REGISTER (401+200)" "per MESSAGE" "of which rtcd's store thread"
while read -r name reg _ _ _ _ msg _ _ smsg; do
    printf '%-10s %24s %24s %28s\n' "$name" "$reg" "$msg" "$([ "$name" = rtcd ] && echo "$smsg" || echo -)"
    eval "ir_${name}_reg=$reg ir_${name}_msg=$msg ir_${name}_smsg=$smsg"
done <"$T/results"
if [ -n "${ir_rtcd_reg:-}" ] && [ -n "${ir_kamailio_reg:-}" ] && [ "$ir_kamailio_reg" != - ]; then
    awk -v a="$ir_rtcd_reg" -v b="$ir_kamailio_reg" -v c="$ir_rtcd_msg" -v d="$ir_kamailio_msg" \
        'BEGIN { printf "rtcd/Kamailio: REGISTER %.2f, MESSAGE %.2f\n", a / b, c / d }'
    awk -v c="$ir_rtcd_msg" -v s="$ir_rtcd_smsg" -v d="$ir_kamailio_msg" \
        'BEGIN { printf "rtcd/Kamailio, MESSAGE without the archive (work Kamailio does not do): %.2f\n", (c - s) / d }'
fi
