#!/usr/bin/env bash
# The web console with big lists, through the release binary and curl: a page of the people
# list among 10,000 people and a page of an account's tokens among 1,000 load in well under
# a second (the lists are paged). Prints the times: the best of five after a warm-up.
source "$(dirname "$0")/lib.sh"

python3 - >"$WORK/people.ldif" <<'PY'
for i in range(10000):
    print(f"dn: uid=p{i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: p{i}\ncn: Person {i}\nsn: {i}\n")
PY
"$TESSERA" db import --quiet --config "$WORK/tessera.toml" "$WORK/people.ldif" >/dev/null 2>&1
start_server
tessera() { "$TESSERA" "$@" --config "$WORK/tessera.toml"; }
tessera service-account create busy "Many tokens" p0 >/dev/null
python3 - "$SOCK" <<'PY'
import sys, ldap3
from ldap3.protocol.rfc4511 import ExtendedRequest
server = ldap3.Server("ldapi://" + sys.argv[1].replace("/", "%2F"))
c = ldap3.Connection(server, authentication=ldap3.SASL, sasl_mechanism=ldap3.EXTERNAL, auto_bind=True)
def tlv(tag, b):
    return bytes([tag, len(b)]) + b
for i in range(1000):
    body = tlv(0x80, b"uid=busy,ou=services,dc=example,dc=com") + tlv(0x81, f"t{i}".encode())
    c.extended("2.25.235497813471364094925541187040296631981.4.1", tlv(0x30, body))
    assert c.result["result"] == 0, c.result
PY
count=$(ldapsearch -Y EXTERNAL -Q -H "$LDAPI" -b uid=busy,ou=services,dc=example,dc=com -s one '(objectClass=*)' dn | grep -c '^dn:' || true)
at_least "tokens of the busy account" 1000 "$count"

code=$(tessera console sign-in-link | tail -n 1 | tr -d ' ')
JAR="$WORK/cookies"
curl -sS --cacert "$DATA/tls/ca.pem" -c "$JAR" -o /dev/null -H "Origin: $API" \
    --data-urlencode "code=$code" "$API/console/sign-in/link"
grep -q __Host-tessera-console "$JAR" && pass "signed in with a link" || fail "no session cookie"

best() { # PATH: the best of five page loads, in milliseconds, after one warm-up
    local best=999999 t
    curl -fsS --cacert "$DATA/tls/ca.pem" -b "$JAR" -o /dev/null "$API$1"
    for _ in 1 2 3 4 5; do
        t=$(curl -fsS --cacert "$DATA/tls/ca.pem" -b "$JAR" -o /dev/null -w '%{time_total}' "$API$1")
        t=$(python3 -c "print(int(float('$t') * 1000))")
        [ "$t" -lt "$best" ] && best=$t
    done
    echo "$best"
}
under_a_second() { # NAME PATH
    local ms; ms=$(best "$2")
    echo "     $1: ${ms} ms"
    if [ "$ms" -lt 1000 ]; then pass "$1 in ${ms} ms"; else fail "$1 took ${ms} ms"; fi
}
page() { curl -fsS --cacert "$DATA/tls/ca.pem" -b "$JAR" "$API$1"; }
rows=$(page /console/people | grep -c 'href="/console/people/p' || true)
at_least "the first page of people has its rows" 50 "$rows"
expect_contains "the token page is the first 50 of 1000" "1 to 50 of 1000" page /console/service-accounts/busy
expect_contains "the last token page" "951 to 1000 of 1000" page "/console/service-accounts/busy?from=950"
under_a_second "people list, first page of 10,000" "/console/people"
under_a_second "people list, a page further on" "/console/people?q=&cursor=$(curl -fsS --cacert "$DATA/tls/ca.pem" -b "$JAR" "$API/console/people" | grep -o 'cursor=[^"&]*' | head -n 1 | cut -d= -f2)"
under_a_second "people search among 10,000" "/console/people?q=p9999"
under_a_second "account with 1,000 tokens, first page" "/console/service-accounts/busy"
under_a_second "account with 1,000 tokens, last page" "/console/service-accounts/busy?from=950"
under_a_second "overview with 10,000 people and 1,000 tokens" "/console"
finish
