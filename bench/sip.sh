#!/usr/bin/env bash
# bench/sip.sh — SIP core benchmark (issue 5 item 9), driven by sipp.
#
#   bench/sip.sh                      Kamailio, then rtcd with 1 and 2 workers
#                                     (each started and stopped here), then the
#                                     ratios rtcd/Kamailio
#   bench/sip.sh kamailio             the Kamailio anchor alone
#   bench/sip.sh rtcd W               rtcd alone, W workers
#   bench/sip.sh SERVER PID ADDR      measure a server that is already running
#                                     (e.g. rtcd PID 127.0.0.1:15100)
#   bench/sip.sh --users-file FILE    write the benchmark's users ("name
#                                     password" lines) for loading into rtcd
#   bench/sip.sh compare              rtcd/Kamailio ratios from the results
#   ONLY=mem bench/sip.sh ...         the memory figure alone (~2 min/server;
#                                     it does not depend on how busy the CPUs are)
#
# The server under test must serve domain "localhost" on UDP ADDR, challenge
# REGISTER only (rtcd: auth.challenge = register) and know the users
# u000001..u100000, alice, bob and carol, all with password "secret".
#
# Figures (each sipp run bounded in count and time; whole run ~7 min/server):
#   mem   RSS growth per registered user: 100,000 distinct users registered
#         with reg.xml (one CSV line each), read MEM_SETTLE (45) s after the last
#         one, when their transactions (Timer J, 32 s) have ended; memory is the sum of Pss over the
#         server's process tree (= VmRSS for a single process like rtcd;
#         Kamailio is several processes sharing memory, where summing RSS
#         would count shared pages once per process)
#   reg   REGISTER/s (401 + 200 each) at zero failed registrations
#   call  calls/s (INVITE/100/180/200/ACK/BYE through the proxy to a sipp
#         callee registered as bob) at zero failed calls
#   msg   MESSAGE/s (to a sipp registered as carol) at zero failures
#   cpu   the server's CPU time (utime + stime of every process and thread
#         of the server, /proc/PID/stat) per REGISTER, per call and per
#         MESSAGE at a fixed offered rate (FIXED_RATE/s for FIXED_SECS s),
#         from a quiet server to TAIL_SECS (35) s after the last request (the
#         phase's transactions end within Timer J), less the idle rate; these
#         phases run before the rate searches, whose failing steps leave work
#         behind
# Rate search: offered rates 250, 500, 1000, 2000, 4000, 8000 until one
# fails, then two bisection steps; each step offers STEP_SECS seconds of
# load. The figure is the achieved rate (completed / wall time) of the best
# step with zero failures. The load generator runs on the same two cores,
# so these rates are bounded by sipp as much as by the server; the CPU
# figures are the ones to compare.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$PWD
SCEN=$ROOT/tests/sip/scenarios
STEP_SECS=${STEP_SECS:-4}
FIXED_RATE=${FIXED_RATE:-500}
FIXED_SECS=${FIXED_SECS:-20}
NUSERS=${NUSERS:-100000}
MEM_RATE=${MEM_RATE:-2500}
MEM_SETTLE=${MEM_SETTLE:-45}
MAX_RATE=${MAX_RATE:-8000}
IDLE_SECS=${IDLE_SECS:-5}
TAIL_SECS=${TAIL_SECS:-35}
QUIET_MAX=${QUIET_MAX:-90}
LOCAL_IP=127.0.0.1
P_UAC=15120 P_UAS_CALL=15121 P_UAS_MSG=15122 P_REG=15123
T=$(mktemp -d "${TMPDIR:-/tmp}/rtcd-bench-sip.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    [ "${KEEP_BENCH_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
# interrupted: stop what we started (sipp runs inside $(...) are in our process group)
trap 'trap - TERM INT; cleanup; kill -TERM -- -$$ 2>/dev/null; exit 143' TERM INT


# users_file FILE — "name password" lines of every benchmark user.
users_file() {
    awk -v n="$NUSERS" 'BEGIN { for (i = 1; i <= n; i++) printf "u%06d secret\n", i;
        print "alice secret"; print "bob secret"; print "carol secret" }' >"$1"
}

# reg_csv FILE — sipp injection file for the NUSERS users.
reg_csv() {
    awk -v n="$NUSERS" 'BEGIN { print "SEQUENTIAL";
        for (i = 1; i <= n; i++) printf "u%06d;[authentication username=u%06d password=secret]\n", i, i }' >"$1"
}

