#!/usr/bin/env bash
# NAS and application profiles on the shared seed: QNAP, Synology DSM, TrueNAS, Keycloak,
# Nextcloud and GitLab, each replayed by profiles.py (python ldap3) with the searches,
# binds and controls shared/research/clients.md records for it. The NAS boxes bind with
# nas01's read-only token (directory-readers), the apps with app01's read-write token
# (directory-sync + people-admins).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/seed.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

PYTHON=python3
"$PYTHON" -c 'import ldap3' 2>/dev/null || PYTHON=/usr/bin/python3
if ! "$PYTHON" -c 'import ldap3' 2>/dev/null; then
    fail "python ldap3 is installed (.ci/run installs python3-ldap3)"
    finish
    exit 1
fi

start_server
load_seed
rc=0
"$PYTHON" "$HERE/profiles.py" --ldaps "$LDAPS" --ldap "$LDAP" --ca "$DATA/tls/ca.pem" \
    --suffix "$SUFFIX" --nas-token "$TOKEN_NAS01" --app-dn "uid=app01,$SERVICES" \
    --app-token "$TOKEN_APP01" >"$WORK/profiles.out" 2>&1 || rc=$?
relay "$WORK/profiles.out"
if [ "$rc" != 0 ] && [ "$FAILURES" = 0 ]; then fail "profiles.py exited $rc"; fi
finish
