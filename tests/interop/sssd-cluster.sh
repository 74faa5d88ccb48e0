#!/usr/bin/env bash
# SSSD across a cluster: a three-node cluster on loopback (each node its own ports and data
# directory, one CA), and a real SSSD (sssd-ldap, in a private mount and PID namespace as
# in sssd.sh) whose ldap_uri lists the three nodes. SSSD answers id and PAM authentication
# through the first node; that node (the leader) is SIGKILLed; SSSD must go on answering id
# for people it has not looked up yet, and PAM authentication (no cached credentials),
# through the others, and the cluster must elect a new leader that takes writes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/seed.sh"

if ! command -v sssd >/dev/null || ! command -v pamtester >/dev/null; then
    fail "sssd-ldap, libnss-sss, libpam-sss and pamtester are installed (.ci/run installs them)"
    finish
    exit 1
fi

# node N: its config in $WORK/nN.toml (node 1 is lib.sh's server), its ports in PORTS_N.
cluster_table() { # id port
    printf '[cluster]\nnode_id = %s\nlisten = "127.0.0.1:%s"\nheartbeat = "100ms"\nelection_timeout = "500ms"\nmax_staleness = "5s"\n' "$1" "$2"
}
C1=$(free_port)
cluster_table 1 "$C1" >>"$WORK/tessera.toml"
start_server
cli cluster init >/dev/null || { fail "cluster init"; cat "$WORK/server.log"; exit 1; }
load_seed
cli cluster bundle "$WORK/join.json" >/dev/null

declare -A PIDS LDAPS_OF
LDAPS_OF[1]=$LDAPS
for n in 2 3; do
    lp=$(free_port)
    cp=$(free_port)
    cat >"$WORK/n$n.toml" <<TOML
