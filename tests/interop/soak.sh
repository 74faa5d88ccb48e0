#!/usr/bin/env bash
# Soak: mixed load for SOAK_SECONDS (default 60; the full soak is SOAK_SECONDS=600) —
# sessions binding with good and bad passwords and a token, searching, writing, and
# dropping connections abruptly — while the server's RSS and open descriptors are sampled.
# The checks are in soak.py.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
SUFFIX=dc=example,dc=com

# Bad binds are throttled as in production, only with shorter holds.
printf '[throttle]\nmax_delay = "2s"\n' >>"$WORK/tessera.toml"
start_server
for i in $(seq 0 49); do
    printf 'dn: uid=soak%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: soak%s\ncn: Soak %s\nsn: %s\nuserPassword: soak-password\n\n' \
        "$i" "$SUFFIX" "$i" "$i" "$i"
done >"$WORK/people.ldif"
{
    printf 'dn: cn=soak-readers,ou=groups,%s\nobjectClass: groupOfNames\ncn: soak-readers\n' "$SUFFIX"
    for i in $(seq 0 49); do printf 'member: uid=soak%s,ou=people,%s\n' "$i" "$SUFFIX"; done
} >>"$WORK/people.ldif"
ldapadd -Y EXTERNAL -Q -H "$LDAPI" -f "$WORK/people.ldif" >/dev/null
# The people read the directory through their group.
grant directory-readers "cn=soak-readers,ou=groups,$SUFFIX"
"$TESSERA" service-account create soak-reader "Soak reader" "uid=soak0,ou=people,$SUFFIX" \
    --config "$WORK/tessera.toml" >/dev/null
grant directory-readers "uid=soak-reader,ou=services,$SUFFIX"
TOKEN=$("$TESSERA" service-account api-token generate soak-reader soak --config "$WORK/tessera.toml" 2>/dev/null)

rc=0
python3 "$HERE/soak.py" --pid "$SERVER_PID" --port "$LDAPS_PORT" --ldapi "$LDAPI" \
    --ca "$DATA/tls/ca.pem" --token "$TOKEN" --seconds "${SOAK_SECONDS:-60}" >"$WORK/soak.out" 2>&1 || rc=$?
stop_server
relay "$WORK/soak.out"
if [ "$rc" != 0 ] && [ "$FAILURES" = 0 ]; then fail "soak.py exited $rc"; fi
finish