one_csv() { printf 'SEQUENTIAL\n%s;[authentication username=%s password=%s]\n' "$2" "$2" "$3" >"$1"; }




# sipp_run NAME RATE COUNT SCENARIO CSV [args] — one bounded client run.
# Prints "ok|fail completed failed seconds".
sipp_run() {
    local name=$1 rate=$2 count=$3 scen=$4 csv=$5
    shift 5
    local limit=$((rate * 4 < 2000 ? 2000 : rate * 4))
    local t0 t1 rc succ fail
    t0=$(date +%s.%N)
    timeout $((count / rate * 3 + 40)) sipp "$SERVER_ADDR" -sf "$SCEN/$scen" -inf "$csv" \
        -t u1 -i "$LOCAL_IP" -p "$P_UAC" -key domain localhost -key expires 3600 \
        -r "$rate" -rp 1000 -m "$count" -l "$limit" -d 0 \
        -recv_timeout 8000 -timeout $((count / rate * 2 + 30))s -timeout_error \
        -default_behaviors all,-bye -nostdin -nr -max_reconnect 0 \
        -trace_err -error_file "$T/$name.err" "$@" >"$T/$name.out" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    succ=$(awk -F'|' '/Successful call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$T/$name.out")
    fail=$(awk -F'|' '/Failed call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$T/$name.out")
    if [ "$rc" = 0 ] && [ "$succ" = "$count" ] && [ "$fail" = 0 ]; then echo -n "ok "; else echo -n "fail "; fi
    echo "$succ $fail $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
}

# uas_start NAME SCENARIO PORT USER — a server-mode sipp registered as USER.
uas_start() {
    local name=$1 scen=$2 port=$3 user=$4
    sipp -sf "$SCEN/$scen" -t u1 -i "$LOCAL_IP" -p "$port" -m 10000000 -timeout 900s \
        -default_behaviors all,-bye -nostdin -nr -trace_err -error_file "$T/$name.err" \
        >"$T/$name.out" 2>&1 &
    UAS_PID=$!
    PIDS+=("$UAS_PID")
    sleep 0.3
    one_csv "$T/$name.csv" "$user" secret
    local r
    r=$(sipp_run "$name-reg" 1 1 reg.xml "$T/$name.csv" -key ct "$LOCAL_IP:$port" -p "$P_REG")
    case $r in ok*) ;; *) log "registering $user failed: $r"; return 1 ;; esac
}

