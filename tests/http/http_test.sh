#!/usr/bin/env bash
# The HTTP server on the wire: static files, limits and timeouts, keep-alive and
# pipelining, the JSON API with tokens, /healthz and /metrics (curl and rawhttp.py).
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
HP=18000 SP=18001 TP=18002
B=http://127.0.0.1:$HP
J='Content-Type: application/json'

# python checks print "PASS name" / "FAIL name: detail"
tally() {
    local line
    while IFS= read -r line; do
        case $line in
        PASS\ *) ok "${line#PASS }" ;;
        FAIL\ *) not_ok "${line#FAIL }" ;;
        *) echo "$line" ;;
        esac
    done
}

mkdir -p "$T/web/sub" "$T/web/.git"
printf '<!doctype html><title>rtcd</title>\n' >"$T/web/index.html"
printf 'export const x = 1;\n' >"$T/web/app.js"
printf 'body{}\n' >"$T/web/style.css"
printf '\x89PNG\r\n\x1a\n' >"$T/web/logo.png"
printf 'sub index\n' >"$T/web/sub/index.html"
printf 'secret\n' >"$T/outside.txt"
printf 'hidden\n' >"$T/web/.git/config"
ln -s "$T/outside.txt" "$T/web/escape.txt"
ln -s "$T/web/app.js" "$T/web/inside.js"

SECRET=test-secret-0123456789
ARGS=(--set sip.listen=udp:127.0.0.1:$SP,tcp:127.0.0.1:$SP --set http.listen=tcp:127.0.0.1:$HP
      --set turn.listen=udp:127.0.0.1:$TP --set turn.rest_secret=turnsecret
      --set http.web_root="$T/web" --set http.header_timeout=2 --set http.body_timeout=2
      --set http.keepalive_timeout=3 --set http.max_body_size=64K --set server.secret=$SECRET
      --set auth.max_failures=5 --set server.workers=2)
mkdir -p "$T/srv"
for u in alice bob carol; do
    "$RTCCTL" --set server.data_dir="$T/srv" user add $u --password pw >/dev/null
done
start_rtcd srv "${ARGS[@]}" || { not_ok "rtcd starts"; finish; }

# ---- health and static files ----
r=$(curl -s -w ' %{http_code} %{content_type}' $B/healthz)
expect_match "GET /healthz → 200 JSON ok" '^\{"status":"ok".* 200 application/json$' "$r"
expect_eq "GET / → index.html" '<!doctype html><title>rtcd</title>' "$(curl -s $B/)"
for f in "index.html text/html; charset=utf-8" "app.js text/javascript; charset=utf-8" \
         "style.css text/css; charset=utf-8" "logo.png image/png"; do
    expect_eq "Content-Type of ${f%% *}" "200 ${f#* }" \
        "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$B/${f%% *}")"
done
h=$(curl -sI $B/app.js | tr -d '\r')
etag=$(printf '%s\n' "$h" | sed -n 's/^ETag: //p')
lm=$(printf '%s\n' "$h" | sed -n 's/^Last-Modified: //p')
expect_match "ETag, Last-Modified, Cache-Control on files" 'Cache-Control: no-cache' "$h"
[ -n "$etag" ] && [ -n "$lm" ] && ok "validators present" || not_ok "validators present" "$h"
expect_eq "If-None-Match → 304" 304 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" $B/app.js)"
expect_eq "If-Modified-Since → 304" 304 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $lm" $B/app.js)"
expect_eq "another ETag → 200" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "x"' $B/app.js)"
expect_eq "HEAD: Content-Length without a body" "20 0" \
    "$(curl -sI $B/app.js | tr -d '\r' | sed -n 's/^Content-Length: //p') $(curl -s -X HEAD -m 2 $B/app.js 2>/dev/null | wc -c)"
