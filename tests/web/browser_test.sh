#!/usr/bin/env bash
# The web client in a real browser (Debian's Chromium, driven by playwright-core) against
# build/rtcd serving build/web/: two users (and a third on a phone-sized screen) sign in,
# see each other's presence, chat, change status, call with video, reload for history.
# Screenshots: $ARTIFACTS (build/tests/web/artifacts/), one per step.
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
http_port=18100
sip_port=15300
turn_port=15301

for u in alice bob carol; do
    "$RTCCTL" --set server.data_dir="$T/rtcd" user add $u --password secret >/dev/null ||
        not_ok "rtcctl user add $u"
done
"$RTCCTL" --set server.data_dir="$T/rtcd" contacts add bob alice >/dev/null ||
    not_ok "rtcctl contacts add bob alice"
{ "$RTCCTL" --set server.data_dir="$T/rtcd" group add team &&
  "$RTCCTL" --set server.data_dir="$T/rtcd" group members add team alice bob carol; } >/dev/null ||
    not_ok "rtcctl group add team"

start_rtcd rtcd \
    --set "sip.listen=udp:127.0.0.1:$sip_port, tcp:127.0.0.1:$sip_port" \
    --set "http.listen=tcp:127.0.0.1:$http_port" --set "http.web_root=$WEB_ROOT" \
    --set "turn.listen=udp:127.0.0.1:$turn_port" --set turn.relay_address=127.0.0.1 \
    --set turn.relay_port_min=15310 --set turn.relay_port_max=15349 \
    --set turn.rest_secret=browser-test-secret --set turn.allow_peers=127.0.0.0/8 ||
    { not_ok "rtcd starts"; finish; }

rm -rf "$ARTIFACTS/two_users" && mkdir -p "$ARTIFACTS/two_users"
COUNTS_FILE="$T/counts" BASE_URL="http://127.0.0.1:$http_port" ARTIFACTS="$ARTIFACTS/two_users" \
    DATA_DIR="$T/rtcd" \
    timeout 150 node "$here/two_users.mjs"
rc=$?
if [ -s "$T/counts" ]; then
    read -r p f <"$T/counts"
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
else
    not_ok "the browser test ran to its end" "node exited $rc"
fi

stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
[ "$FAILED" -eq 0 ] || { echo "rtcd log (tail):"; tail -30 "$T/rtcd.log"; }
finish
