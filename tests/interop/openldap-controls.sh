#!/usr/bin/env bash
# OpenLDAP's tools with the extended operation and controls real clients send, on the shared
# seed: `ldapexop whoami`, proxied authorization (`ldapsearch -e '!authzid=...'`, RFC 4370)
# by an administrator over LDAPI and refused (123) to a person without the impersonate
# right, and critical paging (`ldapsearch -E '!pr=...'`, as Keycloak sends it).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/seed.sh"

start_server
load_seed
ADMIN=(-Y EXTERNAL -Q -H "$LDAPI")
BOB="uid=bob,$PEOPLE"
grant directory-readers "$BOB"

# Who Am I through ldapexop.
expect_contains "ldapexop whoami over LDAPI" "dn:gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth" \
    ldapexop "${ADMIN[@]}" whoami
expect_contains "ldapexop whoami as alice over LDAPS" "dn:$ALICE" \
    ldapexop -x -H "$LDAPS" -D "$ALICE" -w alice-secret whoami
expect_contains "ldapexop whoami with a token over StartTLS" "dn:uid=nas01,$SERVICES" \
    ldapexop -x -ZZ -H "$LDAP" -D dn=token -w "$TOKEN_NAS01" whoami
expect_contains "ldapexop whoami anonymous" "anonymous" ldapexop -x -H "$LDAPS" whoami
# ldapexop exits 1 on any error result and names the code.
expect_output "ldapexop of an unknown OID is 2" 1 "Protocol error (2)" ldapexop -x -H "$LDAPS" 1.3.6.1.4.1.99999.1

# Proxied authorization: the administrator acts as alice, with alice's rights.
expect_contains "ldapwhoami -e '!authzid=dn:alice' as the administrator" "dn:$ALICE" \
    ldapwhoami "${ADMIN[@]}" -e "!authzid=dn:$ALICE"
expect_contains "ldapwhoami -e '!authzid=u:alice' as the administrator" "dn:$ALICE" \
    ldapwhoami "${ADMIN[@]}" -e "!authzid=u:alice"
expect_contains "ldapsearch -e '!authzid=dn:bob' reads what bob may read" "dn: uid=carol,$PEOPLE" \
    ldapsearch "${ADMIN[@]}" -e "!authzid=dn:$BOB" -b "$PEOPLE" "(uid=carol)" 1.1
# alice has no role: as her, the tree is not there, only her own entry.
expect_rc "ldapsearch -e '!authzid=dn:alice' has alice's rights (32 on the people tree)" 32 \
    ldapsearch "${ADMIN[@]}" -e "!authzid=dn:$ALICE" -b "$PEOPLE" "(uid=carol)" 1.1
expect_contains "ldapsearch -e '!authzid=dn:alice' reads alice's own entry" "numEntries: 1" \
    ldapsearch "${ADMIN[@]}" -e "!authzid=dn:$ALICE" -b "$ALICE" -s base 1.1
expect_absent "as alice, the administrator does not read her userPassword" "dn: $ALICE" "userPassword:" \
    ldapsearch "${ADMIN[@]}" -e "!authzid=dn:$ALICE" -b "$ALICE" -s base userPassword
expect_rc "a person without the impersonate right gets 123" 123 \
    ldapsearch -x -H "$LDAPS" -D "$BOB" -w bob-secret -e "!authzid=dn:$ALICE" -b "$ALICE" -s base 1.1
expect_rc "a read-only token without the impersonate right gets 123" 123 \
    ldapsearch -x -H "$LDAPS" -D dn=token -w "$TOKEN_NAS01" -e "!authzid=dn:$ALICE" -b "$ALICE" -s base 1.1
expect_rc "a proxied modify as alice has alice's rights (50)" 50 ldapmodify "${ADMIN[@]}" -e "!authzid=dn:$ALICE" <<LDIF
dn: uid=carol,$PEOPLE
changetype: modify
replace: mail
mail: nobody@example.com
LDIF

# Critical paging: every person, each once, in pages of 4, with printable cookies.
ldapsearch -x -H "$LDAPS" -D dn=token -w "$TOKEN_NAS01" -E '!pr=4/noprompt' -b "$PEOPLE" \
    "(objectClass=posixAccount)" 1.1 >"$WORK/pr.out" 2>&1 || true
TOTAL=$(grep -c '^dn: ' "$WORK/pr.out" || true)
UNIQUE=$(grep '^dn: ' "$WORK/pr.out" | sort -u | wc -l)
PAGES=$(grep -c '^search: ' "$WORK/pr.out" || true)
if [ "$TOTAL" = "$SEED_PEOPLE" ] && [ "$UNIQUE" = "$SEED_PEOPLE" ] && [ "$PAGES" = $(((SEED_PEOPLE + 3) / 4)) ]; then
    pass "ldapsearch -E '!pr=4' (critical) returns all $TOTAL people once, in $PAGES pages"
else
    fail "critical paging returned $TOTAL entries ($UNIQUE unique) in $PAGES pages: $(tail -5 "$WORK/pr.out")"
fi
# ldapsearch prints each cookie base64-encoded, in folded LDIF lines.
COOKIES=$(python3 - "$WORK/pr.out" <<'PY'
import base64, re, sys
text = re.sub(r"\n ", "", open(sys.argv[1]).read())
cookies = [base64.b64decode(c) for c in re.findall(r"^pagedresults: cookie=(\S+)$", text, re.M)]
print(len(cookies), "printable" if all(0x21 <= b <= 0x7E for c in cookies for b in c) else "binary")
PY
)
if [ "$COOKIES" = "$((PAGES - 1)) printable" ]; then
    pass "the $((PAGES - 1)) paged cookies are printable ASCII (Net::LDAP)"
else
    fail "paged cookies: $COOKIES"
fi
expect_contains "critical paging on a base-scope rootDSE read" "namingContexts: $SUFFIX" \
    ldapsearch -x -H "$LDAPS" -E '!pr=1024/noprompt' -b "" -s base namingContexts
expect_rc "a critical unsupported control (sort) is 12" 12 \
    ldapsearch -x -H "$LDAPS" -D dn=token -w "$TOKEN_NAS01" -E '!sss=uid' -b "$PEOPLE" "(uid=alice)" 1.1
expect_contains "a non-critical unsupported control is ignored" "numEntries: 1" \
    ldapsearch -x -H "$LDAPS" -D dn=token -w "$TOKEN_NAS01" -E 'sss=uid' -b "$PEOPLE" "(uid=alice)" 1.1
finish
