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
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish
