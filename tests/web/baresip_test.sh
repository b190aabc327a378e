#!/usr/bin/env bash
# A browser user (JsSIP over WebSocket) and a baresip user (UDP) through rtcd: a MESSAGE
# each way and an audio call each way (DTLS-SRTP and ICE on baresip's side, so that it
# meets WebRTC), media checked with the browser's getStats. baresip needs a non-loopback
# interface (docs/testing.md), so this runs on the host network.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../sip/run_scenario.sh"
. "$(dirname "$0")/../sip/baresip.sh"
here=$(cd "$(dirname "$0")" && pwd)
http_port=18110
sip_port=15302
turn_port=15303

for u in alice bob; do
    "$RTCCTL" --set server.data_dir="$T/rtcd" user add $u --password secret >/dev/null ||
        not_ok "rtcctl user add $u"
done
start_rtcd rtcd \
    --set "sip.listen=udp:127.0.0.1:$sip_port, tcp:127.0.0.1:$sip_port" \
    --set "http.listen=tcp:127.0.0.1:$http_port" --set "http.web_root=$WEB_ROOT" \
    --set "turn.listen=udp:127.0.0.1:$turn_port" --set turn.relay_address=127.0.0.1 \
    --set turn.relay_port_min=15310 --set turn.relay_port_max=15349 ||
    { not_ok "rtcd starts"; finish; }

# baresip meets WebRTC: DTLS-SRTP with AVPF, ICE, RTCP multiplexed, G.711 and Opus.
BS_EXTRA_CONFIG=$(printf 'module\t\t\topus.so\nmodule\t\t\tdtls_srtp.so\nmodule\t\t\tice.so\nrtcp_mux\t\tyes')
BS_ACCOUNT_PARAMS=";mediaenc=dtls_srtp;medianat=ice"
export BS_EXTRA_CONFIG BS_ACCOUNT_PARAMS
if baresip_start bob bob secret 15320 15322 "127.0.0.1:$sip_port" localhost alice; then
    ok "baresip bob registers over UDP"
else
    not_ok "baresip bob registers over UDP" "$(tail -5 "$T/bob/out")"
    finish
fi

rm -rf "$ARTIFACTS/baresip" && mkdir -p "$ARTIFACTS/baresip"
COUNTS_FILE="$T/counts" BASE_URL="http://127.0.0.1:$http_port" ARTIFACTS="$ARTIFACTS/baresip" \
    BS_DIR="$T/bob" timeout 100 node "$here/baresip.mjs"
rc=$?
if [ -s "$T/counts" ]; then
    read -r p f <"$T/counts"
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
else
    not_ok "the browser test ran to its end" "node exited $rc"
fi

baresip_stop bob
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
[ "$FAILED" -eq 0 ] || { echo "baresip (tail):"; tail -40 "$T/bob/out"; echo "rtcd log (tail):"; tail -30 "$T/rtcd.log"; }
finish
