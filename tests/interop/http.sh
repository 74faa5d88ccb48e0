#!/usr/bin/env bash
# The HTTP API with curl: the README's examples, run as written (the block between its
# markers), then what they must have done — the service account made, its token binding
# over LDAP until revoked, listed with its last use, the audit trail naming it all — and the
# API's answers to a wrong token and to the protocol each token is minted for.
source "$(dirname "$0")/lib.sh"

README="$(cd "$(dirname "$0")/../.." && pwd)/README.md"
start_server

# The block the README marks, de-indented, the LDAPS URL pointed at this server.
sed -n '/^<!-- tests\/interop\/http.sh runs this block -->$/,/^<!-- end of the block/p' "$README" |
    sed -n 's/^    //p' | sed "s|ldaps://localhost:636|$LDAPS|" >"$WORK/readme.sh"
lines=$(grep -c . "$WORK/readme.sh" || true)
at_least "the README's HTTP example block was found" 10 "$lines"

export API="$API/api/v1" CACERT="$DATA/tls/ca.pem" TESSERA WORK
tessera() { "$TESSERA" "$@" --config "$WORK/tessera.toml"; }
run_captured bash -c "set -euo pipefail; cd '$WORK'; $(declare -f tessera); source '$WORK/readme.sh'"
if [ "$LAST_RC" = 0 ]; then pass "the README's examples run"; else fail "the README's examples: exit $LAST_RC: $(cat "$WORK/last.out")"; fi
cp "$WORK/last.out" "$WORK/readme.out"
check() { # NAME NEEDLE: the examples' output has NEEDLE
    if grep -qF -- "$2" "$WORK/readme.out"; then pass "$1"; else fail "$1: no '$2' in: $(cat "$WORK/readme.out")"; fi
}
check "whoami names the automation account" '"dn":"uid=automation,ou=services,dc=example,dc=com"'
check "the service account was made" '"dn":"uid=nas02,ou=services,dc=example,dc=com"'
check "its token's LDAP bind worked" "dn:uid=nas02,ou=services,dc=example,dc=com"
check "its tokens are listed with their label" '"label":"nas02 ldap"'
check "the audit trail has the token's generation" '"kind":"token-generated"'
check "the audit trail has its bind, from this host" '"transport":"ldaps"'
check "the audit trail has its revocation" '"kind":"token-revoked"'

NAS_TOKEN=$(jq -r .token "$WORK/nas02-token.json")
expect_rc "the revoked token no longer binds" 49 ldapwhoami -H "$LDAPS" -x -D dn=token -w "$NAS_TOKEN"
expect_absent "the token list never shows a secret" '"items"' "${NAS_TOKEN#tsr_}" \
    curl -fsS --cacert "$CACERT" -H "Authorization: Bearer $(tessera service-account api-token generate automation again 1d --http 2>/dev/null)" \
    "$API/service-accounts/nas02/tokens"

# Tokens are minted for one protocol: an LDAP token cannot drive the API.
LDAP_TOKEN=$(tessera service-account api-token generate nas02 ldap-only 1d 2>/dev/null)
expect_rc "an LDAP token gets 401 from the API" 22 curl -fsS --cacert "$CACERT" \
    -H "Authorization: Bearer $LDAP_TOKEN" "$API/whoami"
expect_output "a wrong token gets a problem document" 0 '"status":401' curl -sS --cacert "$CACERT" \
    -H "Authorization: Bearer tsr_nonsense" "$API/whoami"
expect_contains "the last use of a token is listed" '"last_used"' bash -c '
    for _ in $(seq 1 50); do
        out=$(curl -fsS --cacert "$CACERT" -H "Authorization: Bearer $0" "$API/service-accounts/nas02/tokens")
        case "$out" in *last_used*) echo "$out"; exit 0 ;; esac
        ldapwhoami -H "$1" -x -D dn=token -w "$2" >/dev/null; sleep 0.2
    done; echo "$out"' "$(tessera service-account api-token generate automation list 1d --http 2>/dev/null)" "$LDAPS" "$LDAP_TOKEN"
expect_contains "health" '"status":"ok"' curl -fsS --cacert "$CACERT" "${API%/api/v1}/healthz"
expect_contains "readiness" '"status":"ready"' curl -fsS --cacert "$CACERT" "${API%/api/v1}/readyz"
expect_contains "the OpenAPI document" '"openapi":"3.1' curl -fsS --cacert "$CACERT" "$API/openapi.json"
expect_absent "no token nor its secret appears in the server's log" 'event="bind"' \
    "${NAS_TOKEN#tsr_}"$'\n'"${LDAP_TOKEN#tsr_}" log_text "$WORK/server.log"
finish
