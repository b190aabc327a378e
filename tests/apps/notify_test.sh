#!/usr/bin/env bash
# POST /api/v1/notify on the wire (issue 9 item 2): users, a group, everyone online,
# everyone with offline storage and a TTL (an expired one is not delivered), the
# per-recipient report, bad keys, missing scope, bad JSON, unknown fields, oversize
# bodies, the rate limit (429 + Retry-After).
# In a private network namespace with only loopback when we may (root): other test runs
# on this machine using the same ports cannot collide with this one.
if [ -z "${APPS_NETNS:-}" ] && unshare -n true 2>/dev/null; then
    exec env APPS_NETNS=1 unshare -n bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
UA="python3 $here/../sip/sipua.py"
port=15803
srv=127.0.0.1:$port
api=http://127.0.0.1:18202/api/v1
ctl() { "$RTCCTL" --set server.data_dir="$T/rtcd" "$@"; }
for u in alice bob carol dave; do ctl user add $u --password secret >/dev/null; done
ctl group add team >/dev/null
ctl group members add team bob carol >/dev/null
key=$(ctl app add notifier --scopes notify | tail -1)
nokey=$(ctl app add other --scopes channels | tail -1)
slow=$(ctl app add limited --scopes notify --rate 3 | tail -1)
args=(--set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:18202
      --set turn.listen=udp:127.0.0.1:15804)
start_rtcd rtcd "${args[@]}" --set server.data_dir="$T/rtcd" || { not_ok "rtcd starts"; finish; }

# notify KEY JSON → prints "STATUS BODY"
notify() {
    curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' --data-binary "$2" "$api/notify"
    printf ' %s' "$(cat "$T/body")"
}
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1].split(" ",1)[1]); print(d'"$2"')' "$1"; }
wait_line() {
    local i
    for i in $(seq 1 $((${3:-5} * 10))); do grep -Eq -- "$2" "$1" && return 0; sleep 0.1; done
    return 1
}

$UA listen --server $srv --user alice --password secret --port 15812 --seconds 20 --show-from \
    >"$T/alice.txt" 2>&1 &
track $!
$UA listen --server $srv --user bob --password secret --port 15813 --seconds 20 --show-from \
    >"$T/bob.txt" 2>&1 &
track $!
wait_line "$T/alice.txt" REGISTERED && wait_line "$T/bob.txt" REGISTERED
expect_eq "alice and bob register" "REGISTERED 200 REGISTERED 200" \
    "$(head -1 "$T/alice.txt") $(head -1 "$T/bob.txt")"

r=$(notify "$key" '{"to":["alice"],"text":"hi alice","priority":"high"}')
expect_eq "notify one user: 200" 200 "${r%% *}"
expect_eq "  delivered 1, queued 0, failed 0" "1 0 0" \
    "$(jget "$r" '["delivered"],d["queued"],d["failed"]' | tr -d '(),')"
if wait_line "$T/alice.txt" '^FROM sip:noreply@localhost hi alice$'; then
    ok "  alice's device gets the MESSAGE"; else not_ok "alice gets it" "$(cat "$T/alice.txt")"; fi

r=$(notify "$key" '{"to":["group:team","bob"],"text":"team meeting","ttl":3600}')
expect_eq "notify a group: bob delivered, carol (offline) queued" "1 1 0 2" \
    "$(jget "$r" '["delivered"],d["queued"],d["failed"],d["recipients"]' | tr -d '(),')"
id=$(jget "$r" '["id"]')
rep=$(curl -s -H "Authorization: Bearer $key" "$api/notify/$id")
expect_match "GET /notify/{id} reports per recipient" \
    '"user": ?"bob", ?"status": ?"delivered".*"user": ?"carol", ?"status": ?"queued"' \
    "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps(sorted(d["recipients_detail"], key=lambda x: x["user"])))' "$rep")"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $slow" "$api/notify/$id")
expect_eq "another app cannot read the report (404)" 404 "$code"

r=$(notify "$key" '{"to":"online","text":"for whoever is online"}')
expect_eq "notify online: the two registered users, nobody queued" "2 0 2" \
    "$(jget "$r" '["delivered"],d["queued"],d["recipients"]' | tr -d '(),')"
