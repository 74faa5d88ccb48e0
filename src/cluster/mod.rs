//! A cluster of Tessera servers that hold the same directory, kept in agreement by Raft
//! (the `openraft` crate). Every node keeps its full copy in its own store and answers
//! reads from it; every write is a `dit::command::Command` committed to the Raft log by a
//! majority of the voters and then applied, in log order, by every node (`storage`).
//!
//! - `network`: node-to-node mutual TLS, Raft's messages, forwarded writes and
//!   membership requests.
//! - `storage`: the log (`raft.redb`) and the state machine (the store itself), snapshots.
//!
//! A write reaching a follower is forwarded to the leader and answered once committed and
//! applied here too, so a client reads its own write on the node it wrote through. Token
//! use is gathered per node and forwarded in batches (`record_token_use`). A node that has
//! not heard from a leader (a leader: from a majority) for longer than
//! `cluster.max_staleness` is cut off: binds and searches get 52 there (`unavailable`).
//!
//! Must not: apply a write anywhere but through the log, or serve a write it did not see
//! committed.

pub mod bundle;
pub mod network;
pub mod storage;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ldap3_proto::proto::LdapResultCode;
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::AppendEntriesResponse;
use openraft::{BasicNode, ChangeMembers, ServerState};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::dit::DitError;
use crate::dit::command::{Command, Op, Outcome};
use crate::server::ca;
use crate::store::{RaftLog, Store};
use network::{Conn, Contacts, Forwarded, Manage, Request, Response, Tls};
use storage::{LogStore, Rules, StateMachine};

openraft::declare_raft_types!(
    /// Raft's types for a Tessera cluster: the log carries commands, applying one gives
    /// its outcome, and a snapshot is a store file.
    pub TypeConfig:
        D = Command,
        R = crate::dit::command::Applied,
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = tokio::fs::File,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// What a node is now, as the rootDSE and `tessera cluster status` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Leader,
    Follower,
    /// A replica: gets every write, votes on none.
    Learner,
    Candidate,
    /// Has not heard from a leader (a leader: from a majority) within the staleness bound.
    CutOff,
    /// Not in any cluster's membership yet.
    Joining,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Learner => "learner",
            Role::Candidate => "candidate",
            Role::CutOff => "cut-off",
            Role::Joining => "joining",
        }
    }
}

/// This node's part in the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    id: u64,
    settings: crate::config::Cluster,
    raft: Raft,
    tls: Arc<Tls>,
    started: Instant,
    /// When a leader was last heard from, in milliseconds since `started` (plus one;
    /// 0: never).
    heard: AtomicU64,
    /// Token uses seen here and not yet forwarded: token id -> latest use.
    uses: Mutex<HashMap<String, OffsetDateTime>>,
    /// Open connections to other nodes for forwarded writes, by address.
    pool: Mutex<Vec<(String, Conn)>>,
    /// When each other node last answered this one's appends (while it leads).
    contacts: Contacts,
    /// The store, read (never written) to see whether the starting tree is complete.
    store: Store,
    /// This node's fingerprint of the rules' settings, sent with every command it
    /// proposes, and whether a command came with another (`Rules::fingerprint`).
    fingerprint: String,
    differ: Arc<std::sync::atomic::AtomicBool>,
    suffix: crate::directory::dn::Dn,
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster: {0}")]
    Setup(String),
    #[error("cannot listen on cluster.listen = \"{addr}\": {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

