#!/usr/bin/env bash
# OpenLDAP's own client tools against the release binary: LDAPS, StartTLS and LDAPI,
# rootDSE and subschema, whoami, add/modify/delete/modrdn/compare, ldappasswd, and a paged
# search over 10,000 imported people.
source "$(dirname "$0")/lib.sh"

start_server
ADMIN=(-Y EXTERNAL -Q -H "$LDAPI")

expect_contains "rootDSE over LDAPS with full verification" "namingContexts: dc=example,dc=com" \
    ldapsearch -x -H "$LDAPS" -b "" -s base +
expect_contains "rootDSE over StartTLS (-ZZ)" "supportedExtension: 1.3.6.1.4.1.1466.20037" \
    ldapsearch -x -ZZ -H "$LDAP" -b "" -s base +
expect_contains "rootDSE over LDAPI" "supportedSASLMechanisms: EXTERNAL" \
    ldapsearch "${ADMIN[@]}" -b "" -s base +
expect_contains "subschema objectClasses" "NAME 'inetOrgPerson'" \
    ldapsearch -x -H "$LDAPS" -b cn=subschema -s base objectClasses
expect_contains "subschema attributeTypes" "NAME 'entryUUID'" \
    ldapsearch -x -H "$LDAPS" -b cn=Subschema -s base attributeTypes
expect_contains "ldapwhoami EXTERNAL" "dn:gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth" \
    ldapwhoami "${ADMIN[@]}"
expect_contains "ldapwhoami anonymous" "anonymous" ldapwhoami -x -H "$LDAPS"

cat > "$WORK/seed.ldif" <<'LDIF'
dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: posixAccount
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.com
userPassword: alice-secret

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
userPassword: bob-secret

dn: cn=staff,ou=groups,dc=example,dc=com
objectClass: groupOfNames
objectClass: posixGroup
cn: staff
member: uid=alice,ou=people,dc=example,dc=com
LDIF
expect_rc "ldapadd over LDAPI" 0 ldapadd "${ADMIN[@]}" -f "$WORK/seed.ldif"
expect_rc "ldapadd of an existing entry is 68" 68 ldapadd "${ADMIN[@]}" -f "$WORK/seed.ldif"
ALICE="uid=alice,ou=people,dc=example,dc=com"
expect_rc "without a role, a person sees no one below the suffix (32 for ou=people)" 32 \
    ldapsearch -x -H "$LDAPS" -D "$ALICE" -w alice-secret -b ou=people,dc=example,dc=com "(objectClass=person)" 1.1
run_captured ldapsearch -x -H "$LDAPS" -D "$ALICE" -w alice-secret -LLL -b dc=example,dc=com "(objectClass=person)" 1.1
if [ "$LAST_RC" = 0 ] && [ "$(grep '^dn: ' "$WORK/last.out")" = "dn: $ALICE" ]; then
    pass "without a role, a subtree search from the suffix finds only her own entry"
else
    fail "without a role, a subtree search from the suffix finds only her own entry: exit $LAST_RC: $(cat "$WORK/last.out")"
fi
expect_contains "without a role, a person reads their own entry" "numEntries: 1" \
    ldapsearch -x -H "$LDAPS" -D "$ALICE" -w alice-secret -b "$ALICE" -s base 1.1
grant directory-readers "$ALICE"
expect_contains "ldapwhoami as a person over LDAPS" "dn:$ALICE" \
    ldapwhoami -x -H "$LDAPS" -D "$ALICE" -w alice-secret
expect_contains "ldapwhoami as a person over StartTLS" "dn:$ALICE" \
    ldapwhoami -x -ZZ -H "$LDAP" -D "$ALICE" -w alice-secret
expect_rc "wrong password is 49" 49 ldapwhoami -x -H "$LDAPS" -D "$ALICE" -w wrong
expect_rc "plaintext bind is 13" 13 ldapwhoami -x -H "$LDAP" -D "$ALICE" -w alice-secret
expect_contains "memberUid and gidNumber on the group" "memberUid: alice" \
    ldapsearch -x -H "$LDAPS" -D "$ALICE" -w alice-secret -b "cn=staff,ou=groups,dc=example,dc=com" -s base memberUid gidNumber
expect_contains "memberOf on the person" "memberOf: cn=staff,ou=groups,dc=example,dc=com" \
    ldapsearch -x -H "$LDAPS" -D "$ALICE" -w alice-secret -b "$ALICE" -s base memberOf

printf 'dn: %s\nchangetype: modify\nreplace: mail\nmail: alice@new.example.com\n' "$ALICE" > "$WORK/mod.ldif"
expect_rc "ldapmodify replace" 0 ldapmodify "${ADMIN[@]}" -f "$WORK/mod.ldif"
expect_rc "ldapmodify by a non-admin is 50" 50 ldapmodify -x -H "$LDAPS" -D "$ALICE" -w alice-secret -f "$WORK/mod.ldif"
expect_output "ldapcompare TRUE (exit 6, compareTrue)" 6 "TRUE" ldapcompare "${ADMIN[@]}" "$ALICE" "mail:ALICE@new.example.com"
expect_output "ldapcompare FALSE (exit 5, compareFalse)" 5 "FALSE" ldapcompare "${ADMIN[@]}" "$ALICE" "mail:other@example.com"
expect_rc "ldapmodrdn" 0 ldapmodrdn "${ADMIN[@]}" -r "uid=bob,ou=people,dc=example,dc=com" "uid=robert"
expect_contains "renamed entry found" "dn: uid=robert,ou=people,dc=example,dc=com" \
    ldapsearch "${ADMIN[@]}" -b ou=people,dc=example,dc=com "(uid=robert)" 1.1
