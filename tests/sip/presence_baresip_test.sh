#!/usr/bin/env bash
# Presence between two baresip 1.0 softphones through rtcd: each has the other in its
# contact list (baresip ;presence=p2p subscribes to it through the server, and rtcd's
# contact lists allow them to each other) and publishes its status (pubint). Checks that
# each sees the other online, and that a status change (presence_offline /
# presence_online) is seen by the other. baresip needs a non-loopback interface
# (docs/testing.md): this test runs on the host network, on ports 15500-15521.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_scenario.sh"
. "$(dirname "$0")/baresip.sh"
port=15500
server=127.0.0.1:$port
ctl() { "$RTCCTL" --set server.data_dir="$T/rtcd" "$@" >/dev/null; }
ctl user add alice --password secret
ctl user add bob --password secret
ctl contacts add alice sip:bob@localhost --display Bob
ctl contacts add bob sip:alice@localhost --display Alice
start_rtcd rtcd --set "sip.listen=udp:127.0.0.1:$port, tcp:127.0.0.1:$port" \
    --set turn.listen=udp:127.0.0.1:15530 || { not_ok "rtcd starts"; finish; }

# contact_status NAME PEER — baresip's idea of PEER's presence (from its contact list)
contact_status() {
    baresip_cmd "$1" contacts 2>/dev/null | python3 -c '
import json, re, sys
for line in sys.stdin:
    d = json.loads(line).get("data", "")
    for l in d.splitlines():
        if "sip:" + sys.argv[1] + "@" in l:
            m = re.search(r"\b(Online|Offline|Busy|Unknown)\b", re.sub(r"\x1b\[[0-9;]*m", "", l))
            print(m.group(1) if m else "?"); sys.exit(0)
' "$2"
}
# wait_status NAME PEER STATUS — up to 10 s
wait_status() {
    local i s
    for i in $(seq 1 50); do
        s=$(contact_status "$1" "$2")
        [ "$s" = "$3" ] && return 0
        sleep 0.2
    done
    echo "last seen: '$s'"
    return 1
}

export BS_ACCOUNT_PARAMS=";pubint=60" BS_CONTACT_PARAMS=";presence=p2p" BS_EXTRA_MODULES="presence.so"
baresip_start alice alice secret 15510 15520 "$server" localhost bob &&
    ok "baresip alice registers" || not_ok "baresip alice registers" "$(tail -5 "$T/alice/out")"
baresip_start bob bob secret 15512 15521 "$server" localhost alice &&
    ok "baresip bob registers" || not_ok "baresip bob registers" "$(tail -5 "$T/bob/out")"
check "bob sees alice online" wait_status bob alice Online
check "alice sees bob online" wait_status alice bob Online
baresip_cmd alice presence_offline >/dev/null
check "alice goes offline: bob sees it" wait_status bob alice Offline
baresip_cmd alice presence_online >/dev/null
check "alice comes back: bob sees her online" wait_status bob alice Online
baresip_cmd bob presence_offline >/dev/null
check "bob goes offline: alice sees it" wait_status alice bob Offline
grep -q "^PUBLISH sip:alice@localhost" "$T/alice/out" && ok "baresip published with PUBLISH" ||
    not_ok "baresip published with PUBLISH"
baresip_stop alice
baresip_stop bob
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish
