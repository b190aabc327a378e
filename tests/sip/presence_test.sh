#!/usr/bin/env bash
# The presence agent on the wire (RFC 3856/6665 SUBSCRIBE/NOTIFY, RFC 3903 PUBLISH,
# RFC 3857 watcher info, presence rules changed with rtcctl while subscribed): a Python
# user agent (tests/sip/presua.py) drives build/rtcd over UDP and TCP on 127.0.0.1:15500.
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
PORT=15500
ctl() { "$RTCCTL" --set server.data_dir="$T/srv" "$@"; }
mkdir -p "$T/srv"
for u in alice bob carol dave erin frank; do
    ctl user add "$u" --password pw >/dev/null || not_ok "user add $u"
done
ctl presence-rule set alice bob allow >/dev/null
ctl presence-rule set alice carol block >/dev/null
ctl presence-rule set alice dave polite-block >/dev/null
ctl presence-rule set alice frank allow >/dev/null
start_rtcd srv --set sip.listen="udp:127.0.0.1:$PORT, tcp:127.0.0.1:$PORT" \
    --set server.workers=2 --set presence.min_expires=2 --set presence.publish_min_expires=1 || { not_ok "rtcd starts"; finish; }
if PYTHONPATH="$here" timeout 120 python3 "$here/presence_test.py" "127.0.0.1:$PORT" \
    "$RTCCTL" --set server.data_dir="$T/srv" >"$T/py.out" 2>&1; then
    ok "presence wire scenario ($(tail -1 "$T/py.out"))"
else
    not_ok "presence wire scenario" "$(grep -E 'FAIL|Error|Traceback' -A3 "$T/py.out" | head -40)"
fi
cat "$T/py.out"
# the TCP watcher left: its subscription ended with its connection
for i in $(seq 1 20); do grep -q "left (its connection closed): subscription to alice ended" "$T/srv.log" && break; sleep 0.1; done
if grep -q "sip:bob@localhost left (its connection closed): subscription to alice ended" "$T/srv.log"; then
    ok "a closed TCP connection ends its subscriptions"
else
    not_ok "a closed TCP connection ends its subscriptions"
fi
stop_pid "$RTCD_PID" 10
expect_eq "rtcd stops cleanly with subscriptions live" 0 $?
finish
