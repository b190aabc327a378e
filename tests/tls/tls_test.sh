#!/usr/bin/env bash
# SIP over TLS on the wire (docs/tls.md): the self-signed certificate of a first
# start (fingerprint logged, key 0600, reused), TLS 1.2/1.3 accepted, 1.1 and
# non-AEAD suites refused, OPTIONS over IPv4 and IPv6, sipp through a socat TLS
# tunnel (sipp 3.6 in Debian has no TLS) registering and calling, a request
# delivered over a registered TLS flow, outbound TLS with certificate
# verification (and its failure), SIGHUP with a new certificate (open connection
# kept, new one gets the new certificate), client certificates required, a
# stalled handshake timed out, the pending-handshake cap.
# Ports 15200-15299 (docs/testing.md).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../sip/run_scenario.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PROBE="python3 $HERE/tlsprobe.py"
SCEN=$HERE/scenarios
SIPS=$(cd "$HERE/../sip/scenarios" && pwd)

# ---- test certificates: a CA, a server certificate for 127.0.0.1 from it, a
# client certificate from it, two self-signed server certificates, a stranger ----
ec() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "$@" 2>/dev/null; }
ec -subj /CN=test-ca -keyout "$T/ca.key" -out "$T/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
leaf() { # NAME SUBJECT EXTFILE-LINE — a key and a certificate signed by the test CA
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
        -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$T/$1.ext"
    openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
        -days 2 -extfile "$T/$1.ext" -out "$T/$1.pem" 2>/dev/null
}
leaf srv /CN=127.0.0.1 "subjectAltName=IP:127.0.0.1"
leaf cli /CN=alice "extendedKeyUsage=clientAuth"
ec -subj /CN=one -keyout "$T/one.key" -out "$T/one.pem" -addext subjectAltName=IP:127.0.0.1
ec -subj /CN=two -keyout "$T/two.key" -out "$T/two.pem" -addext subjectAltName=IP:127.0.0.1
ec -subj /CN=stranger -keyout "$T/str.key" -out "$T/str.pem"
fp_of() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
[ -s "$T/srv.pem" ] && [ -s "$T/cli.pem" ] && [ -s "$T/two.pem" ] || { not_ok "test certificates"; finish; }

adduser() { for u in alice bob carol; do
    "$RTCCTL" --set server.data_dir="$T/$1" user add $u --password secret >/dev/null; done; }