wait_line "$T/bob.txt" 'for whoever is online' && ok "  bob got the online notification" ||
    not_ok "bob got the online notification"

r=$(notify "$key" '{"to":"everyone","text":"short lived","ttl":1}')
expect_eq "notify everyone (ttl 1 s): 2 delivered, 2 queued" "2 2" \
    "$(jget "$r" '["delivered"],d["queued"]' | tr -d '(),')"
r=$(notify "$key" '{"to":["ghost","alice"],"text":"x"}')
expect_eq "an unknown user counts as failed" "1 1" "$(jget "$r" '["delivered"],d["failed"]' | tr -d '(),')"
r=$(notify "$key" '{"to":["group:nosuch"],"text":"x"}')
expect_match "an unknown group: 400 naming it" '^400 .*no such group: nosuch' "$r"

sleep 1.5 # the ttl=1 notification expires
$UA listen --server $srv --user carol --password secret --port 15814 --seconds 3 --show-from \
    >"$T/carol.txt" 2>&1
expect_match "carol, offline, gets the group notification when she registers" 'team meeting' \
    "$(cat "$T/carol.txt")"
expect_eq "  but not the expired one (ttl 1 s)" 0 "$(grep -c 'short lived' "$T/carol.txt")"
$UA listen --server $srv --user dave --password secret --port 15815 --seconds 2 --show-from \
    >"$T/dave.txt" 2>&1
expect_eq "dave gets nothing expired" 0 "$(grep -c '^FROM' "$T/dave.txt")"

# errors
code=$(curl -s -o "$T/e" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data '{"to":["alice"],"text":"x"}' "$api/notify")
expect_eq "no key: 401" 401 "$code"
r=$(notify "wrongwrongwrong" '{"to":["alice"],"text":"x"}')
expect_match "a wrong key: 401 with a JSON error" '^401 \{"error": ?"unknown API key"\}' "$r"
r=$(notify "$nokey" '{"to":["alice"],"text":"x"}')
expect_match "a key without the notify scope: 403" '^403 .*no notify scope' "$r"
r=$(notify "$key" '{"to":["alice"],"text":')
expect_match "bad JSON: 400 saying where" '^400 .*bad JSON at line 1' "$r"
r=$(notify "$key" '{"to":["alice"],"text":"x","colour":"red"}')
expect_match "an unknown field: 400 naming it" '^400 .*unknown field \\"colour\\"' "$r"
r=$(notify "$key" '{"to":["alice"],"text":"x","ttl":-5}')
expect_match "a negative ttl: 400" '^400 .*ttl' "$r"
r=$(notify "$key" '{"to":["al ice"],"text":"x"}')
expect_match "a bad user name: 400" '^400 .*not a user name' "$r"
r=$(notify "$key" '{"to":"nobody","text":"x"}')
expect_match "a bad target: 400" '^400 ' "$r"
big=$(python3 -c 'print("{\"to\":[\"alice\"],\"text\":\"" + "x"*70000 + "\"}")')
r=$(notify "$key" "$big")
expect_match "a body over apps.max_request_body: 413" '^413 .*at most 65536' "$r"
for i in 1 2 3; do notify "$slow" '{"to":["alice"],"text":"rate"}' >/dev/null; done
code=$(curl -s -D "$T/h" -o "$T/b" -w '%{http_code}' -H "Authorization: Bearer $slow" \
    -H 'Content-Type: application/json' --data '{"to":["alice"],"text":"rate"}' "$api/notify")
expect_eq "the 4th request of an app limited to 3 a minute: 429" 429 "$code"
expect_match "  with Retry-After" '^Retry-After: [0-9]+' "$(tr -d '\r' <"$T/h" | grep -i retry-after)"
stop_pid "$RTCD_PID" 10 && ok "rtcd stops cleanly (no leak, no error)" ||
    not_ok "rtcd stops cleanly" "$(grep -A8 -E 'Sanitizer|runtime error' "$T/rtcd.log" | head -12)"
finish
