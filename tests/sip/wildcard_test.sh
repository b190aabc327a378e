#!/usr/bin/env bash
# rtcd listening on a wildcard address (0.0.0.0, the embedded default) names, in the Via and
# Record-Route it writes, the address the peer reaches it at, never 0.0.0.0: an in-dialog
# request from another host must find rtcd again. Runs in a private network namespace (only
# loopback there), so that the wildcard listener is not reachable from outside the test.
if [ -z "${SIP_NETNS:-}" ]; then
    if unshare -n true 2>/dev/null; then
        exec env SIP_NETNS=1 unshare -n bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
    fi
    echo "ok   - skipped: no private network namespace here (unshare -n), and a wildcard listener would be reachable from outside"
    echo "1 passed, 0 failed"
    exit 0
fi
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_scenario.sh"
port=15060
SIP_SERVER=127.0.0.1:$port
for u in alice bob; do
    "$RTCCTL" --set server.data_dir="$T/rtcd" user add $u --password secret >/dev/null ||
        { not_ok "rtcctl user add $u"; finish; }
done
start_rtcd rtcd --set "sip.listen=udp:0.0.0.0:$port" --set http.listen=tcp:127.0.0.1:18000 \
    --set turn.listen=udp:127.0.0.1:13400 || { not_ok "rtcd starts"; finish; }
sip_call_pair "call [u1 0.0.0.0]: alice calls bob, ACK and BYE by the Record-Route" \
    uas.xml uac_call.xml alice bob secret
rr=$(grep -h '^Record-Route' "$T/call-uac.msg" | head -1)
expect_match "the caller's Record-Route names 127.0.0.1:$port" \
    "^Record-Route: <sip:127\.0\.0\.1:$port;[^>]*>, <sip:127\.0\.0\.1:$port;" "$rr"
via=$(grep -h '^Via' "$T/call-uas.msg" | head -1)
expect_match "the Via toward the callee names 127.0.0.1:$port" "^Via: SIP/2\.0/UDP 127\.0\.0\.1:$port;" "$via"
expect_eq "no 0.0.0.0 in anything rtcd wrote" 0 "$(cat "$T"/call-uac.msg "$T"/call-uas.msg | grep -c '0\.0\.0\.0')"
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish
