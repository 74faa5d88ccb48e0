#!/usr/bin/env bash
# python-ldap3 as sync scripts use it: schema read and name checking (get_info=ALL,
# check_names=True), typed sync attributes, paged pulls, modifyTimestamp incremental pulls,
# entryUUID across renames and adds. The checks themselves are in ldap3_sync.py.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

# ldap3 for the python3 in PATH; on plain Debian, whose python3 refuses pip installs, from apt.
PYTHON=python3
if ! "$PYTHON" -c 'import ldap3' 2>/dev/null; then
    if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore ldap3 >"$WORK/pip.log" 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq python3-ldap3 >"$WORK/apt.log" 2>&1 || true
        PYTHON=/usr/bin/python3
    fi
fi
if ! "$PYTHON" -c 'import ldap3' 2>/dev/null; then
    echo "cannot install ldap3 (pip: $(tail -1 "$WORK/pip.log"))"
    fail "python ldap3 is installed"
    finish
    exit 1
fi
echo "     $("$PYTHON" -c 'import ldap3, sys; print("ldap3", ldap3.__version__, "on python", sys.version.split()[0])')"

start_server
SUFFIX=dc=example,dc=com

{
    cat <<LDIF
dn: uid=alice,ou=people,$SUFFIX
objectClass: inetOrgPerson
objectClass: posixAccount
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.com
userPassword: alice-secret

dn: uid=bob,ou=people,$SUFFIX
objectClass: inetOrgPerson
objectClass: posixAccount
uid: bob
cn: Bob Example
sn: Example
userPassword: bob-secret

dn: cn=staff,ou=groups,$SUFFIX
objectClass: groupOfNames
objectClass: posixGroup
cn: staff
member: uid=alice,ou=people,$SUFFIX
member: uid=bob,ou=people,$SUFFIX

LDIF
    # Enough people and groups for several pages of 100.
    for i in $(seq -w 0 299); do
        printf 'dn: uid=user%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n' "$i" "$SUFFIX"
        printf 'uid: user%s\ncn: User %s\nsn: %s\n\n' "$i" "$i" "$i"
    done
    for i in $(seq -w 0 29); do
        printf 'dn: cn=team%s,ou=groups,%s\nobjectClass: groupOfNames\nobjectClass: posixGroup\n' "$i" "$SUFFIX"
        printf 'cn: team%s\nmember: uid=user%s0,ou=people,%s\n\n' "$i" "$i" "$SUFFIX"
    done
} > "$WORK/seed.ldif"
expect_rc "seed 302 people and 31 groups over LDAPI (ldapadd -Y EXTERNAL)" 0 \
    ldapadd -Y EXTERNAL -Q -H "$LDAPI" -f "$WORK/seed.ldif"
# The sync identity reads people and groups with their operational attributes.
grant directory-sync "uid=alice,ou=people,$SUFFIX"

rc=0
"$PYTHON" "$HERE/ldap3_sync.py" --ldaps "$LDAPS" --ldapi "$LDAPI" --ca "$DATA/tls/ca.pem" \
    --suffix "$SUFFIX" --alice-password alice-secret --seed-ldif "$WORK/seed.ldif" \
    >"$WORK/ldap3.out" 2>&1 || rc=$?
while IFS= read -r line; do
    case "$line" in
        "ok   - "*) pass "${line#ok   - }" ;;
        "FAIL - "*) fail "${line#FAIL - }" ;;
        *) echo "     $line" ;;
    esac
done <"$WORK/ldap3.out"
if [ "$rc" != 0 ]; then fail "ldap3_sync.py exited $rc"; fi

finish
