# The shared directory the client scripts run against, loaded into a started server by
# `load_seed` (source lib.sh first):
#
# - people under ou=people with posix attributes and passwords: alice (alice-secret), bob
#   (bob-secret), carol (carol-secret), and user01..user14 (userNN-secret);
# - groups under ou=groups, groupOfNames + posixGroup (rfc2307bis): nas-users (alice, bob,
#   carol and user01..user14: more members than one page of PAGE_SIZE), developers (alice,
#   bob), engineering (nested: the group developers, and carol), admins (carol);
#   and service-owners (not posix), the manager of the service accounts;
# - service accounts nas01, sssd-host and nslcd-host, each holding directory-readers (via
#   `grant`), with a read-only token each minted by `tessera service-account api-token
#   generate`, in $TOKEN_NAS01, $TOKEN_SSSD, $TOKEN_NSLCD;
# - app01, a sync account holding directory-sync and people-admins, with a read-write token
#   in $TOKEN_APP01.
# shellcheck shell=bash

export SUFFIX=dc=example,dc=com
export PEOPLE="ou=people,$SUFFIX"
export GROUPS_OU="ou=groups,$SUFFIX"
export SERVICES="ou=services,$SUFFIX"
export ALICE="uid=alice,$PEOPLE"
# SSSD's ldap_page_size and nslcd's pagesize in the scripts: well below the counts below.
export PAGE_SIZE=5
# Numbers of posix people and posix groups in the seed.
export SEED_PEOPLE=17
export SEED_GROUPS=4

cli() { "$TESSERA" "$@" --config "$WORK/tessera.toml"; }

seed_person() { # uid uidNumber cn
    cat <<LDIF
dn: uid=$1,$PEOPLE
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: shadowAccount
uid: $1
cn: $3
sn: ${3##* }
gecos: $3
mail: $1@example.com
uidNumber: $2
gidNumber: $2
homeDirectory: /home/$1
loginShell: /bin/bash
userPassword: $1-secret

LDIF
}

seed_group() { # cn gidNumber member-dn...
    local cn=$1 gid=$2
    shift 2
    printf 'dn: cn=%s,%s\nobjectClass: groupOfNames\nobjectClass: posixGroup\ncn: %s\ngidNumber: %s\n' \
        "$cn" "$GROUPS_OU" "$cn" "$gid"
    for m in "$@"; do printf 'member: %s\n' "$m"; done
    printf '\n'
}

load_seed() {
    local users=() i
    for i in $(seq -w 1 14); do users+=("uid=user$i,$PEOPLE"); done
    {
        seed_person alice 20001 "Alice Example"
        seed_person bob 20002 "Bob Example"
        seed_person carol 20003 "Carol Example"
        for i in $(seq -w 1 14); do seed_person "user$i" $((20100 + 10#$i)) "User $i"; done
        seed_group nas-users 30001 "$ALICE" "uid=bob,$PEOPLE" "uid=carol,$PEOPLE" "${users[@]}"
        seed_group developers 30002 "$ALICE" "uid=bob,$PEOPLE"
        seed_group engineering 30003 "cn=developers,$GROUPS_OU" "uid=carol,$PEOPLE"
        seed_group admins 30004 "uid=carol,$PEOPLE"
        printf 'dn: cn=service-owners,%s\nobjectClass: groupOfNames\ncn: service-owners\nmember: uid=carol,%s\n\n' \
            "$GROUPS_OU" "$PEOPLE"
    } >"$WORK/seed.ldif"
    ldapadd -Y EXTERNAL -Q -H "$LDAPI" -f "$WORK/seed.ldif" >"$WORK/seed.out" 2>&1 ||
        { echo "seed: ldapadd failed"; cat "$WORK/seed.out"; exit 1; }
    local account
    for account in nas01 sssd-host nslcd-host app01; do
        cli service-account create "$account" "Interop $account" service-owners >/dev/null ||
            { echo "seed: service-account create $account failed"; exit 1; }
    done
    for account in nas01 sssd-host nslcd-host; do grant directory-readers "uid=$account,$SERVICES"; done
    grant directory-sync "uid=app01,$SERVICES"
    grant people-admins "uid=app01,$SERVICES"
    TOKEN_NAS01=$(seed_token nas01)
    TOKEN_SSSD=$(seed_token sssd-host)
    TOKEN_NSLCD=$(seed_token nslcd-host)
    TOKEN_APP01=$(seed_token app01 --rw)
}

seed_token() { # account [--rw]
    local token
    token=$(cli service-account api-token generate "$1" "interop $1" 1d "${@:2}" 2>/dev/null | tr -d '\n')
    if ! [[ "$token" =~ ^tsr_[A-Za-z0-9_]+$ ]]; then
        echo "seed: no token for $1" >&2
        exit 1
    fi
    printf '%s' "$token"
}
