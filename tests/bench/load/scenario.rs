//! The load generator: `conns` tasks, each with its own `ldap3` connection (or a fresh
//! one per operation), looping over one kind of operation until the run ends. Operations
//! that start during the warm-up are not counted; latencies of the rest are kept whole
//! (microseconds) for exact percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, StdStream};

use crate::data::{DataSet, SUFFIX};
use crate::report::RunResult;
use crate::servers::{Server, ServerKind};

/// SSSD's user attribute list (sssd-ldap's defaults for rfc2307bis).
const PASSWD_ATTRS: &[&str] = &[
    "objectClass",
    "uid",
    "userPassword",
    "uidNumber",
    "gidNumber",
    "gecos",
    "homeDirectory",
    "loginShell",
    "krbPrincipalName",
    "cn",
    "memberOf",
    "modifyTimestamp",
    "shadowLastChange",
    "shadowMin",
    "shadowMax",
    "shadowWarning",
    "shadowInactive",
    "shadowExpire",
    "shadowFlag",
    "krbLastPwdChange",
    "krbPasswordExpiration",
    "pwdAttribute",
    "authorizedService",
    "accountExpires",
    "userAccountControl",
    "nsAccountLock",
    "host",
    "loginDisabled",
    "loginExpirationTime",
    "loginAllowedTimeMap",
    "sshPublicKey",
    "userCertificate;binary",
    "mail",
];
/// SSSD's group attribute list.
const GROUP_ATTRS: &[&str] = &[
    "objectClass",
    "cn",
    "userPassword",
    "gidNumber",
    "modifyTimestamp",
];
const ENUM_ATTRS: &[&str] = &[
    "objectClass",
    "uid",
    "cn",
    "uidNumber",
    "gidNumber",
    "homeDirectory",
    "loginShell",
    "gecos",
    "memberUid",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Getpwnam,
    Initgroups,
    /// Tessera: a `dn=token` bind; slapd: a service account's `{SSHA}` bind.
    BindService,
    BindPassword,
    ConnectBindSearchUnbind,
    Enumerate,
    /// getpwnam alone, then with a password-bind flood on other connections.
    Mixed,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Getpwnam,
        Kind::Initgroups,
        Kind::BindService,
        Kind::BindPassword,
        Kind::ConnectBindSearchUnbind,
        Kind::Enumerate,
        Kind::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Getpwnam => "getpwnam",
            Kind::Initgroups => "initgroups",
            Kind::BindService => "bind-service",
            Kind::BindPassword => "bind-password",
            Kind::ConnectBindSearchUnbind => "connect-bind-search-unbind",
            Kind::Enumerate => "enumerate",
            Kind::Mixed => "mixed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Principal {
    pub dn: String,
    pub password: String,
    /// The role it holds (for the report).
    pub role: &'static str,
}

/// A server as the generator sees it.
pub struct Target {
    pub server: ServerKind,
    url: String,
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    service: Principal,
    people: usize,
    person_password: String,
    person_dn: fn(usize) -> String,
    /// The server's process, for its CPU time.
    pid: Option<u32>,
}

impl Target {
    pub fn new(server: &Server, data: &DataSet, service: Principal) -> Self {
        Target {
            server: server.kind,
            url: server.ldaps_url(),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], server.ldaps_port)),
            tls: server.tls_client(),
            service,
            people: data.people,
            person_password: data.person_password.clone(),
            person_dn: |n| format!("uid=user{n},ou=people,{SUFFIX}"),
            pid: server.pid(),
        }
    }

    /// A new LDAPS connection. The client sets TCP_NODELAY itself (ldap3 does not), so a
    /// server that leaves Nagle on is not charged delayed-ACK stalls of the client's making.
    async fn connect(&self) -> Result<Ldap, LdapError> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let settings = LdapConnSettings::new()
            .set_config(self.tls.clone())
            .set_conn_timeout(Duration::from_secs(10))
            .set_std_stream(StdStream::Tcp(tcp.into_std()?));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url).await?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn connect_bound(&self) -> Result<Ldap, LdapError> {
        let mut ldap = self.connect().await?;
        ldap.simple_bind(&self.service.dn, &self.service.password)
            .await?
            .success()?;
        Ok(ldap)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub kind: Kind,
    pub conns: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Password-bind connections in `mixed`'s second half.
    pub flood: usize,
}

impl Plan {
    /// The measured time for `kind`: enumerations take seconds each at 32 connections, so
    /// they get three times as long.
    pub fn window(&self, kind: Kind) -> Duration {
        if kind == Kind::Enumerate {
            self.duration * 3
        } else {
            self.duration
        }
    }
}