impl Cluster {
    /// Start this node's Raft over `store` and listen for the other nodes. The store must
    /// be open already; nothing is written to it here.
    pub async fn start(
        config: &Config,
        store: Store,
        rules: Rules,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Cluster, ClusterError> {
        let setup = |e: &dyn std::fmt::Display| ClusterError::Setup(e.to_string());
        let Some(mut settings) = config.cluster.clone() else {
            return Err(ClusterError::Setup("no [cluster] settings".into()));
        };
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| ClusterError::Listen {
                    addr: settings.listen.to_string(),
                    source,
                })?;
        // Port 0 (tests): the port bound, in place of 0, in what the others are told.
        if let Ok(bound) = listener.local_addr() {
            settings.listen = bound;
            if settings.advertise.ends_with(":0") {
                settings.advertise = bound.to_string();
            }
        }
        let dir = config.data_dir.join("cluster");
        create_dir(&dir).map_err(|e| setup(&e))?;
        let generated = ca::Generated::new(&config.data_dir.join("tls"));
        let now = OffsetDateTime::now_utc();
        ca::ensure_ca(&generated, &config.tls.hostnames, now).map_err(|e| setup(&e))?;
        let (cert, key, ca_der) =
            ca::node_certificate(&generated, settings.node_id, now).map_err(|e| setup(&e))?;
        let source = Some(settings.listen.ip());
        let tls = Arc::new(Tls::new(cert, &key, ca_der, source).map_err(|e| setup(&e))?);
        let contacts = Contacts::default();
        let log = RaftLog::open(&dir.join("raft.redb")).map_err(|e| setup(&e))?;
        let raft_config = openraft::Config {
            cluster_name: "tessera".into(),
            heartbeat_interval: millis(settings.heartbeat),
            election_timeout_min: millis(settings.election_timeout),
            election_timeout_max: millis(settings.election_timeout) * 2,
            install_snapshot_timeout: 30_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(settings.snapshot_every),
            max_in_snapshot_log_to_keep: settings.snapshot_every.min(1000),
            snapshot_max_chunk_size: 512 * 1024,
            ..Default::default()
        }
        .validate()
        .map_err(|e| setup(&e))?;
        let fingerprint = rules.fingerprint();
        let differ = rules.differ.clone();
        let machine = StateMachine::new(store.clone(), rules, &dir).map_err(|e| setup(&e))?;
        let raft = Raft::new(
            settings.node_id,
            Arc::new(raft_config),
            network::Network {
                tls: tls.clone(),
                contacts: contacts.clone(),
            },
            LogStore::new(log),
            machine,
        )
        .await
        .map_err(|e| setup(&e))?;
        let cluster = Cluster(Arc::new(Inner {
            id: settings.node_id,
            settings,
            raft,
            tls,
            started: Instant::now(),
            heard: AtomicU64::new(0),
            uses: Mutex::new(HashMap::new()),
            pool: Mutex::new(Vec::new()),
            contacts,
            store,
            suffix: config.suffix.clone(),
            fingerprint,
            differ,
        }));
        tracker.spawn(
            cluster
                .clone()
                .accept(listener, shutdown.clone(), tracker.clone()),
        );
        tracker.spawn(cluster.clone().flush_uses(shutdown.clone()));
        tracker.spawn(cluster.clone().watch_roles(shutdown.clone()));
        tracing::info!(
            node_id = cluster.0.id,
            listen = %cluster.0.settings.listen,
            "cluster node started"
        );
        Ok(cluster)
    }

    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// This node's cluster settings, with the addresses as bound.
    pub fn settings(&self) -> &crate::config::Cluster {
        &self.0.settings
    }

    /// Stop Raft on this node (its store stays as it is).
    pub async fn shutdown(&self) {
        let _ = self.0.raft.shutdown().await;
    }

    /// Commit `command` through the log (forwarded to the leader when this node is not
    /// it) and wait until this node has applied it: its outcome, or why it was refused.
    /// A node cut off from the leader refuses at once with 52; a write not committed
    /// within `cluster.write_timeout` fails with 51 (it may yet be committed).
    pub async fn submit(&self, mut command: Command) -> Result<Outcome, DitError> {
        command.rules = self.0.fingerprint.clone();
        match self.role() {
            Role::Joining => {
                return Err(unavailable(
                    "this node has not joined a cluster yet; write to a member",
                ));
            }
            Role::CutOff => {
                return Err(unavailable(
                    "this server is cut off from its cluster; use another server",
                ));
            }
            _ => {}
        }
        let within = self.0.settings.write_timeout;
        match tokio::time::timeout(within, self.commit(command)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DitError::new(
                LdapResultCode::Busy,
                "the cluster did not commit the write in time; it may yet be committed",
            )),
        }
    }

    async fn commit(&self, command: Command) -> Result<Outcome, DitError> {
        loop {
            let leader = self.0.raft.current_leader().await;
            match leader {
                Some(id) if id == self.0.id => {
                    match self.0.raft.client_write(command.clone()).await {
                        Ok(written) => {
                            if command.restricts() {
                                self.fence(written.log_id.index).await;
                            }
                            return written.data.map_err(DitError::from);
                        }
                        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "a write failed on the leader");
                            return Err(unavailable("the cluster could not take the write"));
                        }
                    }
                }
                Some(id) => {
                    let Some(addr) = self.address_of(id) else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    match self.forward(&addr, Request::Write(command.clone())).await {
                        Ok(Response::Write(Forwarded::Applied { index, applied })) => {
                            self.wait_applied(index).await?;
                            return applied.map_err(DitError::from);
                        }
                        Ok(Response::Write(Forwarded::Refused(why))) => {
                            tracing::warn!(leader = id, why = %why, "the leader refused a forwarded write");
                            return Err(unavailable("the cluster could not take the write"));
                        }
                        // Not the leader any more, or not reached: nothing was written.
                        Ok(_) | Err(Sent::No) => {}
                        Err(Sent::Maybe) => {
                            return Err(DitError::new(
                                LdapResultCode::Busy,
                                "the leader did not answer; the write may or may not have been made",
                            ));
                        }
                    }
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// On the leader, after a write that takes access away committed at `index`: wait
    /// until every other member has applied it, or is certainly cut off (it has not
    /// answered this leader for longer than the staleness bound and two election
    /// timeouts, so it refuses binds by its own clock). Bounded by that same time.
    async fn fence(&self, index: u64) {
        let limit = self.0.settings.max_staleness + self.0.settings.election_timeout * 2;
        let members: Vec<(u64, String)> = {
            let metrics = self.0.raft.metrics();
            let m = metrics.borrow();
            m.membership_config
                .membership()
                .nodes()
                .filter(|(id, _)| **id != self.0.id)
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect()
        };
        let waits = members.into_iter().map(|(id, addr)| async move {
            let start = Instant::now();
            loop {
                let last = self
                    .0
                    .contacts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&id)
                    .copied();
                // Silent since before this wait at worst: counted from its start.
                let silent = last.map_or(start.elapsed(), |t| t.elapsed());
                if silent > limit || start.elapsed() > limit {
                    return;
                }
                let asked = self
                    .forward_within(&addr, Request::Applied(index), Duration::from_millis(1500))
                    .await;
                if let Ok(Response::Applied(true)) = asked {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        futures_util::future::join_all(waits).await;
    }

    /// Wait until this node has applied the log up to `index`.
    async fn wait_applied(&self, index: u64) -> Result<(), DitError> {
        self.0
            .raft
            .wait(Some(self.0.settings.write_timeout))
            .applied_index_at_least(Some(index), "a forwarded write")
            .await
            .map(drop)
            .map_err(|_| {
                DitError::new(
                    LdapResultCode::Busy,
                    "the write was committed but has not reached this node yet",
                )
            })
    }

    /// Send `req` to the node at `addr` on a pooled connection; the answer, or whether
    /// the request may have been acted on.
    async fn forward(&self, addr: &str, req: Request) -> Result<Response, Sent> {
        self.forward_within(addr, req, self.0.settings.write_timeout)
            .await
    }

    /// [`Cluster::forward`], giving up after `within`.
    async fn forward_within(
        &self,
        addr: &str,
        req: Request,
        within: Duration,
    ) -> Result<Response, Sent> {
        let pooled = {
            let mut pool = self.0.pool.lock().unwrap_or_else(PoisonError::into_inner);
            pool.iter()
                .position(|(a, _)| a == addr)
                .map(|at| pool.swap_remove(at).1)
        }
        .filter(Conn::is_open);
        let mut conn = match pooled {
            Some(c) => c,
            None => self
                .0
                .tls
                .connect(addr, within)
                .await
                .map_err(|_| Sent::No)?,
        };
        match conn.call(&req, within).await {
            Ok(answer) => {
                let mut pool = self.0.pool.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < 16 {
                    pool.push((addr.to_string(), conn));
                }
                Ok(answer)
            }
            Err(_) => Err(Sent::Maybe),
        }
    }

    /// The address of member `id`, from the membership.
    fn address_of(&self, id: u64) -> Option<String> {
        let metrics = self.0.raft.metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
    }

    /// Note a use of token `id` at `at`, to forward with the next batch (merged: the
    /// latest use wins). The caller has already kept this to once a minute per token.
    pub fn record_token_use(&self, id: &str, at: OffsetDateTime) {
        let mut uses = self.0.uses.lock().unwrap_or_else(PoisonError::into_inner);
        let latest = uses.entry(id.to_string()).or_insert(at);
        if *latest < at {
            *latest = at;
        }
    }

    /// Every `cluster.token_use_flush`, the uses gathered here go to the leader as one
    /// command; kept for the next round when it cannot be committed.
    async fn flush_uses(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.0.settings.token_use_flush) => {}
            }
            let batch: Vec<(String, OffsetDateTime)> = {
                let mut uses = self.0.uses.lock().unwrap_or_else(PoisonError::into_inner);
                uses.drain().collect()
            };
            if batch.is_empty() || self.is_stale() {
                self.requeue(batch);
                continue;
            }
            let now = batch
                .iter()
                .map(|(_, t)| *t)
                .max()
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let op = Op::RecordUses {
                uses: batch
                    .iter()
                    .map(|(id, t)| (id.clone(), t.unix_timestamp_nanos()))
                    .collect(),
            };
            if let Err(e) = self.submit(Command::server(now, op)).await {
                tracing::warn!(error = %e.message, tokens = batch.len(), "forwarding token use failed; retrying later");
                self.requeue(batch);
            }
        }
    }

    fn requeue(&self, batch: Vec<(String, OffsetDateTime)>) {
        for (id, at) in batch {
            self.record_token_use(&id, at);
        }
    }

    /// Log each change of this node's role, and each new leader.
    async fn watch_roles(self, shutdown: CancellationToken) {
        let mut metrics = self.0.raft.metrics();
        let mut last = (ServerState::Learner, None, 0u64);
        loop {
            let now = {
                let m = metrics.borrow_and_update();
                (m.state, m.current_leader, m.current_term)
            };
            if now.0 == ServerState::Leader && last.0 != ServerState::Leader {
                tokio::spawn(self.clone().complete_tree());
            }
            if now.0 != last.0 || now.1 != last.1 {
                tracing::info!(
                    event = "cluster-role",
                    node_id = self.0.id,
                    state = ?now.0,
                    leader = now.1.map(|l| l.to_string()).unwrap_or_else(|| "none".into()),
                    term = now.2,
                    "cluster role"
                );
                last = now;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = metrics.changed() => if changed.is_err() { return },
            }
        }
    }

    /// A new leader makes sure the tree every directory starts with is complete (a newer
    /// version may bring a built-in role): what is missing is created through the log,
    /// like any write, so every node gets the same entries.
    async fn complete_tree(self) {
        let (store, suffix) = (self.0.store.clone(), self.0.suffix.clone());
        let incomplete = store
            .read(move |r| crate::dit::tree::incomplete(r, &suffix))
            .await;
        if !matches!(incomplete, Ok(true)) {
            return;
        }
        let command = Command::server(OffsetDateTime::now_utc(), Op::bootstrap());
        match self.submit(command).await {
            Ok(Outcome::Count(n)) if n > 0 => {
                tracing::info!(created = n, "completed the directory tree through the log");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "completing the directory tree failed"),
        }
    }

    /// Is this node cut off: no word from a leader (a leader: from a majority) within
    /// `cluster.max_staleness`? A node that never heard from one is.
    pub fn is_stale(&self) -> bool {
        let bound = self.0.settings.max_staleness;
        let metrics = self.0.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Leader {
            let alone = m
                .membership_config
                .membership()
                .voter_ids()
                .all(|v| v == self.0.id);
            return !alone
                && m.millis_since_quorum_ack
                    .is_none_or(|ms| Duration::from_millis(ms) > bound);
        }
        self.since_heard().is_none_or(|d| d > bound)
    }

    /// How long since a leader was last heard from; None if never.
    fn since_heard(&self) -> Option<Duration> {
        let heard = self.0.heard.load(Ordering::Relaxed);
        (heard > 0).then(|| {
            let at = Duration::from_millis(heard - 1);
            self.0.started.elapsed().saturating_sub(at)
        })
    }

    /// A leader was heard at `received` (since start), telling that the log is committed
    /// up to `commit`: this node counts as in touch from then on once it has applied that
    /// far, so a node that was paused or cut off serves again only when it has caught up
    /// with what the leader had committed (a revocation included).
    fn heard_leader(&self, received: Duration, commit: Option<u64>) {
        let node = self.clone();
        let mark = move || {
            let ms = u64::try_from(received.as_millis()).unwrap_or(u64::MAX);
            node.0
                .heard
                .fetch_max(ms.saturating_add(1), Ordering::Relaxed);
        };
        let applied = self.0.raft.metrics().borrow().last_applied.map(|l| l.index);
        if commit.is_none_or(|c| applied.is_some_and(|a| a >= c)) {
            mark();
            return;
        }
        let raft = self.0.raft.clone();
        tokio::spawn(async move {
            let wait = raft.wait(Some(Duration::from_secs(10)));
            if wait
                .applied_index_at_least(commit, "caught up")
                .await
                .is_ok()
            {
                mark();
            }
        });
    }

    /// What this node is now.
    pub fn role(&self) -> Role {
        let metrics = self.0.raft.metrics();
        let (state, member) = {
            let m = metrics.borrow();
            let member = m
                .membership_config
                .membership()
                .nodes()
                .any(|(id, _)| *id == self.0.id);
            (m.state, member)
        };
        if !member {
            return Role::Joining;
        }
        if self.is_stale() {
            return Role::CutOff;
        }
        match state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Learner => Role::Learner,
            ServerState::Candidate => Role::Candidate,
            ServerState::Shutdown => Role::CutOff,
        }
    }

    /// The refusal for binds and searches on a cut-off node, if this one is.
    pub fn refusal(&self) -> Option<DitError> {
        if self.0.differ.load(Ordering::Relaxed) {
            return Some(unavailable(
                "this server's rules settings differ from its cluster's; use another server",
            ));
        }
        match self.role() {
            Role::CutOff => Some(unavailable(
                "this server is cut off from its cluster; use another server",
            )),
            Role::Joining => Some(unavailable(
                "this server has not joined its cluster yet; use another server",
            )),
            _ => None,
        }
    }

    /// Make this node a cluster of one, its only voter, with the directory it holds. The
    /// store is then snapshotted and the log before it dropped, so that every node that
    /// joins starts from a copy of this store.
    pub async fn init(&self) -> Result<String, String> {
        let me = BasicNode {
            addr: self.0.settings.advertise.clone(),
        };
        self.0
            .raft
            .initialize(BTreeMap::from([(self.0.id, me)]))
            .await
            .map_err(|e| format!("cannot initialise: {e}"))?;
        let wait = self.0.raft.wait(Some(Duration::from_secs(30)));
        let metrics = wait
            .state(ServerState::Leader, "leader after init")
            .await
            .map_err(|e| e.to_string())?;
        let applied = metrics.last_log_index.unwrap_or(0);
        let wait = self.0.raft.wait(Some(Duration::from_secs(30)));
        wait.applied_index_at_least(Some(applied), "applied after init")
            .await
            .map_err(|e| e.to_string())?;
        self.compact().await?;
        Ok(format!(
            "initialised a cluster of one: node {} at {}",
            self.0.id, self.0.settings.advertise
        ))
    }

    /// Snapshot the store now and drop the log it covers.
    pub async fn compact(&self) -> Result<(), String> {
        let raft = &self.0.raft;
        let applied = raft
            .metrics()
            .borrow()
            .last_applied
            .map(|l| l.index)
            .unwrap_or(0);
        raft.trigger().snapshot().await.map_err(|e| e.to_string())?;
        let wait = raft.wait(Some(Duration::from_secs(60)));
        wait.metrics(
            |m| {
                m.snapshot
                    .is_some_and(|s| s.index >= applied.saturating_sub(1))
            },
            "snapshot",
        )
        .await
        .map_err(|e| e.to_string())?;
        let snapshot = raft.metrics().borrow().snapshot.map(|s| s.index);
        if let Some(upto) = snapshot {
            raft.trigger()
                .purge_log(upto)
                .await
                .map_err(|e| e.to_string())?;
            let wait = raft.wait(Some(Duration::from_secs(60)));
            wait.metrics(|m| m.purged.is_some_and(|p| p.index >= upto), "purge")
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A membership change, made by the leader (forwarded there from any node).
    pub async fn manage(&self, change: Manage) -> Result<String, String> {
        let leader = self.0.raft.current_leader().await;
        match leader {
            Some(id) if id == self.0.id => self.manage_here(change).await,
            Some(id) => {
                let addr = self
                    .address_of(id)
                    .ok_or_else(|| "the leader's address is not known".to_string())?;
                match self.forward(&addr, Request::Manage(change)).await {
                    Ok(Response::Manage(answer)) => answer,
                    Ok(_) => Err("the leader gave an unexpected answer".into()),
                    Err(_) => Err("the leader could not be reached".into()),
                }
            }
            None => Err("the cluster has no leader now; try again".into()),
        }
    }

    async fn manage_here(&self, change: Manage) -> Result<String, String> {
        let raft = &self.0.raft;
        match change {
            Manage::AddReplica { id, addr } => {
                // A node that would apply the log by other rules would drift from the
                // rest: refused here, rather than noticed at its first write.
                match self.forward(&addr, Request::Rules).await {
                    Ok(Response::Rules(theirs)) if theirs == self.0.fingerprint => {}
                    Ok(Response::Rules(_)) => {
                        return Err(format!(
                            "node {id} at {addr} has other rules settings than this cluster (its suffix, schema, [posix], [tokens], security.anonymous or indexes): make its configuration match, restart it, then add it"
                        ));
                    }
                    Ok(_) => return Err(format!("node {id} at {addr} gave an unexpected answer")),
                    Err(_) => {
                        return Err(format!(
                            "cannot reach node {id} at {addr}: start it (after `tessera cluster join`) and check the address"
                        ));
                    }
                }
                let node = BasicNode { addr: addr.clone() };
                let adding = raft.add_learner(id, node, true);
                match tokio::time::timeout(Duration::from_secs(300), adding).await {
                    Ok(Ok(_)) => Ok(format!(
                        "node {id} at {addr} is a replica and has caught up"
                    )),
                    Ok(Err(e)) => Err(format!("cannot add node {id}: {e}")),
                    Err(_) => Err(format!(
                        "node {id} was added but has not caught up within 5 minutes; see `tessera cluster status`"
                    )),
                }
            }
            Manage::Promote { id } => {
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map_err(|e| format!("cannot promote node {id}: {e}"))?;
                Ok(format!("node {id} is a voter"))
            }
            Manage::Remove { id } => {
                let voter = raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == id);
                let change = if voter {
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                };
                raft.change_membership(change, false)
                    .await
                    .map_err(|e| format!("cannot remove node {id}: {e}"))?;
                Ok(format!("node {id} is out of the cluster"))
            }
        }
    }

    /// What this node knows of the cluster, as JSON.
    pub fn status(&self) -> serde_json::Value {
        let metrics = self.0.raft.metrics();
        let m = metrics.borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let nodes: Vec<serde_json::Value> = membership
            .nodes()
            .map(|(id, node)| {
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).cloned().flatten())
                    .map(|l| l.index);
                serde_json::json!({
                    "id": id,
                    "address": node.addr,
                    "kind": if voters.contains(id) { "voter" } else { "replica" },
                    "matched": matched,
                })
            })
            .collect();
        serde_json::json!({
            "node_id": self.0.id,
            "role": self.role().as_str(),
            "term": m.current_term,
            "leader": m.current_leader,
            "last_log_index": m.last_log_index,
            "last_applied": m.last_applied.map(|l| l.index),
            "snapshot": m.snapshot.map(|l| l.index),
            "ms_since_leader_heard": self.since_heard().map(|d| d.as_millis() as u64),
            "rules": self.0.fingerprint,
            "rules_differ": self.0.differ.load(Ordering::Relaxed),
            "nodes": nodes,
        })
    }

    /// Accept other nodes' connections until shutdown.
    async fn accept(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        let acceptor = self.0.tls.acceptor();
        let handshakes = network::Handshakes::default();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((tcp, peer)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Some(slot) = handshakes.take(peer.ip()) else {
                tracing::debug!(%peer, "a node connection was closed: too many handshakes from its address");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (node, acceptor, shutdown) = (self.clone(), acceptor.clone(), shutdown.clone());
            tracker.spawn(async move {
                let handshake = tokio::time::timeout(network::HANDSHAKE, acceptor.accept(tcp));
                let handshake = handshake.await;
                drop(slot);
                let mut tls = match handshake {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::warn!(event = "cluster-handshake-refused", %peer, error = %e, "a node connection was refused");
                        return;
                    }
                    Err(_) => return,
                };
                loop {
                    let frame = tokio::select! {
                        () = shutdown.cancelled() => return,
                        f = network::read_frame(&mut tls) => f,
                    };
                    let Ok(frame) = frame else { return };
                    let Ok(req) = serde_json::from_slice::<Request>(&frame) else {
                        tracing::warn!(%peer, "a node sent a request that does not decode");
                        return;
                    };
                    let answer = node.handle(req).await;
                    let Ok(bytes) = serde_json::to_vec(&answer) else { return };
                    if network::write_frame(&mut tls, &bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    }

    async fn handle(&self, req: Request) -> Response {
        let raft = &self.0.raft;
        match req {
            Request::Append(rpc) => {
                let received = self.0.started.elapsed();
                let commit = rpc.leader_commit.map(|l| l.index);
                let answer = raft.append_entries(rpc).await;
                if let Ok(resp) = &answer
                    && matches!(
                        resp,
                        AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_)
                    )
                {
                    self.heard_leader(received, commit);
                }
                Response::Append(answer)
            }
            Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
            Request::Snapshot(rpc) => {
                let received = self.0.started.elapsed();
                let answer = raft.install_snapshot(rpc).await;
                if answer.is_ok() {
                    self.heard_leader(received, None);
                }
                Response::Snapshot(answer)
            }
            Request::Write(command) => {
                let restricts = command.restricts();
                Response::Write(match raft.client_write(command).await {
                    Ok(written) => {
                        if restricts {
                            self.fence(written.log_id.index).await;
                        }
                        Forwarded::Applied {
                            index: written.log_id.index,
                            applied: written.data,
                        }
                    }
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                        Forwarded::NotLeader {
                            leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                        }
                    }
                    Err(e) => Forwarded::Refused(e.to_string()),
                })
            }
            Request::Rules => Response::Rules(self.0.fingerprint.clone()),
            Request::Applied(index) => {
                let wait = raft.wait(Some(Duration::from_secs(1)));
                let applied = wait.applied_index_at_least(Some(index), "fence").await;
                Response::Applied(applied.is_ok())
            }
            Request::Manage(change) => {
                let leader = raft.current_leader().await;
                Response::Manage(if leader == Some(self.0.id) {
                    self.manage_here(change).await
                } else {
                    Err("this node is not the leader; try again".into())
                })
            }
        }
    }
}

/// Whether a request that failed may have been acted on.
enum Sent {
    /// Not sent: nothing was done.
    No,
    /// Sent and not answered: it may have been.
    Maybe,
}

fn unavailable(message: &str) -> DitError {
    DitError::new(LdapResultCode::Unavailable, message)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