expect_eq "../ refused" 403 "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' $B/../outside.txt)"
expect_eq "%2e%2e/ refused" 403 "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' $B/%2e%2e/outside.txt)"
expect_eq "symlink out of the root refused" 403 "$(curl -s -o /dev/null -w '%{http_code}' $B/escape.txt)"
expect_eq "symlink inside the root served" 200 "$(curl -s -o /dev/null -w '%{http_code}' $B/inside.js)"
expect_eq "hidden files refused" 403 "$(curl -s -o /dev/null -w '%{http_code}' $B/.git/config)"
r=$(curl -s -w ' %{http_code}' $B/missing.js)
expect_match "missing file → 404 JSON" '^\{"error":".*"\} 404$' "$r"
expect_eq "folder → 301 to folder/" "301 $B/sub/" \
    "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' $B/sub)"
expect_eq "folder/ → its index.html" "sub index" "$(curl -s $B/sub/)"
r=$(curl -s -i -X POST $B/index.html | tr -d '\r')
expect_match "POST on a file → 405 with Allow" 'Allow: GET, HEAD' "$r"
r=$(curl -s -w ' %{http_code}' $B/api/v1/nothing)
expect_match "unknown API path → 404 JSON" '^\{"error":".*"\} 404$' "$r"
r=$(curl -s -i -X DELETE $B/api/v1/contacts | tr -d '\r')
expect_match "wrong method → 405 with Allow" 'Allow: GET, HEAD, PUT' "$r"
expect_eq "keep-alive: two requests, one connection" "1 0" \
    "$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' $B/healthz $B/app.js | paste -sd' ')"

# ---- framing, limits, timeouts, hand-made tokens ----
tally < <(python3 "$here/rawhttp.py" $HP wire)
tally < <(python3 "$here/rawhttp.py" $HP slow 2)
ha1=$(printf 'alice:localhost:pw' | md5sum | cut -d' ' -f1)
tally < <(python3 "$here/rawhttp.py" $HP token $SECRET alice "$ha1")

# ---- login ----
r=$(curl -s -X POST $B/api/v1/login -H "$J" -d '{"user":"alice","password":"pw"}')
TOK=$(printf '%s' "$r" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null)
[ -n "$TOK" ] && ok "login → token" || not_ok "login → token" "$r"
printf '%s' "$r" | python3 -c '
import json, sys, time, hmac, hashlib, base64
r = json.load(sys.stdin)
assert r["user"] == "alice" and r["sip_uri"] == "sip:alice@localhost", r
assert r["ws_uri"] == "ws://127.0.0.1:18000/sip", r["ws_uri"]
assert r["expires"] > time.time() + 3000, r["expires"]
stun = [s for s in r["ice_servers"] if "username" not in s]
turn = [s for s in r["ice_servers"] if "username" in s][0]
assert stun[0]["urls"] == ["stun:127.0.0.1:18002"], stun
assert turn["urls"] == ["turn:127.0.0.1:18002?transport=udp"], turn
exp, user = turn["username"].split(":")
assert user == "alice" and int(exp) > time.time()
want = base64.b64encode(hmac.new(b"turnsecret", turn["username"].encode(), hashlib.sha1).digest()).decode()
assert turn["credential"] == want, (turn, want)
' >"$T/login.out" 2>&1 && ok "login answer: SIP URI, WebSocket URI, STUN/TURN with REST credentials" \
    || not_ok "login answer: SIP URI, WebSocket URI, STUN/TURN with REST credentials" "$(tail -3 "$T/login.out")"
login() { curl -s -o "$T/l.out" -w '%{http_code}' -X POST $B/api/v1/login "$@"; }
expect_eq "wrong password → 401" 401 "$(login -H "$J" -d '{"user":"alice","password":"no"}')"
expect_eq "unknown user → 401" 401 "$(login -H "$J" -d '{"user":"zed","password":"no"}')"
expect_eq "not JSON → 400" 400 "$(login -H "$J" -d '{"user":')"
expect_match "... with a JSON error" '^\{"error":"The body is not JSON' "$(cat "$T/l.out")"
expect_eq "missing password → 400" 400 "$(login -H "$J" -d '{"user":"alice"}')"
expect_eq "extra field → 400" 400 "$(login -H "$J" -d '{"user":"alice","password":"pw","x":1}')"
expect_eq "bad user name → 400" 400 "$(login -H "$J" -d '{"user":"a:b","password":"pw"}')"
expect_eq "not application/json → 415" 415 "$(login -H 'Content-Type: text/plain' -d '{}')"