data_dir = "$WORK/data$n"
[listen]
ldaps = "127.0.0.1:$lp"
ldap = ""
https = ""
[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
$(cluster_table "$n" "$cp")
TOML
    "$TESSERA" cluster join "$WORK/join.json" --config "$WORK/n$n.toml" >/dev/null
    "$TESSERA" serve --config "$WORK/n$n.toml" >/dev/null 2>"$WORK/server$n.log" &
    PIDS[$n]=$!
    on_exit "kill -TERM ${PIDS[$n]} 2>/dev/null; wait ${PIDS[$n]} 2>/dev/null"
    for _ in $(seq 1 100); do [ -S "$WORK/data$n/ldapi.sock" ] && break; sleep 0.1; done
    LDAPS_OF[$n]="ldaps://localhost:$lp"
    expect_contains "node $n joins as a replica" "caught up" cli cluster add-replica "$n" "127.0.0.1:$cp"
    expect_contains "node $n is promoted" "voter" cli cluster promote "$n"
done
expect_contains "node 1 leads" '"role": "leader"' cli cluster status

# Outside the namespace: wait for the inside to ask, SIGKILL node 1, say so.
(
    for _ in $(seq 1 600); do [ -e "$WORK/kill-now" ] && break; sleep 0.1; done
    if [ -e "$WORK/kill-now" ]; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        touch "$WORK/killed"
    fi
) &
KILLER=$!

sssd_failover() { # URIS TOKEN
    local uris=$1 token=$2
    local root="$WORK/sssd"
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
memcache_timeout = 0

[pam]

[domain/example]
id_provider = ldap
auth_provider = ldap
ldap_uri = $uris
ldap_search_base = $SUFFIX
ldap_schema = rfc2307bis
ldap_default_bind_dn = dn=token
ldap_default_authtok = $token
ldap_tls_cacert = $DATA/tls/ca.pem
ldap_tls_reqcert = demand
cache_credentials = false
entry_cache_timeout = 1
ldap_network_timeout = 2
ldap_opt_timeout = 4
CONF
    chmod 600 "$root/etc-sssd/sssd.conf"
    printf 'passwd: files sss\ngroup:  files sss\nshadow: files sss\n' >"$root/nsswitch.conf"
    cp -a /etc/pam.d/. "$root/pam.d/"
    printf 'auth required pam_sss.so\naccount required pam_sss.so\n' >"$root/pam.d/tessera"
    mount --bind "$root/etc-sssd" /etc/sssd
    mount --bind "$root/lib" /var/lib/sss
    mkdir -p /var/log/sssd
    mount --bind "$root/log" /var/log/sssd
    mount --bind "$root/nsswitch.conf" /etc/nsswitch.conf
    mount --bind "$root/pam.d" /etc/pam.d
    sssd -i --logger=files -d 0x0270 &
    SSSD_PID=$!
    trap 'kill -TERM $SSSD_PID 2>/dev/null; wait $SSSD_PID 2>/dev/null || true' EXIT
    local _
    for _ in $(seq 1 150); do getent passwd alice >/dev/null 2>&1 && break; sleep 0.2; done
    expect_contains "before: getent passwd alice" "alice:*:20001:20001" getent passwd alice
    expect_contains "before: id alice" "30001(nas-users)" id alice
    expect_rc "before: PAM authenticates alice" 0 \
        bash -c 'echo alice-secret | pamtester tessera alice authenticate acct_mgmt'

    touch "$WORK/kill-now"
    for _ in $(seq 1 100); do [ -e "$WORK/killed" ] && break; sleep 0.1; done
    [ -e "$WORK/killed" ] && pass "node 1, which SSSD was using, was SIGKILLed" || fail "node 1 was not killed"

    # People SSSD has not looked up yet, and authentication (never cached here): only the
    # other nodes can answer. SSSD fails over within its timeouts; a few tries allowed.
    local answered=""
    for _ in $(seq 1 30); do
        if id bob 2>/dev/null | grep -q '30002(developers)'; then answered=1; break; fi
        sleep 1
    done
    [ -n "$answered" ] && pass "after: id bob (not looked up before) answered by another node" ||
        fail "after: id bob: $(id bob 2>&1)"
    expect_contains "after: getent passwd carol" "carol:*:20003" getent passwd carol
    expect_contains "after: id alice" "30001(nas-users)" id alice
    expect_rc "after: PAM authenticates alice" 0 \
        bash -c 'echo alice-secret | pamtester tessera alice authenticate acct_mgmt'
    expect_rc "after: PAM refuses a wrong password" 1 \
        bash -c 'echo wrong | pamtester tessera alice authenticate'
    if [ "$FAILURES" != 0 ]; then tail -n 60 "$root"/log/sssd_example.log 2>/dev/null || true; fi
}

in_namespace sssd_failover "${LDAPS_OF[1]}, ${LDAPS_OF[2]}, ${LDAPS_OF[3]}" "$TOKEN_SSSD" ||
    fail "the SSSD run exited $?"
wait "$KILLER" 2>/dev/null || true
SERVER_PID=""
if log_text "$WORK/server2.log" "$WORK/server3.log" | grep 'event="bind"' | grep -q 'sssd-host\|dn=token'; then
    pass "SSSD's binds reached node 2 or 3 after the kill"
else
    fail "no bind of SSSD's on node 2 or 3"
fi
# The two left elect a leader and take a write.
written=""
for _ in $(seq 1 50); do
    if printf 'dn: uid=after-failover,%s\nobjectClass: inetOrgPerson\nuid: after-failover\ncn: a\nsn: a\n' "$PEOPLE" |
        ldapadd -Y EXTERNAL -Q -H "ldapi://$(printf '%s' "$WORK/data2/ldapi.sock" | sed 's|/|%2F|g')" >/dev/null 2>&1; then
        written=1
        break
    fi
    sleep 0.2
done
[ -n "$written" ] && pass "a write through node 2 after the leader's loss" || fail "no write after the leader's loss"
finish
