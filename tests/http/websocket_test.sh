#!/usr/bin/env bash
# SIP over WebSocket (RFC 7118) and WebSocket behaviour (RFC 6455) on the wire:
# a WebSocket user registers with digest, exchanges MESSAGEs with a UDP user on its
# own connection, pings, fragments, size limit (1009), protocol errors (1002), close;
# the server pings a silent connection and closes one that does not answer.
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
HP=18020 SP=18021 TLSP=18022

tally() {
    local line
    while IFS= read -r line; do
        case $line in
        PASS\ *) ok "${line#PASS }" ;;
        FAIL\ *) not_ok "${line#FAIL }" ;;
        *) echo "$line" ;;
        esac
    done
}

mkdir -p "$T/srv"
for u in alice bob; do
    "$RTCCTL" --set server.data_dir="$T/srv" user add $u --password pw >/dev/null
done
start_rtcd srv --set sip.listen=udp:127.0.0.1:$SP,tcp:127.0.0.1:$SP \
    --set http.listen=tcp:127.0.0.1:$HP,tls:127.0.0.1:$TLSP --set turn.listen= --set server.workers=2 \
    --set sip.max_message_size=16K --set http.ws_ping_interval=2 ||
    { not_ok "rtcd starts"; finish; }

tally < <(timeout 90 python3 "$here/wsclient.py" sip --http $HP --sip $SP --max 16384)
grep -q "binding sip:alice@.*invalid;transport=ws dropped: its connection closed" "$T/srv.log" &&
    ok "log: the closed WebSocket's binding was dropped" ||
    not_ok "log: the closed WebSocket's binding was dropped"
tally < <(timeout 30 python3 "$here/wsclient.py" ping --http $HP --wait 4)
# the same over TLS (https / wss; the self-signed certificate made at first start)
tally < <(timeout 90 python3 "$here/wsclient.py" sip --tls --http $TLSP --sip $SP --max 16384 |
    sed -E 's/^(PASS|FAIL) /\1 wss: /')
r=$(curl -sk -X POST https://127.0.0.1:$TLSP/api/v1/login -H 'Content-Type: application/json' \
    -d '{"user":"alice","password":"pw"}')
expect_match "login over HTTPS gives a wss:// SIP WebSocket URI" '"ws_uri":"wss://127.0.0.1:18022/sip"' "$r"
r=$(curl -s http://127.0.0.1:$HP/metrics)
expect_match "/metrics counts WebSocket messages" 'rtcd_websocket_messages_total\{direction="in"\} [1-9]' "$r"
stop_pid "$RTCD_PID" && ok "rtcd stops cleanly" || not_ok "rtcd stops cleanly"
finish
