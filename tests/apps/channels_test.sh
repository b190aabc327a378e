#!/usr/bin/env bash
# Channels on the wire (issue 9 item 4): WebSocket subscribers (apps by key, users by
# password), rules per channel (users / apps / group / any), order kept, nobody
# unauthorized served, a subscriber that does not read is closed without slowing the
# others; SIP users join with MESSAGE "join" to sip:~NAME@domain and get the channel's
# messages as MESSAGEs.
# In a private network namespace with only loopback when we may (root): other test runs
# on this machine using the same ports cannot collide with this one.
if [ -z "${APPS_NETNS:-}" ] && unshare -n true 2>/dev/null; then
    exec env APPS_NETNS=1 unshare -n bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
UA="python3 $here/../sip/sipua.py"
port=15805
srv=127.0.0.1:$port
ctl() { "$RTCCTL" --set server.data_dir="$T/rtcd" "$@"; }
for u in alice bob carol dave; do ctl user add $u --password secret >/dev/null; done
ctl group add staff >/dev/null
ctl group members add staff alice >/dev/null
export PUB_KEY=$(ctl app add pub --scopes channels | tail -1)
export SUB_KEY=$(ctl app add sub --scopes channels | tail -1)
export NOPE_KEY=$(ctl app add nope --scopes notify | tail -1)
ctl channel add news --subscribe users,apps --publish app:pub >/dev/null
ctl channel add staff --subscribe group:staff --publish apps,group:staff >/dev/null
ctl channel add lobby --subscribe any --publish any >/dev/null
expect_eq "rtcctl channel list" "lobby news staff" "$(ctl channel list --json |
    python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(sys.stdin)))')"
args=(--set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:18203
      --set turn.listen=udp:127.0.0.1:15806 --set apps.channel_queue=64)
start_rtcd rtcd "${args[@]}" --set server.data_dir="$T/rtcd" || { not_ok "rtcd starts"; finish; }

python3 "$here/chan_check.py" 18203 >"$T/chan.txt" 2>&1
while IFS= read -r line; do
    case "$line" in
    PASS\ *) ok "${line#PASS }" ;;
    FAIL\ *) not_ok "${line#FAIL }" ;;
    *) echo "  | $line" ;;
    esac
done <"$T/chan.txt"
if grep -q 'closed: its peer reads too slowly' "$T/rtcd.log"; then
    ok "the server logs why it closed the subscriber that does not read"
else not_ok "the slow subscriber's close is logged"; fi

# SIP users as channel members
wait_line() {
    local i
    for i in $(seq 1 $((${3:-5} * 10))); do grep -Eq -- "$2" "$1" && return 0; sleep 0.1; done
    return 1
}
$UA listen --server $srv --user bob --password secret --port 15816 --seconds 12 --show-from \
    >"$T/bob.txt" 2>&1 &
track $!
wait_line "$T/bob.txt" REGISTERED
send() { $UA send --server $srv --user "$1" --password secret --to "$2" --text "$3" 2>&1; }
expect_eq "bob joins ~news by MESSAGE" "ACKED join 200" "$(send bob '~news' join)"
expect_match "carol (not in staff) may not join ~staff" "FAILED join 403" "$(send carol '~staff' join)"
expect_match "a MESSAGE to an unknown channel: 404" "FAILED join 404" "$(send bob '~nosuch' join)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUB_KEY" \
    -H 'Content-Type: application/json' --data '{"data":"breaking news"}' \
    http://127.0.0.1:18203/api/v1/channels/news/publish)
expect_eq "publish for the SIP member: 200" 200 "$code"
if wait_line "$T/bob.txt" '^FROM sip:~news@localhost breaking news$'; then
    ok "bob's device gets the channel message from sip:~news@localhost"
else not_ok "bob gets the channel message" "$(cat "$T/bob.txt")"; fi
expect_match "bob may not publish on news by MESSAGE (rule app:pub)" "FAILED hi 403" \
    "$(send bob '~news' hi)"
expect_eq "bob leaves ~news" "ACKED leave 200" "$(send bob '~news' leave)"
curl -s -o /dev/null -H "Authorization: Bearer $PUB_KEY" -H 'Content-Type: application/json' \
    --data '{"data":"after leave"}' http://127.0.0.1:18203/api/v1/channels/news/publish
sleep 0.5
expect_eq "after leaving bob gets nothing" 0 "$(grep -c 'after leave' "$T/bob.txt")"

# a SIP member whose device stopped answering: 8 MESSAGEs in flight, 64 queued, then dropped
$UA listen --server $srv --user carol --password secret --port 15817 --seconds 1 --keep \
    >"$T/carol.txt" 2>&1
expect_eq "carol joins ~lobby, then her device goes silent" "ACKED join 200" \
    "$(send carol '~lobby' join)"
for i in $(seq 1 80); do
    curl -s -o /dev/null -H "Authorization: Bearer $PUB_KEY" -H 'Content-Type: application/json' \
        --data "{\"data\":\"m$i\"}" http://127.0.0.1:18203/api/v1/channels/lobby/publish
done
if wait_line "$T/rtcd.log" 'channel member carol removed from every channel: slow consumer' 5; then
    ok "a member that takes nothing is dropped after its bounded queue (apps.channel_queue)"
else not_ok "slow SIP member dropped" "$(grep -i 'apps' "$T/rtcd.log" | tail -3)"; fi
# memberships survive a restart
expect_eq "dave joins ~news" "ACKED join 200" "$(send dave '~news' join)"
stop_pid "$RTCD_PID" 10 && ok "rtcd stops cleanly (no leak, no error)" ||
    not_ok "rtcd stops cleanly" "$(grep -A8 -E 'Sanitizer|runtime error' "$T/rtcd.log" | head -12)"
start_rtcd rtcd2 "${args[@]}" --set server.data_dir="$T/rtcd" || { not_ok "rtcd restarts"; finish; }
expect_match "rtcd restores the SIP users' channel memberships" \
    '1 channel membership\(s\) of SIP users restored' "$(cat "$T/rtcd2.log")"
$UA listen --server $srv --user dave --password secret --port 15819 --seconds 5 --show-from \
    >"$T/dave.txt" 2>&1 &
track $!
wait_line "$T/dave.txt" REGISTERED
curl -s -o /dev/null -H "Authorization: Bearer $PUB_KEY" -H 'Content-Type: application/json' \
    --data '{"data":"after restart"}' http://127.0.0.1:18203/api/v1/channels/news/publish
wait_line "$T/dave.txt" '^FROM sip:~news@localhost after restart$' &&
    ok "  dave still gets the channel after the restart" ||
    not_ok "dave gets the channel after the restart" "$(cat "$T/dave.txt")"
stop_pid "$RTCD_PID" 10 && ok "rtcd stops cleanly (no leak, no error)" ||
    not_ok "rtcd stops cleanly" "$(grep -A8 -E 'Sanitizer|runtime error' "$T/rtcd.log" | head -12)"
finish
