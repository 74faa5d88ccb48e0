//! The server's metrics, in the Prometheus text format (`prometheus-client`, one registry
//! per server, no global state).
//!
//! Counted as things happen: binds by method and result, operations by protocol, type and
//! result with latency histograms, connections open, accepted and refused by reason, bind
//! throttling, entries returned per search, store commit latency. Read when scraped:
//! password-hashing queue and wait, store file size, tokens active, expiring within 7 days
//! and exposed, certificate expiry, throttled keys. Labels are bounded sets (operation
//! names, result names, route templates): never a DN, a token or an address, which belong
//! in the audit trail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ldap3_proto::proto::LdapResultCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BindLabels {
    method: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    protocol: &'static str,
    operation: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpKind {
    protocol: &'static str,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Listener {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refusal {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenState {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

/// What the server counts. Cheap to share; every method takes `&self`.
pub struct Metrics {
    registry: Registry,
    binds: Family<BindLabels, Counter>,
    operations: Family<OpLabels, Counter>,
    durations: Family<OpKind, Histogram>,
    open: Family<Listener, Gauge>,
    accepted: Family<Listener, Counter>,
    refused: Family<Refusal, Counter>,
    throttled: Counter,
    throttled_keys: Gauge,
    entries: Histogram,
    commits: Histogram,
    file_bytes: Gauge,
    hash_queue: Gauge,
    hash_waits: Counter,
    hash_wait_seconds: Counter<f64, AtomicU64>,
    tokens: Family<TokenState, Gauge>,
    cert_expiry: Gauge,
    audit_dropped: Counter,
    /// What the audit journal had dropped at the last scrape.
    audit_dropped_seen: AtomicU64,
    /// Hashing waits at the last scrape: (count, microseconds).
    hash_seen: (AtomicU64, AtomicU64),
}

/// Latency buckets: 100 µs to 10 s.
const SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Entries per search.
const ENTRIES: [f64; 10] = [
    0.0, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 1000.0, 10000.0, 100000.0,
];

fn latency() -> Histogram {
    Histogram::new(SECONDS)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tessera");
        let binds = Family::<BindLabels, Counter>::default();
        registry.register(
            "binds",
            "Authentications (LDAP binds, HTTP credentials) by method and result",
            binds.clone(),
        );
        let operations = Family::<OpLabels, Counter>::default();
        registry.register(
            "operations",
            "Operations by protocol, type and result (LDAP result name or HTTP status)",
            operations.clone(),
        );
        let durations = Family::<OpKind, Histogram>::new_with_constructor(latency as fn() -> _);
        registry.register_with_unit(
            "operation_duration",
            "Time from request to answer, by protocol and operation",
            Unit::Seconds,
            durations.clone(),
        );
        let open = Family::<Listener, Gauge>::default();
        registry.register("connections_open", "Connections open now", open.clone());
        let accepted = Family::<Listener, Counter>::default();
        registry.register(
            "connections_accepted",
            "Connections accepted",
            accepted.clone(),
        );
        let refused = Family::<Refusal, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections refused, by reason",
            refused.clone(),
        );
        let throttled = Counter::default();
        registry.register(
            "bind_throttle_started",
            "Times failed binds on a name or from a source started being slowed down",
            throttled.clone(),
        );
        let throttled_keys = Gauge::default();
        registry.register(
            "throttled_keys",
            "Names and sources whose failed binds are being slowed down now",
            throttled_keys.clone(),
        );
        let entries = Histogram::new(ENTRIES);
        registry.register(
            "search_entries_returned",
            "Entries returned per LDAP search",
            entries.clone(),
        );
        let commits = latency();
        registry.register_with_unit(
            "store_commit_duration",
            "Time a store write transaction takes to commit",
            Unit::Seconds,
            commits.clone(),
        );
        let file_bytes = Gauge::default();
        registry.register_with_unit(
            "store_file_size",
            "Size of the store file",
            Unit::Bytes,
            file_bytes.clone(),
        );
        let hash_queue = Gauge::default();
        registry.register(
            "password_hash_queue_depth",
            "Password hashing jobs waiting for a hashing thread",
            hash_queue.clone(),
        );
        let hash_waits = Counter::default();
        registry.register(
            "password_hash_waits",
            "Password hashing jobs that have started",
            hash_waits.clone(),
        );
        let hash_wait_seconds = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "password_hash_wait",
            "Time password hashing jobs spent waiting for a thread, in total",
            Unit::Seconds,
            hash_wait_seconds.clone(),
        );
        let tokens = Family::<TokenState, Gauge>::default();
        registry.register(
            "tokens",
            "Tokens by state: active (live), expiring (live, expiring within 7 days), exposed (sent without TLS)",
            tokens.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register_with_unit(
            "certificate_expiry_timestamp",
            "When the server certificate in service expires (Unix time)",
            Unit::Seconds,
            cert_expiry.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_records_dropped",
            "Audit records logged but not stored because the store fell behind",
            audit_dropped.clone(),
        );
        let build = Family::<Version, Gauge>::default();
        build
            .get_or_create(&Version {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The running version", build);
        Metrics {
            registry,
            binds,
            operations,
            durations,
            open,
            accepted,
            refused,
            throttled,
            throttled_keys,
            entries,
            commits,
            file_bytes,
            hash_queue,
            hash_waits,
            hash_wait_seconds,
            tokens,
            cert_expiry,
            audit_dropped,
            audit_dropped_seen: AtomicU64::new(0),
            hash_seen: (AtomicU64::new(0), AtomicU64::new(0)),
        }
    }

    /// An authentication by `method` that ended with `code`.
    pub fn bind(&self, method: &'static str, code: &LdapResultCode) {
        self.binds
            .get_or_create(&BindLabels {
                method,
                result: result_name(code),
            })
            .inc();
    }

    /// An LDAP operation that ended with `code` after `took`.
    pub fn ldap_operation(&self, operation: &'static str, code: &LdapResultCode, took: Duration) {
        self.operation("ldap", operation, result_name(code), took);
    }

    /// An HTTP request to `route` (its template, or "unmatched") answered with `status`.
    pub fn http_request(&self, route: &str, status: u16, took: Duration) {
        self.operation("http", route, &status.to_string(), took);
    }

    fn operation(&self, protocol: &'static str, operation: &str, result: &str, took: Duration) {
        self.operations
            .get_or_create(&OpLabels {
                protocol,
                operation: operation.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.durations
            .get_or_create(&OpKind {
                protocol,
                operation: operation.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A connection accepted on `listener`, counted open until the guard drops.
    pub fn connection(self: &Arc<Self>, listener: &'static str) -> OpenConnection {
        self.accepted.get_or_create(&Listener { listener }).inc();
        self.open.get_or_create(&Listener { listener }).inc();
        OpenConnection {
            metrics: self.clone(),
            listener,
        }
    }

    /// A connection refused on `listener` (`per-address-limit`, `connection-limit`,
    /// `tls-handshake`).
    pub fn refused(&self, listener: &'static str, reason: &'static str) {
        self.refused
            .get_or_create(&Refusal { listener, reason })
            .inc();
    }

    pub fn throttled(&self) {
        self.throttled.inc();
    }

    pub fn entries_returned(&self, n: usize) {
        self.entries.observe(n as f64);
    }

    pub fn commit(&self, took: Duration) {
        self.commits.observe(took.as_secs_f64());
    }

    /// Everything, with `now` read in first: OpenMetrics, or (for clients that do not ask
    /// for it, such as `promtool check metrics`) the Prometheus text format 0.0.4.
    pub fn render(&self, now: &Snapshot, format: Format) -> String {
        self.file_bytes
            .set(i64::try_from(now.file_bytes).unwrap_or(i64::MAX));
        self.hash_queue
            .set(i64::try_from(now.hash_queue).unwrap_or(i64::MAX));
        let (count, micros) = now.hash_waits;
        let seen_count = self.hash_seen.0.swap(count, Ordering::Relaxed);
        let seen_micros = self.hash_seen.1.swap(micros, Ordering::Relaxed);
        self.hash_waits.inc_by(count.saturating_sub(seen_count));
        self.hash_wait_seconds
            .inc_by(micros.saturating_sub(seen_micros) as f64 / 1e6);
        for (state, n) in [
            ("active", now.tokens.active),
            ("expiring", now.tokens.expiring),
            ("exposed", now.tokens.exposed),
        ] {
            self.tokens
                .get_or_create(&TokenState { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        if let Some(t) = now.cert_expiry {
            self.cert_expiry.set(t);
        }
        self.throttled_keys
            .set(i64::try_from(now.throttled_keys).unwrap_or(i64::MAX));
        let seen = self
            .audit_dropped_seen
            .swap(now.audit_dropped, Ordering::Relaxed);
        self.audit_dropped
            .inc_by(now.audit_dropped.saturating_sub(seen));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        match format {
            Format::OpenMetrics => out,
            Format::Prometheus => prometheus_text(&out),
        }
    }
}

/// The two exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
    /// `text/plain; version=0.0.4`
    Prometheus,
}

impl Format {
    /// What a scraper's `Accept` header asks for: OpenMetrics when it names it.
    pub fn accepted(accept: &str) -> Format {
        if accept.contains("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// OpenMetrics text as the Prometheus text format 0.0.4: a counter's HELP and TYPE name its
/// samples (`x_total`, not the family `x`), and UNIT and EOF lines do not exist there.
fn prometheus_text(open_metrics: &str) -> String {
    let counters: Vec<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// What is read when metrics are scraped.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub file_bytes: u64,
    pub hash_queue: usize,
    /// Hashing jobs started, and their waits in microseconds, since the start.
    pub hash_waits: (u64, u64),
    pub tokens: TokenCounts,
    /// Unix time the certificate expires.
    pub cert_expiry: Option<i64>,
    pub throttled_keys: usize,
    pub audit_dropped: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TokenCounts {
    pub active: u64,
    pub expiring: u64,
    pub exposed: u64,
}

/// An open connection, counted until dropped.
pub struct OpenConnection {
    metrics: Arc<Metrics>,
    listener: &'static str,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics
            .open
            .get_or_create(&Listener {
                listener: self.listener,
            })
            .dec();
    }
}

/// The LDAP result's name, for a label: a fixed set.
pub fn result_name(code: &LdapResultCode) -> &'static str {
    use LdapResultCode as C;
    match code {
        C::Success => "success",
        C::OperationsError => "operations_error",
        C::ProtocolError => "protocol_error",
        C::TimeLimitExceeded => "time_limit_exceeded",
        C::SizeLimitExceeded => "size_limit_exceeded",
        C::CompareFalse => "compare_false",
        C::CompareTrue => "compare_true",
        C::AuthMethodNotSupported => "auth_method_not_supported",
        C::StrongerAuthRequired => "stronger_auth_required",
        C::AdminLimitExceeded => "admin_limit_exceeded",
        C::UnavailableCriticalExtension => "unavailable_critical_extension",
        C::ConfidentialityRequired => "confidentiality_required",
        C::NoSuchAttribute => "no_such_attribute",
        C::UndefinedAttributeType => "undefined_attribute_type",
        C::ConstraintViolation => "constraint_violation",
        C::AttributeOrValueExists => "attribute_or_value_exists",
        C::InvalidAttributeSyntax => "invalid_attribute_syntax",
        C::NoSuchObject => "no_such_object",
        C::InvalidDNSyntax => "invalid_dn_syntax",
        C::InappropriateAuthentication => "inappropriate_authentication",
        C::InvalidCredentials => "invalid_credentials",
        C::InsufficentAccessRights => "insufficient_access_rights",
        C::Busy => "busy",
        C::Unavailable => "unavailable",
        C::UnwillingToPerform => "unwilling_to_perform",
        C::NamingViolation => "naming_violation",
        C::ObjectClassViolation => "object_class_violation",
        C::NotAllowedOnNonLeaf => "not_allowed_on_non_leaf",
        C::NotALlowedOnRDN => "not_allowed_on_rdn",
        C::EntryAlreadyExists => "entry_already_exists",
        C::ObjectClassModsProhibited => "object_class_mods_prohibited",
        C::AuthorizationError => "authorization_denied",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_each_family_once_and_carries_no_identities() {
        let m = Arc::new(Metrics::new());
        m.bind("token", &LdapResultCode::Success);
        m.bind("password", &LdapResultCode::InvalidCredentials);
        m.ldap_operation(
            "search",
            &LdapResultCode::Success,
            Duration::from_micros(300),
        );
        m.http_request("/api/v1/whoami", 200, Duration::from_millis(2));
        let open = m.connection("ldaps");
        m.refused("ldap", "connection-limit");
        let text = m.render(
            &Snapshot {
                tokens: TokenCounts {
                    active: 3,
                    expiring: 1,
                    exposed: 0,
                },
                ..Snapshot::default()
            },
            Format::OpenMetrics,
        );
        for needle in [
            "tessera_binds_total{method=\"token\",result=\"success\"} 1",
            "tessera_binds_total{method=\"password\",result=\"invalid_credentials\"} 1",
            "tessera_operations_total{protocol=\"ldap\",operation=\"search\",result=\"success\"} 1",
            "tessera_operation_duration_seconds_bucket{",
            "tessera_connections_open{listener=\"ldaps\"} 1",
            "tessera_tokens{state=\"active\"} 3",
            "tessera_build_info{version=",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        drop(open);
        let text = m.render(&Snapshot::default(), Format::Prometheus);
        assert!(text.contains("tessera_connections_open{listener=\"ldaps\"} 0"));
        assert!(
            text.contains("# TYPE tessera_binds_total counter"),
            "{text}"
        );
        assert!(text.contains("# HELP tessera_binds_total Authentications"));
        assert!(text.contains("# TYPE tessera_connections_open gauge"));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
    }
}
