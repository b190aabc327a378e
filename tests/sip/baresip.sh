#!/usr/bin/env bash
# tests/sip/baresip.sh — drive baresip 1.0.0 (Debian) from wire tests.
#
# Sourced after tests/lib.sh (uses $T, track, stop_pid, ok, not_ok).
# Executed directly it checks the driver against the Kamailio anchor: two
# users register, call each other (both directions) and exchange messages:
#
#   tests/sip/baresip.sh [--server IP:PORT]   (default: starts Kamailio)
#
# Each baresip runs with HOME=$T/NAME (config in $T/NAME/.baresip), no sound
# card (ALSA "null" device as source and player; ausine would need 48 kHz), no name lookups (dns_server
# 127.0.0.1:53, outbound proxy as an IP literal), UDP, and is controlled
# through ctrl_tcp (netstring JSON) on a loopback port. A small python3
# bsctl keeps the one control connection open, appends every event as one
# JSON line to $T/NAME/events and sends commands written to the FIFO
# $T/NAME/cmd; baresip's output with its SIP trace (-s) goes to $T/NAME/out.
# Ports: SIP 15170-15179, control 15180-15189 (the sip area's range); baresip
# also binds SIP_PORT+1 (TLS), so give each instance an even port.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _bs_here=$(cd "$(dirname "$0")" && pwd)
    # shellcheck source=../lib.sh
    . "$_bs_here/../lib.sh"
    # shellcheck source=run_scenario.sh
    . "$_bs_here/run_scenario.sh"
fi

BS_PY=${T:?source tests/lib.sh first}/bsctl.py
cat >"$BS_PY" <<'EOF'
# bsctl.py serve PORT DIR — holds baresip's one ctrl_tcp connection (a new
# connection replaces the old one, so commands and events share it): every
# event is appended as a JSON line to DIR/events, every response to
# DIR/responses; commands are read as JSON lines from the FIFO DIR/cmd.
import json, os, socket, sys, threading, time

port, d = sys.argv[2], sys.argv[3]
for _ in range(100):
    try:
        sock = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("bsctl: cannot connect to 127.0.0.1:%s" % port)
sock.settimeout(None)

def commands():
    while True:
        with open(os.path.join(d, "cmd")) as fifo:
            for line in fifo:
                req = line.strip().encode()
                if req:
                    sock.sendall(b"%d:%s," % (len(req), req))

threading.Thread(target=commands, daemon=True).start()
ev = open(os.path.join(d, "events"), "a", buffering=1)
rs = open(os.path.join(d, "responses"), "a", buffering=1)
buf = b""
while True:
    data = sock.recv(65536)
    if not data:
        break
    buf += data
    while True:
        colon = buf.find(b":")
        if colon < 0 or len(buf) < colon + 2 + int(buf[:colon]):
            break
        n = int(buf[:colon])
        msg = json.loads(buf[colon + 1:colon + 1 + n])
        buf = buf[colon + 2 + n:]
        (ev if msg.get("event") else rs).write(json.dumps(msg) + "\n")
EOF

