#!/usr/bin/env bash
# Moving from OpenLDAP, end to end: a directory as Debian's slapd keeps it (RFC 2307's
# nis.schema, so posixGroup groups with memberUid; groupOfNames groups with member, in a
# nested OU too; people with {SSHA}, {CRYPT} sha512-crypt, md5-crypt and yescrypt passwords
# made by OpenLDAP's slappasswd and by libxcrypt as passwd writes them; a machine account;
# an account whose {SASL} password no server here can check) is loaded into a private slapd
# with slapadd, changed over LDAP, dumped with slapcat (syncprov on, so entryCSN and
# contextCSN are in the dump) and imported with `tessera db import`. Then ldapsearch must
# read the same from both servers: every entry slapd has, with the same attributes and
# values (objectClass aside: Tessera lists superclasses too, and nis.schema groups become
# groupOfNames), the same entryUUID and timestamps, member and memberUid agreeing. Every
# person binds to Tessera with their original password, after which the stored value is
# argon2id and still binds. Last, a second dump with a bad entry, an entry of a class
# Tessera does not serve and a group with a member that does not exist: the import stops at
# the first, and with --continue imports the rest and names all three.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C

for tool in slapd slapadd slapcat slappasswd; do
    if ! command -v "$tool" >/dev/null; then
        fail "$tool is installed (Debian's slapd package; .ci/run installs it)"
        finish
        exit 1
    fi
done

SUFFIX=dc=example,dc=com
PEOPLE="ou=people,$SUFFIX"
GROUPS_OU="ou=groups,$SUFFIX"
SLAPD_DIR="$WORK/slapd"
SLAPD_PORT=$(free_port)
SLAPD="ldap://127.0.0.1:$SLAPD_PORT"
SLAPD_ROOT="cn=admin,$SUFFIX"
SLAPD_PW=$(slappasswd -g)
SLAPD_PID=""
mkdir -p "$SLAPD_DIR/db"

cat >"$SLAPD_DIR/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $SLAPD_DIR/slapd.pid
argsfile $SLAPD_DIR/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
loglevel 0

database mdb
maxsize 104857600
suffix "$SUFFIX"
rootdn "$SLAPD_ROOT"
rootpw $(slappasswd -s "$SLAPD_PW")
directory $SLAPD_DIR/db
index objectClass,uid,cn,memberUid eq
overlay syncprov
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
CONF

# crypt(3) as passwd and chpasswd call it on Debian: libxcrypt's own salt for a method.
libxcrypt() { # PREFIX PASSWORD
    python3 - "$1" "$2" <<'PY'
import ctypes, sys
lib = ctypes.CDLL("libcrypt.so.1")
lib.crypt_gensalt.restype = lib.crypt.restype = ctypes.c_char_p
lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
setting = lib.crypt_gensalt(sys.argv[1].encode(), 0, None, 0)
print("{CRYPT}" + lib.crypt(sys.argv[2].encode(), setting).decode())
PY
}

# The people: uid, uidNumber, password, and how the password is stored.
declare -A PASSWORD=(
    [alice]='alice-Secret1' [bob]='bob pass phrase' [carol]='carol-Secret3' [dave]='dave-Secret4'
    [erin]='erin-Secret5' [j.doe-2]='jdoe-Secret6'
)
declare -A STORED=(
    [alice]=$(slappasswd -h '{SSHA}' -s "${PASSWORD[alice]}")
    [bob]=$(slappasswd -h '{CRYPT}' -c '$6$%.16s' -s "${PASSWORD[bob]}")
    [carol]=$(slappasswd -h '{CRYPT}' -c '$y$j9T$%.16s' -s "${PASSWORD[carol]}")
    [dave]=$(libxcrypt '$y$' "${PASSWORD[dave]}")
    [erin]=$(slappasswd -h '{CRYPT}' -c '$1$%.8s' -s "${PASSWORD[erin]}")
    [j.doe-2]=$(slappasswd -h '{SSHA}' -s "${PASSWORD[j.doe-2]}")
)
for uid in "${!PASSWORD[@]}"; do
    case "${STORED[$uid]}" in
        '{SSHA}'* | '{CRYPT}$6$'* | '{CRYPT}$y$j9T$'* | '{CRYPT}$1$'*) ;;
        *) fail "the stored password of $uid was made: ${STORED[$uid]}" ;;
    esac
done