field() { printf '%s' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# ---- A: self-signed certificate, outbound verification with the test CA ----
adduser a
A_ARGS=(--set "sip.listen=udp:127.0.0.1:15200, tcp:127.0.0.1:15200, tls:127.0.0.1:15201, tls:[::1]:15201"
    --set http.listen=tcp:127.0.0.1:15290 --set turn.listen=udp:127.0.0.1:15291
    --set tls.ca_file="$T/ca.pem" --set sip.t1_ms=100 --set sip.t2_ms=400)
start_rtcd a "${A_ARGS[@]}" || { not_ok "rtcd starts with a TLS listener"; finish; }
FP=$(sed -n 's/.*self-signed, created now), SHA-256 fingerprint \([0-9A-F:]*\).*/\1/p' "$T/a.log")
expect_eq "first start: self-signed certificate created, fingerprint logged" "$(fp_of "$T/a/tls/cert.pem")" "$FP"
expect_eq "private key file mode 0600" 600 "$(stat -c %a "$T/a/tls/key.pem")"
expect_match "certificate names localhost and 127.0.0.1" "DNS:localhost, IP Address:127.0.0.1" \
    "$(openssl x509 -in "$T/a/tls/cert.pem" -noout -ext subjectAltName 2>/dev/null | tr -d '\n')"

r=$($PROBE options 127.0.0.1 15201)
expect_eq "OPTIONS over TLS (IPv4): 200" 200 "$(field status "$r")"
expect_eq "served certificate is the logged one" "$FP" "$(field fp "$r")"
expect_eq "TLS 1.3 by default" TLSv1.3 "$(field version "$r")"
r=$($PROBE options ::1 15201)
expect_eq "OPTIONS over TLS (IPv6): 200" 200 "$(field status "$r")"
r=$($PROBE options 127.0.0.1 15201 --ca "$T/a/tls/cert.pem")
expect_eq "self-signed certificate verifies as its own anchor for 127.0.0.1" 200 "$(field status "$r")"

sc() { echo | timeout 5 openssl s_client -connect 127.0.0.1:15201 "$@" 2>&1; }
out=$(sc -tls1_3)
expect_match "openssl s_client -tls1_3 accepted" "New, TLSv1.3" "$out"
out=$(sc -tls1_2)
expect_match "openssl s_client -tls1_2 accepted with ECDHE+AEAD" "New, TLSv1.2, Cipher is ECDHE-ECDSA-(AES|CHACHA)" "$out"
expect_eq "s_client sees the logged certificate" "$FP" \
    "$(printf '%s' "$out" | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')"
out=$(sc -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
expect_match "TLS 1.1 refused" "alert protocol version|no protocols available|wrong version|unsupported protocol" "$out"
out=$(sc -tls1_2 -cipher AES128-SHA)
expect_match "TLS 1.2 without ECDHE/AEAD refused" "handshake failure|no shared cipher" "$out"

# sipp has no TLS: socat carries its TCP into TLS (verifying rtcd's certificate).
socat TCP-LISTEN:15230,bind=127.0.0.1,reuseaddr,fork \
    "OPENSSL:127.0.0.1:15201,cafile=$T/a/tls/cert.pem,verify=1" 2>"$T/socat-c.log" &
track $!
# carol's TLS side: a TLS server with a certificate from the test CA, in front of sipp's TCP.
socat "OPENSSL-LISTEN:15241,bind=127.0.0.1,reuseaddr,fork,cert=$T/srv.pem,key=$T/srv.key,verify=0" \
    TCP:127.0.0.1:15242 2>"$T/socat-s.log" &
track $!
sleep 0.5
sippt() { # NAME SCENARIO USER LOCAL_PORT [sipp args] — sipp over the TLS tunnel (one call)
    local name=$1 scen=$2 user=$3 lport=$4
    shift 4
    sip_csv "$T/$name.csv" "$user" secret
    timeout 40 sipp 127.0.0.1:15230 -sf "$scen" -inf "$T/$name.csv" -t t1 -i 127.0.0.1 \
        -p "$lport" -key domain localhost -key expires 300 -m 1 -recv_timeout 8000 \
        -timeout 25s -timeout_error -max_recv_loops 100 -nostdin -nr \
        -default_behaviors all,-bye -trace_err -error_file "$T/$name.err" "$@" \
        >"$T/$name.out" 2>&1
}
sippt reg "$SCEN/reg_ct.xml" alice 15250 -key ct "127.0.0.1:15250;transport=tls"
expect_rc "sipp REGISTER over TLS: 401 then 200" 0 $?

# bob registers over TLS and waits on that connection; alice's MESSAGE must reach
# him on it (a registered TLS flow), with our Via saying TLS.
$PROBE listen 127.0.0.1 15201 --user bob --seconds 15 >"$T/bob.out" 2>&1 &
BOB=$!
track $BOB
for i in $(seq 1 30); do grep -q REGISTERED "$T/bob.out" && break; sleep 0.1; done
sippt msg "$SIPS/uac_message.xml" alice 15251 -s bob
expect_rc "sipp MESSAGE over TLS to a user registered over TLS: 200" 0 $?
wait $BOB 2>/dev/null
expect_eq "the MESSAGE came over bob's TLS registration flow" "GOT MESSAGE SIP/2.0/TLS" \
    "$(grep GOT "$T/bob.out")"

# a sips: INVITE to bob (registered over TLS): both Record-Route entries are sips: (RFC 3261
# §16.6 step 4) and it reaches him over his TLS flow
$PROBE listen 127.0.0.1 15201 --user bob --seconds 15 >"$T/bob2.out" 2>&1 &
BOB=$!
track $BOB
for i in $(seq 1 30); do grep -q REGISTERED "$T/bob2.out" && break; sleep 0.1; done
r=$($PROBE invite 127.0.0.1 15201 --user alice --to sips:bob@localhost)
expect_eq "sips: INVITE over TLS to a TLS-registered user: 200" "status=200" "$r"
wait $BOB 2>/dev/null
expect_match "sips: request gets sips: Record-Route entries" \
    "^RR <sips:127.0.0.1:15201;lr;fl=l[0-9a-f]+>, <sips:127.0.0.1:15201;lr;fl=l[0-9a-f]+>$" \
    "$(grep '^RR' "$T/bob2.out")"

# carol: sipp UAS on TCP 15242 behind the TLS server on 15241; registered with a
# ;transport=tls Contact, so rtcd opens the TLS connection and verifies it (test CA).
sip_csv "$T/carol.csv" carol secret
timeout 40 sipp -sf "$SIPS/uas.xml" -s carol -t t1 -i 127.0.0.1 -p 15242 -m 1 \
    -recv_timeout 15000 -timeout 25s -timeout_error -nostdin -nr -default_behaviors all,-bye \
    -trace_err -error_file "$T/uas.err" -trace_msg -message_file "$T/uas.msg" >"$T/uas.out" 2>&1 &
UAS=$!
track $UAS
sleep 0.3
# (registered over UDP: no connection of carol's is involved, only her Contact)
timeout 20 sipp 127.0.0.1:15200 -sf "$SCEN/reg_ct.xml" -inf "$T/carol.csv" -t u1 -i 127.0.0.1 \
    -p 15252 -key domain localhost -key expires 300 -key ct "127.0.0.1:15241;transport=tls" -m 1 \
    -recv_timeout 5000 -nostdin -nr -trace_err -error_file "$T/regc.err" >"$T/regc.out" 2>&1
expect_rc "callee registered with a ;transport=tls Contact" 0 $?
sippt call "$SIPS/uac_call.xml" alice 15253 -s carol -d 200
rc_uac=$?
sipp_wait "$UAS" 20
rc_uas=$?
expect_eq "sipp call over TLS both ways (INVITE/180/200/ACK/BYE, outbound TLS verified)" "0 0" "$rc_uac $rc_uas"
expect_match "the INVITE reached the callee with rtcd's TLS Via" "Via: SIP/2.0/TLS 127.0.0.1:15201" \
    "$(grep -a -m1 'Via: SIP/2.0/TLS' "$T/uas.msg")"

stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly with TLS flows open" 0 $?
start_rtcd a "${A_ARGS[@]}" || { not_ok "rtcd starts again"; finish; }
expect_match "second start reuses the certificate" "tls: certificate .*cert.pem \(self-signed\), SHA-256 fingerprint $FP" \
    "$(grep 'tls: certificate' "$T/a.log")"
stop_pid "$RTCD_PID"
expect_eq "rtcd a stops cleanly (second run)" 0 $?

# ---- D: outbound verification without the CA: the connection is refused ----
adduser d
start_rtcd d --set "sip.listen=udp:127.0.0.1:15260, tls:127.0.0.1:15261" \
    --set http.listen=tcp:127.0.0.1:15292 --set turn.listen=udp:127.0.0.1:15293 \
    --set sip.t1_ms=100 --set sip.t2_ms=400 || { not_ok "rtcd d starts"; finish; }
sip_csv "$T/d.csv" carol secret
timeout 20 sipp 127.0.0.1:15260 -sf "$SCEN/reg_ct.xml" -inf "$T/d.csv" -t u1 -i 127.0.0.1 -p 15262 \
    -key domain localhost -key expires 300 -key ct "127.0.0.1:15241;transport=tls" -m 1 \
    -recv_timeout 5000 -nostdin -nr >"$T/dreg.out" 2>&1
expect_rc "d: callee registered" 0 $?
sip_csv "$T/dm.csv" alice secret
timeout 30 sipp 127.0.0.1:15260 -sf "$SIPS/uac_message.xml" -inf "$T/dm.csv" -s carol -t u1 \
    -i 127.0.0.1 -p 15263 -key domain localhost -m 1 -recv_timeout 12000 -nostdin -nr \
    -trace_err -error_file "$T/dm.err" >"$T/dm.out" 2>&1
expect_rc "d: MESSAGE not delivered to a server whose certificate does not verify" 1 $?
expect_match "d: the failed verification is logged" "tls to 127.0.0.1:15241: TLS handshake: certificate verify failed" \
    "$(grep 'tls to' "$T/d.log")"
# a sips: request is not forwarded to a device reached only over UDP (RFC 3261 §26.2)
sip_csv "$T/db.csv" bob secret
timeout 20 sipp 127.0.0.1:15260 -sf "$SCEN/reg_ct.xml" -inf "$T/db.csv" -t u1 -i 127.0.0.1 -p 15264 \
    -key domain localhost -key expires 300 -key ct "127.0.0.1:15265" -m 1 \
    -recv_timeout 5000 -nostdin -nr >"$T/dbreg.out" 2>&1
expect_rc "d: bob registered over UDP" 0 $?
r=$($PROBE invite 127.0.0.1 15261 --user alice --to sips:bob@localhost)
expect_eq "d: sips: INVITE to a UDP-only device: 480 at once (no branch over UDP)" "status=480" "$r"
stop_pid "$RTCD_PID"
expect_eq "rtcd d stops cleanly" 0 $?

# ---- B: configured certificate, SIGHUP, handshake timeout ----
printf '[tls]\ncertificate = %s\nprivate_key = %s\nhandshake_timeout = 2\nmax_handshakes = 3\n' \
    "$T/one.pem" "$T/one.key" >"$T/b.ini"
B_SETS=(--set "sip.listen=udp:127.0.0.1:15210, tls:127.0.0.1:15211"
    --set http.listen=tcp:127.0.0.1:15294 --set turn.listen=udp:127.0.0.1:15295)
mkdir -p "$T/b"
"$RTCD" -c "$T/b.ini" --set server.data_dir="$T/b" --set log.level=debug "${B_SETS[@]}" >"$T/b.log" 2>&1 &
RTCD_PID=$!
track $RTCD_PID
for i in $(seq 1 100); do grep -q "rtcd: ready:" "$T/b.log" && break; sleep 0.1; done
expect_match "configured certificate logged with its fingerprint" "\(configured\), SHA-256 fingerprint $(fp_of "$T/one.pem")" \
    "$(grep 'tls: certificate' "$T/b.log")"
r=$($PROBE hup 127.0.0.1 15211 --run "sed -i 's/one\\./two./g' '$T/b.ini' && kill -HUP $RTCD_PID")
expect_eq "SIGHUP: the open connection still answers OPTIONS" "200 200" "$(field old_status "$r") $(field again_status "$r")"
expect_eq "SIGHUP: the open connection keeps the old certificate" "$(fp_of "$T/one.pem")" "$(field again_fp "$r")"
expect_eq "SIGHUP: a new connection gets the new certificate" "$(fp_of "$T/two.pem") 200" "$(field new_fp "$r") $(field new_status "$r")"
expect_match "SIGHUP logged" "SIGHUP: TLS reloaded" "$(cat "$T/b.log")"
printf 'garbage\n' >"$T/bad.pem"
sed -i "s#$T/two.pem#$T/bad.pem#" "$T/b.ini"
kill -HUP $RTCD_PID
sleep 0.5
r=$($PROBE options 127.0.0.1 15211)
expect_eq "SIGHUP with a broken certificate keeps the previous one" "200 $(fp_of "$T/two.pem")" "$(field status "$r") $(field fp "$r")"
expect_match "the broken certificate is reported" "TLS not reloaded.*tls.certificate" "$(cat "$T/b.log")"

r=$($PROBE slow 127.0.0.1 15211 --limit 8)
s=$(field closed_after "$r")
expect_match "a stalled handshake is closed after tls.handshake_timeout (2 s): ${s}s" '^(1\.[5-9]|2\.[0-9]|3\.[0-9])$' "$s"
# max_handshakes = 3: three stalled handshakes hold the slots, the fourth is refused
exec 7<>/dev/tcp/127.0.0.1/15211 8<>/dev/tcp/127.0.0.1/15211 9<>/dev/tcp/127.0.0.1/15211
sleep 0.3
r=$($PROBE options 127.0.0.1 15211)
expect_eq "tls.max_handshakes: a fourth handshake is refused" 0 "$(field status "$r")"
exec 7>&- 8>&- 9>&-
sleep 0.3
r=$($PROBE options 127.0.0.1 15211)
expect_eq "tls.max_handshakes: accepted again once the others are gone" 200 "$(field status "$r")"
stop_pid "$RTCD_PID"
expect_eq "rtcd b stops cleanly" 0 $?

# ---- C: client certificates required ----
start_rtcd c --set "sip.listen=udp:127.0.0.1:15220, tls:127.0.0.1:15221" \
    --set http.listen=tcp:127.0.0.1:15296 --set turn.listen=udp:127.0.0.1:15297 \
    --set tls.verify_client=required --set tls.ca_file="$T/ca.pem" || { not_ok "rtcd c starts"; finish; }
r=$($PROBE options 127.0.0.1 15221)
expect_eq "verify_client=required: a client without a certificate is refused" 0 "$(field status "$r")"
r=$($PROBE options 127.0.0.1 15221 --cert "$T/str.pem" --key "$T/str.key")
expect_eq "verify_client=required: a certificate from another CA is refused" 0 "$(field status "$r")"
r=$($PROBE options 127.0.0.1 15221 --cert "$T/cli.pem" --key "$T/cli.key")
expect_eq "verify_client=required: a certificate from tls.ca_file is accepted" 200 "$(field status "$r")"
stop_pid "$RTCD_PID"
expect_eq "rtcd c stops cleanly" 0 $?
out=$("$RTCD" --check --set tls.verify_client=required 2>&1)
expect_match "--check: verify_client without ca_file is an error" "tls.verify_client: 'required' needs tls.ca_file" "$out"
out=$("$RTCD" --check --set tls.min_version=1.1 2>&1)
expect_match "--check: TLS 1.1 cannot be configured" "tls.min_version: '1.1': expected one of 1.2\|1.3" "$out"
out=$("$RTCD" --check --set tls.certificate="$T/nope.pem" 2>&1)
expect_match "--check: a certificate file that does not load is an error" "tls.certificate: $T/nope.pem: No such file" "$out"
out=$("$RTCD" --check --set tls.certificate="$T/one.pem" --set tls.private_key="$T/two.key" 2>&1)
expect_match "--check: a key that does not match is an error" "tls.private_key: .*mismatch" "$out"
out=$("$RTCD" --check --set tls.certificate="$T/one.pem" --set tls.private_key="$T/one.key" 2>&1)
expect_match "--check: a good certificate passes" "is valid" "$out"
finish