# baresip_start NAME USER PASSWORD SIP_PORT CTRL_PORT [SERVER [DOMAIN [PEER]]]
# Writes the config, accounts and contacts (PEER: the user the "message"
# command writes to) and starts baresip; waits for its control port and a
# REGISTER_OK (10 s). Sets BS_PID_<NAME>. Returns non-zero on failure.
baresip_start() {
    local name=$1 user=$2 pass=$3 sport=$4 cport=$5
    local server=${6:-127.0.0.1:15100} domain=${7:-localhost} peer=${8:-}
    local home=$T/$name
    mkdir -p "$home/.baresip"
    cat >"$home/.baresip/config" <<EOF
poll_method		epoll
sip_listen		127.0.0.1:$sport
dns_server		127.0.0.1:53
audio_player		alsa,null
audio_source		alsa,null
audio_alert		alsa,null
module_path		/usr/lib/baresip/modules
module			g711.so
module			alsa.so
module_app		account.so
module_app		contact.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:$cport
EOF
    # BS_ACCOUNT_PARAMS / BS_CONTACT_PARAMS (e.g. ";pubint=60" / ";presence=p2p"): extra
    # parameters of the account and of the peer's contact entry (presence tests).
    printf '<sip:%s@%s;transport=udp>;auth_pass=%s;outbound="sip:%s;transport=udp";regint=600;answermode=manual%s\n' \
        "$user" "$domain" "$pass" "$server" "${BS_ACCOUNT_PARAMS:-}" >"$home/.baresip/accounts"
    : >"$home/.baresip/contacts"
    [ -n "$peer" ] && printf '"%s" <sip:%s@%s>%s\n' "$peer" "$peer" "$domain" "${BS_CONTACT_PARAMS:-}" >"$home/.baresip/contacts"
    [ -n "${BS_EXTRA_MODULES:-}" ] && for m in $BS_EXTRA_MODULES; do
        printf 'module_app\t\t%s\n' "$m" >>"$home/.baresip/config"
    done
    : >"$home/events"
    # No UI module (stdio would stop at end-of-file): control is ctrl_tcp only.
    # -s: SIP trace in $home/out (how a received MESSAGE is seen, below).
    HOME=$home baresip -s -f "$home/.baresip" </dev/null >"$home/out" 2>&1 &
    local pid=$!
    track "$pid"
    eval "BS_PID_$name=$pid"
    local i
    for i in $(seq 1 50); do
        ss -lnt | grep -q "127.0.0.1:$cport " && break
        sleep 0.1
    done
    rm -f "$home/cmd"
    mkfifo "$home/cmd"
    : >"$home/responses"
    python3 "$BS_PY" serve "$cport" "$home" </dev/null >"$home/bsctl.log" 2>&1 &
    track "$!"
    eval "BS_CTRL_$name=$cport"
    # REGISTER_OK may come before the listener is connected: ask reginfo too.
    for i in $(seq 1 20); do
        baresip_wait "$name" REGISTER_OK 0.5 && return 0
        baresip_cmd "$name" reginfo 2>/dev/null | grep -q '32mOK' && return 0
    done
    return 1
}

# baresip_cmd NAME COMMAND [PARAMS...] — runs one ctrl_tcp command through
# NAME's bsctl; prints the response JSON (10 s at most); non-zero when there
# is none or baresip answered ok=false.
baresip_cmd() {
    local name=$1 cmd=$2 token i
    shift 2
    token="$name-$(date +%s%N)"
    local json
    json=$(python3 -c 'import json,sys; print(json.dumps({"command": sys.argv[1], "params": " ".join(sys.argv[3:]), "token": sys.argv[2]}))' \
        "$cmd" "$token" "$@")
    # The FIFO write blocks until bsctl reads it: bounded.
    timeout 5 bash -c 'printf "%s\n" "$1" >"$2"' _ "$json" "$T/$name/cmd" || return 1
    for i in $(seq 1 100); do
        if grep -F "\"token\": \"$token\"" "$T/$name/responses"; then
            grep -F "\"token\": \"$token\"" "$T/$name/responses" | grep -q '"ok": true'
            return
        fi
        sleep 0.1
    done
    return 1
}

# baresip_wait NAME EVENT_TYPE [SECONDS] — waits (default 10 s) until NAME
# has reported the event (REGISTER_OK, CALL_INCOMING, CALL_ESTABLISHED,
# CALL_CLOSED, ...) since the last baresip_mark; fails on timeout.
baresip_wait() {
    local name=$1 type=$2 secs=${3:-10} i
    local from=$(($(eval echo "\${BS_MARK_$name:-0}") + 1))
    for i in $(seq 1 "$(awk -v s="$secs" 'BEGIN { printf "%d", s * 10 }')"); do
        tail -n +"$from" "$T/$name/events" | grep -q "\"type\": \"$type\"" && return 0
        sleep 0.1
    done
    return 1
}