person() { # uid uidNumber cn sn [extra LDIF lines]
    printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n' "$1" "$PEOPLE"
    printf 'objectClass: shadowAccount\nuid: %s\ncn: %s\nsn: %s\ngivenName: %s\n' "$1" "$3" "$4" "${3%% *}"
    printf 'mail: %s@example.com\nuidNumber: %s\ngidNumber: 10000\n' "$1" "$2"
    # gecos is IA5 (ASCII) in nis.schema, as chfn writes it.
    printf 'homeDirectory: /home/%s\nloginShell: /bin/bash\ngecos: %s\n' "$1" \
        "$(printf %s "$3" | LC_ALL=C.UTF-8 iconv -f UTF-8 -t ASCII//TRANSLIT)"
    printf 'shadowLastChange: 19700\nshadowMax: 99999\nuserPassword: %s\n' "${STORED[$1]:-$5}"
    [ -z "${6:-}" ] || printf '%s\n' "$6"
    echo
}

{
    cat <<LDIF
dn: $SUFFIX
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example Corp
dc: example
description: The directory before the move

dn: $SLAPD_ROOT
objectClass: simpleSecurityObject
objectClass: organizationalRole
cn: admin
description: LDAP administrator
userPassword: $(slappasswd -s "$SLAPD_PW")

dn: $PEOPLE
objectClass: organizationalUnit
ou: people

dn: $GROUPS_OU
objectClass: organizationalUnit
ou: groups

dn: ou=projects,$GROUPS_OU
objectClass: organizationalUnit
ou: projects
description: a nested OU

dn: ou=machines,$SUFFIX
objectClass: organizationalUnit
ou: machines

LDIF
    person alice 10001 "Alice Liddell" Liddell "" "telephoneNumber: +44 1865 270000"
    person bob 10002 "Bob Builder" Builder
    person carol 10003 "Carol Danvers" Danvers "" "description: yescrypt, by slappasswd"
    person dave 10004 "Dave Lister" Lister "" "description: yescrypt, by libxcrypt as passwd writes it"
    # Not ASCII, and a binary value: both travel base64.
    person erin 10005 "Erin Ångström" Ångström "" "jpegPhoto:: $(head -c 300 /dev/urandom | base64 -w 0)"
    person j.doe-2 10006 "Jane Doe" Doe
    # OpenLDAP's pass-through authentication: no password here to check.
    person frank 10007 "Frank Sasl" Sasl '{SASL}frank@EXAMPLE.COM'
    cat <<LDIF
dn: uid=ws01\$,ou=machines,$SUFFIX
objectClass: account
objectClass: posixAccount
uid: ws01\$
cn: ws01\$
uidNumber: 20001
gidNumber: 20000
homeDirectory: /dev/null
loginShell: /usr/sbin/nologin
description: a Samba machine account

dn: cn=staff,$GROUPS_OU
objectClass: posixGroup
cn: staff
gidNumber: 10000
memberUid: alice
memberUid: bob
memberUid: carol
memberUid: dave
memberUid: erin
memberUid: j.doe-2
memberUid: frank

dn: cn=developers,$GROUPS_OU
objectClass: posixGroup
cn: developers
gidNumber: 10010
description: people who ship
memberUid: alice
memberUid: bob

dn: cn=ops,$GROUPS_OU
objectClass: top
objectClass: posixGroup
cn: ops
gidNumber: 10020
memberUid: carol

dn: cn=nobody-yet,$GROUPS_OU
objectClass: posixGroup
cn: nobody-yet
gidNumber: 10030

dn: cn=wiki-editors,$GROUPS_OU
objectClass: groupOfNames
cn: wiki-editors
member: uid=alice,$PEOPLE
member: uid=carol,$PEOPLE

dn: cn=release,ou=projects,$GROUPS_OU
objectClass: groupOfNames
cn: release
description: a group in a nested OU, naming a group
member: uid=bob,$PEOPLE
member: uid=dave,$PEOPLE
member: cn=developers,$GROUPS_OU

LDIF
} >"$WORK/source.ldif"

slapadd -q -w -f "$SLAPD_DIR/slapd.conf" -l "$WORK/source.ldif" >"$WORK/slapadd.out" 2>&1 ||
    { fail "slapadd loads the directory: $(cat "$WORK/slapadd.out")"; finish; exit 1; }
