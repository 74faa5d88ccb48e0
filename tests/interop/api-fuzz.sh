#!/usr/bin/env bash
# A third-party API fuzzer against the served OpenAPI document: schemathesis generates
# requests for every operation from the document (valid ones and invalid ones), as a
# directory administrator, and checks every answer: never a 5xx, a documented status and
# content type, a body matching the documented schema, invalid input refused with a 4xx.
# Bounded in time (SCHEMATHESIS_MAX_TIME, default 150 s) and in examples per operation.
source "$(dirname "$0")/lib.sh"

SCHEMATHESIS=${SCHEMATHESIS:-schemathesis}
if ! command -v "$SCHEMATHESIS" >/dev/null; then
    fail "schemathesis is not installed (.ci/run installs it; or set SCHEMATHESIS)"
    finish
fi
start_server
cli() { "$TESSERA" "$@" --config "$WORK/tessera.toml"; }
cli group create admins >/dev/null
cli service-account create fuzzer "The fuzzer" admins >/dev/null
cli role add-members directory-admins fuzzer >/dev/null
TOKEN=$(cli service-account api-token generate fuzzer fuzz 1d --rw --http 2>/dev/null)
# Entries for the generated requests to find, so they reach more than the 404 of a name
# that does not exist: the fuzzer picks path parameters from these lists most of the time.
for uid in alice bob carol; do cli person create "$uid" "$uid Example" --posix >/dev/null; done
cli group create staff --posix >/dev/null
cli group add-members staff alice bob >/dev/null
cli role create nas-readers --base people --right read >/dev/null
for svc in nas01 nas02; do
    cli service-account create "$svc" "NAS $svc" admins >/dev/null
    cli service-account api-token generate "$svc" ldap 1d >/dev/null 2>&1
done
cat >"$WORK/schemathesis.toml" <<'TOML'
[dictionaries.people]
values = ["alice", "bob", "carol"]
[dictionaries.groups_and_roles]
values = ["staff", "admins", "nas-readers", "directory-readers"]
[dictionaries.accounts]
values = ["nas01", "nas02"]
[parameters]
"path.uid" = { dictionary = "people", probability = 0.7 }
"path.cn" = { dictionary = "groups_and_roles", probability = 0.7 }
"path.name" = { dictionary = "accounts", probability = 0.7 }
TOML

# Its caches go to the working directory: this run's own.
cd "$WORK"
run_captured "$SCHEMATHESIS" --no-color --config-file "$WORK/schemathesis.toml" run "$API/api/v1/openapi.json" \
    --header "Authorization: Bearer $TOKEN" --tls-verify "$DATA/tls/ca.pem" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-40}" --max-time "${SCHEMATHESIS_MAX_TIME:-150}" \
    --request-timeout 20 --workers 2 --seed 24 --suppress-health-check all --generation-database none
cp "$WORK/last.out" "$WORK/schemathesis.out"
if [ "$LAST_RC" = 0 ]; then
    pass "schemathesis found no failure: $(grep -E 'passed|failed' "$WORK/schemathesis.out" | tail -1)"
else
    fail "schemathesis (exit $LAST_RC): $(sed -n '/= \(FAILURES\|ERRORS\) =/,/= SUMMARY =/p' "$WORK/schemathesis.out" | head -200; tail -25 "$WORK/schemathesis.out")"
fi
expect_contains "schemathesis tested every operation" "Tested: 36" cat "$WORK/schemathesis.out"
expect_contains "the server is still there" '"status":"ready"' \
    curl -fsS --cacert "$DATA/tls/ca.pem" "$API/readyz"
expect_absent "no panic in the server's log" 'event="bind"' 'panicked' log_text "$WORK/server.log"
finish