# baresip_mark NAME — later baresip_wait calls only see newer events.
baresip_mark() { eval "BS_MARK_$1=$(wc -l <"$T/$1/events")"; }

# baresip_wait_message NAME TEXT [SECONDS] — waits until NAME received a
# MESSAGE whose body contains TEXT and answered it 200. baresip 1.0 has no
# ctrl_tcp event for it (it prints it only to a UI module), so this reads
# NAME's SIP trace: an incoming "MESSAGE sip:" request with TEXT, followed by
# NAME sending "SIP/2.0 200 OK" for CSeq ... MESSAGE.
baresip_wait_message() {
    local name=$1 text=$2 secs=${3:-10} i
    for i in $(seq 1 $((secs * 10))); do
        if awk -v t="$text" '/^MESSAGE sip:/ { m = 1 } m && index($0, t) { got = 1 }
                /^SIP\/2.0 200 OK/ && got { ok = 1 } /^CSeq: [0-9]+ MESSAGE/ && ok { found = 1 }
                END { exit !found }' "$T/$name/out"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# baresip_stop NAME — quits baresip (by its PID).
baresip_stop() { stop_pid "$(eval echo "\$BS_PID_$1")" 3; }

# baresip_call A B USER_B DOMAIN — A dials B; B accepts; both established;
# A hangs up; both closed. Records ok/not_ok lines.
baresip_call() {
    local a=$1 b=$2 ub=$3 domain=$4
    baresip_mark "$a"
    baresip_mark "$b"
    baresip_cmd "$a" dial "sip:$ub@$domain" >/dev/null
    if baresip_wait "$b" CALL_INCOMING 10; then ok "baresip $a->$b: incoming call"; else not_ok "baresip $a->$b: incoming call"; return; fi
    baresip_cmd "$b" accept >/dev/null
    if baresip_wait "$a" CALL_ESTABLISHED 10 && baresip_wait "$b" CALL_ESTABLISHED 10; then
        ok "baresip $a->$b: call established on both sides"
    else
        not_ok "baresip $a->$b: call established on both sides"
    fi
    sleep 1
    baresip_cmd "$a" hangup >/dev/null
    if baresip_wait "$b" CALL_CLOSED 10 && baresip_wait "$a" CALL_CLOSED 10; then
        ok "baresip $a->$b: hangup closes both sides"
    else
        not_ok "baresip $a->$b: hangup closes both sides"
    fi
}

# baresip_suite SERVER — alice and bob (password "secret") register through
# SERVER, call each other both ways and exchange a message each way.
baresip_suite() {
    local server=$1 text
    if baresip_start alice alice secret 15170 15180 "$server" localhost bob; then
        ok "baresip alice: REGISTER_OK"
    else
        not_ok "baresip alice: REGISTER_OK" "$(tail -5 "$T/alice/out")"
    fi
    if baresip_start bob bob secret 15172 15181 "$server" localhost alice; then
        ok "baresip bob: REGISTER_OK"
    else
        not_ok "baresip bob: REGISTER_OK" "$(tail -5 "$T/bob/out")"
    fi
    baresip_call alice bob bob localhost
    baresip_call bob alice alice localhost
    text="hello-bob-$$"
    baresip_cmd alice message "$text" >/dev/null
    if baresip_wait_message bob "$text" 10; then ok "baresip alice->bob: MESSAGE received"; else not_ok "baresip alice->bob: MESSAGE received"; fi
    text="hello-alice-$$"
    baresip_cmd bob message "$text" >/dev/null
    if baresip_wait_message alice "$text" 10; then ok "baresip bob->alice: MESSAGE received"; else not_ok "baresip bob->alice: MESSAGE received"; fi
    baresip_stop alice
    baresip_stop bob
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    server=""
    [ "${1:-}" = --server ] && server=$2
    if [ -z "$server" ]; then
        server=127.0.0.1:15100
        kam_start "$T/kam" -A AUTH_ALL || exit 1
    fi
    baresip_suite "$server"
    finish
fi
