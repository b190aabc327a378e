#!/usr/bin/env bash
# rtcctl app and rtcctl channel (issue 9 item 1): the key shown once, alone on the last
# line, only its hash stored; list (table and --json), show, del, rotate (the old key
# stops working at once in a running rtcd, the new one works); wrong input and exit codes.
if [ -z "${APPS_NETNS:-}" ] && unshare -n true 2>/dev/null; then
    exec env APPS_NETNS=1 unshare -n bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
ctl() { "$RTCCTL" --set server.data_dir="$T/rtcd" "$@"; }
ctl user add alice --password secret >/dev/null

out=$(ctl app add alerts --scopes notify)
key=$(printf '%s\n' "$out" | tail -1)
expect_match "add: the key alone on the last line" '^[A-Za-z0-9]{40}$' "$key"
expect_eq "  printed once (nowhere else in the output)" 1 "$(printf '%s\n' "$out" | grep -c "$key")"
hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
expect_eq "only the key's SHA-256 is stored" "$hash" \
    "$(sqlite3 "$T/rtcd/rtcd.db" "SELECT key_hash FROM app WHERE name='alerts'")"
expect_eq "  and not the key" 0 "$(sqlite3 "$T/rtcd/rtcd.db" .dump | grep -c "$key")"
j=$(ctl --json app add echo --scopes bot,notify --address sip:echo@localhost \
    --webhook http://127.0.0.1:18260/hook --rate 60)
expect_match "add --json gives the key in \"key\"" '"key": "[A-Za-z0-9]{40}"' "$j"
list=$(ctl app list)
expect_match "list shows name, scopes, address, webhook, rate" \
    'echo +bot,notify +sip:echo@localhost +http://127.0.0.1:18260/hook +60' "$list"
expect_eq "list --json is JSON with both apps" "alerts echo" \
    "$(ctl app list --json | python3 -c 'import json,sys; print(" ".join(a["name"] for a in json.load(sys.stdin)))')"
expect_match "show" 'scopes: +notify' "$(ctl app show alerts)"

ctl app add alerts --scopes notify >/dev/null 2>&1
expect_eq "add an existing app: exit 1" 1 $?
ctl app add bad --scopes admin >/dev/null 2>&1
expect_eq "an unknown scope: exit 2" 2 $?
ctl app add bot2 --scopes bot >/dev/null 2>&1
expect_eq "the bot scope without --address: exit 2" 2 $?
ctl app add b3 --scopes bot --address sip:echo@localhost >/dev/null 2>&1
expect_eq "an address another app has: exit 1" 1 $?
ctl app add b4 --scopes notify --webhook ftp://x >/dev/null 2>&1
expect_eq "a webhook that is not http(s): exit 2" 2 $?
ctl app add 'bad name' --scopes notify >/dev/null 2>&1
expect_eq "a bad name: exit 2" 2 $?
ctl app del nosuch >/dev/null 2>&1
expect_eq "del of an unknown app: exit 1" 1 $?
ctl app rotate nosuch >/dev/null 2>&1
expect_eq "rotate of an unknown app: exit 1" 1 $?

start_rtcd rtcd --set server.data_dir="$T/rtcd" --set "sip.listen=udp:127.0.0.1:15809" \
    --set http.listen=tcp:127.0.0.1:18205 --set turn.listen=udp:127.0.0.1:15810 ||
    { not_ok "rtcd starts"; finish; }
notify() {
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' --data '{"to":["alice"],"text":"x","ttl":0}' \
        http://127.0.0.1:18205/api/v1/notify
}
expect_eq "the key works" 200 "$(notify "$key")"
new=$(ctl app rotate alerts | tail -1)
expect_match "rotate prints a new key" '^[A-Za-z0-9]{40}$' "$new"
sleep 1
expect_eq "after rotate the old key is refused within a second (401)" 401 "$(notify "$key")"
expect_eq "  and the new one works" 200 "$(notify "$new")"
ctl app del alerts >/dev/null
sleep 1
expect_eq "after del the key is refused (401)" 401 "$(notify "$new")"
expect_match "the audit log records the changes" 'app.add.*app.rotate.*app.del' \
    "$(ctl audit | tr '\n' ' ')"

ctl channel add news --subscribe 'users,group:staff' --publish apps >/dev/null
expect_eq "channel add" 0 $?
ctl channel add bad --subscribe everyone >/dev/null 2>&1
expect_eq "channel add with a bad rule: exit 2" 2 $?
ctl channel add news --publish app:feed >/dev/null
expect_match "channel add again replaces the rules" 'news +users,apps +app:feed' "$(ctl channel list)"
ctl channel del news >/dev/null
ctl channel del news >/dev/null 2>&1
expect_eq "channel del twice: exit 1" 1 $?
stop_pid "$RTCD_PID" 10 && ok "rtcd stops cleanly (no leak, no error)" ||
    not_ok "rtcd stops cleanly" "$(grep -A8 -E 'Sanitizer|runtime error' "$T/rtcd.log" | head -12)"
finish