slapd -d 0 -f "$SLAPD_DIR/slapd.conf" -h "$SLAPD/" >"$WORK/slapd.log" 2>&1 &
SLAPD_PID=$!
on_exit 'kill "$SLAPD_PID" 2>/dev/null; wait "$SLAPD_PID" 2>/dev/null'
for _ in $(seq 1 100); do
    ldapwhoami -x -H "$SLAPD" >/dev/null 2>&1 && break
    kill -0 "$SLAPD_PID" 2>/dev/null || break
    sleep 0.1
done
expect_contains "slapd serves the directory" "anonymous" ldapwhoami -x -H "$SLAPD"

slapd_search() { ldapsearch -x -H "$SLAPD" -D "$SLAPD_ROOT" -w "$SLAPD_PW" -LLL -o ldif-wrap=no "$@"; }
tessera_search() { ldapsearch -Y EXTERNAL -Q -H "$LDAPI" -LLL -o ldif-wrap=no "$@"; }

# Life in slapd after the load: changes over LDAP (so modifyTimestamp and modifiersName
# differ from the creation's), a password set with the Password Modify operation.
expect_rc "slapd takes changes over LDAP" 0 ldapmodify -x -H "$SLAPD" -D "$SLAPD_ROOT" -w "$SLAPD_PW" <<LDIF
dn: uid=alice,$PEOPLE
changetype: modify
replace: mail
mail: alice.liddell@example.com

dn: cn=ops,$GROUPS_OU
changetype: modify
add: memberUid
memberUid: dave
-
add: description
description: on call
LDIF
expect_rc "slapd sets j.doe-2's password (Password Modify)" 0 \
    ldappasswd -x -H "$SLAPD" -D "$SLAPD_ROOT" -w "$SLAPD_PW" -s "${PASSWORD[j.doe-2]}" "uid=j.doe-2,$PEOPLE"
for uid in "${!PASSWORD[@]}"; do
    expect_contains "slapd: $uid binds with the original password" "dn:uid=$uid,$PEOPLE" \
        ldapwhoami -x -H "$SLAPD" -D "uid=$uid,$PEOPLE" -w "${PASSWORD[$uid]}"
done

expect_rc "slapcat dumps the directory" 0 slapcat -f "$SLAPD_DIR/slapd.conf" -l "$WORK/dump.ldif"
expect_contains "the dump carries slapd's bookkeeping" "contextCSN:" cat "$WORK/dump.ldif"

# --- Import ----------------------------------------------------------------------------
expect_contains "db import takes the slapcat dump" "imported " \
    "$TESSERA" db import --quiet --config "$WORK/tessera.toml" "$WORK/dump.ldif"
cp "$WORK/last.out" "$WORK/import.out"
expect_contains "the report: the suffix and the two containers merged" \
    "merged 3 entries into the ones every directory starts with" cat "$WORK/import.out"
expect_contains "the report: nis.schema groups became groupOfNames" \
    "4 groups of RFC 2307's nis.schema (posixGroup alone) became groupOfNames + posixGroup" cat "$WORK/import.out"
expect_contains "the report: OpenLDAP's bookkeeping dropped and counted" \
    "dropped operational attributes this server keeps itself or does not use: contextCSN (1), entryCSN (" \
    cat "$WORK/import.out"
expect_contains "the report: the {SASL} account named as unable to bind" \
    "1 account has a password hash in a scheme this server cannot verify" cat "$WORK/import.out"
expect_contains "the report names it" "  uid=frank,$PEOPLE" cat "$WORK/import.out"
run_captured grep -c "uid=" "$WORK/import.out"
if [ "$LAST_RC" = 0 ] && [ "$(cat "$WORK/last.out")" = 1 ]; then
    pass "the report names no account that can bind"
else
    fail "the report names other accounts: $(cat "$WORK/import.out")"
fi
start_server

