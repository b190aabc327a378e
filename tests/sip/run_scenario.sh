#!/usr/bin/env bash
# tests/sip/run_scenario.sh — sipp helpers for the SIP wire tests.
#
# Sourced by tests/sip/*.sh after tests/lib.sh (uses $T, track, stop_pid, ok,
# not_ok). Executed directly it runs every scenario once against a server
# (default: the Kamailio anchor it starts itself) — the manual check:
#
#   tests/sip/run_scenario.sh [--transport u1|t1] [--ip 127.0.0.1|::1]
#                             [--server IP:PORT (a running server; users
#                              alice, bob, carol, loop with password "secret")]
#
# Settings (environment, with defaults):
#   SIP_SERVER     127.0.0.1:15100   the server under test (IPv6: [::1]:15100)
#   SIP_LOCAL_IP   127.0.0.1         sipp's local address (-i); ::1 for IPv6
#   SIP_TRANSPORT  u1                sipp -t: u1 (UDP) or t1 (TCP)
#   SIP_DOMAIN     localhost         the SIP domain (AORs user@domain)
#   SIP_PORT_BASE  15130             sipp local ports are taken from here up
#                                    to 15199, a fresh one for every process
# Every sipp run is bounded: -m 1 call, -recv_timeout, -timeout.
# Files of each run: $T/NAME.csv, NAME.out, NAME.err (errors), NAME.msg
# (message trace).

SIP_SCENARIOS=${SIP_SCENARIOS:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/scenarios}
SIP_SERVER=${SIP_SERVER:-127.0.0.1:15100}
SIP_LOCAL_IP=${SIP_LOCAL_IP:-127.0.0.1}
SIP_TRANSPORT=${SIP_TRANSPORT:-u1}
SIP_DOMAIN=${SIP_DOMAIN:-localhost}
SIP_PORT_BASE=${SIP_PORT_BASE:-15130}
SIP_TIMEOUT=${SIP_TIMEOUT:-20}
_SIP_NEXT_PORT=$SIP_PORT_BASE

# sip_port — prints a fresh local port (15130..15199, then wraps around).
sip_port() {
    local p=$_SIP_NEXT_PORT
    _SIP_NEXT_PORT=$((p + 1))
    [ "$_SIP_NEXT_PORT" -le 15199 ] || _SIP_NEXT_PORT=$SIP_PORT_BASE
    SIP_LAST_PORT=$p
}

# sip_hostport IP PORT — IP:PORT with an IPv6 address in brackets.
sip_hostport() {
    case $1 in *:*) printf '[%s]:%s' "$1" "$2" ;; *) printf '%s:%s' "$1" "$2" ;; esac
}

# sip_csv FILE USER PASSWORD — one-line sipp injection file: field0 = user,
# field1 = the whole [authentication] keyword (sipp 3.6.1 does not expand
# fields inside the keyword's parameters).
sip_csv() {
    printf 'SEQUENTIAL\n%s;[authentication username=%s password=%s]\n' "$2" "$2" "$3" >"$1"
}

# _sipp_common NAME — prints nothing; sets the array SIPP_ARGS for run NAME.
_sipp_common() {
    local name=$1
    SIPP_ARGS=(-t "$SIP_TRANSPORT" -i "$SIP_LOCAL_IP" -p "$SIP_LAST_PORT"
        -key domain "$SIP_DOMAIN" -key expires 3600
        -m 1 -d 200 -recv_timeout 5000 -timeout "${SIP_TIMEOUT}s" -timeout_error
        -max_recv_loops 100 -nostdin -nr -default_behaviors all,-bye
        -trace_err -error_file "$T/$name.err"
        -trace_msg -message_file "$T/$name.msg")
}

# sipp_uac NAME SCENARIO USER PASSWORD [SERVICE] [sipp args...]
# Runs a client scenario to its end (one call) against $SIP_SERVER; returns
# sipp's exit code (0 = the call succeeded). SERVICE (-s) is the target user.
# The Contact of REGISTERs is this sipp's own address unless "-key ct H:P"
# is among the extra args.
sipp_uac() {
    local name=$1 scen=$2 user=$3 pass=$4 svc=${5:-$3}
    shift 4
    [ $# -gt 0 ] && shift
    sip_port
    sip_csv "$T/$name.csv" "$user" "$pass"
    _sipp_common "$name"
    local ct=(-key ct "$(sip_hostport "$SIP_LOCAL_IP" "$SIP_LAST_PORT")")
    case " $* " in *" -key ct "*) ct=() ;; esac
    rm -f "$T/$name.err"
    timeout $((SIP_TIMEOUT + 10)) sipp "$SIP_SERVER" -sf "$SIP_SCENARIOS/$scen" \
        -inf "$T/$name.csv" -s "$svc" "${SIPP_ARGS[@]}" "${ct[@]}" "$@" >"$T/$name.out" 2>&1
}

