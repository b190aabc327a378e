#!/usr/bin/env bash
# rtcctl end to end on a SQLite store: every command, wrong input and exit
# codes, --json validity; then `migrate --to postgresql://` into a real
# PostgreSQL (127.0.0.1:15433) and the backup/restore steps of docs/operations.md.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg.sh"

D="$T/data"
mkdir -p "$D"
ctl() { "$RTCCTL" --set server.data_dir="$D" --set server.domain=example.com "$@"; }
# rc NAME EXPECTED_EXIT CMD... — runs rtcctl with CMD, checks the exit status.
rc() {
    local name=$1 want=$2
    shift 2
    ctl "$@" >"$T/out" 2>"$T/err"
    local got=$?
    if [ "$got" = "$want" ]; then ok "$name (exit $want)"; else
        not_ok "$name" "exit $got, expected $want: $(head -3 "$T/err")"; fi
}
# json NAME CMD... — the output must be valid JSON (python3 -m json.tool).
json() {
    local name=$1
    shift
    if ctl "$@" --json >"$T/json" 2>"$T/err" && python3 -m json.tool "$T/json" >/dev/null; then
        ok "$name: valid --json"
    else
        not_ok "$name: --json" "$(head -3 "$T/json" "$T/err")"
    fi
}
err_has() { if grep -q -- "$2" "$T/err"; then ok "$1"; else not_ok "$1" "stderr: $(cat "$T/err")"; fi; }
out_has() { if grep -q -- "$2" "$T/out"; then ok "$1"; else not_ok "$1" "stdout: $(cat "$T/out")"; fi; }

# --help on every command, and usage errors
for c in user group contacts archive messages stats audit migrate; do
    rc "$c --help" 0 "$c" --help
    out_has "$c --help prints usage" "Usage: rtcctl $c"
done
rc "unknown command" 2 frobnicate
rc "user without subcommand" 2 user
rc "unknown user subcommand" 2 user frob
rc "unknown option" 2 user add zed --colour red

# users
rc "user add" 0 user add alice --password 'Circle Of Life' --display 'Alice Liddell'
rc "duplicate user" 1 user add alice --password x
err_has "duplicate user reason" "already exists"
rc "invalid user name" 2 user add 'a b' --password x
rc "invalid display name" 2 user add carol --password x --display "$(printf 'a\tb\001')"
echo 'from-stdin' | ctl user add bob >"$T/out" 2>"$T/err"
expect_eq "user add reads the password from stdin" 0 $?
printf 'filepw\n' >"$T/pw"
rc "user add --password-file" 0 user add dave --password-file "$T/pw"
rc "missing password file" 1 user add erin --password-file "$T/nope"
rc "empty password" 2 user add erin --password ''
# the stored digest is HA1 = MD5(name:realm:password) for realm = first server.domain
want=$(printf 'alice:example.com:Circle Of Life' | md5sum | cut -d' ' -f1)
got=$(sqlite3 "$D/rtcd.db" "SELECT ha1_md5 FROM users WHERE name='alice'")
expect_eq "HA1 MD5 for the realm" "$want" "$got"
want=$(printf 'alice:example.com:Circle Of Life' | sha256sum | cut -d' ' -f1)
got=$(sqlite3 "$D/rtcd.db" "SELECT ha1_sha256 FROM users WHERE name='alice'")
expect_eq "HA1 SHA-256 for the realm" "$want" "$got"
if sqlite3 "$D/rtcd.db" .dump | grep -q 'Circle Of Life'; then not_ok "password never stored"; else
    ok "password never stored"; fi
# prompt without echo on a terminal (python's pty gives rtcctl a terminal)
python3 - "$RTCCTL" "$D" >"$T/pty" 2>&1 <<'EOF'
import os, pty, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--set", "server.data_dir=" + sys.argv[2],
             "--set", "server.domain=example.com", "user", "add", "frank"])
out = b""
def until(s):
    global out
    t = time.time()
    while s not in out and time.time() - t < 5:
        try: out += os.read(fd, 100)
        except OSError: break
until(b"Password for frank: ")
os.write(fd, b"tty-secret\n")
until(b"Retype")
os.write(fd, b"tty-secret\n")
until(b"added")
t = time.time()
while True:  # bounded wait: never hang the suite
    done, st = os.waitpid(pid, os.WNOHANG)
    if done or time.time() - t > 5: break
    time.sleep(0.05)
if not done:
    os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0); st = 1 << 8
print(out.decode(errors="replace"))
sys.exit(0 if os.WEXITSTATUS(st) == 0 and b"tty-secret" not in out and b"added" in out else 1)
EOF
if [ $? -eq 0 ]; then ok "password prompt on a terminal, without echo"; else
    not_ok "password prompt on a terminal" "$(cat "$T/pty")"; fi

