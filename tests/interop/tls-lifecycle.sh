#!/usr/bin/env bash
# The generated certificate follows the configuration: after a first start, a new
# tls.hostnames (at restart, then on SIGHUP) gets a certificate re-issued by the same CA,
# which OpenSSL and ldapwhoami verify for the new name against the ca.pem copied before
# the change; `tessera tls` shows and exports it; a data directory whose CA key was not
# kept keeps serving and says how to get a new CA.
source "$(dirname "$0")/lib.sh"

NAME=ldap.tessera.test
start_server
cp "$DATA/tls/ca.pem" "$WORK/ca-before.pem"
expect_contains "the CA key is kept, owner-only" "600" stat -c %a "$DATA/tls/ca.key"
stop_server

# s_client_verify NAME: the handshake's verification of NAME against the old CA.
s_client_verify() {
    openssl s_client -connect "127.0.0.1:$LDAPS_PORT" -servername "$1" -verify_hostname "$1" \
        -CAfile "$WORK/ca-before.pem" -verify_return_error </dev/null 2>&1 | grep -E "Verify return code" || true
}
wait_log() {
    for _ in $(seq 1 50); do
        [ "$(grep -c "$1" "$WORK/server.log")" -ge "$2" ] && return 0
        sleep 0.1
    done
}

printf '[tls]\nhostnames = ["%s"]\n' "$NAME" >>"$WORK/tessera.toml"
start_server
expect_contains "the restart re-issues the certificate, saying why" "names to add: $NAME" \
    grep tls-reissued "$WORK/server.log"
expect_contains "openssl verify: the new certificate chains to the unchanged ca.pem" "server.pem: OK" \
    openssl verify -CAfile "$WORK/ca-before.pem" "$DATA/tls/server.pem"
expect_contains "the new name verifies in a handshake" "Verify return code: 0 (ok)" s_client_verify "$NAME"
expect_contains "a name it does not carry still fails" "hostname mismatch" s_client_verify other.tessera.test
expect_rc "ca.pem itself is unchanged" 0 cmp "$WORK/ca-before.pem" "$DATA/tls/ca.pem"

# ldapwhoami by the new name, which resolves only inside a private mount namespace.
whoami_by_name() {
    printf '127.0.0.1 localhost\n127.0.0.1 %s\n' "$1" >"$WORK/hosts"
    mount --bind "$WORK/hosts" /etc/hosts
    local out
    if out=$(LDAPTLS_CACERT="$WORK/ca-before.pem" LDAPTLS_REQCERT=demand \
        ldapwhoami -H "ldaps://$1:$LDAPS_PORT" -x 2>&1) && [ "$out" = anonymous ]; then
        pass "ldapwhoami -H ldaps://$1 verifies against the unchanged ca.pem"
    else
        fail "ldapwhoami -H ldaps://$1: $out"
    fi
}
in_namespace whoami_by_name "$NAME" || fail "namespace run exited $?"

# SIGHUP reads tls.hostnames again.
sed -i "s/$NAME/ldap2.tessera.test/" "$WORK/tessera.toml"
kill -HUP "$SERVER_PID"
wait_log tls-reissued 2
expect_contains "SIGHUP re-issues for the changed names" "names to add: ldap2.tessera.test" \
    grep tls-reissued "$WORK/server.log"
expect_contains "and serves it at once" "Verify return code: 0 (ok)" s_client_verify ldap2.tessera.test
in_namespace whoami_by_name ldap2.tessera.test || fail "namespace run exited $?"
expect_contains "tessera tls shows the names in service" "ldap2.tessera.test" \
    "$TESSERA" tls --config "$WORK/tessera.toml"
expect_contains "tessera tls shows the issuer" "issuer       CN=Tessera private CA" \
    "$TESSERA" tls --config "$WORK/tessera.toml"
"$TESSERA" tls export-ca --config "$WORK/tessera.toml" >"$WORK/exported.pem"
expect_rc "tessera tls export-ca gives the ca.pem clients have" 0 cmp "$WORK/ca-before.pem" "$WORK/exported.pem"
before=$(openssl x509 -in "$DATA/tls/server.pem" -noout -serial)
"$TESSERA" tls renew --config "$WORK/tessera.toml" >"$WORK/renew.out" 2>&1
after=$(openssl x509 -in "$DATA/tls/server.pem" -noout -serial)
if [ "$before" != "$after" ]; then pass "tessera tls renew re-issues the certificate"; else fail "renew left $before"; fi
expect_contains "under the same CA" "server.pem: OK" \
    openssl verify -CAfile "$WORK/ca-before.pem" "$DATA/tls/server.pem"
kill -HUP "$SERVER_PID"
wait_log tls-reloaded 2
expect_contains "which the server serves after SIGHUP" "$after" \
    bash -c "openssl s_client -connect 127.0.0.1:$LDAPS_PORT -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial"
stop_server

# A data directory from before the CA key was kept.
rm "$DATA/tls/ca.key"
sed -i "s/ldap2.tessera.test/ldap3.tessera.test/" "$WORK/tessera.toml"
start_server
expect_contains "without the CA key the log says how to get a new CA" "tessera tls renew --new-ca" \
    grep tls-reissue-needs-new-ca "$WORK/server.log"
expect_contains "and the old certificate keeps serving" "Verify return code: 0 (ok)" s_client_verify localhost
stop_server
expect_rc "tessera tls renew refuses without the CA key" 1 "$TESSERA" tls renew --config "$WORK/tessera.toml"
expect_contains "and says what to run" "--new-ca" cat "$WORK/last.out"
expect_rc "tessera tls renew --new-ca makes a new CA" 0 "$TESSERA" tls renew --new-ca --config "$WORK/tessera.toml"
expect_contains "whose certificate carries the new name" "DNS:ldap3.tessera.test" \
    openssl x509 -in "$DATA/tls/server.pem" -noout -ext subjectAltName
expect_contains "and chains to the new ca.pem" "server.pem: OK" \
    openssl verify -CAfile "$DATA/tls/ca.pem" "$DATA/tls/server.pem"
finish
