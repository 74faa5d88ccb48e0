#!/usr/bin/env bash
# Client certificates with OpenLDAP's tools: certificates made with openssl (subjects with
# repeated DC attributes, as real ones have), `ldapwhoami -Y EXTERNAL` over LDAPS and
# StartTLS with LDAPTLS_CERT/LDAPTLS_KEY, the entry's role rights, the rootDSE advertising
# EXTERNAL, refusals (a subject naming no entry, a certificate from another CA, another
# authzid with -X), a SIGHUP reload, and client_auth = "required".
source "$(dirname "$0")/lib.sh"

PKI="$WORK/pki"
mkdir -p "$PKI"

# ca NAME: a CA key and certificate in $PKI/NAME.{key,pem}.
ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$PKI/$1.key" -out "$PKI/$1.pem" 2>/dev/null
}

# client NAME CA SUBJECT: a client certificate for SUBJECT (openssl's /-separated X.509
# order) signed by CA, in $PKI/NAME.{key,pem}.
client() {
    openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$PKI/$1.ext"
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.pem" -CAkey "$PKI/$2.key" -CAcreateserial \
        -days 1 -extfile "$PKI/$1.ext" -out "$PKI/$1.pem" 2>/dev/null
    chmod 600 "$PKI/$1.key"
}

ca clients
ca stranger
client alice clients "/DC=com/DC=example/OU=people/UID=alice"
client nas01 clients "/DC=com/DC=example/OU=services/UID=nas01"
client ghost clients "/DC=com/DC=example/OU=people/UID=ghost"
client forged stranger "/DC=com/DC=example/OU=people/UID=alice"

cat >>"$WORK/tessera.toml" <<TOML
[tls]
client_ca = "$PKI/clients.pem"
client_auth = "optional"
TOML
start_server
ADMIN=(-Y EXTERNAL -Q -H "$LDAPI")

ldapadd "${ADMIN[@]}" >/dev/null <<'LDIF'
dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example

dn: uid=nas01,ou=services,dc=example,dc=com
objectClass: tesseraServiceAccount
uid: nas01
LDIF
ALICE="uid=alice,ou=people,dc=example,dc=com"
NAS="uid=nas01,ou=services,dc=example,dc=com"

# as NAME COMMAND...: run COMMAND presenting the client certificate NAME.
as() {
    local name=$1; shift
    LDAPTLS_CERT="$PKI/$name.pem" LDAPTLS_KEY="$PKI/$name.key" "$@"
}

expect_contains "ldapwhoami -Y EXTERNAL over LDAPS (a person)" "dn:$ALICE" \
    as alice ldapwhoami -Q -Y EXTERNAL -H "$LDAPS"
expect_contains "ldapwhoami -Y EXTERNAL over StartTLS (-ZZ)" "dn:$ALICE" \
    as alice ldapwhoami -Q -Y EXTERNAL -ZZ -H "$LDAP"
expect_contains "ldapwhoami -Y EXTERNAL (a service account)" "dn:$NAS" \
    as nas01 ldapwhoami -Q -Y EXTERNAL -H "$LDAPS"
expect_contains "the rootDSE lists EXTERNAL to a certificate holder" "supportedSASLMechanisms: EXTERNAL" \
    as alice ldapsearch -x -H "$LDAPS" -b "" -s base supportedSASLMechanisms
expect_absent "the rootDSE lists no EXTERNAL without a certificate" "dn:" "EXTERNAL" \
    ldapsearch -x -H "$LDAPS" -LLL -b "" -s base supportedSASLMechanisms
expect_contains "without a certificate, an anonymous LDAPS client is served as before" "anonymous" \
    ldapwhoami -x -H "$LDAPS"
expect_rc "with a certificate, a person without a role sees only herself (32 for ou=people)" 32 \
    as alice ldapsearch -Q -Y EXTERNAL -H "$LDAPS" -b ou=people,dc=example,dc=com "(uid=bob)" 1.1
grant directory-readers "$ALICE"
expect_contains "her role's rights apply to the certificate bind" "dn: uid=bob,ou=people,dc=example,dc=com" \
    as alice ldapsearch -Q -Y EXTERNAL -H "$LDAPS" -b ou=people,dc=example,dc=com "(uid=bob)" 1.1
expect_rc "a subject that names no entry is 49" 49 \
    as ghost ldapwhoami -Q -Y EXTERNAL -H "$LDAPS"
