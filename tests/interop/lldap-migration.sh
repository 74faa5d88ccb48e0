#!/usr/bin/env bash
# Moving from lldap, as the README's "From lldap" says: lldap has no LDIF export and no
# password hashes, so its people and groups are read with ldapsearch over its LDAP
# interface, given the object classes Tessera uses (the README's sed lines, run here as
# written), imported, and the people set new passwords. lldap is not run here: its answers
# to the README's two searches are written as ldapsearch -LLL -o ldif-wrap=no prints them,
# shaped as lldap's source makes them (crates/ldap/src/core/user.rs and group.rs: people
# uid=<id>,ou=people, groups cn=<display name>,ou=groups, the requested attributes under the
# names they were asked by, createTimestamp as YYYYmmddHHMMSSZ, member DNs of people).
source "$(dirname "$0")/lib.sh"

SUFFIX=dc=example,dc=com
PEOPLE="ou=people,$SUFFIX"
GROUPS_OU="ou=groups,$SUFFIX"

# ldapsearch $L -b ou=people,... '(objectClass=person)' uid cn sn givenName mail jpegPhoto
#     entryUUID createTimestamp
cat >"$WORK/lldap-people.ldif" <<LDIF
dn: uid=admin,$PEOPLE
uid: admin
cn: Administrator
mail: admin@example.com
entryUUID: 0b1c3a0e-57d4-3f0b-9c2b-6f8b8b0f2a11
createTimestamp: 20240105093011Z

dn: uid=alice,$PEOPLE
uid: alice
cn: Alice Liddell
sn: Liddell
givenName: Alice
mail: alice@example.com
jpegPhoto:: $(head -c 120 /dev/urandom | base64 -w 0)
entryUUID: 5d2c1f6e-9a1b-3c4d-8e7f-0a1b2c3d4e5f
createTimestamp: 20240212141503Z

dn: uid=bob.builder,$PEOPLE
uid: bob.builder
cn: Bob Builder
sn: Builder
givenName: Bob
mail: bob@example.com
entryUUID: 7e3d2c1b-0a9f-3e8d-9c7b-6a5f4e3d2c1b
createTimestamp: 20240301080000Z

LDIF
# ldapsearch $L -b ou=groups,... '(&(objectClass=groupOfNames)(!(cn=lldap_*)))' cn member
#     entryUUID
cat >"$WORK/lldap-groups.ldif" <<LDIF
dn: cn=developers,$GROUPS_OU
cn: developers
member: uid=alice,$PEOPLE
member: uid=bob.builder,$PEOPLE
entryUUID: 1a2b3c4d-5e6f-3a7b-8c9d-0e1f2a3b4c5d

dn: cn=Media Team,$GROUPS_OU
cn: Media Team
member: uid=alice,$PEOPLE
entryUUID: 2b3c4d5e-6f7a-3b8c-9d0e-1f2a3b4c5d6e

LDIF

# The README's filters, as written there.
awk -v RS= -v ORS='\n\n' '{ uid = $0; sub(/.*\nuid: /, "", uid); sub(/\n.*/, "", uid)
            if ($0 !~ /\ncn: /) $0 = $0 "\ncn: " uid
            if ($0 !~ /\nsn: /) $0 = $0 "\nsn: " uid
            sub(/\n/, "\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"); print }' \
    <"$WORK/lldap-people.ldif" >"$WORK/lldap.ldif"
sed '/^dn::\? /a objectClass: groupOfNames\nobjectClass: posixGroup' <"$WORK/lldap-groups.ldif" >>"$WORK/lldap.ldif"
# Both forms (-v RS= and sub on $0) are POSIX awk: mawk, Debian's default, and gawk.

expect_contains "db import takes what ldapsearch read from lldap" "imported 5 entries" \
    "$TESSERA" db import --quiet --config "$WORK/tessera.toml" "$WORK/lldap.ldif"
start_server
search() { ldapsearch -Y EXTERNAL -Q -H "$LDAPI" -LLL -o ldif-wrap=no "$@"; }

expect_contains "alice is a POSIX account with numbers allocated" "homeDirectory: /home/alice" \
    search -b "uid=alice,$PEOPLE" -s base '(uidNumber>=1)' uidNumber gidNumber homeDirectory
expect_contains "admin, with no last name in lldap, imports with its uid for sn" "sn: admin" \
    search -b "uid=admin,$PEOPLE" -s base '(objectClass=*)' sn cn
expect_contains "and keeps lldap's entryUUID" "entryUUID: 5d2c1f6e-9a1b-3c4d-8e7f-0a1b2c3d4e5f" \
    search -b "uid=alice,$PEOPLE" -s base '(objectClass=*)' entryUUID createTimestamp
expect_contains "and its creation time" "createTimestamp: 20240212141503Z" \
    search -b "uid=alice,$PEOPLE" -s base '(objectClass=*)' entryUUID createTimestamp
expect_contains "groups are posix groups with a gidNumber" "gidNumber: " \
    search -b "cn=Media Team,$GROUPS_OU" -s base '(objectClass=posixGroup)' gidNumber
expect_contains "with memberUid derived from lldap's member DNs" "memberUid: bob.builder" \
    search -b "cn=developers,$GROUPS_OU" -s base '(objectClass=*)' memberUid
expect_contains "SSSD's initgroups finds alice's groups" "dn: cn=Media Team,$GROUPS_OU" \
    search -b "$SUFFIX" '(&(memberuid=alice)(objectClass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))' 1.1
expect_contains "memberOf for the people" "memberOf: cn=developers,$GROUPS_OU" \
    search -b "uid=bob.builder,$PEOPLE" -s base '(objectClass=*)' memberOf
expect_absent "no password came from lldap" "dn: uid=alice,$PEOPLE" "userPassword" \
    search -b "$PEOPLE" '(objectClass=person)' userPassword

# People then set new passwords.
rc=0
password=$("$TESSERA" person set-password alice --generate --config "$WORK/tessera.toml" 2>"$WORK/setpw.err") || rc=$?
if [ "$rc" = 0 ] && [ "${#password}" -ge 16 ]; then
    pass "alice is given a new password"
else
    fail "tessera person set-password alice --generate exited $rc: $(cat "$WORK/setpw.err")"
fi
expect_contains "and binds with it" "dn:uid=alice,$PEOPLE" \
    ldapwhoami -x -H "$LDAPS" -D "uid=alice,$PEOPLE" -w "$password"

finish
