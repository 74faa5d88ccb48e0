#!/usr/bin/env bash
# Metrics: served alone on their own port (listen.metrics) and no longer on the API's,
# counting real traffic without a name in any label; Prometheus's own promtool accepts
# the output, and a real Prometheus scrapes it.
source "$(dirname "$0")/lib.sh"

METRICS_PORT=$(free_port)
PROM_PORT=$(free_port)
sed -i "/^https = /a metrics = \"127.0.0.1:$METRICS_PORT\"" "$WORK/tessera.toml"
start_server
METRICS="http://127.0.0.1:$METRICS_PORT/metrics"

# Traffic: a person, a good and a bad bind, a search, a token.
"$TESSERA" person create alice "Alice Example" --config "$WORK/tessera.toml" >/dev/null
printf 'dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: userPassword\nuserPassword: pw\n' |
    ldapmodify -Y EXTERNAL -Q -H "$LDAPI" >/dev/null
ldapwhoami -H "$LDAPS" -x -D uid=alice,ou=people,dc=example,dc=com -w pw >/dev/null
ldapwhoami -H "$LDAPS" -x -D uid=alice,ou=people,dc=example,dc=com -w wrong >/dev/null 2>&1 || true
ldapsearch -H "$LDAPS" -x -D uid=alice,ou=people,dc=example,dc=com -w pw -b dc=example,dc=com uid >/dev/null

run_captured curl -fsS "$METRICS"
cp "$WORK/last.out" "$WORK/metrics.txt"
for needle in 'tessera_binds_total{method="password",result="success"} 2' \
    'tessera_binds_total{method="password",result="invalid_credentials"} 1' \
    'tessera_operations_total{protocol="ldap",operation="search",result="success"}' \
    'tessera_connections_accepted_total{listener="ldaps"}' \
    'tessera_store_commit_duration_seconds_count' 'tessera_certificate_expiry_timestamp_seconds' \
    'tessera_tokens{state="active"}' '# TYPE tessera_binds_total counter'; do
    expect_contains "the metrics have $needle" "$needle" cat "$WORK/metrics.txt"
done
expect_absent "no name in any label" 'tessera_build_info' 'uid=' cat "$WORK/metrics.txt"
expect_rc "no metrics on the API's port when they have their own" 22 \
    curl -fsS --cacert "$DATA/tls/ca.pem" "$API/metrics"
expect_rc "promtool check metrics accepts them" 0 sh -c "promtool check metrics <'$WORK/metrics.txt'"
expect_contains "OpenMetrics for a scraper that asks for it" '# EOF' \
    curl -fsS -H 'Accept: application/openmetrics-text; version=1.0.0' "$METRICS"

# A real Prometheus scrapes them.
cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: tessera
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
YML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
on_exit "kill $PROM_PID 2>/dev/null; wait $PROM_PID 2>/dev/null"
scraped() {
    for _ in $(seq 1 60); do
        out=$(curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query?query=tessera_build_info" 2>/dev/null || true)
        case "$out" in *'"job":"tessera"'*) echo "$out"; return 0 ;; esac
        sleep 0.5
    done
    echo "no sample: $out"; tail -5 "$WORK/prometheus.log"; return 1
}
expect_contains "Prometheus scraped them" '"version":"' scraped
expect_contains "the target is up" '"value":[' curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query?query=up%7Bjob%3D%22tessera%22%7D%3D%3D1"
finish