# --- What ldapsearch reads from both -------------------------------------------------
# search_into FILE SERVER ARGS...: the search's LDIF in FILE; a failed search fails here.
search_into() {
    local file=$1 server=$2; shift 2
    local rc=0
    "${server}_search" "$@" >"$file" 2>"$file.err" || rc=$?
    if [ "$rc" != 0 ] || [ ! -s "$file" ]; then
        fail "$server: ldapsearch $* exited $rc: $(cat "$file.err")"
    fi
}
# One line per value, "dn<TAB>attribute: value", attribute names in lower case, sorted.
values() {
    awk 'BEGIN { RS = ""; FS = "\n" }
        { dn = ""
          for (i = 1; i <= NF; i++) if ($i ~ /^dn::? /) dn = $i
          for (i = 1; i <= NF; i++) {
              if ($i ~ /^dn::? /) continue
              n = index($i, ":")
              print dn "\t" tolower(substr($i, 1, n - 1)) substr($i, n)
          } }' "$1" | LC_ALL=C sort
}
# expect_same NAME WANT GOT: the two files hold the same lines, and some.
expect_same() {
    if [ ! -s "$2" ]; then
        fail "$1: nothing to compare"
    elif diff "$2" "$3" >"$WORK/diff.out"; then
        pass "$1 ($(wc -l <"$2") values)"
    else
        fail "$1: < slapd, > Tessera:"$'\n'"$(head -n 40 "$WORK/diff.out")"
    fi
}

KEPT="entryUUID createTimestamp modifyTimestamp creatorsName modifiersName"
# shellcheck disable=SC2086
search_into "$WORK/s-all.ldif" slapd -b "$SUFFIX" '(objectClass=*)' '*' $KEPT
# shellcheck disable=SC2086
search_into "$WORK/t-all.ldif" tessera -b "$SUFFIX" '(objectClass=*)' '*' $KEPT
values "$WORK/s-all.ldif" >"$WORK/s-all"
values "$WORK/t-all.ldif" >"$WORK/t-all"
cut -f1 "$WORK/s-all" | sort -u >"$WORK/s-dns"
cut -f1 "$WORK/t-all" | sort -u >"$WORK/t-dns"
run_captured comm -23 "$WORK/s-dns" "$WORK/t-dns"
if [ "$LAST_RC" = 0 ] && [ ! -s "$WORK/last.out" ] && [ "$(wc -l <"$WORK/s-dns")" -ge 20 ]; then
    pass "every entry of slapd is in Tessera ($(wc -l <"$WORK/s-dns") entries)"
else
    fail "entries missing from Tessera: $(cat "$WORK/last.out")"
fi
run_captured comm -13 "$WORK/s-dns" "$WORK/t-dns"
if [ "$LAST_RC" = 0 ] && ! grep -qvE "(ou=services|ou=roles),$SUFFIX\$" "$WORK/last.out"; then
    pass "Tessera has nothing more than its own ou=services and ou=roles"
else
    fail "entries Tessera has that slapd has not: $(cat "$WORK/last.out")"
fi
# Every attribute and value of every entry, password hashes and the kept operational
# attributes included, but objectClass and member, compared below.
awk -F '\t' 'NR == FNR { slapd[$0] = 1; next } ($1 in slapd)' "$WORK/s-dns" "$WORK/t-all" |
    grep -vP '\t(objectclass|member):' >"$WORK/t-same" || true
grep -vP '\t(objectclass|member):' "$WORK/s-all" >"$WORK/s-same" || true
expect_same "every attribute and value read from both, entryUUID and timestamps too" \
    "$WORK/s-same" "$WORK/t-same"
# objectClass: Tessera lists each class slapd has (and their superclasses).
grep -P '\tobjectclass:' "$WORK/s-all" | tr '[:upper:]' '[:lower:]' | sort >"$WORK/s-classes"
grep -P '\tobjectclass:' "$WORK/t-all" | tr '[:upper:]' '[:lower:]' | sort >"$WORK/t-classes"
run_captured comm -23 "$WORK/s-classes" "$WORK/t-classes"
if [ "$LAST_RC" = 0 ] && [ ! -s "$WORK/last.out" ] && [ -s "$WORK/s-classes" ]; then
    pass "every entry keeps its object classes"
else
    fail "object classes lost: $(cat "$WORK/last.out")"
