//! Server configuration: the TOML file, its defaults, and validation into typed values.
//!
//! `RawConfig` mirrors the file (every key optional, unknown keys refused); `Config` is
//! what the server uses. `config.example.toml` documents every key and is parsed by a
//! test. Errors name the key and the problem. No sockets, no store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::directory::dn::Dn;
use crate::directory::time::parse_duration;
use crate::identity::hashers::Priority;
use crate::identity::password::Argon2Params;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config key {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub suffix: Dn,
    pub schema_dir: Option<PathBuf>,
    pub listen: Listen,
    pub tls: Tls,
    pub security: Security,
    pub limits: Limits,
    pub posix: Posix,
    pub argon2: Argon2Params,
    /// Scheduling priority of the password hashing threads.
    pub argon2_priority: Priority,
    pub index: Vec<String>,
    pub log: Log,
    pub tokens: Tokens,
    pub throttle: crate::identity::throttle::ThrottleConfig,
    pub http: Http,
    pub console: Console,
    pub audit: AuditLimits,
    /// Set when this server is a member of a cluster (`[cluster]` with a `node_id`).
    pub cluster: Option<Cluster>,
}

/// A cluster member's settings (`[cluster]`).
#[derive(Debug, Clone)]
pub struct Cluster {
    /// This node's id, unique in the cluster, from 1.
    pub node_id: u64,
    /// Where node-to-node traffic (mutual TLS) is accepted.
    pub listen: std::net::SocketAddr,
    /// The address other nodes reach this one at (host:port); `listen` by default.
    pub advertise: String,
    /// How often the leader tells the others it is alive.
    pub heartbeat: Duration,
    /// A follower that hears nothing from the leader for this long (up to twice it)
    /// calls an election.
    pub election_timeout: Duration,
    /// A node that has not heard from a leader (a leader: from a majority) for longer
    /// than this answers binds and searches with 52 (unavailable), so clients fail over.
    pub max_staleness: Duration,
    /// Log entries applied between two snapshots; the log before a snapshot is dropped.
    pub snapshot_every: u64,
    /// How often a node forwards the token uses it gathered to the leader.
    pub token_use_flush: Duration,
    /// How long a write waits to be committed before it fails with 51 (busy).
    pub write_timeout: Duration,
}

/// The web console, on the HTTPS listener under `/console`.
#[derive(Debug, Clone)]
pub struct Console {
    pub enabled: bool,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however busy.
    pub session_lifetime: Duration,
    /// After signing in or confirming a password, minting a token or setting a password
    /// goes without asking again for this long.
    pub reauth_window: Duration,
    /// How long a sign-in link (`tessera console sign-in-link`) stays good.
    pub sign_in_link_lifetime: Duration,
    /// The console's address as browsers reach it, for the sign-in links the CLI prints
    /// (`https://ldap.example.com:8443`); default: from `listen.https`.
    pub url: Option<String>,
    /// The overview lists service accounts none of whose tokens was used for this long.
    pub unused_after: Duration,
}

/// How the audit trail is bounded (`[audit]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditLimits {
    /// Records older than this are dropped.
    pub max_age: Duration,
    /// Past this many records, the oldest are dropped.
    pub max_records: u64,
}

#[derive(Debug, Clone)]
pub struct Http {
    /// Largest request body accepted (413 past it).
    pub max_body_bytes: usize,
    /// Time a request may take, from its headers to its answer (503 past it).
    pub request_timeout: Duration,
    /// Serve `/metrics` on the HTTPS listener (when `listen.metrics` is unset).
    pub metrics_on_https: bool,
}

#[derive(Debug, Clone)]
pub struct Tokens {
    /// Lifetime of a token generated without an explicit expiry.
    pub default_lifetime: Duration,
    /// Longest lifetime allowed; when set, `never` is refused too.
    pub max_lifetime: Option<Duration>,
    /// Delete a valid token sent in a bind over an unprotected connection (it is always
    /// logged and stamped `tokenExposed`).
    pub revoke_on_cleartext: bool,
}

#[derive(Debug, Clone)]
pub struct Listen {
    pub ldaps: Option<ListenAddr>,
    pub ldap: Option<ListenAddr>,
    /// Absolute, or relative to the data directory.
    pub ldapi: Option<PathBuf>,
    /// The HTTP API, health and (unless `metrics` is set) metrics, over TLS.
    pub https: Option<ListenAddr>,
    /// Metrics alone, over plain HTTP: off the API's port when set.
    pub metrics: Option<ListenAddr>,
}