# ---- contacts ----
A=(-H "Authorization: Bearer $TOK")
api() { curl -s -o "$T/a.out" -w '%{http_code}' "$@"; }
expect_eq "contacts without a token → 401" 401 "$(api $B/api/v1/contacts)"
expect_match "... with WWW-Authenticate: Bearer" 'WWW-Authenticate: Bearer' \
    "$(curl -s -i $B/api/v1/contacts | tr -d '\r')"
expect_eq "contacts with a bad token → 401" 401 "$(api -H 'Authorization: Bearer x.y' $B/api/v1/contacts)"
expect_eq "GET contacts (empty)" '200 {"contacts":[]}' "$(api "${A[@]}" $B/api/v1/contacts) $(cat "$T/a.out")"
expect_eq "PUT contacts" 200 "$(api "${A[@]}" -X PUT -H "$J" $B/api/v1/contacts \
    -d '{"contacts":[{"uri":"sip:bob@localhost","display":"Bob","label":"work"},{"uri":"sip:carol@localhost"}]}')"
expect_eq "GET contacts returns them" \
    '{"contacts":[{"uri":"sip:carol@localhost","display":"","label":""},{"uri":"sip:bob@localhost","display":"Bob","label":"work"}]}' \
    "$(curl -s "${A[@]}" $B/api/v1/contacts)"
api "${A[@]}" -X PUT -H "$J" $B/api/v1/contacts -d '[{"uri":"sip:bob@localhost","display":"Bobby"}]' >/dev/null
expect_eq "PUT replaces the list" '{"contacts":[{"uri":"sip:bob@localhost","display":"Bobby","label":""}]}' \
    "$(curl -s "${A[@]}" $B/api/v1/contacts)"
expect_eq "contact without uri → 400" 400 "$(api "${A[@]}" -X PUT -H "$J" $B/api/v1/contacts -d '{"contacts":[{"display":"x"}]}')"
expect_match "... saying which entry" 'contacts\[0\]: uri' "$(cat "$T/a.out")"
expect_eq "contacts not a list → 400" 400 "$(api "${A[@]}" -X PUT -H "$J" $B/api/v1/contacts -d '{"contacts":7}')"
expect_eq "another user's list is separate" '{"contacts":[]}' \
    "$(curl -s -H "Authorization: Bearer $(curl -s -X POST $B/api/v1/login -H "$J" -d '{"user":"carol","password":"pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')" $B/api/v1/contacts)"

# ---- history (messages archived by the SIP side) ----
python3 "$root/tests/sip/sipua.py" send --server 127.0.0.1:$SP --user bob --password pw \
    --to alice --count 3 --prefix hi >"$T/send.out" 2>&1
