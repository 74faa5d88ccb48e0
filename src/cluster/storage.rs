//! Raft's storage on a node: the log (`LogStore`, over `store::RaftLog` in `raft.redb`)
//! and the state machine (`StateMachine`), which is the directory's own store. Applying an
//! entry runs its command through `dit::command::apply` and records the entry's id in the
//! same write transaction, so the store and what it has applied never part. A snapshot is
//! a consistent copy of the store file (`Store::snapshot_to`); installing one replaces the
//! store file (`Store::install`).
//!
//! Must not: decide anything a command did not carry, or apply a command twice.

// openraft's error types are large, and its traits' signatures impose them.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, LogState, RaftLogReader, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};

use crate::cluster::TypeConfig;
use crate::dit::caller::{Policy, RightsCache};
use crate::dit::command::{self, Applied, Outcome, Refusal};
use crate::store::{RaftLog, Replicated, Store, StoreError};

type Result<T> = std::result::Result<T, StorageError<u64>>;

/// The last entry applied and the membership, as the state machine reports them.
type AppliedState = (
    Option<LogId<u64>>,
    StoredMembership<u64, openraft::BasicNode>,
);

/// Raft's log on this node.
#[derive(Clone)]
pub struct LogStore {
    log: RaftLog,
}

impl LogStore {
    pub fn new(log: RaftLog) -> LogStore {
        LogStore { log }
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&RaftLog) -> std::result::Result<R, StoreError> + Send + 'static,
        fail: fn(AnyError) -> StorageIOError<u64>,
    ) -> Result<R> {
        let log = self.log.clone();
        match tokio::task::spawn_blocking(move || f(&log)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(fail(AnyError::new(&e)).into()),
            Err(e) => Err(fail(AnyError::error(e.to_string())).into()),
        }
    }

    async fn state<T: for<'de> Deserialize<'de>>(&self, key: &'static str) -> Result<Option<T>> {
        let bytes = self
            .blocking(move |l| l.state(key), StorageIOError::read)
            .await?;
        bytes.map(|b| decode(&b, StorageIOError::read)).transpose()
    }

    async fn set_state<T: Serialize>(&self, key: &'static str, value: &T) -> Result<()> {
        let bytes = encode(value, StorageIOError::write)?;
        self.blocking(move |l| l.set_state(key, &bytes), StorageIOError::write)
            .await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => *e,
            Bound::Excluded(0) => return Ok(Vec::new()),
            Bound::Excluded(e) => e - 1,
            Bound::Unbounded => u64::MAX,
        };
        if start > end {
            return Ok(Vec::new());
        }
        let raw = self
            .blocking(move |l| l.range(start..=end), StorageIOError::read_logs)
            .await?;
        raw.iter()
            .map(|b| decode(b, StorageIOError::read_logs))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let purged: Option<LogId<u64>> = self.state(crate::store::log_keys::PURGED).await?;
        let last = self
            .blocking(|l| l.last(), StorageIOError::read_logs)
            .await?;
        let last: Option<Entry<TypeConfig>> = last
            .map(|b| decode(&b, StorageIOError::read_logs))
            .transpose()?;
        let last_log_id = last.map(|e| e.log_id).or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<()> {
        self.set_state(crate::store::log_keys::VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>> {
        self.state(crate::store::log_keys::VOTE).await
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<()> {
        self.set_state(crate::store::log_keys::COMMITTED, &committed)
            .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>> {
        Ok(self
            .state::<Option<LogId<u64>>>(crate::store::log_keys::COMMITTED)
            .await?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        for entry in entries {
            rows.push((
                entry.log_id.index,
                encode(&entry, StorageIOError::write_logs)?,
            ));
        }
        let written = self
            .blocking(move |l| l.append(&rows), StorageIOError::write_logs)
            .await;
        match &written {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        written
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<()> {
        self.blocking(
            move |l| l.truncate_from(log_id.index),
            StorageIOError::write_logs,
        )
        .await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<()> {
        let purged = encode(&log_id, StorageIOError::write_logs)?;
        self.blocking(
            move |l| l.purge_to(log_id.index, &purged),
            StorageIOError::write_logs,
        )
        .await
    }
}

/// What applying needs of the node besides its store: the rules' configuration, schema and
/// rights cache (a `Policy`, whose time each command replaces with its own).
#[derive(Clone)]
pub struct Rules {
    pub config: Arc<crate::config::Config>,
    pub schema: Arc<crate::directory::schema::Schema>,
    pub rights: RightsCache,
    /// Set when a command came from a node whose rules' settings differ from these.
    pub differ: Arc<std::sync::atomic::AtomicBool>,
}

impl Rules {
    /// A fingerprint of every setting the rules read when they apply a write: the suffix,
    /// the schema, `[posix]`, `[tokens]`, anonymous access and the indexed attributes.
    /// Every member of a cluster must have the same, or their stores drift apart.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let c = &self.config;
        let mut h = Sha256::new();
        h.update(c.suffix.norm().as_bytes());
        h.update(format!("{:?}{:?}{:?}", c.posix, c.tokens, c.security.anonymous).as_bytes());
        let mut index: Vec<String> = c.index.iter().map(|a| a.to_ascii_lowercase()).collect();
        index.sort();
        index.dedup();
        h.update(index.join(",").as_bytes());
        for (name, mut values) in self.schema.subschema_values() {
            values.sort();
            h.update(name.as_bytes());
            h.update(values.join("\n").as_bytes());
        }
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn policy(&self) -> Policy {
        Policy::new(
            self.config.clone(),
            self.schema.clone(),
            self.rights.clone(),
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }
}

/// The state machine: the directory's store, and the snapshots made of it.
pub struct StateMachine {
    store: Store,
    rules: Rules,
    fingerprint: String,
    /// `<data_dir>/cluster`: the current snapshot and its description, and a snapshot
    /// being received.
    dir: PathBuf,
    current: Arc<Mutex<Option<SnapshotMeta<u64, openraft::BasicNode>>>>,
    receiving: Option<PathBuf>,
}

/// The snapshot file and the file describing it.
const SNAPSHOT: &str = "snapshot.redb";
const SNAPSHOT_META: &str = "snapshot.json";

impl StateMachine {
    pub fn new(store: Store, rules: Rules, dir: &Path) -> std::result::Result<Self, StoreError> {
        let current = match std::fs::read(dir.join(SNAPSHOT_META)) {
            Ok(bytes) if dir.join(SNAPSHOT).exists() => serde_json::from_slice(&bytes).ok(),
            _ => None,
        };
        Ok(StateMachine {
            store,
            fingerprint: rules.fingerprint(),
            rules,
            dir: dir.to_path_buf(),
            current: Arc::new(Mutex::new(current)),
            receiving: None,
        })
    }

    /// Apply one entry in one write transaction; its outcome for the client.
    fn apply_one(
        store: &Store,
        policy: &Policy,
        entry: &Entry<TypeConfig>,
    ) -> std::result::Result<Applied, StorageError<u64>> {
        let applied = encode(&entry.log_id, StorageIOError::write_state_machine)?;
        let failed = |e: &dyn std::fmt::Display| {
            StorageError::from(StorageIOError::apply(
                entry.log_id,
                AnyError::error(e.to_string()),
            ))
        };
        match &entry.payload {
            EntryPayload::Blank => {
                store
                    .write_blocking(|w| w.set_replicated(&applied, None))
                    .map_err(|e| failed(&e))?;
                Ok(Ok(Outcome::Done))
            }
            EntryPayload::Membership(m) => {
                let stored = StoredMembership::new(Some(entry.log_id), m.clone());
                let membership = encode(&stored, StorageIOError::write_state_machine)?;
                store
                    .write_blocking(|w| w.set_replicated(&applied, Some(&membership)))
                    .map_err(|e| failed(&e))?;
                Ok(Ok(Outcome::Done))
            }
            EntryPayload::Normal(command) => {
                let outcome = store.write_blocking(|w| {
                    let outcome = command::apply(w, policy, command)?;
                    w.set_replicated(&applied, None)?;
                    Ok::<_, crate::dit::DitError>(outcome)
                });
                match outcome {
                    Ok(outcome) => Ok(Ok(outcome)),
                    // The store failed (a full disk): not a refusal every node would make.
                    // Raft stops on this node; it applies the entry again once restarted.
                    Err(e) if e.code == ldap3_proto::proto::LdapResultCode::Unavailable => {
                        tracing::error!(
                            index = entry.log_id.index,
                            error = %e.message,
                            "applying a replicated write failed on this node's store"
                        );
                        Err(failed(&e.message))
                    }
                    // Refused by the rules: every node refuses it the same way, and the
                    // transaction rolled back. Not recorded: applied again after a
                    // restart, it is refused again.
                    Err(e) => Ok(Err(Refusal::from(e))),
                }
            }
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<AppliedState> {
        let store = self.store.clone();
        let replicated = blocking(
            move || store.replicated(),
            StorageIOError::read_state_machine,
        )
        .await?;
        decode_replicated(&replicated)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let foreign = entries.iter().find_map(|e| match &e.payload {
            EntryPayload::Normal(c) if !c.rules.is_empty() && c.rules != self.fingerprint => {
                Some(c.rules.clone())
            }
            _ => None,
        });
        if let Some(theirs) = foreign
            && !self
                .rules
                .differ
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::error!(
                event = "cluster-rules-differ",
                ours = %self.fingerprint,
                theirs = %theirs,
                "this node's suffix, schema, [posix], [tokens], security.anonymous or index \
                 settings differ from the node that proposed a write: its copy may drift, so \
                 it refuses binds and searches until its configuration matches and it restarts"
            );
        }
        let store = self.store.clone();
        let policy = self.rules.policy();
        let joined = tokio::task::spawn_blocking(move || {
            entries
                .iter()
                .map(|e| StateMachine::apply_one(&store, &policy, e))
                .collect::<Result<Vec<Applied>>>()
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => {
                Err(StorageIOError::write_state_machine(AnyError::error(e.to_string())).into())
            }
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            dir: self.dir.clone(),
            current: self.current.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>> {
        let path = self.dir.join("incoming.redb");
        let _ = std::fs::remove_file(&path);
        let file = owner_only(&path)
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        self.receiving = Some(path);
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| {
            StorageError::from(StorageIOError::write_snapshot(
                Some(meta.signature()),
                AnyError::error(e.to_string()),
            ))
        };
        snapshot.sync_all().await.map_err(|e| fail(&e))?;
        drop(snapshot);
        let Some(incoming) = self.receiving.take() else {
            return Err(fail(&"no snapshot was being received"));
        };
        let (dir, store, rules, meta_owned) = (
            self.dir.clone(),
            self.store.clone(),
            self.rules.clone(),
            meta.clone(),
        );
        let installed = tokio::task::spawn_blocking(move || {
            // Kept as the current snapshot (to send on), then put in the store's place.
            let partial = dir.join("snapshot.partial");
            std::fs::copy(&incoming, &partial).map_err(|e| e.to_string())?;
            std::fs::rename(&partial, dir.join(SNAPSHOT)).map_err(|e| e.to_string())?;
            let described = serde_json::to_vec(&meta_owned).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(SNAPSHOT_META), described).map_err(|e| e.to_string())?;
            store
                .install(&incoming, &rules.schema, &rules.config.index)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e))?;
        tracing::info!(
            event = "snapshot-installed",
            last = ?meta.last_log_id,
            "the store was replaced by the leader's snapshot"
        );
        let _ = installed;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let meta = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(meta) = meta else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(self.dir.join(SNAPSHOT))
            .await
            .map_err(|e| {
                StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}

/// Makes snapshots of the store while the state machine goes on applying.
pub struct SnapshotBuilder {
    store: Store,
    dir: PathBuf,
    current: Arc<Mutex<Option<SnapshotMeta<u64, openraft::BasicNode>>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let (store, dir) = (self.store.clone(), self.dir.clone());
        let (replicated, path) = blocking(
            move || {
                let partial = dir.join("building.redb");
                let replicated = store.snapshot_to(&partial)?;
                let path = dir.join(SNAPSHOT);
                std::fs::rename(&partial, &path).map_err(|source| StoreError::File {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok((replicated, path))
            },
            |e| StorageIOError::write_snapshot(None, e),
        )
        .await?;
        let (last_log_id, last_membership) = decode_replicated(&replicated)?;
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, unique()),
            None => format!("0-0-{}", unique()),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let described = encode(&meta, StorageIOError::write)?;
        std::fs::write(self.dir.join(SNAPSHOT_META), described).map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(meta.clone());
        tracing::info!(event = "snapshot-built", last = ?meta.last_log_id, "snapshot of the store built");
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

/// The last applied entry and the membership a store's replication state holds.
fn decode_replicated(r: &Replicated) -> Result<AppliedState> {
    let applied = r
        .applied
        .as_deref()
        .map(|b| decode(b, StorageIOError::read_state_machine))
        .transpose()?;
    let membership = r
        .membership
        .as_deref()
        .map(|b| decode(b, StorageIOError::read_state_machine))
        .transpose()?
        .unwrap_or_default();
    Ok((applied, membership))
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<R, StoreError> + Send + 'static,
    fail: fn(AnyError) -> StorageIOError<u64>,
) -> Result<R> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(fail(AnyError::new(&e)).into()),
        Err(e) => Err(fail(AnyError::error(e.to_string())).into()),
    }
}

fn encode<T: Serialize>(value: &T, fail: fn(AnyError) -> StorageIOError<u64>) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| fail(AnyError::new(&e)).into())
}

fn decode<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    fail: fn(AnyError) -> StorageIOError<u64>,
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| fail(AnyError::new(&e)).into())
}

/// A new owner-only file at `path`.
fn owner_only(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// A number no other snapshot of this process has.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    nanos.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}