fi
# member of the groupOfNames groups: as slapd has it.
search_into "$WORK/s-gon.ldif" slapd -b "$SUFFIX" '(objectClass=groupOfNames)' member
search_into "$WORK/t-gon.ldif" tessera -b "$SUFFIX" '(&(objectClass=groupOfNames)(!(objectClass=posixGroup)))' member
values "$WORK/s-gon.ldif" >"$WORK/s-gon"
values "$WORK/t-gon.ldif" >"$WORK/t-gon"
expect_same "member of the groupOfNames groups, the nested OU's too" "$WORK/s-gon" "$WORK/t-gon"
# The posix groups: memberUid as slapd has it, and member naming the same people.
search_into "$WORK/s-pg.ldif" slapd -b "$GROUPS_OU" '(objectClass=posixGroup)' memberUid
search_into "$WORK/t-pg.ldif" tessera -b "$GROUPS_OU" '(objectClass=posixGroup)' memberUid
values "$WORK/s-pg.ldif" >"$WORK/s-pg"
values "$WORK/t-pg.ldif" >"$WORK/t-pg"
expect_same "memberUid of the posix groups" "$WORK/s-pg" "$WORK/t-pg"
search_into "$WORK/t-pgm.ldif" tessera -b "$GROUPS_OU" '(objectClass=posixGroup)' member
values "$WORK/t-pgm.ldif" | sed -E "s/\tmember: uid=([^,]+),$PEOPLE\$/\tmemberuid: \1/" | sort >"$WORK/t-pgm"
expect_same "member of the posix groups names each memberUid under ou=people" "$WORK/s-pg" "$WORK/t-pgm"
expect_contains "SSSD's initgroups lookup finds dave's groups in Tessera" "dn: cn=ops,$GROUPS_OU" \
    tessera_search -b "$SUFFIX" '(&(memberuid=dave)(objectClass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))' cn
expect_contains "and by member (rfc2307bis)" "dn: cn=release,ou=projects,$GROUPS_OU" \
    tessera_search -b "$SUFFIX" "(member=uid=dave,$PEOPLE)" 1.1

# --- The people bind with their passwords ------------------------------------------------
stored() { # uid: the userPassword Tessera holds (ldapsearch writes it in base64)
    local ldif
    ldif=$(tessera_search -b "uid=$1,$PEOPLE" -s base '(objectClass=*)' userPassword)
    sed -n 's/^userPassword:: //p' <<<"$ldif" | base64 -d
    sed -n 's/^userPassword: //p' <<<"$ldif"
}
for uid in "${!PASSWORD[@]}"; do
    dn="uid=$uid,$PEOPLE"
    before=$(stored "$uid")
    if [ "$before" = "${STORED[$uid]}" ] || [ "$uid" = j.doe-2 ]; then
        pass "$uid: the hash from slapd, as it was (${before:0:10}...)"
    else
        fail "$uid: stored $before, slapd had ${STORED[$uid]}"
    fi
    expect_rc "$uid: a wrong password gets 49" 49 \
        ldapwhoami -x -H "$LDAPS" -D "$dn" -w "not-${PASSWORD[$uid]}"
    expect_contains "$uid binds to Tessera with the original password" "dn:$dn" \
        ldapwhoami -x -H "$LDAPS" -D "$dn" -w "${PASSWORD[$uid]}"
    after=$(stored "$uid")
    case "$after" in
        '{ARGON2}$argon2id$'*) pass "$uid: rehashed to argon2id on that bind" ;;
        *) fail "$uid: after the bind, stored ${after:0:20}..." ;;
    esac
    expect_contains "$uid binds with the same password to the new hash" "dn:$dn" \
        ldapwhoami -x -H "$LDAPS" -D "$dn" -w "${PASSWORD[$uid]}"
done
expect_rc "frank ({SASL}) cannot bind" 49 ldapwhoami -x -H "$LDAPS" -D "uid=frank,$PEOPLE" -w frank
stop_server
expect_store_verifies "the imported store verifies"

# --- A dump with problems: --continue -------------------------------------------------
expect_rc "slapd takes what Tessera will refuse" 0 ldapadd -x -H "$SLAPD" -D "$SLAPD_ROOT" -w "$SLAPD_PW" <<LDIF
dn: uid=Bob Smith,$PEOPLE
objectClass: inetOrgPerson
objectClass: posixAccount
uid: Bob Smith
cn: Bob Smith
sn: Smith
uidNumber: 10050
gidNumber: 10000
homeDirectory: /home/bob.smith

dn: ou=hosts,$SUFFIX
objectClass: organizationalUnit
ou: hosts

dn: cn=printer,ou=hosts,$SUFFIX
objectClass: device
objectClass: ipHost
cn: printer
ipHostNumber: 192.0.2.10