rc=0
as forged ldapwhoami -Q -Y EXTERNAL -H "$LDAPS" >"$WORK/last.out" 2>&1 || rc=$?
if [ "$rc" != 0 ] && ! grep -q "^dn:" "$WORK/last.out"; then
    pass "OpenLDAP's client does not bind with a certificate from another CA (exit $rc)"
else
    fail "a certificate from another CA was accepted: $(cat "$WORK/last.out")"
fi
# OpenLDAP's client does not even offer that certificate (the server names the CA it
# trusts), so the refusal above is the client's. openssl s_client offers it: the server
# must end the handshake with a fatal alert, where the same command with alice's
# certificate comes up.
tls_with() { # NAME: a TLS 1.2 handshake presenting the client certificate NAME
    run_captured openssl s_client -msg -tls1_2 -connect "127.0.0.1:$LDAPS_PORT" -servername localhost \
        -CAfile "$DATA/tls/ca.pem" -cert "$PKI/$1.pem" -key "$PKI/$1.key" </dev/null
}
tls_with forged
if [ "$LAST_RC" != 0 ] && grep -q '^>>> .*, Certificate$' "$WORK/last.out" &&
    grep -qE '^<<< .*Alert .*fatal' "$WORK/last.out"; then
    pass "the server ends the handshake of a certificate from another CA ($(grep -m1 -E '^<<< .*Alert' "$WORK/last.out"))"
else
    fail "the server did not refuse a certificate from another CA: exit $LAST_RC: $(grep -E '^(<<<|>>>)|error' "$WORK/last.out" | tail -6)"
fi
tls_with alice
if [ "$LAST_RC" = 0 ] && grep -q '^>>> .*, Certificate$' "$WORK/last.out" &&
    grep -q '^New, TLSv1.2, Cipher is ' "$WORK/last.out"; then
    pass "the same handshake with alice's certificate comes up"
else
    fail "the handshake with alice's certificate: exit $LAST_RC: $(grep -E '^(<<<|>>>)|error' "$WORK/last.out" | tail -6)"
fi
expect_rc "an authorization identity (-X) for someone else is 50" 50 \
    as alice ldapwhoami -Q -Y EXTERNAL -X "dn:uid=bob,ou=people,dc=example,dc=com" -H "$LDAPS"
expect_contains "an authorization identity (-X) for oneself binds" "dn:$ALICE" \
    as alice ldapwhoami -Q -Y EXTERNAL -X "dn:$ALICE" -H "$LDAPS"
# On the plain port libsasl has no external identity to offer and refuses on the client
# side; the server's 48 for it is checked on the wire in tests/it/mtls.rs.
rc=0
as alice ldapwhoami -Q -Y EXTERNAL -H "$LDAP" >"$WORK/last.out" 2>&1 || rc=$?
if [ "$rc" != 0 ] && ! grep -q "^dn:" "$WORK/last.out"; then
    pass "EXTERNAL on the plain port does not bind (exit $rc)"
else
    fail "EXTERNAL on the plain port bound: $(cat "$WORK/last.out")"
fi

kill -HUP "$SERVER_PID"
sleep 0.3
expect_contains "SIGHUP reloads the server certificate with client_ca set" "tls-reloaded" \
    cat "$WORK/server.log"
expect_contains "after SIGHUP (certificate reload), EXTERNAL still binds" "dn:$ALICE" \
    as alice ldapwhoami -Q -Y EXTERNAL -H "$LDAPS"

stop_server
sed -i 's/client_auth = "optional"/client_auth = "required"/' "$WORK/tessera.toml"
start_server
rc=0
ldapwhoami -x -H "$LDAPS" >"$WORK/last.out" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then pass "required: no certificate, no LDAPS session (exit $rc)"; else fail "required: served without a certificate"; fi
rc=0
ldapwhoami -x -ZZ -H "$LDAP" >"$WORK/last.out" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then pass "required: no certificate, no StartTLS session (exit $rc)"; else fail "required: StartTLS without a certificate"; fi
expect_contains "required: with a certificate, EXTERNAL binds" "dn:$ALICE" \
    as alice ldapwhoami -Q -Y EXTERNAL -H "$LDAPS"

stop_server
# The witness: the log holds this run's certificate binds, so it is the right log.
expect_absent "no key material in the server log" 'event="bind"' "PRIVATE KEY" log_text "$WORK/server.log"
finish