# sipp_uas_start NAME SCENARIO USER PASSWORD — starts a server-mode sipp
# (one call) on a fresh port in the background, then registers it as USER
# (reg.xml with -key ct = its address). Sets SIPP_UAS_PID and
# SIPP_UAS_PORT; returns non-zero when the registration failed.
sipp_uas_start() {
    local name=$1 scen=$2 user=$3 pass=$4
    sip_port
    SIPP_UAS_PORT=$SIP_LAST_PORT
    _sipp_common "$name"
    rm -f "$T/$name.err"
    sipp -sf "$SIP_SCENARIOS/$scen" -s "$user" "${SIPP_ARGS[@]}" >"$T/$name.out" 2>&1 &
    SIPP_UAS_PID=$!
    track "$SIPP_UAS_PID"
    sleep 0.3
    sipp_uac "$name-reg" reg.xml "$user" "$pass" "$user" \
        -key ct "$(sip_hostport "$SIP_LOCAL_IP" "$SIPP_UAS_PORT")"
}

# sipp_wait PID [SECONDS] — waits for a background sipp to end (default
# $SIP_TIMEOUT + 5 s; then it is stopped); returns its exit code.
sipp_wait() {
    local pid=$1 secs=${2:-$((SIP_TIMEOUT + 5))} i
    for i in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        stop_pid "$pid" 2
        return 124
    fi
    wait "$pid" 2>/dev/null
}

# sip_why NAME — the first lines of a failed run's error file (for not_ok).
sip_why() {
    if [ -s "$T/$1.err" ]; then
        grep -v '^The following events' "$T/$1.err" | head -3 | cut -c1-300
    else
        tail -3 "$T/$1.out" 2>/dev/null
    fi
}

# expect_rc NAME EXPECTED ACTUAL — pass when sipp exited as expected.
expect_rc() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "sipp exit $3 (expected $2): $(sip_why "${1%% *}")"; fi
}

# sip_call_pair NAME UAS_SCEN UAC_SCEN CALLER CALLEE PASSWORD — a callee
# sipp (registered as CALLEE) and a caller sipp; ok when both exit 0.
sip_call_pair() {
    local name=$1 uas=$2 uac=$3 caller=$4 callee=$5 pass=$6 rc_uas rc_uac
    local id=${name%% *}
    if ! sipp_uas_start "$id-uas" "$uas" "$callee" "$pass"; then
        not_ok "$name: register $callee" "$(sip_why "$id-uas-reg")"
        stop_pid "$SIPP_UAS_PID" 2
        return
    fi
    sipp_uac "$id-uac" "$uac" "$caller" "$pass" "$callee"
    rc_uac=$?
    sipp_wait "$SIPP_UAS_PID"
    rc_uas=$?
    # Remove the callee's binding: a stale one would fork the next call to
    # a sipp that is gone.
    sipp_uac "$id-unreg" unreg_star.xml "$callee" "$pass"
    if [ "$rc_uac" = 0 ] && [ "$rc_uas" = 0 ]; then
        ok "$name"
    else
        not_ok "$name" "caller exit $rc_uac, callee exit $rc_uas: $(sip_why "$id-uac") / $(sip_why "$id-uas")"
    fi
}

# kam_start DIR [kamailio args...] — starts the Kamailio anchor
# (bench/kamailio/kamailio.cfg) in DIR with users alice, bob, carol, loop
# (password "secret") plus any lines already in DIR/db/users; waits until
# it answers OPTIONS. Sets KAM_PID.
kam_start() {
    local dir=$1
    shift
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    mkdir -p "$dir/db"
    if [ ! -s "$dir/db/users" ]; then
        python3 - "$dir/db/users" "$SIP_DOMAIN" <<'EOF'
import hashlib, sys
with open(sys.argv[1], "w") as f:
    f.write("key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n")
    for u in ("alice", "bob", "carol", "loop"):
        ha1 = hashlib.md5(f"{u}:{sys.argv[2]}:secret".encode()).hexdigest()
        f.write(f"{u}:0:0:{ha1}:0\n")
EOF
    fi
    kamailio -f "$root/bench/kamailio/kamailio.cfg" -DD -E -m 256 -M 16 -w "$dir" \
        -A "DBURL=\"text://$dir/db\"" "$@" >"$dir/kamailio.log" 2>&1 &
    KAM_PID=$!
    track "$KAM_PID"
    local i
    for i in $(seq 1 50); do
        if grep -q 'Listening on' "$dir/kamailio.log" 2>/dev/null && ss -lnu | grep -q ':15100 '; then
            sleep 0.5
            return 0
        fi
        kill -0 "$KAM_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "kamailio did not start:"
    tail -20 "$dir/kamailio.log"
    return 1
}