expect_eq "three MESSAGEs from bob accepted" 3 "$(grep -c ACKED "$T/send.out")"
sleep 0.3 # the archive commits in batches (up to 50 ms)
r=$(curl -s "${A[@]}" "$B/api/v1/history?with=bob")
expect_match "history with bob: the three messages, in order" '"body":"hi-1".*"body":"hi-2".*"body":"hi-3"' "$r"
r=$(curl -s "${A[@]}" "$B/api/v1/history?with=bob&limit=2")
expect_match "limit=2: the newest two, more:true" '"hi-2".*"hi-3".*"more":true,"before":[0-9]+\}$' "$r"
case $r in *hi-1*) not_ok "limit=2 leaves out the oldest" "$r" ;; *) ok "limit=2 leaves out the oldest" ;; esac
before=$(printf '%s' "$r" | python3 -c 'import json,sys; print(json.load(sys.stdin)["before"])')
r=$(curl -s "${A[@]}" "$B/api/v1/history?with=bob&limit=2&before=$before")
expect_match "before=: the page before" '"hi-1".*"more":false' "$r"
CT=$(curl -s -X POST $B/api/v1/login -H "$J" -d '{"user":"carol","password":"pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
expect_eq "carol sees none of alice's messages" '{"messages":[],"more":false}' \
    "$(curl -s -H "Authorization: Bearer $CT" "$B/api/v1/history?with=bob")"
expect_eq "history without with= → 400" 400 "$(api "${A[@]}" "$B/api/v1/history")"
expect_eq "history limit=0 → 400" 400 "$(api "${A[@]}" "$B/api/v1/history?with=bob&limit=0")"
expect_eq "history before=abc → 400" 400 "$(api "${A[@]}" "$B/api/v1/history?with=bob&before=abc")"

# ---- presence rules ----
expect_eq "PUT presence-rules" 200 "$(api "${A[@]}" -X PUT -H "$J" $B/api/v1/presence-rules \
    -d '{"rules":[{"watcher":"bob","action":"allow"},{"watcher":"eve","action":"polite-block"}]}')"
expect_eq "GET presence-rules" '{"rules":[{"watcher":"bob","action":"allow"},{"watcher":"eve","action":"polite-block"}]}' \
    "$(curl -s "${A[@]}" $B/api/v1/presence-rules)"
api "${A[@]}" -X PUT -H "$J" $B/api/v1/presence-rules -d '{"rules":[{"watcher":"eve","action":"block"}]}' >/dev/null
expect_eq "PUT replaces the rules" '{"rules":[{"watcher":"eve","action":"block"}]}' \
    "$(curl -s "${A[@]}" $B/api/v1/presence-rules)"
expect_eq "unknown action → 400" 400 "$(api "${A[@]}" -X PUT -H "$J" $B/api/v1/presence-rules -d '{"rules":[{"watcher":"bob","action":"maybe"}]}')"

# ---- revocation ----
"$RTCCTL" --set server.data_dir="$T/srv" user disable alice >/dev/null
sleep 0.7
expect_eq "disabled user's token → 401" 401 "$(api "${A[@]}" $B/api/v1/contacts)"
"$RTCCTL" --set server.data_dir="$T/srv" user enable alice >/dev/null
sleep 0.7
expect_eq "enabled again: token valid" 200 "$(api "${A[@]}" $B/api/v1/contacts)"
"$RTCCTL" --set server.data_dir="$T/srv" user passwd alice --password new >/dev/null
sleep 0.7
expect_eq "password changed: old token → 401" 401 "$(api "${A[@]}" $B/api/v1/contacts)"

# ---- throttling (last: it locks 127.0.0.1 out of logins for a while) ----
for i in 1 2 3 4; do login -H "$J" -d '{"user":"bob","password":"no"}' >/dev/null; done
expect_eq "failed logins throttled → 429" 429 "$(login -H "$J" -d '{"user":"bob","password":"pw"}')"
expect_match "... with Retry-After" 'Retry-After: [0-9]+' \
    "$(curl -s -i -X POST $B/api/v1/login -H "$J" -d '{"user":"bob","password":"pw"}' | tr -d '\r')"

# ---- metrics ----
curl -s $B/metrics >"$T/metrics.txt"
if python3 - "$T/metrics.txt" <<'EOF'
import re, sys
names, samples = set(), 0
typed = {}
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        parts = line.split(" ", 3)
        assert parts[2].startswith("rtcd_"), line
        if parts[1] == "TYPE":
            assert parts[3] in ("counter", "gauge"), line
            assert parts[2] not in typed, "TYPE twice: " + line
            typed[parts[2]] = parts[3]
        continue
    m = re.match(r'^(rtcd_[a-z0-9_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+]+)$', line)
    assert m, "bad sample line: " + line
    assert m.group(1) in typed, "sample before its TYPE: " + line
    names.add(m.group(1)); samples += 1
for want in ("rtcd_registrations", "rtcd_sip_transactions_total", "rtcd_messages_total",
             "rtcd_connections", "rtcd_auth_failures_total", "rtcd_errors_total",
             "rtcd_http_requests_total", "rtcd_http_connections", "rtcd_subscriptions"):
    assert want in names, "missing " + want
print(samples, "samples")
EOF
then ok "/metrics parses as Prometheus text, every name rtcd_*"; else not_ok "/metrics parses" "$(head -5 "$T/metrics.txt")"; fi
expect_match "/metrics counts the throttled logins" 'rtcd_http_logins_total\{result="failed"\} [1-9]' "$(cat "$T/metrics.txt")"

stop_pid "$RTCD_PID" && ok "rtcd stops cleanly" || not_ok "rtcd stops cleanly"
finish