uas_stop() {
    kill -TERM "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# search NAME SCENARIO CSV [args] — highest zero-failure rate; prints
# "ACHIEVED_RATE OFFERED_RATE" (0 0 when even the lowest step fails).
search() {
    local name=$1 scen=$2 csv=$3
    shift 3
    local rate=250 best=0 best_off=0 fail_rate=0 r st succ nfail secs ach i
    # the previous search may have overloaded the server: let it drain first, so that
    # this one's first steps do not fail on the last one's backlog
    wait_quiet "$SERVER_PID" >&2
    while [ "$rate" -le "$MAX_RATE" ]; do
        r=$(sipp_run "$name-$rate" "$rate" $((rate * STEP_SECS)) "$scen" "$csv" "$@")
        read -r st succ nfail secs <<<"$r"
        ach=$(awk -v n="$succ" -v s="$secs" 'BEGIN { printf "%d", n / s }')
        log "$name offered $rate/s: $st, $succ completed, $nfail failed, $ach/s achieved"
        if [ "$st" = ok ]; then
            [ "$ach" -gt "$best" ] && best=$ach best_off=$rate
            # The generator no longer keeps up: a higher offer measures sipp.
            if [ "$ach" -lt $((rate * 8 / 10)) ]; then break; fi
            rate=$((rate * 2))
        else
            fail_rate=$rate
            break
        fi
        sleep 1
    done
    if [ "$fail_rate" -gt 0 ] && [ "$best_off" -gt 0 ]; then
        local lo=$best_off hi=$fail_rate mid
        for i in 1 2; do
            mid=$(((lo + hi) / 2))
            [ "$mid" -le "$lo" ] && break
            sleep 1
            r=$(sipp_run "$name-$mid" "$mid" $((mid * STEP_SECS)) "$scen" "$csv" "$@")
            read -r st succ nfail secs <<<"$r"
            ach=$(awk -v n="$succ" -v s="$secs" 'BEGIN { printf "%d", n / s }')
            log "$name offered $mid/s: $st, $succ completed, $nfail failed, $ach/s achieved"
            if [ "$st" = ok ]; then
                lo=$mid
                [ "$ach" -gt "$best" ] && best=$ach best_off=$mid
            else
                hi=$mid
            fi
        done
    fi
    echo "$best $best_off"
}

# cpu_per NAME SCENARIO CSV [args] — server CPU us per completed call at
# FIXED_RATE for FIXED_SECS; prints "US_PER_CALL COMPLETED FAILED".
# Each phase is charged with its own work and nothing else: it starts when the
# server has gone quiet after the previous phase (the rate searches leave tens of
# thousands of transactions that end 32 s later, RFC 3261 Timer J), and it ends
# TAIL_SECS after the last request, so the phase's own transactions' ends are
# counted; the server's idle CPU rate, measured just before, is taken off.
cpu_per() {
    local name=$1 scen=$2 csv=$3
    shift 3
    local c0 c1 i0 i1 t0 t1 r st succ nfail secs hz idle_ms
    hz=$(getconf CLK_TCK)
    wait_quiet "$SERVER_PID"
    i0=$(cpu_ticks "$SERVER_PID")
    sleep "$IDLE_SECS"
    i1=$(cpu_ticks "$SERVER_PID")
    t0=$(date +%s.%N)
    log "$name threads before: $(thread_ticks "$SERVER_PID")"
    c0=$(cpu_ticks "$SERVER_PID")
    r=$(sipp_run "$name" "$FIXED_RATE" $((FIXED_RATE * FIXED_SECS)) "$scen" "$csv" "$@")
    sleep "$TAIL_SECS"
    c1=$(cpu_ticks "$SERVER_PID")
    t1=$(date +%s.%N)
    log "$name threads after:  $(thread_ticks "$SERVER_PID")"
    read -r st succ nfail secs <<<"$r"
    idle_ms=$(awk -v d=$((i1 - i0)) -v hz="$hz" -v s="$IDLE_SECS" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%.0f", d * 1000 / hz / s * (b - a) }')
    log "$name at $FIXED_RATE/s: $st, $succ completed, $nfail failed, server CPU $(((c1 - c0) * 1000 / hz)) ms" \
        "in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s, of which idle ${idle_ms} ms"
    if [ "$succ" -gt 0 ]; then
        echo "$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$succ" -v idle="$idle_ms" \
            'BEGIN { v = (d * 1000 / hz - idle) * 1000 / n; printf "%.1f", v < 0 ? 0 : v }') $succ $nfail"
    else
        echo "- 0 $nfail"
    fi
}

# wait_quiet PID — until the server used at most one clock tick in a 2 s
# window (at most QUIET_MAX s).
wait_quiet() {
    local a b waited=0
    while [ "$waited" -lt "$QUIET_MAX" ]; do
        a=$(cpu_ticks "$1")
        sleep 2
        b=$(cpu_ticks "$1")
        waited=$((waited + 2))
        [ $((b - a)) -le 1 ] && break
    done
    log "quiet after ${waited} s"
}

# measure NAME PID ADDR — every figure for one running server.
measure() {
    SERVER_NAME=$1 SERVER_PID=$2 SERVER_ADDR=$3
    mkdir -p bench/results
    local out=bench/results/sip-$SERVER_NAME.txt
    reg_csv "$T/users.csv"
    one_csv "$T/alice.csv" alice secret
    kill -0 "$SERVER_PID" || { echo "sip: no process $SERVER_PID" >&2; return 1; }

    log "memory: registering $NUSERS users at $MEM_RATE/s"
    sleep 1
    local m0 m1 r st succ nfail secs per_user rss0 rss1
    m0=$(mem_kb "$SERVER_PID")
    rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
    r=$(sipp_run mem "$MEM_RATE" "$NUSERS" reg.xml "$T/users.csv" -key ct "$LOCAL_IP:15124")
    read -r st succ nfail secs <<<"$r"
    # per registered user, not per transaction: wait until the burst's transactions
    # have ended (RFC 3261 Timer J = 64*T1 = 32 s) before reading the memory
    log "memory: waiting ${MEM_SETTLE} s for the registration transactions to end"
    sleep "$MEM_SETTLE"
    m1=$(mem_kb "$SERVER_PID")
    rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
    per_user=$(((m1 - m0) * 1024 / (succ > 0 ? succ : 1)))
    log "memory: $succ registered ($nfail failed) in ${secs%.*} s; Pss $m0 -> $m1 kB; main VmRSS $rss0 -> $rss1 kB"

    if [ "${ONLY:-}" = mem ]; then
        echo "sip-summary $SERVER_NAME mem_b_user=$per_user (memory only)" | tee "$out.mem"
        return 0
    fi
    # The fixed-rate CPU phases come before the rate searches: a search's failing
    # steps leave work behind (INVITE transactions waiting for Timer C, 200 OKs
    # retransmitted for calls whose ACK never came) that would be charged to
    # whatever phase came next.
    uas_start uas-call uas.xml "$P_UAS_CALL" bob || return 1
    local call_uas=$UAS_PID
    uas_start uas-msg uas_message.xml "$P_UAS_MSG" carol || return 1
    local msg_uas=$UAS_PID
    local cpu_reg cpu_call cpu_msg
    cpu_reg=$(cpu_per cpu-reg reg.xml "$T/users.csv" -key ct "$LOCAL_IP:15124")
    cpu_call=$(cpu_per cpu-call uac_call.xml "$T/alice.csv" -s bob)
    cpu_msg=$(cpu_per cpu-msg uac_message.xml "$T/alice.csv" -s carol)

    local reg call msg
    reg=$(search reg reg.xml "$T/users.csv" -key ct "$LOCAL_IP:15124")
    call=$(search call uac_call.xml "$T/alice.csv" -s bob)
    msg=$(search msg uac_message.xml "$T/alice.csv" -s carol)
    uas_stop "$call_uas"
    uas_stop "$msg_uas"

    {
        echo "SIP core benchmark: $SERVER_NAME (pid $SERVER_PID, $SERVER_ADDR, UDP) — $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), shared with the sipp load generators"
        printf '%-46s %s\n' "figure" "value"
        printf '%-46s %s\n' "REGISTER/s with auth, 0 failures" "${reg% *} (offered ${reg#* }/s)"
        printf '%-46s %s\n' "calls/s, 0 failures" "${call% *} (offered ${call#* }/s)"
        printf '%-46s %s\n' "MESSAGE/s, 0 failures" "${msg% *} (offered ${msg#* }/s)"
        printf '%-46s %s\n' "CPU us per REGISTER ($FIXED_RATE/s x ${FIXED_SECS}s)" "$(set -- $cpu_reg; echo "$1 ($2 done, $3 failed)")"
        printf '%-46s %s\n' "CPU us per call ($FIXED_RATE/s x ${FIXED_SECS}s)" "$(set -- $cpu_call; echo "$1 ($2 done, $3 failed)")"
        printf '%-46s %s\n' "CPU us per MESSAGE ($FIXED_RATE/s x ${FIXED_SECS}s)" "$(set -- $cpu_msg; echo "$1 ($2 done, $3 failed)")"
        printf '%-46s %s\n' "memory per registered user ($succ users)" "$per_user bytes (Pss $((m0 / 1024)) -> $((m1 / 1024)) MiB)"
        echo "sip-summary $SERVER_NAME reg_per_s=${reg% *} calls_per_s=${call% *} msg_per_s=${msg% *}" \
            "cpu_us_reg=${cpu_reg%% *} cpu_us_call=${cpu_call%% *} cpu_us_msg=${cpu_msg%% *} mem_b_user=$per_user"
    } | tee "$out"
}

# wait_listening PID LOG — waits (20 s) until 127.0.0.1:15100/udp is open; 1 if PID died.
wait_listening() {
    local i
    for i in $(seq 1 100); do
        ss -lnu | grep -q '127.0.0.1:15100 ' && { sleep 1; return 0; }
        kill -0 "$1" 2>/dev/null || { tail "$2" >&2; return 1; }
        sleep 0.2
    done
    return 1
}

# kamailio_anchor — start Kamailio with NUSERS users, measure, stop it.
kamailio_anchor() {
    mkdir -p "$T/kam/db"
    python3 - "$T/kam/db/users" "$NUSERS" <<'EOF'
import hashlib, sys
n = int(sys.argv[2])
names = ["u%06d" % i for i in range(1, n + 1)] + ["alice", "bob", "carol"]
with open(sys.argv[1], "w") as f:
    f.write("key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n")
    for u in names:
        f.write("%s:0:0:%s:0\n" % (u, hashlib.md5(("%s:localhost:secret" % u).encode()).hexdigest()))
EOF
    kamailio -f "$ROOT/bench/kamailio/kamailio.cfg" -DD -E -m 512 -M 16 -w "$T/kam" \
        -A "DBURL=\"text://$T/kam/db\"" >"$T/kam/kamailio.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_listening "$pid" "$T/kam/kamailio.log" || return 1
    measure kamailio "$pid" 127.0.0.1:15100
    local rc=$?
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    return $rc
}

# compare [NAME...] — NAME/Kamailio ratio of every figure from the results files
# (default: rtcd-w1 rtcd-w2).
compare() {
    local k=bench/results/sip-kamailio.txt name files=()
    [ -f "$k" ] || { echo "sip: compare needs $k" >&2; return 1; }
    [ $# -gt 0 ] || set -- rtcd-w1 rtcd-w2
    for name in "$@"; do
        [ -f "bench/results/sip-$name.txt" ] && files+=("bench/results/sip-$name.txt")
    done
    [ ${#files[@]} -gt 0 ] || { echo "sip: no rtcd results to compare" >&2; return 1; }
    awk '/^sip-summary/ { s[$2] = 1; for (i = 3; i <= NF; i++) { split($i, kv, "="); v[$2, kv[1]] = kv[2] } }
        END {
            n = split("reg_per_s calls_per_s msg_per_s cpu_us_reg cpu_us_call cpu_us_msg mem_b_user", order, " ")
            for (name in s) {
                if (name == "kamailio") continue
                printf "%-14s %12s %12s %8s\n", "figure", name, "kamailio", "ratio"
                for (i = 1; i <= n; i++) {
                    f = order[i]; a = v[name, f]; b = v["kamailio", f]
                    printf "%-14s %12s %12s %8s\n", f, a, b, (b + 0 > 0 ? sprintf("%.2f", a / b) : "-")
                }
            }
        }' "$k" "${files[@]}"
}

# rtcd_side W — rtcd with W workers: the benchmark users imported into a fresh
# store, auth.challenge = register, UDP 127.0.0.1:15100; measured, then stopped.
rtcd_side() {
    local w=$1 dir=$T/rtcd-w$1 pid
    local bin=${BUILD:-$ROOT/build-bench}
    mkdir -p "$dir"
    users_file "$T/users.txt"
    awk '{ print $1 "," $2 }' "$T/users.txt" >"$dir/import.csv"
    "$bin/rtcctl" --set server.data_dir="$dir" user import "$dir/import.csv" >/dev/null ||
        { echo "sip: rtcctl user import failed" >&2; return 1; }
    "$bin/rtcd" --set server.data_dir="$dir" --set server.workers="$w" \
        --set auth.challenge=register --set sip.listen=udp:127.0.0.1:15100 \
        --set http.listen=tcp:127.0.0.1:18000 --set turn.listen= --set log.level=warn \
        >"$dir/rtcd.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_listening "$pid" "$dir/rtcd.log" || return 1
    measure "rtcd-w$w" "$pid" 127.0.0.1:15100
    local rc=$?
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    return $rc
}

case "${1:-all}" in
    --users-file) users_file "$2" ;;
    compare) shift; compare "$@" ;;
    kamailio) kamailio_anchor ;;
    rtcd) rtcd_side "${2:-1}" ;;
    all)
        kamailio_anchor && rtcd_side 1 && rtcd_side 2 || exit 1
        echo
        echo "rtcd / Kamailio, same run (CPU and memory: lower is better; rates are bounded by sipp):"
        compare rtcd-w1 rtcd-w2
        ;;
    *)
        [ $# -eq 3 ] || { echo "usage: $0 [all | kamailio | rtcd W | SERVER PID ADDR | --users-file FILE | compare [NAME...]]" >&2; exit 2; }
        measure "$1" "$2" "$3"
        ;;
esac