# sip_suite — every scenario once against $SIP_SERVER (users alice, bob,
# carol, loop with password "secret"), positive and negative checks.
sip_suite() {
    local tag="[$SIP_TRANSPORT $SIP_LOCAL_IP]" rc
    # alice's registration checks all use one Contact, so each replaces the last.
    local act=(-key ct "$(sip_hostport "$SIP_LOCAL_IP" 15198)")
    sipp_uac options options.xml alice secret
    expect_rc "options $tag: 200" 0 $?
    sipp_uac reg reg.xml alice secret alice "${act[@]}"
    expect_rc "reg $tag: 401 then 200 with Contact;expires" 0 $?
    sipp_uac regwrong reg.xml alice wrong alice "${act[@]}"
    expect_rc "regwrong $tag: reg.xml fails with a wrong password" 1 $?
    sipp_uac badpw reg_badpw.xml alice wrong alice "${act[@]}"
    expect_rc "badpw $tag: wrong password gets 401 again" 0 $?
    sipp_uac badpwok reg_badpw.xml alice secret alice "${act[@]}"
    expect_rc "badpwok $tag: reg_badpw.xml fails when the password is right" 1 $?
    sipp_uac refresh refresh.xml alice secret alice "${act[@]}"
    expect_rc "refresh $tag: refresh on the same Call-ID gets 200" 0 $?
    sipp_uac unreg unreg.xml alice secret alice "${act[@]}"
    expect_rc "unreg $tag: Expires: 0 removes the binding" 0 $?
    sipp_uac star unreg_star.xml alice secret alice "${act[@]}"
    expect_rc "star $tag: Contact: * removes all bindings" 0 $?
    # unreg.xml must fail while another binding of the user is still listed.
    sipp_uac other reg.xml carol secret carol -key ct "$(sip_hostport "$SIP_LOCAL_IP" 15199)"
    sipp_uac unregother unreg.xml carol secret
    expect_rc "unregother $tag: unreg.xml fails while a binding remains" 1 $?
    sipp_uac starclean unreg_star.xml carol secret
    sip_call_pair "call $tag" uas.xml uac_call.xml alice bob secret
    sip_call_pair "reinvite $tag" uas.xml uac_reinvite.xml alice bob secret
    sip_call_pair "byefirst $tag" uas.xml uac_bye_before_ack.xml alice bob secret
    sip_call_pair "busy $tag" uas_busy.xml uac_busy.xml alice bob secret
    sip_call_pair "cancel $tag" uas_ring.xml uac_cancel.xml alice bob secret
    sip_call_pair "message $tag" uas_message.xml uac_message.xml alice bob secret
    # uac_call.xml must fail when the callee answers 486.
    sipp_uas_start busyneg-uas uas_busy.xml bob secret
    sipp_uac busyneg uac_call.xml alice secret bob
    rc=$?
    sipp_wait "$SIPP_UAS_PID" >/dev/null
    expect_rc "busyneg $tag: uac_call.xml fails on 486" 1 $rc
    # bob is still registered at the (now stopped) callee's address: unregister.
    sipp_uac bobclean unreg_star.xml bob secret
    sipp_uac maxfwd maxfwd0.xml alice secret bob
    expect_rc "maxfwd $tag: Max-Forwards: 0 gets 483" 0 $?
    sipp_uac loop loop.xml loop secret
    expect_rc "loop $tag: a request that comes back gets 482" 0 $?
    sipp_uac loopclean unreg_star.xml loop secret
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # Manual check against Kamailio (or --server IP:PORT).
    here=$(cd "$(dirname "$0")" && pwd)
    # shellcheck source=../lib.sh
    . "$here/../lib.sh"
    server=""
    while [ $# -gt 0 ]; do
        case $1 in
            --transport) SIP_TRANSPORT=$2; shift 2 ;;
            --ip) SIP_LOCAL_IP=$2; shift 2 ;;
            --server) server=$2; shift 2 ;;
            *) echo "usage: $0 [--transport u1|t1] [--ip IP] [--server IP:PORT]" >&2; exit 2 ;;
        esac
    done
    if [ -n "$server" ]; then
        SIP_SERVER=$server
    else
        SIP_SERVER=$(sip_hostport "$SIP_LOCAL_IP" 15100)
        kam_start "$T/kam" -A AUTH_ALL -A LISTEN6 || exit 1
    fi
    sip_suite
    finish
fi
