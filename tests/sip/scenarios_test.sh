#!/usr/bin/env bash
# The SIP core on the wire: every sipp scenario of tests/sip/scenarios (register
# with digest auth, wrong password, refresh, unregister, *, calls with forking
# targets, re-INVITE, 486, CANCEL, MESSAGE, OPTIONS, Max-Forwards 0, loop)
# against build/rtcd, over one transport and address family:
#   scenarios_test.sh u1|t1 127.0.0.1|::1
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_scenario.sh"

SIP_TRANSPORT=${1:-u1}
SIP_LOCAL_IP=${2:-127.0.0.1}
port=15060
SIP_SERVER=$(sip_hostport "$SIP_LOCAL_IP" $port)
for u in alice bob carol loop; do
    "$RTCCTL" --set server.data_dir="$T/rtcd" user add $u --password secret >/dev/null ||
        { not_ok "rtcctl user add $u"; finish; }
done
start_rtcd rtcd --set "sip.listen=udp:127.0.0.1:$port, tcp:127.0.0.1:$port, udp:[::1]:$port, tcp:[::1]:$port" \
    --set http.listen=tcp:127.0.0.1:18000 --set turn.listen=udp:127.0.0.1:13400 \
    --set log.level=info || { not_ok "rtcd starts"; finish; }
sip_suite
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish
