#!/usr/bin/env bash
# The Debian package, on this machine: built with cargo deb from the release binary,
# installed with dpkg -i (user, state directory, conffile, unit, man pages, completions),
# the unit checked by systemd-analyze, the installed binary started as the service user
# with the installed config (no systemd needed) and used over LDAPI and LDAPS, then the
# package purged. Needs cargo-deb (.ci/run installs it) and root.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONF=/etc/tessera/config.toml
STATE=/var/lib/tessera
SOCK_URL="ldapi://%2Fvar%2Flib%2Ftessera%2Fldapi.sock"
PKG_PID=""

if dpkg-query -W -f='${Status}' tessera 2>/dev/null | grep -q "ok installed"; then
    echo "a tessera package is installed on this machine already; this test would replace it"
    exit 1
fi
package_cleanup() {
    [ -z "$PKG_PID" ] || { kill -TERM "$PKG_PID" 2>/dev/null || true; wait "$PKG_PID" 2>/dev/null || true; }
    if dpkg-query -W tessera >/dev/null 2>&1; then dpkg --purge tessera >/dev/null 2>&1 || true; fi
    # The purge keeps the data and the user, as it should on a real host; not here.
    rm -rf "$STATE"
    if getent passwd tessera >/dev/null; then userdel tessera 2>/dev/null || true; fi
    cleanup
}
trap package_cleanup EXIT

# wait_up: until the installed server answers on its socket (or exits).
wait_up() {
    for _ in $(seq 1 100); do
        ldapwhoami -Y EXTERNAL -H "$SOCK_URL" >/dev/null 2>&1 && return 0
        kill -0 "$PKG_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
stop_installed() {
    # runuser passes on its child's exit status, but dies of a signal sent to itself:
    # the server (its child, if it has one) gets the SIGTERM.
    local server
    server=$(ps --ppid "$PKG_PID" -o pid= | tr -d ' ')
    kill -TERM "${server:-$PKG_PID}"
    local rc=0
    wait "$PKG_PID" || rc=$?
    PKG_PID=""
    return $rc
}

started=$(date +%s)
deb=$(bash "$ROOT/src/packaging/build-deb.sh" 2>"$WORK/build.log" | tail -1) || true
if [ -f "$deb" ]; then
    pass "cargo deb builds $(basename "$deb") ($(stat -c %s "$deb") bytes, $(($(date +%s) - started)) s)"
else
    fail "no package built: $(tail -5 "$WORK/build.log")"
    finish
    exit 1
fi
# Where systemd runs, the postinst would start the service at once; the runs below start
# the installed binary themselves, so the service is held back as in .ci/run.
policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
fi
expect_rc "dpkg -i installs it" 0 dpkg -i "$deb"
[ -z "$policy_added" ] || rm -f /usr/sbin/policy-rc.d
expect_contains "a system user tessera" "/usr/sbin/nologin" getent passwd tessera
expect_contains "/var/lib/tessera is 0700 and the service's" "700 tessera tessera" stat -c '%a %U %G' "$STATE"
expect_contains "the config is a conffile" "$CONF" dpkg-query -W -f='${Conffiles}' tessera
expect_contains "the unit is installed and enabled" "tessera.service" ls /etc/systemd/system/multi-user.target.wants/
expect_contains "the binary is on the PATH" "tessera 0.1.0" /usr/bin/tessera --version
expect_contains "its man pages are installed" "tessera-tls.1" man -w tessera-tls
expect_contains "bash completions are installed" "complete -F" cat /usr/share/bash-completion/completions/tessera
expect_contains "the licence is in the copyright file" "MIT OR Apache-2.0" cat /usr/share/doc/tessera/copyright

# The unit, checked offline: systemd-analyze prints nothing and exits 0 for a clean unit.
unit=/lib/systemd/system/tessera.service
[ -e "$unit" ] || unit=/usr/lib/systemd/system/tessera.service
if ! command -v systemd-analyze >/dev/null; then
    apt-get install -y -qq systemd >/dev/null
fi
verify=$(systemd-analyze verify "$unit" 2>&1) && [ -z "$verify" ] &&
    pass "systemd-analyze verify: the unit is clean" || fail "systemd-analyze verify: $verify"
sed 's/^Type=notify/Type=notfy/' "$unit" >"$WORK/broken.service"
broken=$(systemd-analyze verify "$WORK/broken.service" 2>&1 || true)
case "$broken" in *"notfy"*) pass "and it does catch a broken unit" ;; *) fail "a broken unit passed: $broken" ;; esac
exposure=$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for tessera.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e < 2.5) }'; then
    pass "systemd-analyze security: exposure $exposure"
else
    fail "systemd-analyze security: exposure '$exposure'"
fi
for key in "Type=notify" "User=tessera" "StateDirectoryMode=0700" "AmbientCapabilities=CAP_NET_BIND_SERVICE" \
    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" "ProtectSystem=strict" "NoNewPrivileges=yes" \
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" "SystemCallFilter=@system-service"; do
    expect_contains "the unit has $key" "$key" cat "$unit"