/// Where a TCP listener binds: an IP address, or a host name resolved when the server
/// starts (every address it resolves to is bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Ip(SocketAddr),
    Host { name: String, port: u16 },
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    /// `127.0.0.1:636`, `[::]:636`, `localhost:636`, `ldap.example.com:636`.
    fn from_str(text: &str) -> Result<ListenAddr, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(ListenAddr::Ip(addr));
        }
        let bad = || format!("'{text}' is not host:port (e.g. 127.0.0.1:6636 or localhost:636)");
        let (name, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let name = name.trim_end_matches('.');
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label) {
            return Err(bad());
        }
        Ok(ListenAddr::Host {
            name: name.to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Ip(addr) => write!(f, "{addr}"),
            ListenAddr::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tls {
    /// PEM certificate chain and key; when both are absent a private CA and server
    /// certificate are generated once in `<data_dir>/tls/`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Extra DNS names or addresses for the generated certificate.
    pub hostnames: Vec<String>,
    /// How often the certificate and key files are checked for changes (SIGHUP reloads
    /// at once).
    pub watch_interval: Duration,
    /// PEM CA certificates that client certificates must chain to; None: no client
    /// certificate is requested and SASL EXTERNAL is LDAPI-only.
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// Whether a TLS handshake needs a client certificate when `tls.client_ca` is set. A
/// certificate that is presented is verified either way, and a bad one ends the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Requested; a client without one goes on (OpenLDAP's `TLSVerifyClient try`).
    Optional,
    /// Every handshake needs one (`TLSVerifyClient demand`).
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnonymousAccess {
    /// The rootDSE, the subschema and the suffix entry itself.
    RootDse,
    /// Read like a bound reader.
    Read,
    /// Nothing, not even the rootDSE.
    None,
}

#[derive(Debug, Clone)]
pub struct Security {
    pub require_tls_for_bind: bool,
    pub anonymous: AnonymousAccess,
    /// Peer uids on the LDAPI socket that are directory administrators (the server's own
    /// uid is always one).
    pub admin_uids: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections from one address (IPv6: one /64) at once; LDAPI is not counted.
    pub max_connections_per_ip: usize,
    pub max_message_bytes_anonymous: usize,
    pub max_message_bytes: usize,
    pub tls_handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// The idle timeout while the connection is anonymous; never above `idle_timeout`.
    pub idle_timeout_anonymous: Duration,
    pub write_timeout: Duration,
    /// How long a connection that has answered, with nothing else in flight, keeps polling
    /// for the next request before its thread may sleep; zero turns it off.
    pub busy_poll: Duration,
    pub max_outstanding_ops: usize,
    pub max_paged_searches_per_connection: usize,
    pub max_filter_depth: usize,
    pub max_filter_elements: usize,
    pub size_limit: usize,
    pub time_limit: Duration,
    /// Threads of the password hashing pool (default: one per CPU).
    pub max_password_hashers: usize,
}

#[derive(Debug, Clone)]
pub struct Posix {
    pub uid_min: u32,
    pub uid_max: u32,
    pub gid_min: u32,
    pub gid_max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    suffix: Option<String>,
    schema_dir: Option<PathBuf>,
    #[serde(default)]
    listen: RawListen,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    security: RawSecurity,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    posix: RawPosix,
    #[serde(default)]
    argon2: RawArgon2,
    #[serde(default)]
    index: RawIndex,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    throttle: RawThrottle,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    console: RawConsole,
    #[serde(default)]
    audit: RawAudit,
    cluster: Option<RawCluster>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    node_id: Option<u64>,
    listen: Option<String>,
    advertise: Option<String>,
    heartbeat: Option<String>,
    election_timeout: Option<String>,
    max_staleness: Option<String>,
    snapshot_every: Option<u64>,
    token_use_flush: Option<String>,
    write_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    enabled: Option<bool>,
    idle_timeout: Option<String>,
    session_lifetime: Option<String>,
    reauth_window: Option<String>,
    sign_in_link_lifetime: Option<String>,
    url: Option<String>,
    unused_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    max_body_bytes: Option<usize>,
    request_timeout: Option<String>,
    metrics: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    max_age: Option<String>,
    max_records: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThrottle {
    free_failures: Option<u32>,
    source_free_failures: Option<u32>,
    base_delay: Option<String>,
    max_delay: Option<String>,
    forget_after: Option<String>,
    max_tracked: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    default_lifetime: Option<String>,
    max_lifetime: Option<String>,
    revoke_on_cleartext: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    ldaps: Option<String>,
    ldap: Option<String>,
    ldapi: Option<String>,
    https: Option<String>,
    metrics: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    hostnames: Option<Vec<String>>,
    watch_interval: Option<String>,
    client_ca: Option<PathBuf>,
    client_auth: Option<ClientAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    require_tls_for_bind: Option<bool>,
    anonymous: Option<AnonymousAccess>,
    admin_uids: Option<Vec<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    max_message_bytes_anonymous: Option<usize>,
    max_message_bytes: Option<usize>,
    tls_handshake_timeout: Option<String>,
    idle_timeout: Option<String>,
    idle_timeout_anonymous: Option<String>,
    write_timeout: Option<String>,
    busy_poll: Option<String>,
    max_outstanding_ops: Option<usize>,
    max_paged_searches_per_connection: Option<usize>,
    max_filter_depth: Option<usize>,
    max_filter_elements: Option<usize>,
    size_limit: Option<usize>,
    time_limit: Option<String>,
    max_password_hashers: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPosix {
    uid_min: Option<u32>,
    uid_max: Option<u32>,
    gid_min: Option<u32>,
    gid_max: Option<u32>,
}

/// `[argon2]`: the cost of new hashes, and how the hashing threads are scheduled.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArgon2 {
    memory_kib: Option<u32>,
    iterations: Option<u32>,
    parallelism: Option<u32>,
    priority: Option<Priority>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    attributes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

pub const DEFAULT_INDEX: &[&str] = &[
    "objectClass",
    "uid",
    "cn",
    "mail",
    "uidNumber",
    "gidNumber",
    "member",
    "memberUid",
    "entryUUID",
    "tokenId",
    "entryManagedBy",
];

impl Config {
    /// The embedded defaults: what `tessera serve` uses with no `--config`.
    pub fn defaults() -> Result<Config, ConfigError> {
        Config::from_raw(RawConfig::default())
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<inline>".into(),
            message: e.to_string(),
        })?;
        Config::from_raw(raw)
    }

    /// Where the LDAPI socket lives, if enabled.
    pub fn ldapi_path(&self) -> Option<PathBuf> {
        self.listen.ldapi.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                self.data_dir.join(p)
            }
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("tessera.redb")
    }

    fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let suffix_text = raw.suffix.unwrap_or_else(|| "dc=example,dc=com".into());
        let suffix = Dn::parse(&suffix_text).map_err(|e| ConfigError::Invalid {
            key: "suffix",
            problem: e.to_string(),
        })?;
        if suffix.is_root() {
            return Err(invalid("suffix", "must not be empty"));
        }
        let listen = Listen {
            ldaps: addr("listen.ldaps", raw.listen.ldaps, "127.0.0.1:6636")?,
            ldap: addr("listen.ldap", raw.listen.ldap, "127.0.0.1:3389")?,
            ldapi: match raw.listen.ldapi.as_deref() {
                None => Some(PathBuf::from("ldapi.sock")),
                Some("") => None,
                Some(p) => Some(PathBuf::from(p)),
            },
            https: addr("listen.https", raw.listen.https, "127.0.0.1:8443")?,
            metrics: addr("listen.metrics", raw.listen.metrics, "")?,
        };
        if raw.tls.cert.is_some() != raw.tls.key.is_some() {
            return Err(invalid(
                "tls.cert",
                "tls.cert and tls.key must be given together",
            ));
        }
        if raw.tls.client_auth == Some(ClientAuth::Required) && raw.tls.client_ca.is_none() {
            return Err(invalid(
                "tls.client_auth",
                "\"required\" needs tls.client_ca, the CA client certificates chain to",
            ));
        }
        let l = raw.limits;
        let idle_timeout = duration("limits.idle_timeout", l.idle_timeout, "15m")?;
        let limits = Limits {
            max_connections: positive("limits.max_connections", l.max_connections, 4096)?,
            max_connections_per_ip: positive(
                "limits.max_connections_per_ip",
                l.max_connections_per_ip,
                256,
            )?,
            max_message_bytes_anonymous: positive(
                "limits.max_message_bytes_anonymous",
                l.max_message_bytes_anonymous,
                256 * 1024,
            )?,
            max_message_bytes: positive(
                "limits.max_message_bytes",
                l.max_message_bytes,
                4 * 1024 * 1024,
            )?,
            tls_handshake_timeout: duration(
                "limits.tls_handshake_timeout",
                l.tls_handshake_timeout,
                "10s",
            )?,
            idle_timeout,
            idle_timeout_anonymous: duration(
                "limits.idle_timeout_anonymous",
                l.idle_timeout_anonymous,
                "60s",
            )?
            .min(idle_timeout),
            write_timeout: duration("limits.write_timeout", l.write_timeout, "30s")?,
            busy_poll: busy_poll(l.busy_poll)?,
            max_outstanding_ops: positive("limits.max_outstanding_ops", l.max_outstanding_ops, 64)?,
            max_paged_searches_per_connection: positive(
                "limits.max_paged_searches_per_connection",
                l.max_paged_searches_per_connection,
                16,
            )?,
            max_filter_depth: positive("limits.max_filter_depth", l.max_filter_depth, 32)?,
            max_filter_elements: positive(
                "limits.max_filter_elements",
                l.max_filter_elements,
                1000,
            )?,
            size_limit: positive("limits.size_limit", l.size_limit, 1000)?,
            time_limit: duration("limits.time_limit", l.time_limit, "60s")?,
            max_password_hashers: positive(
                "limits.max_password_hashers",
                l.max_password_hashers,
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )?,
        };
        if limits.max_message_bytes_anonymous > limits.max_message_bytes {
            return Err(invalid(
                "limits.max_message_bytes_anonymous",
                "must not exceed limits.max_message_bytes",
            ));
        }
        let posix = Posix {
            uid_min: raw.posix.uid_min.unwrap_or(10000),
            uid_max: raw.posix.uid_max.unwrap_or(59999),
            gid_min: raw.posix.gid_min.unwrap_or(10000),
            gid_max: raw.posix.gid_max.unwrap_or(59999),
        };
        if posix.uid_min > posix.uid_max {
            return Err(invalid("posix.uid_min", "must not exceed posix.uid_max"));
        }
        if posix.gid_min > posix.gid_max {
            return Err(invalid("posix.gid_min", "must not exceed posix.gid_max"));
        }
        let cost = Argon2Params::default();
        let argon2 = Argon2Params {
            memory_kib: raw.argon2.memory_kib.unwrap_or(cost.memory_kib),
            iterations: raw.argon2.iterations.unwrap_or(cost.iterations),
            parallelism: raw.argon2.parallelism.unwrap_or(cost.parallelism),
        };
        argon2.validate().map_err(|problem| ConfigError::Invalid {
            key: "argon2",
            problem,
        })?;
        let level = log_level(raw.log.level)?;
        let tokens = Tokens {
            default_lifetime: duration(
                "tokens.default_lifetime",
                raw.tokens.default_lifetime,
                "365d",
            )?,
            max_lifetime: match raw.tokens.max_lifetime.as_deref() {
                None | Some("") => None,
                Some(t) => Some(duration("tokens.max_lifetime", Some(t.to_string()), "")?),
            },
            revoke_on_cleartext: raw.tokens.revoke_on_cleartext.unwrap_or(false),
        };
        if tokens
            .max_lifetime
            .is_some_and(|max| tokens.default_lifetime > max)
        {
            return Err(invalid(
                "tokens.default_lifetime",
                "must not exceed tokens.max_lifetime",
            ));
        }
        Ok(Config {
            tokens,
            data_dir: raw
                .data_dir
                .unwrap_or_else(|| PathBuf::from("tessera-data")),
            suffix,
            schema_dir: raw.schema_dir,
            listen,
            tls: Tls {
                cert: raw.tls.cert,
                key: raw.tls.key,
                hostnames: raw.tls.hostnames.unwrap_or_default(),
                watch_interval: duration("tls.watch_interval", raw.tls.watch_interval, "10s")?,
                client_ca: raw.tls.client_ca,
                client_auth: raw.tls.client_auth.unwrap_or(ClientAuth::Optional),
            },
            security: Security {
                require_tls_for_bind: raw.security.require_tls_for_bind.unwrap_or(true),
                anonymous: raw.security.anonymous.unwrap_or(AnonymousAccess::RootDse),
                admin_uids: raw.security.admin_uids.unwrap_or_else(|| vec![0]),
            },
            limits,
            posix,
            argon2,
            argon2_priority: raw.argon2.priority.unwrap_or_default(),
            index: required_indexes(raw.index.attributes)?,
            log: Log {
                format: raw.log.format.unwrap_or(LogFormat::Text),
                level,
            },
            throttle: throttle(raw.throttle)?,
            http: Http {
                max_body_bytes: positive(
                    "http.max_body_bytes",
                    raw.http.max_body_bytes,
                    1024 * 1024,
                )?,
                request_timeout: duration("http.request_timeout", raw.http.request_timeout, "30s")?,
                metrics_on_https: raw.http.metrics.unwrap_or(true),
            },
            console: console(raw.console)?,
            audit: AuditLimits {
                max_age: duration("audit.max_age", raw.audit.max_age, "90d")?,
                max_records: match raw.audit.max_records {
                    Some(0) => return Err(invalid("audit.max_records", "must be greater than 0")),
                    Some(n) => n,
                    None => 100_000,
                },
            },
            cluster: raw.cluster.map(cluster).transpose()?,
        })
    }
}

/// `[cluster]`: given at all, it needs `node_id` and `listen`.
fn cluster(raw: RawCluster) -> Result<Cluster, ConfigError> {
    let node_id = match raw.node_id {
        Some(0) => return Err(invalid("cluster.node_id", "must be 1 or more")),
        Some(id) => id,
        None => {
            return Err(invalid(
                "cluster.node_id",
                "is required in [cluster] (remove the table to run a single server)",
            ));
        }
    };
    let Some(listen_text) = raw.listen else {
        return Err(invalid(
            "cluster.listen",
            "is required in [cluster] (e.g. \"0.0.0.0:7389\")",
        ));
    };
    let listen: std::net::SocketAddr = listen_text
        .parse()
        .map_err(|_| invalid("cluster.listen", "is not an IP address and port"))?;
    let advertise = raw.advertise.unwrap_or_else(|| listen.to_string());
    if !advertise.contains(':') {
        return Err(invalid("cluster.advertise", "is not host:port"));
    }
    let heartbeat = duration("cluster.heartbeat", raw.heartbeat, "250ms")?;
    let election_timeout = duration("cluster.election_timeout", raw.election_timeout, "1s")?;
    if election_timeout < heartbeat * 3 {
        return Err(invalid(
            "cluster.election_timeout",
            "must be at least three heartbeats",
        ));
    }
    let max_staleness = duration("cluster.max_staleness", raw.max_staleness, "30s")?;
    if max_staleness < election_timeout * 2 {
        return Err(invalid(
            "cluster.max_staleness",
            "must be at least two election timeouts (an election must fit in it)",
        ));
    }
    let snapshot_every = match raw.snapshot_every {
        Some(0) => return Err(invalid("cluster.snapshot_every", "must be 1 or more")),
        Some(n) => n,
        None => 5000,
    };
    Ok(Cluster {
        node_id,
        listen,
        advertise,
        heartbeat,
        election_timeout,
        max_staleness,
        snapshot_every,
        token_use_flush: duration("cluster.token_use_flush", raw.token_use_flush, "10s")?,
        write_timeout: duration("cluster.write_timeout", raw.write_timeout, "10s")?,
    })
}

/// Indexes the server's own rules stand on: POSIX id uniqueness and allocation, group
/// membership and roles, token lookup and delegation. Without them those checks would
/// quietly see nothing, so a list that drops one is refused.
const REQUIRED_INDEX: &[&str] = &[
    "uidNumber",
    "gidNumber",
    "member",
    "tokenId",
    "entryManagedBy",
];

fn required_indexes(listed: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let Some(listed) = listed else {
        return Ok(DEFAULT_INDEX.iter().map(|s| s.to_string()).collect());
    };
    let missing: Vec<&str> = REQUIRED_INDEX
        .iter()
        .copied()
        .filter(|r| !listed.iter().any(|a| a.eq_ignore_ascii_case(r)))
        .collect();
    if missing.is_empty() {
        return Ok(listed);
    }
    Err(invalid(
        "index.attributes",
        &format!(
            "must include {} (uniqueness, membership, roles and tokens depend on them)",
            missing.join(", ")
        ),
    ))
}

fn invalid(key: &'static str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.to_string(),
    }
}