expect_rc "ldapdelete" 0 ldapdelete "${ADMIN[@]}" "uid=robert,ou=people,dc=example,dc=com"
expect_rc "ldapdelete of a non-leaf is 66" 66 ldapdelete "${ADMIN[@]}" "ou=people,dc=example,dc=com"

expect_rc "ldappasswd with a new password" 0 \
    ldappasswd -x -H "$LDAPS" -D "$ALICE" -w alice-secret -s alice-second
expect_contains "bind with the new password" "dn:$ALICE" ldapwhoami -x -H "$LDAPS" -D "$ALICE" -w alice-second
GEN=$(ldappasswd -x -H "$LDAPS" -D "$ALICE" -w alice-second 2>&1 | sed -n 's/^New password: //p')
if [ -n "$GEN" ]; then pass "ldappasswd without arguments returns a generated password"; else fail "ldappasswd generated nothing"; fi
expect_contains "bind with the generated password" "dn:$ALICE" ldapwhoami -x -H "$LDAPS" -D "$ALICE" -w "$GEN"

# 10,000 people through the offline importer, then a paged search must return each once.
stop_server
python3 - "$WORK/people.ldif" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        f.write(f"dn: uid=user{i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n"
                f"objectClass: posixAccount\nuid: user{i}\ncn: User {i}\nsn: {i}\n"
                f"uidNumber: {20000 + i}\ngidNumber: {20000 + i}\nhomeDirectory: /home/user{i}\n\n")
PY
START=$(date +%s%N)
expect_rc "tessera db import of 10,000 people" 0 "$TESSERA" db import --quiet --config "$WORK/tessera.toml" "$WORK/people.ldif"
echo "     import took $(( ($(date +%s%N) - START) / 1000000 )) ms"
expect_store_verifies "tessera db verify"
start_server
ldapsearch "${ADMIN[@]}" -E pr=500/noprompt -b ou=people,dc=example,dc=com "(objectClass=posixAccount)" 1.1 \
    > "$WORK/paged.out" 2>&1 || true
TOTAL=$(grep -c '^dn: uid=user' "$WORK/paged.out" || true)
UNIQUE=$(grep '^dn: uid=user' "$WORK/paged.out" | sort -u | wc -l)
PAGES=$(grep -c '^search: ' "$WORK/paged.out" || true)
# alice is a posixAccount too: every match, 500 to a page.
MATCHES=$(grep -c '^dn: ' "$WORK/paged.out" || true)
if [ "$TOTAL" = 10000 ] && [ "$UNIQUE" = 10000 ] && [ "$PAGES" = $(((MATCHES + 499) / 500)) ]; then
    pass "paged search (pr=500) returned 10,000 people, each once, in $PAGES pages"
else
    fail "paged search returned $TOTAL entries ($UNIQUE unique) in $PAGES pages"
fi
ldapsearch -x -H "$LDAPS" -D "$ALICE" -w "$GEN" -E pr=500/noprompt -b ou=people,dc=example,dc=com "(uid=user*)" 1.1 \
    > "$WORK/paged-user.out" 2>&1 || true
TOTAL=$(grep -c '^dn: uid=user' "$WORK/paged-user.out" || true)
if [ "$TOTAL" = 10000 ]; then pass "paged search as a person over LDAPS returned 10,000"; else fail "person paged search returned $TOTAL"; fi
expect_rc "an unpaged search as a person stops at the size limit (4)" 4 \
    ldapsearch -x -H "$LDAPS" -D "$ALICE" -w "$GEN" -b ou=people,dc=example,dc=com "(uid=user*)" 1.1

expect_contains "online backup while the server runs" "entries" \
    "$TESSERA" db backup "$WORK/online.redb" --config "$WORK/tessera.toml"
stop_server
expect_store_verifies "store verifies after SIGTERM"
expect_contains "offline backup" "entries" "$TESSERA" db backup "$WORK/offline.redb" --config "$WORK/tessera.toml"
# Restore: the backup is the database file of a data directory.
mv "$DATA/tessera.redb" "$WORK/replaced.redb"
cp "$WORK/online.redb" "$DATA/tessera.redb"
start_server
TOTAL=$(ldapsearch "${ADMIN[@]}" -E pr=1000/noprompt -b ou=people,dc=example,dc=com "(uid=user*)" 1.1 | grep -c '^dn: ' || true)
if [ "$TOTAL" = 10000 ]; then pass "a server starts from the online backup with all 10,000 people"; else fail "restored server has $TOTAL people"; fi
stop_server
finish