dn: cn=auditors,$GROUPS_OU
objectClass: groupOfNames
cn: auditors
member: uid=alice,$PEOPLE
member: uid=ghost,$PEOPLE
LDIF
expect_rc "slapcat dumps it" 0 slapcat -f "$SLAPD_DIR/slapd.conf" -l "$WORK/dump2.ldif"
cat >"$WORK/tessera-b.toml" <<TOML
data_dir = "$WORK/data-b"
[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
TOML
expect_output "without --continue the import stops at the first bad entry, naming it" 1 \
    "entry uid=Bob Smith,$PEOPLE (ending at line" \
    "$TESSERA" db import --quiet --config "$WORK/tessera-b.toml" "$WORK/dump2.ldif"
cp "$WORK/last.out" "$WORK/import-b-stop.out"
expect_contains "and says why" "uid: 'Bob Smith' is not a login name" cat "$WORK/import-b-stop.out"
expect_absent "and imports nothing" "dn: $SUFFIX" "uid=alice" \
    "$TESSERA" db export --config "$WORK/tessera-b.toml"
expect_contains "with --continue it imports the rest" "3 skipped; the rest was imported" \
    "$TESSERA" db import --quiet --continue --config "$WORK/tessera-b.toml" "$WORK/dump2.ldif"
cp "$WORK/last.out" "$WORK/import-b.out"
expect_contains "and names the bad entry and why" \
    "skipped: uid=Bob Smith,$PEOPLE (ending at line" cat "$WORK/import-b.out"
expect_contains "the entry of a class Tessera does not serve" \
    "skipped: cn=printer,ou=hosts,$SUFFIX (ending at line" cat "$WORK/import-b.out"
expect_contains "and the member that does not exist" \
    "skipped: cn=auditors,$GROUPS_OU (ending at line" cat "$WORK/import-b.out"
expect_contains "which it names" "member: uid=ghost,$PEOPLE does not exist; value dropped" cat "$WORK/import-b.out"
# What was imported: every entry of the dump but the two refused.
unfolded cat "$WORK/dump2.ldif" | sed -n 's/^dn: //p' | grep -vxF -e "uid=Bob Smith,$PEOPLE" -e "cn=printer,ou=hosts,$SUFFIX" |
    sort >"$WORK/want-b"
run_captured "$TESSERA" db export --config "$WORK/tessera-b.toml"
unfolded cat "$WORK/last.out" | sed -n 's/^dn: //p' | grep -vE "(ou=services|ou=roles),$SUFFIX\$" | sort >"$WORK/got-b"
expect_same "the rest is in the store: every other entry of the dump" "$WORK/want-b" "$WORK/got-b"
expect_contains "auditors keeps the member that exists" "member: uid=alice,$PEOPLE" \
    unfolded "$TESSERA" db export --config "$WORK/tessera-b.toml"
expect_absent "and not the one that does not" "cn=auditors" "uid=ghost" \
    unfolded "$TESSERA" db export --config "$WORK/tessera-b.toml"

# --- A damaged dump: a record that is not LDIF ------------------------------------------
# The dump with a record mangled in transit (its base64 cut short) in front: without
# --continue the import stops at that line; with it, the record is left out and named by
# its line, and the import goes on at the next record.
{
    printf 'dn: uid=mangled,%s\nobjectClass: inetOrgPerson\ncn:: ***\nsn: x\n\n' "$PEOPLE"
    cat "$WORK/dump2.ldif"
} >"$WORK/dump3.ldif"
bad_line=$(grep -n '^cn:: \*\*\*$' "$WORK/dump3.ldif" | cut -d: -f1)
sed "s|data-b|data-c|" "$WORK/tessera-b.toml" >"$WORK/tessera-c.toml"
expect_output "a damaged record stops the import at its line" 1 \
    "line $bad_line: invalid base64 in value of 'cn'" \
    "$TESSERA" db import --quiet --config "$WORK/tessera-c.toml" "$WORK/dump3.ldif"
expect_contains "with --continue it is skipped with the others" "4 skipped; the rest was imported" \
    "$TESSERA" db import --quiet --continue --config "$WORK/tessera-c.toml" "$WORK/dump3.ldif"
expect_contains "and named by its line" \
    "skipped: an unreadable record (line $bad_line): invalid base64 in value of 'cn'" cat "$WORK/last.out"
run_captured "$TESSERA" db export --config "$WORK/tessera-c.toml"
unfolded cat "$WORK/last.out" | sed -n 's/^dn: //p' | grep -vE "(ou=services|ou=roles),$SUFFIX\$" | sort >"$WORK/got-c"
expect_same "everything else is in the store, as from the undamaged dump" "$WORK/want-b" "$WORK/got-c"

finish
