#!/usr/bin/env bash
# The examples of docs/apps.md, run for real: examples/notify.sh (curl), the C bot
# examples/bot/echo_bot.c behind a webhook (answers, offers a choice, gets the choice
# back), and examples/live.html in headless Chromium fed by a channel.
# In a private network namespace with only loopback when we may (root): other test runs
# on this machine using the same ports cannot collide with this one.
if [ -z "${APPS_NETNS:-}" ] && unshare -n true 2>/dev/null; then
    exec env APPS_NETNS=1 unshare -n bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
UA="python3 $here/../sip/sipua.py"
port=15807
srv=127.0.0.1:$port
ctl() { "$RTCCTL" --set server.data_dir="$T/rtcd" "$@"; }
ctl user add alice --password secret >/dev/null
alerts=$(ctl app add alerts --scopes notify | tail -1)
botkey=$(ctl app add echo --scopes bot --address sip:echo@localhost \
         --webhook http://127.0.0.1:18231/ | tail -1)
feeder=$(ctl app add feeder --scopes channels | tail -1)
ctl channel add lobby --subscribe any --publish app:feeder >/dev/null
args=(--set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:18204
      --set turn.listen=udp:127.0.0.1:15808)
start_rtcd rtcd "${args[@]}" --set server.data_dir="$T/rtcd" || { not_ok "rtcd starts"; finish; }
wait_line() {
    local i
    for i in $(seq 1 $((${3:-5} * 10))); do grep -Eq -- "$2" "$1" && return 0; sleep 0.1; done
    return 1
}
$UA listen --server $srv --user alice --password secret --port 15818 --seconds 15 --show-from \
    >"$T/alice.txt" 2>&1 &
track $!
wait_line "$T/alice.txt" REGISTERED

# 1. the notification app
out=$(RTCD_URL=http://127.0.0.1:18204 RTCD_KEY=$alerts sh "$root/examples/notify.sh" alice \
      'disk 91% on "db1"')
expect_match "examples/notify.sh: delivered 1" '"delivered": ?1' "$out"
wait_line "$T/alice.txt" 'FROM sip:noreply@localhost disk 91% on "db1"' &&
    ok "  alice gets the notification" || not_ok "alice gets the notification" "$(cat "$T/alice.txt")"

# 2. the C bot
if cc -O2 -o "$T/echo_bot" "$root/examples/bot/echo_bot.c" -ljansson -lcrypto 2>"$T/cc.txt"; then
    ok "examples/bot/echo_bot.c builds"
else not_ok "echo_bot builds" "$(head -5 "$T/cc.txt")"; fi
"$T/echo_bot" 18231 "$botkey" >"$T/bot.txt" 2>&1 &
track $!
wait_line "$T/bot.txt" listening
send() { $UA send --server $srv --user alice --password secret --to echo --text "$1" >/dev/null; }
send hello
wait_line "$T/alice.txt" 'FROM sip:echo@localhost echo: hello' &&
    ok "the C bot answers" || not_ok "the C bot answers" "$(tail -3 "$T/alice.txt")"
send menu
wait_line "$T/alice.txt" 'coffee or tea\?\\n1\. coffee\\n2\. tea' &&
    ok "the C bot offers a choice" || not_ok "the C bot offers a choice" "$(tail -3 "$T/alice.txt")"
send 1
wait_line "$T/alice.txt" 'you chose coffee \(order-42\)' &&
    ok "the C bot gets the choice with its context" || not_ok "choice" "$(tail -3 "$T/alice.txt")"

# 3. the live page in a real browser
publisher() {
    local i
    for i in $(seq 1 400); do
        curl -s -o /dev/null -H "Authorization: Bearer $feeder" -H 'Content-Type: application/json' \
            --data "{\"data\":\"tick $i\"}" http://127.0.0.1:18204/api/v1/channels/lobby/publish
        sleep 0.2
    done
}
publisher &
pubpid=$!
track $pubpid
mkdir -p "$T/chrome"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$T/chrome" --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
    --remote-debugging-port=18240 \
    "file://$root/examples/live.html?server=127.0.0.1:18204&channel=lobby" \
    >"$T/chrome.log" 2>&1 &
track $!
feed=$(python3 "$here/cdp_eval.py" 18240 \
    "document.querySelectorAll('#feed li').length >= 3 ? document.getElementById('feed').innerText : ''" 20)
state=$(python3 "$here/cdp_eval.py" 18240 "document.getElementById('status').textContent" 5)
kill $pubpid 2>/dev/null
newest=$(printf '%s\n' "$feed" | grep -o 'tick [0-9]*' | head -1 | cut -d' ' -f2)
oldest=$(printf '%s\n' "$feed" | grep -o 'tick [0-9]*' | tail -1 | cut -d' ' -f2)
if printf '%s' "$feed" | grep -Eq '^#[0-9]+ ?tick [0-9]+' && [ "${newest:-0}" -gt "${oldest:-0}" ]; then
    ok "examples/live.html in Chromium shows the channel's messages, newest first"
else not_ok "live.html shows messages" "feed='$feed' status='$state'"; fi
expect_eq "  and says it is subscribed" subscribed "$state"
stop_pid "$RTCD_PID" 10 && ok "rtcd stops cleanly (no leak, no error)" ||
    not_ok "rtcd stops cleanly" "$(grep -A8 -E 'Sanitizer|runtime error' "$T/rtcd.log" | head -12)"
finish
