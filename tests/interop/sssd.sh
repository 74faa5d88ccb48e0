#!/usr/bin/env bash
# SSSD (Debian's sssd-ldap, id_provider = ldap, ldap_schema = rfc2307bis) as a real daemon
# against the release binary, in a private mount and PID namespace: /etc/sssd, /var/lib/sss,
# /var/log/sssd, /etc/nsswitch.conf and /etc/pam.d are bind-mounted over there only. Three
# runs: LDAPS bound as dn=token, ldap:// with StartTLS bound as dn=token, LDAPS bound with
# the service account's DN and the same read-only token; and a fourth with ldap_schema =
# rfc2307 (TrueNAS's default, memberUid), where carol also changes her password through
# PAM. Each run checks getent passwd and
# group, id (initgroups through nested groups), paged enumeration (ldap_page_size well
# below the number of people and of nas-users' members, and a server size limit below them
# too) and alice's password through PAM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/seed.sh"

if ! command -v sssd >/dev/null || ! command -v pamtester >/dev/null ||
    [ -z "$(ls /lib/*/security/pam_sss.so /usr/lib/*/security/pam_sss.so 2>/dev/null)" ]; then
    fail "sssd-ldap, libnss-sss, libpam-sss and pamtester are installed (.ci/run installs them)"
    finish
    exit 1
fi

# A server size limit below the number of people: an unpaged enumeration would stop at it,
# so a complete one shows SSSD paged.
printf '[limits]\nsize_limit = 10\n' >>"$WORK/tessera.toml"
start_server
load_seed

