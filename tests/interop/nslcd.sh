#!/usr/bin/env bash
# nslcd (nss-pam-ldapd: nslcd, libnss-ldapd, libpam-ldapd) as a real daemon against the
# release binary, in a private mount and PID namespace: /etc/nslcd.conf, /etc/nsswitch.conf
# and /etc/pam.d are bind-mounted over there only, and /run is private. Two runs: LDAPS
# bound as dn=token, ldap:// with StartTLS bound with the service account's DN, both with a
# read-only token of nslcd-host (directory-readers); the second finds its base in the
# rootDSE. Each checks getent passwd and group,
# id, paged enumeration (pagesize below the counts, and a server size limit below them),
# PAM authentication of alice, and a password change through PAM (chauthtok) whose new
# password then binds.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/seed.sh"

if ! command -v nslcd >/dev/null || ! command -v pamtester >/dev/null ||
    [ -z "$(ls /lib/*/security/pam_ldap.so /usr/lib/*/security/pam_ldap.so 2>/dev/null)" ] ||
    [ -z "$(ls /lib/*/libnss_ldap.so.2 /usr/lib/*/libnss_ldap.so.2 2>/dev/null)" ]; then
    fail "nslcd, libnss-ldapd, libpam-ldapd and pamtester are installed (.ci/run installs them)"
    finish
    exit 1
fi

# An unpaged enumeration would stop at this limit: a complete one shows nslcd paged.
printf '[limits]\nsize_limit = 10\n' >>"$WORK/tessera.toml"
start_server
load_seed
# nslcd drops to its own user, which cannot enter the 0700 data directory.
mkdir -p "$WORK/nslcd-ca"
cp "$DATA/tls/ca.pem" "$WORK/nslcd-ca/ca.pem"
chmod 755 "$WORK" "$WORK/nslcd-ca"
chmod 644 "$WORK/nslcd-ca/ca.pem"
export NSLCD_CA="$WORK/nslcd-ca/ca.pem"

# nslcd_run NAME URI SSL BIND_DN TOKEN USER OLD NEW BASE, inside the namespace. An empty
# BASE leaves `base` out: nslcd then reads it from the rootDSE (`+`, namingContexts).
nslcd_run() {
    local name=$1 uri=$2 ssl=$3 bind_dn=$4 token=$5 user=$6 old=$7 new=$8 base=$9
    local root="$WORK/nslcd-$name"
    mkdir -p "$root/pam.d"
    cat >"$root/nslcd.conf" <<CONF
uid nslcd
gid nslcd
uri $uri
${base:+base $base}
binddn $bind_dn
bindpw $token
ssl $ssl
tls_reqcert demand
tls_cacertfile $NSLCD_CA
pagesize $PAGE_SIZE
CONF
    chmod 600 "$root/nslcd.conf"
    cat >"$root/nsswitch.conf" <<'CONF'
passwd: files ldap
group:  files ldap
shadow: files ldap
CONF
    cp -a /etc/pam.d/. "$root/pam.d/"
    cat >"$root/pam.d/tessera" <<'CONF'
auth     required pam_ldap.so
account  required pam_ldap.so
password required pam_ldap.so
session  required pam_permit.so
CONF
    mount --bind "$root/nslcd.conf" /etc/nslcd.conf
    mount --bind "$root/nsswitch.conf" /etc/nsswitch.conf
    mount --bind "$root/pam.d" /etc/pam.d
    mkdir -p /run/nslcd
    chown nslcd:nslcd /run/nslcd

    nslcd -d >"$root/nslcd.log" 2>&1 &
    NSLCD_PID=$!
    trap 'kill -TERM $NSLCD_PID 2>/dev/null; wait $NSLCD_PID 2>/dev/null || true' EXIT
    local up=""
    for _ in $(seq 1 100); do
        if getent passwd alice >/dev/null 2>&1; then up=1; break; fi
        kill -0 "$NSLCD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$up" ]; then
        fail "$name: nslcd answers for alice"
        tail -n 40 "$root/nslcd.log"
        return 0
    fi

    expect_contains "$name: getent passwd alice" ":20001:20001:Alice Example:/home/alice:/bin/bash" \
        getent passwd alice
    expect_contains "$name: getent passwd by uid" "carol:x:20003" getent passwd 20003
    local members
    members=$(getent group nas-users | cut -d: -f4 | tr ',' '\n' | grep -c . || true)
    if getent group nas-users | grep -q '^nas-users:.*:30001:' && [ "$members" = "$SEED_PEOPLE" ]; then
        pass "$name: getent group nas-users has all $members members"
    else
        fail "$name: getent group nas-users: $(getent group nas-users) ($members members)"
    fi
    local ids
    ids=$(id alice 2>&1 || true)
    if grep -q '30001(nas-users)' <<<"$ids" && grep -q '30002(developers)' <<<"$ids"; then
        pass "$name: id alice lists nas-users and developers"
    else
        fail "$name: id alice: $ids"
    fi
    local people groups
    people=$(getent passwd | grep -cE '^(alice|bob|carol|user[0-9]+):' || true)
    groups=$(getent group | grep -cE '^(nas-users|developers|engineering|admins):' || true)
    if [ "$people" = "$SEED_PEOPLE" ] && [ "$groups" = "$SEED_GROUPS" ]; then
        pass "$name: enumeration lists all $people people and $groups groups (pages of $PAGE_SIZE)"
    else
        fail "$name: enumeration lists $people of $SEED_PEOPLE people and $groups of $SEED_GROUPS groups"
    fi

    expect_rc "$name: pamtester authenticate $user" 0 \
        bash -c "echo '$old' | pamtester tessera '$user' authenticate acct_mgmt"
    expect_rc "$name: pamtester refuses a wrong password" 1 \
        bash -c "echo wrong-password | pamtester tessera '$user' authenticate"
    # The user changes their own password, as passwd(1) would: pamtester runs with the user's
    # uid (looked up through nslcd), and pam_ldap asks for the current password, then the new
    # one twice; nslcd sends Password Modify bound as the user.
    local uid
    uid=$(getent passwd "$user" | cut -d: -f3)
    expect_rc "$name: pamtester chauthtok as $user (uid $uid) changes the password" 0 \
        bash -c "printf '%s\n%s\n%s\n' '$old' '$new' '$new' |
            setpriv --reuid=$uid --regid=$uid --clear-groups pamtester tessera '$user' chauthtok"
    expect_contains "$name: the new password binds" "dn:uid=$user,$PEOPLE" \
        ldapwhoami -x -H "$LDAPS" -D "uid=$user,$PEOPLE" -w "$new"
    expect_rc "$name: the old password no longer binds" 49 \
        ldapwhoami -x -H "$LDAPS" -D "uid=$user,$PEOPLE" -w "$old"
    expect_rc "$name: pamtester authenticate with the new password" 0 \
        bash -c "echo '$new' | pamtester tessera '$user' authenticate"
    if [ "$FAILURES" != 0 ]; then
        echo "--- nslcd -d (tail)"
        tail -n 60 "$root/nslcd.log"
    fi
}

in_namespace nslcd_run ldaps "$LDAPS" on dn=token "$TOKEN_NSLCD" alice alice-secret alice-changed "$SUFFIX" ||
    fail "ldaps run exited $?"
in_namespace nslcd_run starttls "$LDAP" start_tls "uid=nslcd-host,$SERVICES" "$TOKEN_NSLCD" \
    bob bob-secret bob-changed "" || fail "starttls run exited $?"
finish