fn addr(
    key: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<Option<ListenAddr>, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_string());
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|problem| ConfigError::Invalid {
            key,
            problem: format!("{problem}, or \"\" to disable"),
        })
}

/// The level names `log.level` takes, alone or after `target=` in a filter.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// `log.level`: a level name, or a tracing filter whose every directive ends in one
/// (`info,tessera::ldap=debug`). A bare word that is no level (`warning`) would be read by
/// tracing as a target name and silence every other event, audit events included, so it
/// is refused.
fn log_level(value: Option<String>) -> Result<String, ConfigError> {
    let text = value.unwrap_or_else(|| "info".into());
    let is_level = |l: &str| LOG_LEVELS.iter().any(|name| l.eq_ignore_ascii_case(name));
    let bad = |part: &str| ConfigError::Invalid {
        key: "log.level",
        problem: format!(
            "'{part}' is not a level: use one of {} (or a filter such as \"info,tessera::ldap=debug\")",
            LOG_LEVELS.join(", ")
        ),
    };
    for directive in text.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            _ => directive,
        };
        if !is_level(level) {
            return Err(bad(directive));
        }
    }
    if tracing_subscriber::EnvFilter::try_new(&text).is_err() {
        return Err(bad(&text));
    }
    Ok(text)
}

fn throttle(t: RawThrottle) -> Result<crate::identity::throttle::ThrottleConfig, ConfigError> {
    let config = crate::identity::throttle::ThrottleConfig {
        free_failures: t.free_failures.unwrap_or(3),
        source_free_failures: t.source_free_failures.unwrap_or(30),
        base_delay: duration("throttle.base_delay", t.base_delay, "1s")?,
        max_delay: duration("throttle.max_delay", t.max_delay, "30s")?,
        forget_after: duration("throttle.forget_after", t.forget_after, "15m")?,
        max_tracked: positive("throttle.max_tracked", t.max_tracked, 100_000)?,
    };
    if config.max_delay < config.base_delay {
        return Err(invalid(
            "throttle.max_delay",
            "must not be shorter than throttle.base_delay",
        ));
    }
    Ok(config)
}

fn positive(key: &'static str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        Some(0) => Err(invalid(key, "must be greater than 0")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn duration(
    key: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_string());
    match parse_duration(&text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ConfigError::Invalid {
            key,
            problem: format!("'{text}' is not a positive duration (e.g. 500ms, 30s, 15m, 2h)"),
        }),
    }
}

fn console(raw: RawConsole) -> Result<Console, ConfigError> {
    let url = match raw.url {
        None => None,
        Some(u) => {
            let u = u.trim_end_matches('/').to_string();
            let host = u.strip_prefix("https://").unwrap_or_default();
            if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
                return Err(ConfigError::Invalid {
                    key: "console.url",
                    problem: format!(
                        "'{u}' is not https://host[:port] (e.g. https://ldap.example.com:8443)"
                    ),
                });
            }
            Some(u)
        }
    };
    Ok(Console {
        enabled: raw.enabled.unwrap_or(true),
        idle_timeout: duration("console.idle_timeout", raw.idle_timeout, "15m")?,
        session_lifetime: duration("console.session_lifetime", raw.session_lifetime, "8h")?,
        reauth_window: duration("console.reauth_window", raw.reauth_window, "5m")?,
        sign_in_link_lifetime: duration(
            "console.sign_in_link_lifetime",
            raw.sign_in_link_lifetime,
            "5m",
        )?,
        url,
        unused_after: duration("console.unused_after", raw.unused_after, "30d")?,
    })
}

