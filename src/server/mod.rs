//! Sockets: start-up, the accept loops, the connection limit and graceful shutdown.
//!
//! `start` prepares everything a server needs (data directory, schema, store, TLS,
//! listeners) and returns a handle with the bound addresses, so tests can start servers
//! on `127.0.0.1:0` and drop them. Knows LDAP frames (in `conn`), not LDAP meaning.

pub mod ca;
pub mod conn;
pub mod frame;
pub mod https;
pub mod notify;
pub mod per_ip;
pub mod tls;

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ldap3_proto::proto::LdapResultCode;
use thiserror::Error;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{Config, ListenAddr};
use crate::directory::schema::{Schema, SchemaError};
use crate::dit::tree;
use crate::identity::hashers::Hashers;
use crate::identity::password;
use crate::identity::throttle::Throttle;
use crate::server::conn::ConnShared;
use crate::server::per_ip::PerIp;
use crate::state::State;
use crate::store::{OpenError, Store, StoreError, open_configured};

#[derive(Debug, Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Open(#[from] OpenError),
    #[error("schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {what}: {problem}")]
    Listen { what: String, problem: String },
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("{0}")]
    Other(String),
}

/// A running server: its addresses, and the means to stop it.
pub struct Running {
    pub ldaps: Option<SocketAddr>,
    pub ldap: Option<SocketAddr>,
    pub ldapi: Option<PathBuf>,
    /// The HTTPS listener (the API), and the metrics listener.
    pub https: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    /// The CA that signed the server certificate, when Tessera generated it.
    pub ca: Option<PathBuf>,
    pub state: State,
    certs: Arc<tls::Certificates>,
    lifecycle: Arc<ca::Lifecycle>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Running {
    /// Load the certificate and key files again (SIGHUP); new handshakes use them,
    /// connections already open keep theirs. A bad pair is refused and the old one stays.
    /// `tls.client_ca` is not re-read: it is fixed into the verifier at start.
    pub fn reload_tls(&self) -> Result<(), tls::TlsError> {
        report_reload(self.certs.reload())
    }

    /// SIGHUP with the configuration read again: a generated certificate whose names no
    /// longer match `hostnames` (or that nears expiry) is re-issued by the same CA, then the
    /// files are loaded again.
    pub fn reload_tls_with(&self, hostnames: &[String]) -> Result<(), tls::TlsError> {
        self.lifecycle.set_hostnames(hostnames);
        if let Err(e) = self.lifecycle.check(time::OffsetDateTime::now_utc()) {
            tracing::error!(event = "tls-reissue-failed", error = %e, "re-issuing the certificate failed");
        }
        self.reload_tls()
    }

    /// The daily check, as of `now`: re-issue a generated certificate that is due (and
    /// serve it at once), warn about a configured one near expiry. True when re-issued.
    pub fn check_certificates(&self, now: time::OffsetDateTime) -> Result<bool, tls::TlsError> {
        check_certificates(&self.certs, &self.lifecycle, now)
    }

    /// Stop accepting, let in-flight operations finish, send each client a Notice of
    /// Disconnection, and wait until every connection is closed.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if let Some(cluster) = &self.state.cluster {
            cluster.shutdown().await;
        }
        if let Some(path) = &self.ldapi {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The shared state of a server on `store`.
fn new_state(
    config: Config,
    schema: Schema,
    store: Store,
    shutdown: CancellationToken,
) -> Result<State, StartError> {
    let decoy = password::hash(b"decoy password for timing", &config.argon2)
        .map_err(|e| StartError::Other(e.to_string()))?;
    let mut cookie_key = [0u8; 32];
    getrandom::fill(&mut cookie_key).map_err(|e| StartError::Other(e.to_string()))?;
    let own_uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let config = Arc::new(config);
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let observer = metrics.clone();
    store.observe_commits(move |took| observer.commit(took));
    Ok(State {
        audit: Default::default(),
        metrics,
        hashers: Hashers::start(
            config.limits.max_password_hashers,
            config.argon2_priority,
            config.argon2.memory_kib,
        )
        .map_err(|e| StartError::Other(e.to_string()))?,
        schema: Arc::new(schema),
        store,
        cookie_key: Arc::new(cookie_key),
        paged_ids: Default::default(),
        decoy_hash: Arc::new(decoy),
        own_uid,
        clock: Default::default(),
        token_uses: Default::default(),
        rights: Default::default(),
        throttle: Arc::new(Throttle::new(config.throttle)),
        sign_in_links: Default::default(),
        shutdown,
        config,
        cluster: None,
    })
}

/// A server with no sockets and no files: the shipped schema and an in-memory store,
/// bootstrapped, for driving connections directly (fuzzing the session state machine).
pub fn in_memory(config: Config) -> Result<conn::ConnShared, StartError> {
    let schema = Schema::shipped()?;
    let store = Store::in_memory(&schema, &config.index)?;
    tree::bootstrap(&store, &schema, &config.suffix)?;
    let shutdown = CancellationToken::new();
    let state = new_state(config, schema, store, shutdown.clone())?;
    Ok(conn::ConnShared {
        state,
        tls: None,
        shutdown,
        pollers: Default::default(),
    })
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    // The ports first: a start that cannot listen fails before it creates anything.
    let ldaps_listeners = match &config.listen.ldaps {
        Some(addr) => bind_tcp(addr, "listen.ldaps").await?,
        None => Vec::new(),
    };
    let ldap_listeners = match &config.listen.ldap {
        Some(addr) => bind_tcp(addr, "listen.ldap").await?,
        None => Vec::new(),
    };
    let https_listeners = match &config.listen.https {
        Some(addr) => bind_tcp(addr, "listen.https").await?,
        None => Vec::new(),
    };
    let metrics_listeners = match &config.listen.metrics {
        Some(addr) => bind_tcp(addr, "listen.metrics").await?,
        None => Vec::new(),
    };
    let (schema, store) = open_configured(&config)?;
    // LDAPI too (its socket lives in the data directory), before any listener serves:
    // whoever sees LDAPS answer may go on to use the CLI.
    let ldapi = match config.ldapi_path() {
        Some(path) => Some((bind_unix(&path)?, path)),
        None => None,
    };
    // A cluster member's tree comes through the log: its store is written by nothing else.
    let member = config.cluster.is_some() && store.replicated()?.applied.is_some();
    if !member {
        let created = tree::bootstrap(&store, &schema, &config.suffix)?;
        if created > 0 {
            tracing::info!(created, suffix = %config.suffix, "initialised the directory tree");
        }
    }

    let material = ca::ensure_material(
        config.tls.cert.as_deref().zip(config.tls.key.as_deref()),
        &config.data_dir.join("tls"),
        &config.tls.hostnames,
        time::OffsetDateTime::now_utc(),
    )?;
    let lifecycle = Arc::new(ca::Lifecycle::new(&material, &config.tls.hostnames));
    let certs = Arc::new(tls::Certificates::load(&material.cert, &material.key)?);
    let clients = match &config.tls.client_ca {
        Some(ca) => Some(tls::client_verifier(ca, config.tls.client_auth)?),
        None => None,
    };
    let acceptor = TlsAcceptor::from(tls::server_config(certs.clone(), clients)?);
    // The same certificate, reloaded with it; HTTP/1.1, no client certificates.
    let mut https_tls = (*tls::server_config(certs.clone(), None)?).clone();
    https_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let https_acceptor = TlsAcceptor::from(Arc::new(https_tls));

    let shutdown = CancellationToken::new();
    let mut state = new_state(config, schema, store, shutdown.clone())?;
    let config = state.config.clone();
    let tracker = TaskTracker::new();
    if config.cluster.is_some() {
        let rules = crate::cluster::storage::Rules {
            config: config.clone(),
            schema: state.schema.clone(),
            rights: state.rights.clone(),
            differ: Default::default(),
        };
        let cluster = crate::cluster::Cluster::start(
            &config,
            state.store.clone(),
            rules,
            shutdown.clone(),
            &tracker,
        )
        .await?;
        state.cluster = Some(cluster);
    }
    let shared = ConnShared {
        state: state.clone(),
        tls: Some(acceptor),
        shutdown: shutdown.clone(),
        pollers: Default::default(),
    };
    let slots = Arc::new(Semaphore::new(config.limits.max_connections));
    // One count across both TCP listeners; LDAPI is local and not counted.
    let per_ip = PerIp::new(config.limits.max_connections_per_ip);

    let mut running = Running {
        ldaps: None,
        ldap: None,
        ldapi: None,
        https: None,
        metrics: None,
        ca: material.ca,
        state,
        certs: certs.clone(),
        lifecycle: lifecycle.clone(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };
    tracker.spawn(watch_certificates(
        certs.clone(),
        config.tls.watch_interval,
        shutdown.clone(),
    ));
    tracker.spawn(check_certificates_daily(certs, lifecycle, shutdown.clone()));
    for (listeners, tls) in [(ldaps_listeners, true), (ldap_listeners, false)] {
        for listener in listeners {
            let bound = listener.local_addr().ok();
            let first = if tls {
                &mut running.ldaps
            } else {
                &mut running.ldap
            };
            if first.is_none() {
                *first = bound;
            }
            tracker.spawn(accept_tcp(
                listener,
                shared.clone(),
                slots.clone(),
                per_ip.clone(),
                tracker.clone(),
                tls,
            ));
        }
    }
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let api = crate::http::Api {
        state: running.state.clone(),
        ready: ready.clone(),
        certificate: Some(material.cert.clone()),
        sessions: Default::default(),
    };
    let separate_metrics = !metrics_listeners.is_empty();
    let serving = |app| https::Serving {
        app,
        metrics: running.state.metrics.clone(),
        slots: slots.clone(),
        per_ip: per_ip.clone(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        handshake_timeout: config.limits.tls_handshake_timeout,
    };
    let app = crate::http::app(
        api.clone(),
        config.http.metrics_on_https && !separate_metrics,
    );
    for listener in https_listeners {
        if running.https.is_none() {
            running.https = listener.local_addr().ok();
        }
        let serving = serving(app.clone());
        tracker.spawn(https::serve_tls(listener, https_acceptor.clone(), serving));
    }
    let metrics_app = crate::http::metrics_app(api);
    for listener in metrics_listeners {
        if running.metrics.is_none() {
            running.metrics = listener.local_addr().ok();
        }
        tracker.spawn(https::serve_plain(listener, serving(metrics_app.clone())));
    }
    tracker.spawn(running.state.audit.clone().run(
        running.state.store.clone(),
        config.audit,
        running.state.clock.clone(),
        shutdown.clone(),
    ));
    if let Some((listener, path)) = ldapi {
        running.ldapi = Some(path);
        // A pool of its own: a flood on the network listeners must never lock out the
        // local administrator.
        let local_slots = Arc::new(Semaphore::new(config.limits.max_connections));
        tracker.spawn(accept_unix(
            listener,
            shared.clone(),
            local_slots,
            tracker.clone(),
        ));
    }
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(running)
}

/// Bind the address under config key `key`; a host name binds every address it resolves
/// to (`localhost`: 127.0.0.1 and ::1). Errors name the key and say what to do.
async fn bind_tcp(addr: &ListenAddr, key: &str) -> Result<Vec<TcpListener>, StartError> {
    let what = format!("{key} = \"{addr}\"");
    let addrs = match addr {
        ListenAddr::Ip(ip) => vec![*ip],
        ListenAddr::Host { name, port } => {
            let resolved = tokio::net::lookup_host((name.as_str(), *port))
                .await
                .map_err(|e| StartError::Listen {
                    what: what.clone(),
                    problem: format!(
                        "'{name}' does not resolve ({e}); use an IP address, or a name this host resolves"
                    ),
                })?;
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for a in resolved {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            if addrs.is_empty() {
                return Err(StartError::Listen {
                    what,
                    problem: format!("'{name}' resolves to no address"),
                });
            }
            addrs
        }
    };
    let mut listeners = Vec::with_capacity(addrs.len());
    for a in addrs {
        let listener = TcpListener::bind(a).await.map_err(|e| StartError::Listen {
            what: what.clone(),
            problem: listen_problem(&e, a, key),
        })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// What went wrong binding `addr`, and what to do about it.
fn listen_problem(e: &std::io::Error, addr: SocketAddr, key: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "tessera".into());
            format!(
                "permission denied: port {} is below 1024, which needs the CAP_NET_BIND_SERVICE capability. \
                 Run as a systemd service with AmbientCapabilities=CAP_NET_BIND_SERVICE (the packaged unit does), \
                 or give the binary the capability (setcap cap_net_bind_service=+ep {exe}), \
                 or set {key} to a port above 1024",
                addr.port()
            )
        }
        std::io::ErrorKind::AddrInUse => format!(
            "{addr} is already in use: another server (or another Tessera) listens there; stop it, or set {key} to another port"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine: use one of its addresses, 0.0.0.0 (all) or 127.0.0.1",
            addr.ip()
        ),
        _ => format!("{addr}: {e}"),
    }
}

fn bind_unix(path: &Path) -> Result<UnixListener, StartError> {
    let err = |source: std::io::Error| StartError::Listen {
        what: format!("listen.ldapi = \"{}\"", path.display()),
        problem: source.to_string(),
    };
    // The store lock is already ours, so a socket left here is stale.
    if path.exists() {
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    // Anyone may connect: identity comes from the peer credentials, not the file mode.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(err)?;
    Ok(listener)
}

async fn accept_tcp(
    listener: TcpListener,
    shared: ConnShared,
    slots: Arc<Semaphore>,
    per_ip: PerIp,
    tracker: TaskTracker,
    tls: bool,
) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let listener_name = if tls { "ldaps" } else { "ldap" };
        let metrics = shared.state.metrics.clone();
        let Some(admitted) = per_ip.admit(peer.ip()) else {
            tracing::warn!(%peer, "connection limit for this address reached, refusing");
            metrics.refused(listener_name, "per-address-limit");
            refuse(stream, tls).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached, refusing");
            metrics.refused(listener_name, "connection-limit");
            refuse(stream, tls).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let open = metrics.connection(listener_name);
        let shared = shared.clone();
        // Every event of this connection (binds, token use, writes) names where it came
        // from and over what: the audit trail needs both.
        let span = conn::span(&peer.to_string());
        let connection = async move {
            let _slot = slot;
            let _admitted = admitted;
            let _open = open;
            if tls {
                conn::serve_tls(shared, stream).await;
            } else {
                conn::serve_plain(shared, stream).await;
            }
        };
        tracker.spawn(connection.instrument(span));
    }
}

async fn accept_unix(
    listener: UnixListener,
    shared: ConnShared,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shared.state.metrics.refused("ldapi", "connection-limit");
            continue;
        };
        let open = shared.state.metrics.connection("ldapi");
        let shared = shared.clone();
        let connection = async move {
            let _slot = slot;
            let _open = open;
            conn::serve_local(shared, stream).await;
        };
        tracker.spawn(connection.instrument(conn::span("ldapi")));
    }
}

/// Reload the certificate and key when their files change (renewals drop them in place).
async fn watch_certificates(
    certs: Arc<tls::Certificates>,
    every: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Some(outcome) = certs.reload_if_changed() {
            let _ = report_reload(outcome);
        }
    }
}

/// Once a day (and so within a day of the threshold), the certificate lifecycle check.
async fn check_certificates_daily(
    certs: Arc<tls::Certificates>,
    lifecycle: Arc<ca::Lifecycle>,
    shutdown: CancellationToken,
) {
    const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(DAY) => {}
        }
        let _ = check_certificates(&certs, &lifecycle, time::OffsetDateTime::now_utc());
    }
}