rc "user list" 0 user list
out_has "user list shows alice" "alice.*Alice Liddell"
json "user list" user list
rc "user show" 0 user show alice
out_has "user show display" "Alice Liddell"
json "user show" user show alice
rc "user show unknown" 1 user show nobody
err_has "unknown user reason" "no such user: nobody"
rc "user passwd" 0 user passwd alice --password 'new secret'
got=$(sqlite3 "$D/rtcd.db" "SELECT ha1_md5 FROM users WHERE name='alice'")
want=$(printf 'alice:example.com:new secret' | md5sum | cut -d' ' -f1)
expect_eq "passwd changes the HA1" "$want" "$got"
rc "user passwd unknown" 1 user passwd nobody --password x
rc "user disable" 0 user disable bob
expect_eq "disabled in the store" 0 "$(sqlite3 "$D/rtcd.db" "SELECT enabled FROM users WHERE name='bob'")"
json "user enable" user enable bob
expect_eq "enabled in the store" 1 "$(sqlite3 "$D/rtcd.db" "SELECT enabled FROM users WHERE name='bob'")"
rc "user disable unknown" 1 user disable nobody
rc "user del" 0 user del dave
rc "user del again" 1 user del dave
rc "user del without name" 2 user del

# import: 10,000 users in a few seconds, all or nothing, bad line with its number
python3 -c "
for i in range(10000): print(f'imp{i},pw{i},Imported User {i}')" >"$T/10k.csv"
start=$(date +%s%N)
rc "import 10,000 users" 0 user import "$T/10k.csv"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$ms" -lt 5000 ]; then ok "import of 10,000 users took $ms ms"; else not_ok "import too slow" "$ms ms"; fi
expect_eq "10,000 imported" 10003 "$(sqlite3 "$D/rtcd.db" "SELECT COUNT(*) FROM users")"
printf 'n1,p1\n# comment\n\n"n2","p,w","Disp ""Q"""\nbad name,p\nn4,p\n' >"$T/bad.csv"
rc "import with a bad line" 1 user import "$T/bad.csv"
err_has "bad line reported with its number" "bad.csv:5: invalid user name"
expect_eq "nothing half-applied" 0 "$(sqlite3 "$D/rtcd.db" "SELECT COUNT(*) FROM users WHERE name IN ('n1','n2')")"
printf 'n1,p1\nimp77,p\n' >"$T/dup.csv"
rc "import of an existing user" 1 user import "$T/dup.csv"
err_has "existing user reported with its line" "dup.csv:2: user 'imp77' already exists"
printf 'n1,p1\nn1,p2\n' >"$T/dup2.csv"
rc "import with a name twice" 1 user import "$T/dup2.csv"
err_has "duplicate line reported" "dup2.csv:2: user 'n1' is already on line 1"
printf 'n1\n' >"$T/short.csv"
rc "import line without password" 1 user import "$T/short.csv"
err_has "short line reported" "short.csv:1: expected name,password"
printf 'q1,p1\n"q2","p,w","Disp ""Q"""\n' >"$T/good.csv"
json "import with quoted fields" user import "$T/good.csv"
expect_eq "quoted display name" 'Disp "Q"' "$(sqlite3 "$D/rtcd.db" "SELECT display FROM users WHERE name='q2'")"
rc "import of a missing file" 1 user import "$T/missing.csv"
rc "import without file" 2 user import

# groups
rc "group add" 0 group add sales
rc "group add duplicate" 1 group add sales
rc "group add invalid" 2 group add 'bad group'
json "group add" group add dev
rc "members add" 0 group members add sales alice bob
rc "members add again" 1 group members add sales alice
rc "members add to a missing group" 1 group members add nogroup alice
err_has "bad group reason" "no such group: nogroup"
rc "members add unknown user" 1 group members add dev alice nobody
expect_eq "no member added when one user is unknown" "" "$(ctl group members list dev)"
rc "members list" 0 group members list sales
expect_eq "members listed" "alice bob" "$(ctl group members list sales | tr '\n' ' ' | sed 's/ $//')"
json "members list" group members list sales
rc "members list of a missing group" 1 group members list nogroup
rc "members del" 0 group members del sales bob
rc "members del non-member" 1 group members del sales bob
rc "group list" 0 group list
out_has "group list counts members" "sales *1"
json "group list" group list
rc "group del" 0 group del dev
rc "group del missing" 1 group del dev
rc "group members without subcommand" 2 group members

# contacts
rc "contacts add" 0 contacts add alice sip:bob@example.com --display Bob --label work
json "contacts add" contacts add alice carol --label friends
rc "contacts list" 0 contacts list alice
out_has "contact listed" "work *sip:bob@example.com *Bob"
json "contacts list" contacts list alice
rc "contacts of an unknown user" 1 contacts list nobody
rc "contacts del" 0 contacts del alice carol
rc "contacts del missing" 1 contacts del alice carol
rc "contacts add without uri" 2 contacts add alice

# archive and offline messages: rows written the way rtcd writes them
sqlite3 "$D/rtcd.db" "INSERT INTO archive (at_ms, sender, recipients, content_type, body) VALUES
  (1767225600000, 'alice', ',bob,', 'text/plain', 'Quarterly report is ready'),
  (1767312000000, 'bob', ',alice,', 'text/plain', 'Thanks for the report'),
  (1767398400000, 'carol', ',dave,', 'text/plain', 'lunch?');
  INSERT INTO offline_msg (recipient, sender, created_ms, content_type, body) VALUES
  ('alice', 'sip:bob@example.com', 1767225600000, 'text/plain', CAST('hello alice' AS BLOB)),
  ('bob', 'sip:carol@example.com', 1767225601000, 'text/plain', CAST('hi bob' AS BLOB));"
