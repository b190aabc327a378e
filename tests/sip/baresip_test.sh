#!/usr/bin/env bash
# baresip (a real softphone nobody here wrote) through rtcd: two users register
# with digest auth, call each other both ways (INVITE/ACK/BYE through the proxy,
# Record-Route), and exchange instant messages.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_scenario.sh"
. "$(dirname "$0")/baresip.sh"
port=15060
server=127.0.0.1:$port
for u in alice bob; do
    "$RTCCTL" --set server.data_dir="$T/rtcd" user add $u --password secret >/dev/null
done
start_rtcd rtcd --set "sip.listen=udp:127.0.0.1:$port, tcp:127.0.0.1:$port" \
    --set http.listen=tcp:127.0.0.1:18000 --set turn.listen=udp:127.0.0.1:13400 ||
    { not_ok "rtcd starts"; finish; }
baresip_suite "$server"
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish
