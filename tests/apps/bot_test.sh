#!/usr/bin/env bash
# Bots over a webhook (issue 9 item 3): a MESSAGE to an app's SIP address is POSTed,
# signed, to the app's webhook (a Python stdlib receiver); the answer comes back to the
# sender as a MESSAGE from the bot's address; a question with choices, and the user's
# reply reaching the bot with the question's context; a bot whose webhook is down;
# an app removed with rtcctl stops answering within a second.
# In a private network namespace with only loopback when we may (root): other test runs
# on this machine using the same ports cannot collide with this one.
if [ -z "${APPS_NETNS:-}" ] && unshare -n true 2>/dev/null; then
    exec env APPS_NETNS=1 unshare -n bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
UA="python3 $here/../sip/sipua.py"
port=15801
srv=127.0.0.1:$port
ctl() { "$RTCCTL" --set server.data_dir="$T/rtcd" "$@"; }
for u in alice bob; do ctl user add $u --password secret >/dev/null; done
key=$(ctl app add echo --scopes bot,notify --address sip:echo@localhost \
      --webhook http://127.0.0.1:18220/bot | tail -1)
expect_match "app add prints a 40-character key on its last line" '^[A-Za-z0-9]{40}$' "$key"
ctl app add down --scopes bot --address sip:down@localhost \
    --webhook http://127.0.0.1:18229/bot >/dev/null
ctl app add mute --scopes bot --address sip:mute@localhost >/dev/null
export WSBOT_KEY=$(ctl app add wsbot --scopes bot --address sip:wsbot@localhost | tail -1)
export NOTIFY_KEY=$(ctl app add sender --scopes notify | tail -1)
ctl presence-rule set alice sip:wsbot@localhost allow >/dev/null   # bob has no rule: pending
secret=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
python3 "$here/hook_server.py" 18220 "$T/hooks.log" "$secret" >"$T/hook.out" 2>&1 &
track $!
args=(--set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:18201
      --set turn.listen=udp:127.0.0.1:15802 --set apps.webhook_retries=1
      --set apps.webhook_backoff_ms=100 --set apps.webhook_timeout_ms=1000)
start_rtcd rtcd "${args[@]}" --set server.data_dir="$T/rtcd" || { not_ok "rtcd starts"; finish; }
for i in $(seq 1 50); do grep -q listening "$T/hook.out" && break; sleep 0.1; done

$UA listen --server $srv --user alice --password secret --port 15811 --seconds 25 --show-from \
    >"$T/alice.txt" 2>&1 &
track $!
for i in $(seq 1 50); do grep -q REGISTERED "$T/alice.txt" && break; sleep 0.1; done
expect_eq "alice registers" "REGISTERED 200" "$(head -1 "$T/alice.txt")"

wait_line() { # FILE REGEX [SECONDS]
    local i
    for i in $(seq 1 $((${3:-5} * 10))); do grep -Eq -- "$2" "$1" && return 0; sleep 0.1; done
    return 1
}
send() { $UA send --server $srv --user alice --password secret --to "$1" --text "$2" 2>&1; }

out=$(send echo hello)
expect_eq "a MESSAGE to the bot is accepted (202)" "ACKED hello 202" "$out"
if wait_line "$T/alice.txt" '^FROM sip:echo@localhost echo: hello$'; then
    ok "the webhook's answer reaches alice as a MESSAGE from the bot's address"
else not_ok "bot answer arrives" "$(cat "$T/alice.txt")"; fi
first=$(head -1 "$T/hooks.log")
expect_match "the webhook POST is signed with HMAC-SHA256 of the app's secret" '"sig_ok": true' "$first"
expect_match "the event names the sender and the text" '\\"user\\":\\"alice\\".*\\"text\\":\\"hello\\"' "$first"

send echo menu >/dev/null
if wait_line "$T/alice.txt" 'coffee or tea\?\\n1\. coffee\\n2\. tea'; then
    ok "the bot offers a choice (numbered in the MESSAGE)"
else not_ok "the bot offers a choice" "$(tail -3 "$T/alice.txt")"; fi
send echo 2 >/dev/null
if wait_line "$T/alice.txt" 'you chose tea \(order-1\)'; then
    ok "the user's reply reaches the bot with the question's context and the chosen item"
else not_ok "choice with context" "$(tail -3 "$T/alice.txt")"; fi
expect_match "the reply event carries reply_to and choice" \
    'reply_to.*order-1.*choice\\": \\"tea|choice\\":\\"tea' "$(tail -1 "$T/hooks.log")"
send echo silent >/dev/null
sleep 0.5
expect_eq "a 204 from the webhook sends nothing back" 0 "$(grep -c 'silent' "$T/alice.txt")"

out=$(send mute hi)
expect_match "a bot with neither webhook nor WebSocket: 480" "FAILED hi 480" "$out"
out=$(send down hi)
expect_eq "a bot whose webhook is down still accepts (202)" "ACKED hi 202" "$out"
if wait_line "$T/rtcd.log" 'bot down: webhook .*: Connection refused .*after 2 attempt' 8; then
    ok "the webhook is retried once with back-off, then given up (logged)"
else not_ok "webhook retry" "$(grep webhook "$T/rtcd.log" | tail -3)"; fi

python3 "$here/botws_check.py" 18201 $srv "$T/alice.txt" >"$T/botws.txt" 2>&1
while IFS= read -r line; do
    case "$line" in
    PASS\ *) ok "${line#PASS }" ;;
    FAIL\ *) not_ok "${line#FAIL }" ;;
    *) echo "  | $line" ;;
    esac
done <"$T/botws.txt"

ctl app del echo >/dev/null
sleep 1
out=$(send echo again)
expect_match "an app deleted with rtcctl stops answering within a second (404)" \
    "FAILED again 404" "$out"
stop_pid "$RTCD_PID" 10 && ok "rtcd stops cleanly (no leak, no error)" ||
    not_ok "rtcd stops cleanly" "$(grep -A8 -E 'Sanitizer|runtime error' "$T/rtcd.log" | head -12)"
finish
