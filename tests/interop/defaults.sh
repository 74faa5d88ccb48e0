#!/usr/bin/env bash
# The README's run command as a newcomer uses it: `tessera serve` with no configuration in
# an empty directory, on the embedded defaults (LDAPS 6636, LDAP 3389, the HTTPS API on
# 8443, ./tessera-data), and the README's first ldapsearch against it with full certificate
# verification.
source "$(dirname "$0")/lib.sh"

HERE=$WORK/fresh
mkdir -p "$HERE"
cd "$HERE"
"$TESSERA" serve >"$WORK/defaults.out" 2>"$WORK/defaults.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    grep -q "^Suffix" "$WORK/defaults.out" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
expect_contains "serve prints its LDAPS listener" "ldaps://127.0.0.1:6636" cat "$WORK/defaults.out"
expect_contains "serve prints its StartTLS listener" "ldap://127.0.0.1:3389" cat "$WORK/defaults.out"
expect_contains "serve prints the LDAPI socket" "tessera-data/ldapi.sock" cat "$WORK/defaults.out"
expect_contains "serve prints its HTTPS API listener" "https://127.0.0.1:8443/api/v1" cat "$WORK/defaults.out"
expect_contains "the API answers on loopback, verified against the generated CA" '"status":"ok"' \
    curl -fsS --cacert tessera-data/tls/ca.pem https://localhost:8443/healthz
export LDAPTLS_CACERT=tessera-data/tls/ca.pem
expect_contains "the README's rootDSE search, fully verified" "namingContexts: dc=example,dc=com" \
    ldapsearch -H ldaps://localhost:6636 -x -b "" -s base +
expect_contains "StartTLS on the default port" "supportedLDAPVersion: 3" \
    ldapsearch -H ldap://localhost:3389 -ZZ -x -b "" -s base +
SOCK_URL="ldapi://$(pwd | sed 's|/|%2F|g')%2Ftessera-data%2Fldapi.sock"
expect_contains "the README's ldapwhoami over LDAPI" "dn:gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth" \
    ldapwhoami -Y EXTERNAL -H "$SOCK_URL"
for ou in people groups services roles; do
    expect_contains "ou=$ou exists on first start" "dn: ou=$ou,dc=example,dc=com" \
        ldapsearch -Q -Y EXTERNAL -H "$SOCK_URL" -b "ou=$ou,dc=example,dc=com" -s base 1.1
done
expect_contains "the data directory is 0700" "700" stat -c %a tessera-data
expect_contains "the generated key is 0600" "600" stat -c %a tessera-data/tls/server.key
# TLS 1.2 and 1.3 only (matrix row L5). The client is allowed the old versions
# (SECLEVEL=0) and shows each record it sends and receives (-msg): a refusal is the
# server's only if the ClientHello went out and a fatal alert came back from the server,
# with no ServerHello; and the very same command with -tls1_2 comes up, so the client, its
# options and the connection all work.
tls_handshake() { # OPENSSL_OPTIONS...: output in $WORK/last.out, exit status in LAST_RC
    run_captured openssl s_client -msg -connect 127.0.0.1:6636 -servername localhost \
        -CAfile tessera-data/tls/ca.pem "$@" </dev/null
}
for old in -tls1 -tls1_1; do
    tls_handshake "$old" -cipher 'DEFAULT:@SECLEVEL=0'
    if [ "$LAST_RC" != 0 ] && grep -q '^>>> .*ClientHello$' "$WORK/last.out" &&
        grep -qE '^<<< .*Alert .*fatal' "$WORK/last.out" && ! grep -q '^<<< .*ServerHello$' "$WORK/last.out"; then
        pass "a TLS handshake with $old is refused by the server ($(grep -m1 -E '^<<< .*Alert' "$WORK/last.out"))"
    else
        fail "a TLS handshake with $old was not refused by the server: exit $LAST_RC: $(grep -E '^(<<<|>>>)|error|Protocol' "$WORK/last.out" | head -8)"
    fi
done
tls_handshake -tls1_2 -cipher 'DEFAULT:@SECLEVEL=0'
if [ "$LAST_RC" = 0 ] && grep -q '^New, TLSv1.2, Cipher is ' "$WORK/last.out"; then
    pass "the same command with -tls1_2 comes up with TLS 1.2"
else
    fail "the same command with -tls1_2: exit $LAST_RC: $(grep -E '^(<<<|>>>)|error|Protocol' "$WORK/last.out" | head -8)"
fi
tls_handshake -tls1_3
if [ "$LAST_RC" = 0 ] && grep -q '^New, TLSv1.3, Cipher is ' "$WORK/last.out"; then
    pass "TLS 1.3 is accepted"
else
    fail "TLS 1.3: exit $LAST_RC: $(grep -E '^(<<<|>>>)|error|Protocol' "$WORK/last.out" | head -8)"
fi
# No renegotiation (matrix row L6): after `R` the client sends a second ClientHello; the
# server answers it with a no_renegotiation warning, never with a second ServerHello. The
# client then waits for one, so it is stopped by `timeout`.
renegotiate() {
    { sleep 1; echo R; sleep 2; } | timeout 6 openssl s_client -msg -connect 127.0.0.1:6636 \
        -servername localhost -CAfile tessera-data/tls/ca.pem -tls1_2 2>&1 || true
}
reneg=$(renegotiate)
hellos=$(printf '%s\n' "$reneg" | grep -c '^<<< .*ServerHello$' || true)
case "$reneg" in
    *RENEGOTIATING*)
        if [ "$hellos" = 1 ]; then
            pass "TLS 1.2 renegotiation is refused"
        else
            fail "renegotiation: $hellos ServerHellos"
        fi
        ;;
    *) fail "the client did not try to renegotiate: $(printf '%s' "$reneg" | tail -5)" ;;
esac
# No 0-RTT (L6): TLS 1.3 session tickets allow no early data, and a client resuming with
# one and early data to send (an unbind) does not get it accepted.
sleep 1 | openssl s_client -connect 127.0.0.1:6636 -servername localhost -CAfile tessera-data/tls/ca.pem \
    -tls1_3 -sess_out "$WORK/tls13.sess" >"$WORK/ticket.out" 2>&1 || true
expect_contains "TLS 1.3 tickets allow no early data" "Max Early Data: 0" cat "$WORK/ticket.out"
if grep -q 'Max Early Data: [1-9]' "$WORK/ticket.out"; then
    fail "a ticket allows early data"
fi
printf '\060\005\002\001\001\102\000' >"$WORK/early.bin"
sleep 1 | openssl s_client -connect 127.0.0.1:6636 -servername localhost -CAfile tessera-data/tls/ca.pem \
    -tls1_3 -sess_in "$WORK/tls13.sess" -early_data "$WORK/early.bin" >"$WORK/early.out" 2>&1 || true
expect_contains "the session resumes" "Reused, TLSv1.3" cat "$WORK/early.out"
if grep -q "Early data was accepted" "$WORK/early.out"; then
    fail "early data was accepted"
else
    pass "early data is not accepted"
fi
kill -HUP "$SERVER_PID"
for _ in $(seq 1 50); do grep -q "tls-reloaded" "$WORK/defaults.log" && break; sleep 0.1; done
expect_contains "SIGHUP reloads the certificate" "tls-reloaded" cat "$WORK/defaults.log"
expect_contains "and LDAPS goes on" "namingContexts: dc=example,dc=com" \
    ldapsearch -H ldaps://localhost:6636 -x -b "" -s base +
stop_server
finish