/// `limits.busy_poll`: zero (off) up to a millisecond, past which the polling would cost
/// more CPU than the sleep it saves.
fn busy_poll(value: Option<String>) -> Result<Duration, ConfigError> {
    const MAX: Duration = Duration::from_millis(1);
    let text = value.unwrap_or_else(|| "50us".to_string());
    match parse_duration(&text) {
        Some(d) if d <= MAX => Ok(d),
        _ if text.trim() == "0" => Ok(Duration::ZERO),
        _ => Err(ConfigError::Invalid {
            key: "limits.busy_poll",
            problem: format!("'{text}' is not a duration from 0 to 1ms (e.g. 50us)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use serde::de::{DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

    use super::*;

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let text = include_str!("../config.example.toml");
        let parsed = Config::parse(text).unwrap();
        let defaults = Config::defaults().unwrap();
        // The example documents the defaults, so it must configure exactly them.
        assert_eq!(format!("{parsed:?}"), format!("{defaults:?}"));
        assert!(text.lines().filter(|l| l.contains('=')).count() > 20);
    }

    #[test]
    fn example_file_documents_every_accepted_key() {
        let accepted = accepted_keys();
        assert!(accepted.len() > 30, "{accepted:?}");
        for key in [
            "schema_dir",
            "limits.idle_timeout",
            "security.anonymous",
            "tls.hostnames",
        ] {
            assert!(accepted.contains(key), "{key} in {accepted:?}");
        }
        let sample = documented_keys("a = 1\n# prose, no key\n[t]\n# b = \"x\"\nc=[]\n");
        assert_eq!(
            sample,
            BTreeSet::from(["a".into(), "t.b".into(), "t.c".into()])
        );
        let documented = documented_keys(include_str!("../config.example.toml"));
        let missing: Vec<_> = accepted.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "not in config.example.toml: {missing:?}"
        );
        // Commented-out keys are not parsed by the test above, so check them here.
        let unknown: Vec<_> = documented.difference(&accepted).collect();
        assert!(
            unknown.is_empty(),
            "documented but not accepted: {unknown:?}"
        );
    }

    /// Every key `RawConfig` accepts, as `table.key`, read from the field lists serde
    /// derives for the Raw* structs, so it cannot drift from them.
    fn accepted_keys() -> BTreeSet<String> {
        let keys = RefCell::new(BTreeSet::new());
        RawConfig::deserialize(KeyWalker {
            path: String::new(),
            keys: &keys,
        })
        .unwrap();
        keys.into_inner()
    }

    /// Keys set or shown commented out (`# key = ...`) in an example file, by table.
    fn documented_keys(text: &str) -> BTreeSet<String> {
        let mut table = String::new();
        let mut keys = BTreeSet::new();
        for line in text.lines() {
            let line = line.trim();
            // A table may be documented commented out too (`# [cluster]`).
            let bare = line.trim_start_matches('#').trim();
            if let Some(name) = bare.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                table = format!("{name}.");
                continue;
            }
            let line = line.trim_start_matches('#').trim();
            let Some((key, _)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.insert(format!("{table}{key}"));
            }
        }
        keys
    }

    /// A deserializer that hands every struct every one of its fields, each with a
    /// placeholder value, and records the path of each leaf it reaches.
    struct KeyWalker<'a> {
        path: String,
        keys: &'a RefCell<BTreeSet<String>>,
    }

    impl KeyWalker<'_> {
        fn leaf(&self) {
            self.keys.borrow_mut().insert(self.path.clone());
        }
    }

    type WalkError = serde::de::value::Error;

    impl<'de> serde::Deserializer<'de> for KeyWalker<'_> {
        type Error = WalkError;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, WalkError> {
            Err(serde::de::Error::custom(format!(
                "{}: a field type the key walker does not know",
                self.path
            )))
        }

        fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
            self.leaf();
            v.visit_bool(false)
        }

        fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
            self.leaf();
            v.visit_u32(1)
        }

        fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
            self.leaf();
            v.visit_u64(1)
        }

        fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
            self.leaf();
            v.visit_str("")
        }

        fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
            self.deserialize_str(v)
        }

        fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
            self.leaf();
            v.visit_seq(serde::de::value::SeqDeserializer::<_, WalkError>::new(
                std::iter::empty::<u32>(),
            ))
        }

        fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
            v.visit_some(self)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            variants: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, WalkError> {
            self.leaf();
            let first = variants.first().copied().unwrap_or_default();
            v.visit_enum(first.into_deserializer())
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, WalkError> {
            v.visit_map(Fields {
                walker: self,
                fields: fields.iter(),
                current: "",
            })
        }

        serde::forward_to_deserialize_any! {
            i8 i16 i32 i64 i128 u8 u16 u128 f32 f64 char bytes byte_buf unit unit_struct
            newtype_struct tuple tuple_struct map identifier ignored_any
        }
    }

    struct Fields<'a> {
        walker: KeyWalker<'a>,
        fields: std::slice::Iter<'static, &'static str>,
        current: &'static str,
    }

    impl<'de> MapAccess<'de> for Fields<'_> {
        type Error = WalkError;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, WalkError> {
            let Some(field) = self.fields.next() else {
                return Ok(None);
            };
            self.current = field;
            seed.deserialize(field.into_deserializer()).map(Some)
        }

        fn next_value_seed<S: DeserializeSeed<'de>>(
            &mut self,
            seed: S,
        ) -> Result<S::Value, WalkError> {
            let path = match self.walker.path.as_str() {
                "" => self.current.to_string(),
                table => format!("{table}.{}", self.current),
            };
            seed.deserialize(KeyWalker {
                path,
                keys: self.walker.keys,
            })
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = Config::parse("[limits]\nidle_timout = \"5s\"\n").unwrap_err();
        assert!(err.to_string().contains("idle_timout"), "{err}");
        let err = Config::parse("[limits]\nidle_timeout = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("limits.idle_timeout"), "{err}");
        let err = Config::parse("suffix = \"dc=\\\"\"\n").unwrap_err();
        assert!(err.to_string().contains("suffix"), "{err}");
        let err = Config::parse("[listen]\nldaps = \"localhost\"\n").unwrap_err();
        assert!(err.to_string().contains("listen.ldaps"), "{err}");
        for bad in ["localhost:http", "bad_name:636", "-x:1", ":636"] {
            let err = Config::parse(&format!("[listen]\nldaps = \"{bad}\"\n")).unwrap_err();
            assert!(err.to_string().contains("listen.ldaps"), "{bad}: {err}");
        }
        let err = Config::parse("[tls]\nclient_auth = \"required\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.client_ca"), "{err}");
        let config = Config::parse("[tls]\nclient_ca = \"ca.pem\"\nclient_auth = \"required\"\n");
        assert_eq!(config.unwrap().tls.client_auth, ClientAuth::Required);
        let err = Config::parse("[security]\nanonymous = \"everything\"\n").unwrap_err();
        assert!(err.to_string().contains("anonymous"), "{err}");
        let err = Config::parse("[index]\nattributes = [\"uid\", \"member\"]\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("index.attributes") && text.contains("uidNumber, gidNumber, tokenId"),
            "{text}"
        );
        let fewer = "[index]\nattributes = [\"uidNumber\", \"gidNumber\", \"member\", \"tokenId\", \"entryManagedBy\"]\n";
        assert_eq!(
            Config::parse(fewer).unwrap().index.len(),
            5,
            "only what the server needs"
        );
    }

    #[test]
    fn the_hashing_pool_settings() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.argon2_priority, Priority::Idle);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(c.limits.max_password_hashers, cpus);
        assert_eq!(c.argon2, Argon2Params::default());
        let c = Config::parse("[argon2]\npriority = \"normal\"\nmemory_kib = 64\n").unwrap();
        assert_eq!(c.argon2_priority, Priority::Normal);
        assert_eq!(c.argon2.memory_kib, 64);
        assert_eq!(c.argon2.iterations, Argon2Params::default().iterations);
        let err = Config::parse("[argon2]\npriority = \"fast\"\n").unwrap_err();
        assert!(err.to_string().contains("fast"), "{err}");
        let err = Config::parse("[argon2]\nmemory = 64\n").unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
        let err = Config::parse("[limits]\nmax_password_hashers = 0\n").unwrap_err();
        assert!(
            err.to_string().contains("limits.max_password_hashers"),
            "{err}"
        );
    }

    #[test]
    fn the_anonymous_idle_limit_never_exceeds_the_idle_limit() {
        let c = Config::parse("[limits]\nidle_timeout = \"20s\"\n").unwrap();
        assert_eq!(c.limits.idle_timeout_anonymous, Duration::from_secs(20));
        let c = Config::parse("[limits]\nidle_timeout_anonymous = \"5s\"\n").unwrap();
        assert_eq!(c.limits.idle_timeout_anonymous, Duration::from_secs(5));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(15 * 60));
    }

    #[test]
    fn busy_polling_is_off_at_zero_and_at_most_a_millisecond() {
        let limits = |text: &str| Config::parse(&format!("[limits]\n{text}\n"));
        assert_eq!(
            limits("").unwrap().limits.busy_poll,
            Duration::from_micros(50)
        );
        for off in ["busy_poll = \"0\"", "busy_poll = \"0us\""] {
            assert_eq!(limits(off).unwrap().limits.busy_poll, Duration::ZERO);
        }
        assert_eq!(
            limits("busy_poll = \"1ms\"").unwrap().limits.busy_poll,
            Duration::from_millis(1)
        );
        for bad in [
            "busy_poll = \"2ms\"",
            "busy_poll = \"fast\"",
            "busy_poll = \"-1us\"",
        ] {
            let err = limits(bad).unwrap_err();
            assert!(err.to_string().contains("limits.busy_poll"), "{err}");
        }
    }

    #[test]
    fn listen_addresses_may_be_host_names() {
        let c =
            Config::parse("[listen]\nldaps = \"LocalHost:636\"\nldap = \"[::1]:389\"\n").unwrap();
        let host = ListenAddr::Host {
            name: "localhost".into(),
            port: 636,
        };
        assert_eq!(c.listen.ldaps, Some(host));
        assert_eq!(
            c.listen.ldap,
            Some(ListenAddr::Ip("[::1]:389".parse().unwrap()))
        );
        assert_eq!(c.listen.ldaps.unwrap().to_string(), "localhost:636");
    }

    #[test]
    fn log_levels_are_checked_by_name() {
        let level = |l: &str| Config::parse(&format!("[log]\nlevel = \"{l}\"\n"));
        for good in [
            "info",
            "WARN",
            "off",
            "info,tessera::ldap=debug",
            "tessera=trace",
        ] {
            assert_eq!(level(good).unwrap().log.level, good);
        }
        for bad in ["warning", "inf", "info,tessera=loud", "", "verbose"] {
            let err = level(bad).unwrap_err().to_string();
            assert!(
                err.contains("log.level") && err.contains("error, warn, info, debug, trace, off"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_cluster_member_needs_an_id_and_an_address_and_sane_timeouts() {
        let cluster = |table: &str| Config::parse(&format!("[cluster]\n{table}"));
        let c = cluster("node_id = 2\nlisten = \"10.0.0.2:7389\"\n").unwrap();
        let c = c.cluster.unwrap();
        assert_eq!((c.node_id, c.advertise.as_str()), (2, "10.0.0.2:7389"));
        assert_eq!(c.max_staleness, Duration::from_secs(30));
        assert!(
            Config::defaults().unwrap().cluster.is_none(),
            "single by default"
        );
        for (table, key) in [
            ("listen = \"127.0.0.1:7389\"\n", "cluster.node_id"),
            (
                "node_id = 0\nlisten = \"127.0.0.1:7389\"\n",
                "cluster.node_id",
            ),
            ("node_id = 1\n", "cluster.listen"),
            ("node_id = 1\nlisten = \"somewhere\"\n", "cluster.listen"),
            (
                "node_id = 1\nlisten = \"127.0.0.1:1\"\nelection_timeout = \"5s\"\nmax_staleness = \"6s\"\n",
                "cluster.max_staleness",
            ),
            (
                "node_id = 1\nlisten = \"127.0.0.1:1\"\nheartbeat = \"1s\"\n",
                "cluster.election_timeout",
            ),
            (
                "node_id = 1\nlisten = \"127.0.0.1:1\"\nvoters = 3\n",
                "voters",
            ),
        ] {
            let err = cluster(table).unwrap_err().to_string();
            assert!(err.contains(key), "{table}: {err}");
        }
    }

    #[test]
    fn durations() {
        let limits = |line: &str| Config::parse(&format!("[limits]\n{line}\n"));
        let config = limits("idle_timeout = \"1h30m\"").unwrap();
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(5400));
        let err = limits("idle_timeout = \"30m1h\"").unwrap_err();
        assert!(err.to_string().contains("limits.idle_timeout"), "{err}");
    }
}