# sssd_run NAME URI START_TLS BIND_DN TOKEN SCHEMA [CHPASS], inside the namespace; with
# CHPASS set, carol also changes her password through PAM.
sssd_run() {
    local name=$1 uri=$2 start_tls=$3 bind_dn=$4 token=$5 schema=$6 chpass=${7:-}
    local root="$WORK/sssd-$name"
    mkdir -p "$root/etc-sssd" "$root/log" "$root/pam.d"
    local sub
    for sub in db pipes/private mc pubconf/krb5.include.d gpo_cache secrets keytabs deskprofile; do
        mkdir -p "$root/lib/$sub"
    done
    chmod 700 "$root/lib/db" "$root/lib/pipes/private" "$root/lib/secrets" "$root/lib/keytabs"
    cat >"$root/etc-sssd/sssd.conf" <<CONF
[sssd]
services = nss, pam
domains = example

[nss]
filter_users = root
filter_groups = root
# The enumeration is re-read from the cache at once (the default caches it for 120 s), so
# the test sees it complete as soon as the background enumeration has finished.
enum_cache_timeout = 1

[pam]

[domain/example]
id_provider = ldap
auth_provider = ldap
chpass_provider = ldap
ldap_uri = $uri
ldap_search_base = $SUFFIX
ldap_schema = $schema
ldap_default_bind_dn = $bind_dn
ldap_default_authtok = $token
ldap_tls_cacert = $DATA/tls/ca.pem
ldap_tls_reqcert = demand
ldap_id_use_start_tls = $start_tls
enumerate = true
ldap_page_size = $PAGE_SIZE
cache_credentials = false
CONF
    chmod 600 "$root/etc-sssd/sssd.conf"
    cat >"$root/nsswitch.conf" <<'CONF'
passwd: files sss
group:  files sss
shadow: files sss
CONF
    cp -a /etc/pam.d/. "$root/pam.d/"
    cat >"$root/pam.d/tessera" <<'CONF'
auth     required pam_sss.so
account  required pam_sss.so
password required pam_sss.so
session  required pam_permit.so
CONF
    mount --bind "$root/etc-sssd" /etc/sssd
    mount --bind "$root/lib" /var/lib/sss
    mkdir -p /var/log/sssd
    mount --bind "$root/log" /var/log/sssd
    mount --bind "$root/nsswitch.conf" /etc/nsswitch.conf
    mount --bind "$root/pam.d" /etc/pam.d

    sssd -i --logger=files -d 0x0270 &
    SSSD_PID=$!
    trap 'kill -TERM $SSSD_PID 2>/dev/null; wait $SSSD_PID 2>/dev/null || true' EXIT
    local up=""
    for _ in $(seq 1 150); do
        if getent passwd alice >/dev/null 2>&1; then up=1; break; fi
        kill -0 "$SSSD_PID" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$up" ]; then
        fail "$name: sssd answers for alice"
        tail -n 40 "$root"/log/sssd_example.log 2>/dev/null || true
        return 0
    fi

    expect_contains "$name: getent passwd alice" "alice:*:20001:20001:Alice Example:/home/alice:/bin/bash" \
        getent passwd alice
    expect_contains "$name: getent passwd by uid" "carol:*:20003" getent passwd 20003
    local members
    members=$(getent group nas-users | cut -d: -f4 | tr ',' '\n' | grep -c . || true)
    if getent group nas-users | grep -q '^nas-users:\*:30001:' && [ "$members" = "$SEED_PEOPLE" ]; then
        pass "$name: getent group nas-users has all $members members (more than a page of $PAGE_SIZE)"
    else
        fail "$name: getent group nas-users: $(getent group nas-users) ($members members)"
    fi
    local ids
    ids=$(id alice 2>&1 || true)
    # rfc2307 follows memberUid only, which names people: no nesting there.
    local nested='30003(engineering)' nested_name="and (nested) engineering"
    [ "$schema" = rfc2307bis ] || { nested='30002(developers)'; nested_name="(no nesting in rfc2307)"; }
    if grep -q '30001(nas-users)' <<<"$ids" && grep -q '30002(developers)' <<<"$ids" &&
        grep -q "$nested" <<<"$ids" && ! grep -q 'admins' <<<"$ids"; then
        pass "$name: id alice: nas-users, developers $nested_name"
    else
        fail "$name: id alice: $ids"
    fi
    expect_contains "$name: id carol (direct groups)" "30004(admins)" id carol

    # Enumeration runs in the background after start-up: wait for all of it.
    local people=0 groups=0
    for _ in $(seq 1 150); do
        people=$(getent passwd | grep -cE '^(alice|bob|carol|user[0-9]+):' || true)
        groups=$(getent group | grep -cE '^(nas-users|developers|engineering|admins):' || true)
        [ "$people" = "$SEED_PEOPLE" ] && [ "$groups" = "$SEED_GROUPS" ] && break
        sleep 0.2
    done
    if [ "$people" = "$SEED_PEOPLE" ] && [ "$groups" = "$SEED_GROUPS" ]; then
        pass "$name: enumeration lists all $people people and $groups groups (pages of $PAGE_SIZE)"
    else
        fail "$name: enumeration lists $people of $SEED_PEOPLE people and $groups of $SEED_GROUPS groups"
    fi
    expect_absent "$name: service accounts are not enumerated" "alice:*:20001:" "nas01:" getent passwd

    expect_rc "$name: pamtester authenticate alice with her password" 0 \
        bash -c 'echo alice-secret | pamtester tessera alice authenticate acct_mgmt'
    expect_rc "$name: pamtester refuses a wrong password" 1 \
        bash -c 'echo wrong-password | pamtester tessera alice authenticate'
    if [ -n "$chpass" ]; then
        # As passwd(1) would: as carol, current password then the new one twice; SSSD binds
        # as carol and sends Password Modify.
        expect_rc "$name: pamtester chauthtok as carol changes her password" 0 \
            bash -c "printf 'carol-secret\ncarol-changed\ncarol-changed\n' |
                setpriv --reuid=20003 --regid=20003 --clear-groups pamtester tessera carol chauthtok"
        expect_contains "$name: carol's new password binds" "dn:uid=carol,$PEOPLE" \
            ldapwhoami -x -H "$LDAPS" -D "uid=carol,$PEOPLE" -w carol-changed
        expect_rc "$name: pamtester authenticate carol with the new password" 0 \
            bash -c 'echo carol-changed | pamtester tessera carol authenticate'
    fi
    if [ "$FAILURES" != 0 ]; then
        echo "--- sssd_example.log (tail)"
        tail -n 60 "$root"/log/sssd_example.log 2>/dev/null || true
    fi
}

SERVICE_DN="uid=sssd-host,$SERVICES"
in_namespace sssd_run ldaps "$LDAPS" false dn=token "$TOKEN_SSSD" rfc2307bis || fail "ldaps run exited $?"
in_namespace sssd_run starttls "$LDAP" true dn=token "$TOKEN_SSSD" rfc2307bis || fail "starttls run exited $?"
in_namespace sssd_run service-dn "$LDAPS" false "$SERVICE_DN" "$TOKEN_SSSD" rfc2307bis ||
    fail "service-dn run exited $?"
# TrueNAS's default schema: groups by memberUid.
in_namespace sssd_run rfc2307 "$LDAPS" false dn=token "$TOKEN_SSSD" rfc2307 chpass ||
    fail "rfc2307 run exited $?"
if grep "sssd-host" "$WORK/server.log" | grep -q '"starttls"'; then
    pass "the audit log shows sssd-host's token binds over StartTLS"
else
    fail "no audit of sssd-host binding over StartTLS"
fi
finish