/// One scenario at one concurrency against one server, named as reported; `mixed` gives
/// two results.
pub async fn run(target: Arc<Target>, plan: Plan) -> Vec<(String, Measured)> {
    let name = match (plan.kind, target.server) {
        (Kind::BindService, ServerKind::Tessera) => "bind-token".to_string(),
        (Kind::BindService, ServerKind::Slapd) => "bind-ssha".to_string(),
        (kind, _) => kind.name().to_string(),
    };
    if plan.kind != Kind::Mixed {
        let r = measure(&target, plan.kind, plan.conns, 0, plan).await;
        return vec![(name, r)];
    }
    let quiet = measure(&target, Kind::Getpwnam, plan.conns, 0, plan).await;
    let flooded = measure(&target, Kind::Getpwnam, plan.conns, plan.flood, plan).await;
    vec![
        ("mixed:search-alone".to_string(), quiet),
        (format!("mixed:search+{}-bind-flood", plan.flood), flooded),
    ]
}

/// Raw argon2id verifications per second on this machine: one thread per core, in process.
pub fn raw_argon2_rate(budget: Duration) -> f64 {
    use tessera::identity::password::{self, Argon2Params, StoredPassword};
    let hash = password::hash(b"bench", &Argon2Params::default()).expect("hash");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    let stored = StoredPassword::parse(hash.as_bytes()).expect("parse");
                    let mut n = 0u64;
                    while start.elapsed() < budget {
                        assert!(stored.verify(b"bench"));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// What the workers of one run (or of several rounds of it, added up) measured.
pub struct Measured {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    load: f64,
    /// Ops/s of each round taken in.
    rounds: Vec<f64>,
    /// Server CPU seconds (user + system) spent in the measured windows, when /proc told.
    cpu_s: Option<f64>,
}

impl Measured {
    fn ops_per_s(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Take in another round of the same run: its operations and time add to these.
    pub fn absorb(&mut self, other: Measured) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.elapsed += other.elapsed;
        self.load = other.load;
        self.rounds.extend(other.rounds);
        self.cpu_s = self.cpu_s.zip(other.cpu_s).map(|(a, b)| a + b);
    }

    pub fn result(&self, name: &str, server: ServerKind, conns: usize) -> RunResult {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let pct = |p: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
            f64::from(sorted[i - 1]) / 1000.0
        };
        RunResult {
            scenario: name.to_string(),
            server: server.name().to_string(),
            conns,
            ops: sorted.len() as u64,
            ops_per_s: self.ops_per_s(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            errors: self.errors,
            first_error: self.first_error.clone(),
            load: self.load,
            rounds: self.rounds.clone(),
            cpu_us_per_op: self
                .cpu_s
                .filter(|_| !sorted.is_empty())
                .map(|s| s * 1e6 / sorted.len() as f64),
        }
    }
}

/// Run `conns` workers of `kind` (and `flood` password-bind workers whose numbers are not
/// reported) for warm-up + duration.
async fn measure(
    target: &Arc<Target>,
    kind: Kind,
    conns: usize,
    flood: usize,
    plan: Plan,
) -> Measured {
    let barrier = Arc::new(tokio::sync::Barrier::new(conns + flood + 1));
    let mut tasks = Vec::new();
    let mut flooders = Vec::new();
    for i in 0..conns + flood {
        let target = target.clone();
        let barrier = barrier.clone();
        let kind = if i < conns { kind } else { Kind::BindPassword };
        let task = tokio::spawn(async move {
            let seed = 0x9E37_79B9_7F4A_7C15u64 ^ ((i as u64 + 1) << 17);
            worker(target, kind, seed, barrier, plan).await
        });
        if i < conns {
            tasks.push(task);
        } else {
            flooders.push(task);
        }
    }
    barrier.wait().await;
    let window = plan.window(kind);
    // The server's CPU over the window the workers count (the flood's binds included).
    let cpu = target.pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep(plan.warmup).await;
            let before = crate::servers::cpu_seconds(pid)?;
            tokio::time::sleep(window).await;
            Some(crate::servers::cpu_seconds(pid)? - before)
        })
    });
    let mut measured = Measured {
        latencies_us: Vec::new(),
        errors: 0,
        first_error: None,
        elapsed: window,
        load: 0.0,
        rounds: Vec::new(),
        cpu_s: None,
    };
    for task in tasks {
        let w = task.await.expect("worker");
        measured.latencies_us.extend(w.latencies_us);
        measured.errors += w.errors;
        measured.first_error = measured.first_error.or(w.first_error);
    }
    // The flood's binds are not reported, but a flood that failed would leave the searches
    // unflooded: its errors count as the run's, and so does a flood that bound nothing.
    let flooding = !flooders.is_empty();
    let mut flood_binds = 0;
    for task in flooders {
        let w = task.await.expect("flood worker");
        flood_binds += w.latencies_us.len();
        measured.errors += w.errors;
        measured.first_error = measured.first_error.or(w.first_error);
    }
    if flooding && flood_binds == 0 {
        measured.errors += 1;
        measured
            .first_error
            .get_or_insert_with(|| "the bind flood completed no bind".to_string());
    }
    if let Some(cpu) = cpu {
        measured.cpu_s = cpu.await.ok().flatten();
    }
    measured.load = crate::report::load_average();
    measured.rounds.push(measured.ops_per_s());
    measured
}

struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn worker(
    target: Arc<Target>,
    kind: Kind,
    seed: u64,
    barrier: Arc<tokio::sync::Barrier>,
    plan: Plan,
) -> WorkerResult {
    let mut rng = Rng(seed);
    let mut out = WorkerResult {
        latencies_us: Vec::with_capacity(1 << 14),
        errors: 0,
        first_error: None,
    };
    let persistent = kind != Kind::ConnectBindSearchUnbind;
    let mut conn = if persistent {
        match target.connect_bound().await {
            Ok(c) => Some(c),
            Err(e) => {
                out.errors += 1;
                out.first_error = Some(format!("connect: {e}"));
                None
            }
        }
    } else {
        None
    };
    barrier.wait().await;
    let begin = Instant::now();
    let measure_from = begin + plan.warmup;
    let end = measure_from + plan.window(kind);
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let result = match (persistent, conn.as_mut()) {
            (true, Some(ldap)) => op(&target, kind, ldap, &mut rng).await,
            (true, None) => Err("no connection".to_string()),
            (false, _) => connect_bind_search_unbind(&target, &mut rng).await,
        };
        let done = Instant::now();
        let dt = done - t0;
        // Operations that finish inside the window count, wherever they started: an
        // enumeration can take longer than the warm-up.
        let counted = done >= measure_from && done <= end;
        match result {
            Ok(()) if counted => out
                .latencies_us
                .push(u32::try_from(dt.as_micros()).unwrap_or(u32::MAX)),
            Ok(()) => {}
            Err(e) => {
                if counted {
                    out.errors += 1;
                    out.first_error.get_or_insert(e);
                }
                if persistent {
                    // Start again on a fresh connection, as a client would.
                    conn = target.connect_bound().await.ok();
                    if conn.is_none() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
    if let Some(mut ldap) = conn {
        let _ = ldap.unbind().await;
    }
    out
}

async fn op(target: &Target, kind: Kind, ldap: &mut Ldap, rng: &mut Rng) -> Result<(), String> {
    let n = rng.below(target.people) + 1;
    match kind {
        Kind::Getpwnam | Kind::Mixed => getpwnam(ldap, n).await,
        Kind::Initgroups => {
            let filter = format!(
                "(&(objectClass=posixGroup)(|(memberUid=user{n})(member={})))",
                (target.person_dn)(n)
            );
            let (entries, _) = ldap
                .search(SUFFIX, Scope::Subtree, &filter, GROUP_ATTRS)
                .await
                .map_err(|e| e.to_string())?
                .success()
                .map_err(|e| e.to_string())?;
            expect_count(entries.len(), 3)
        }
        Kind::BindService => ldap
            .simple_bind(&target.service.dn, &target.service.password)
            .await
            .map_err(|e| e.to_string())?
            .success()
            .map(drop)
            .map_err(|e| e.to_string()),
        Kind::BindPassword => ldap
            .simple_bind(&(target.person_dn)(n), &target.person_password)
            .await
            .map_err(|e| e.to_string())?
            .success()
            .map(drop)
            .map_err(|e| e.to_string()),
        Kind::Enumerate => enumerate(ldap, target.people).await,
        Kind::ConnectBindSearchUnbind => unreachable!("not on a persistent connection"),
    }
}

async fn getpwnam(ldap: &mut Ldap, n: usize) -> Result<(), String> {
    let filter = format!("(&(objectClass=posixAccount)(uid=user{n}))");
    let (entries, _) = ldap
        .search(SUFFIX, Scope::Subtree, &filter, PASSWD_ATTRS)
        .await
        .map_err(|e| e.to_string())?
        .success()
        .map_err(|e| e.to_string())?;
    expect_count(entries.len(), 1)
}

async fn enumerate(ldap: &mut Ldap, people: usize) -> Result<(), String> {
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(500)),
    ];
    let mut stream = ldap
        .streaming_search_with(
            adapters,
            SUFFIX,
            Scope::Subtree,
            "(|(objectClass=posixAccount)(objectClass=posixGroup))",
            ENUM_ATTRS,
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    while let Some(_entry) = stream.next().await.map_err(|e| e.to_string())? {
        n += 1;
    }
    stream.finish().await.success().map_err(|e| e.to_string())?;
    if n < people {
        return Err(format!(
            "enumerate returned {n} entries, fewer than {people} people"
        ));
    }
    Ok(())
}

async fn connect_bind_search_unbind(target: &Target, rng: &mut Rng) -> Result<(), String> {
    let mut ldap = target.connect_bound().await.map_err(|e| e.to_string())?;
    let n = rng.below(target.people) + 1;
    getpwnam(&mut ldap, n).await?;
    ldap.unbind().await.map_err(|e| e.to_string())
}

fn expect_count(got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{got} entries, expected {want}"))
    }
}

/// xorshift64*: enough to pick users uniformly, and the same sequence for both servers.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}