fn check_certificates(
    certs: &tls::Certificates,
    lifecycle: &ca::Lifecycle,
    now: time::OffsetDateTime,
) -> Result<bool, tls::TlsError> {
    let renewed = lifecycle.check(now).inspect_err(|e| {
        tracing::error!(event = "tls-reissue-failed", error = %e, "re-issuing the certificate failed");
    })?;
    if renewed {
        report_reload(certs.reload())?;
    }
    Ok(renewed)
}

fn report_reload(outcome: Result<(), tls::TlsError>) -> Result<(), tls::TlsError> {
    match &outcome {
        Ok(()) => tracing::info!(event = "tls-reloaded", "certificate and key reloaded"),
        Err(e) => tracing::error!(
            event = "tls-reload-refused",
            error = %e,
            "new certificate or key refused; the previous pair stays in service"
        ),
    }
    outcome
}

/// Over the limit: a plain connection gets a Notice of Disconnection (busy); a TLS one is
/// closed before the handshake.
async fn refuse(stream: tokio::net::TcpStream, tls: bool) {
    if tls {
        return;
    }
    use futures_util::SinkExt;
    let mut framed = tokio_util::codec::FramedWrite::new(stream, ldap3_proto::LdapCodec::default());
    let notice = conn::notice(LdapResultCode::Busy, "too many connections");
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), framed.send(notice)).await;
}