done

# As the service user without the capability, 636 is refused with what to do, before
# anything is created in the state directory.
expect_rc "without CAP_NET_BIND_SERVICE the start fails" 1 \
    runuser -u tessera -- /usr/bin/tessera serve --config "$CONF"
expect_contains "naming the key and the capability" 'listen.ldaps = "0.0.0.0:636": permission denied' cat "$WORK/last.out"
expect_contains "and the ways out" "AmbientCapabilities=CAP_NET_BIND_SERVICE" cat "$WORK/last.out"
expect_contains "including a port above 1024" "port above 1024" cat "$WORK/last.out"
if [ -z "$(ls -A "$STATE")" ]; then pass "nothing was created before it failed"; else fail "left: $(ls -A "$STATE")"; fi

# With the capability as the unit grants it (ambient), on 636 and 389 as configured.
setpriv --reuid tessera --regid tessera --init-groups --inh-caps +net_bind_service \
    --ambient-caps +net_bind_service /usr/bin/tessera serve --config "$CONF" \
    >"$WORK/pkg.out" 2>"$WORK/pkg.log" &
PKG_PID=$!
if wait_up; then pass "the installed server starts with the installed config"; else fail "it did not start: $(cat "$WORK/pkg.log")"; fi
expect_contains "it runs as tessera" "tessera" ps -o user= -p "$PKG_PID"
expect_contains "LDAPI: root is the local administrator" "dn:gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth" \
    ldapwhoami -Y EXTERNAL -H "$SOCK_URL"
expect_contains "LDAPS on 636, verified against the generated CA" "namingContexts: dc=example,dc=com" \
    env LDAPTLS_CACERT=$STATE/tls/ca.pem ldapsearch -H ldaps://localhost:636 -x -b "" -s base namingContexts
expect_contains "StartTLS on 389" "supportedLDAPVersion: 3" \
    env LDAPTLS_CACERT=$STATE/tls/ca.pem ldapsearch -H ldap://localhost:389 -ZZ -x -b "" -s base supportedLDAPVersion
expect_contains "the CA key is the service's, owner-only" "600 tessera" stat -c '%a %U' "$STATE/tls/ca.key"
if stop_installed; then pass "SIGTERM stops it cleanly"; else fail "exit status on SIGTERM"; fi

# runuser as the brief has it, the listeners moved above 1024 in the installed config.
sed -i "s/0.0.0.0:636/127.0.0.1:$LDAPS_PORT/; s/0.0.0.0:389/127.0.0.1:$LDAP_PORT/" "$CONF"
runuser -u tessera -- /usr/bin/tessera serve --config "$CONF" >"$WORK/pkg.out" 2>"$WORK/pkg.log" &
PKG_PID=$!
if wait_up; then pass "runuser -u tessera starts it on ports above 1024"; else fail "it did not start: $(cat "$WORK/pkg.log")"; fi
expect_contains "the installed CLI creates a person over LDAPI" "created uid=alice" \
    /usr/bin/tessera person create alice "Alice Example" --posix --config "$CONF"
TESSERA_NEW_PASSWORD=alice-pw /usr/bin/tessera person set-password alice --config "$CONF" >/dev/null
export LDAPTLS_CACERT=$STATE/tls/ca.pem
expect_contains "who binds over LDAPS" "dn:uid=alice,ou=people,dc=example,dc=com" \
    ldapwhoami -H "ldaps://localhost:$LDAPS_PORT" -x -D uid=alice,ou=people,dc=example,dc=com -w alice-pw
expect_contains "and searches" "uidNumber: " \
    ldapsearch -H "ldaps://localhost:$LDAPS_PORT" -x -D uid=alice,ou=people,dc=example,dc=com -w alice-pw \
    -b uid=alice,ou=people,dc=example,dc=com -s base uidNumber
expect_contains "tessera tls reads the service's certificate" "renewal      automatic" \
    /usr/bin/tessera tls --config "$CONF"
expect_rc "tessera tls renew, run as root" 0 /usr/bin/tessera tls renew --config "$CONF"
expect_contains "leaves the new key the service's, owner-only" "600 tessera" stat -c '%a %U' "$STATE/tls/server.key"
kill -HUP "$(ps --ppid "$PKG_PID" -o pid= | tr -d ' ')"
for _ in $(seq 1 50); do grep -q "tls-reload" "$WORK/pkg.log" && break; sleep 0.1; done
expect_contains "which the server, as tessera, loads on SIGHUP" "tls-reloaded" cat "$WORK/pkg.log"
if stop_installed; then pass "SIGTERM stops it cleanly"; else fail "exit status on SIGTERM"; fi

expect_rc "dpkg --purge removes it" 0 dpkg --purge tessera
for gone in /usr/bin/tessera /etc/tessera "$unit" /etc/systemd/system/multi-user.target.wants/tessera.service; do
    if [ -e "$gone" ]; then fail "$gone is left after the purge"; else pass "$gone is gone"; fi
done
expect_contains "the data is kept, and the purge says so" "is kept" cat "$WORK/last.out"
finish