rc "archive search" 0 archive search report
expect_eq "archive search finds both" 2 "$(ctl archive search report --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
json "archive search" archive search report --user alice --with bob
expect_eq "--since filters" 1 "$(ctl archive search report --since 2026-01-02 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
expect_eq "--until filters" 1 "$(ctl archive search report --until 2026-01-01T12:00Z --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
expect_eq "--user filters" 1 "$(ctl archive search '' --user carol --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
expect_eq "--with filters" 0 "$(ctl archive search report --user alice --with carol --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
rc "archive: malformed --since" 2 archive search x --since yesterday
err_has "malformed time reason" "malformed time"
rc "archive: impossible date" 2 archive search x --until 2026-02-31
rc "archive: --until before --since" 2 archive search x --since 2026-02-01 --until 2026-01-01
rc "archive without search" 2 archive report
rc "messages pending" 0 messages pending
out_has "pending message listed" "alice *sip:bob@example.com"
json "messages pending" messages pending --user alice
expect_eq "pending body in json" "hello alice" "$(ctl messages pending --user alice --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["body"])')"
rc "messages pending unknown user" 1 messages pending --user nobody
rc "messages without pending" 2 messages

# stats and audit
rc "stats" 0 stats
out_has "stats users" "users *10005"
json "stats" stats
rc "stats with an argument" 2 stats now
rc "audit" 0 audit --limit 200
out_has "audit records user.add by rtcctl" "rtcctl:.*user.add *alice"
out_has "audit records group.member.add" "group.member.add *sales *alice"
json "audit" audit
rc "audit bad limit" 2 audit --limit 0

# a store that cannot be opened: refused with a reason
"$RTCCTL" --set store.backend=postgres --set store.url=postgresql://x@127.0.0.1:15499/none \
    user list >"$T/out" 2>"$T/err"
expect_eq "unreachable store refused" 1 $?
err_has "unreachable store reason" "cannot open the store"

# migrate to PostgreSQL, then use it there
rc "migrate without --to" 2 migrate
rc "migrate to a non-postgres url" 2 migrate --to /tmp/x.db
if pg_start 15433 && pg_createdb rtcd_mig && pg_createdb rtcd_restore; then
    URL="$PG_URL_BASE/rtcd_mig"
    json "migrate" migrate --to "$URL"
    pg() { "$RTCCTL" --set server.domain=example.com --set store.backend=postgres \
        --set store.url="$URL" "$@"; }
    expect_eq "users copied" 10005 "$(pg stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])')"
    expect_eq "groups copied" "alice" "$(pg group members list sales)"
    expect_eq "archive searchable after migrate" 2 "$(pg archive search report --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
    expect_eq "offline messages copied" "hello alice" "$(pg messages pending --user alice --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["body"])')"
    want=$(sqlite3 "$D/rtcd.db" "SELECT ha1_sha256 FROM users WHERE name='alice'")
    got=$(pg user show alice --json >/dev/null; "$PG_BIN/psql" -X -A -t "$URL" -c "SELECT ha1_sha256 FROM users WHERE name='alice'")
    expect_eq "HA1 copied unchanged" "$want" "$got"
    pg user add zoe --password z >/dev/null 2>&1
    expect_eq "new users on postgres after migrate" 0 $?
    ctl migrate --to "$URL" >"$T/out" 2>"$T/err"
    expect_eq "migrate into a non-empty database refused" 1 $?
    err_has "non-empty reason" "already holds data"

    # backup and restore, PostgreSQL (docs/operations.md)
    "$PG_BIN/pg_dump" --format=custom --file="$T/pg.dump" "$URL"
    expect_eq "pg_dump" 0 $?
    "$PG_BIN/pg_restore" --no-owner --dbname="$PG_URL_BASE/rtcd_restore" "$T/pg.dump"
    expect_eq "pg_restore" 0 $?
    expect_eq "restored postgres has the users" 10006 "$("$RTCCTL" --set store.backend=postgres \
        --set store.url="$PG_URL_BASE/rtcd_restore" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])')"
    pg_stop
else
    not_ok "postgres for migrate" "$(tail -3 "$T/pg/server.log" 2>/dev/null)"
fi

# backup and restore, SQLite (docs/operations.md): online .backup, then restore by copy
sqlite3 "$D/rtcd.db" ".backup '$T/backup.db'"
expect_eq "sqlite .backup" 0 $?
expect_eq "backup integrity" ok "$(sqlite3 "$T/backup.db" 'PRAGMA integrity_check')"
mkdir -p "$T/restored"
cp "$T/backup.db" "$T/restored/rtcd.db"
expect_eq "restored sqlite has the users" 10005 "$("$RTCCTL" --set server.data_dir="$T/restored" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])')"
expect_eq "restored archive searchable" 2 "$("$RTCCTL" --set server.data_dir="$T/restored" archive search report --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

finish
