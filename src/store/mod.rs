//! The redb store: the only module that imports redb.
//!
//! Tables: `entries` (id -> encoded entry), `dn2id` (normalised DN -> id), `children`
//! ((parent, child) -> ()), `eq_index` (flat keys of attribute code, normalised value and
//! id -> ()) for equality lookups, `indexed` (the attributes that index was built for, with
//! their rules) and `meta` (counters, the index format). Every transaction runs on the blocking pool through
//! [`Store::read`] and [`Store::write`]; writes use two-phase commit because directory
//! values are client-controlled. Knows entries and DNs, not LDAP semantics or access.
//!
//! - `file`: opening, checking and copying the database file.
//! - `read`: `DirectoryRead`, what read and write transactions both offer, and `Reader`.
//! - `write`: `Writer`, the changes a write transaction makes.
//! - `keys`: the equality index's keys, and rebuilding the index.
//! - `log`: a cluster member's Raft log, in a file of its own (`raft.redb`).

mod file;
mod keys;
mod log;
mod read;
mod write;

pub use keys::Prepared;
pub use log::RaftLog;

/// The keys of the Raft log file's state values.
pub mod log_keys {
    pub use super::log::{COMMITTED, PURGED, VOTE};
}
pub use read::{DirectoryRead, Reader};
pub use write::Writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use thiserror::Error;

use crate::config::Config;
use crate::directory::entry::Entry;
use crate::directory::matching::MatchingRule;
use crate::directory::schema::{Schema, SchemaError};
use file::{CHECK_CACHE_BYTES, check_integrity, copy_table, guarded, open_database};
use keys::{IndexKeys, index_outdated, rebuild_index};
use write::write_in;

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
const DN2ID: TableDefinition<&str, u64> = TableDefinition::new("dn2id");
const CHILDREN: TableDefinition<(u64, u64), ()> = TableDefinition::new("children");
/// Keys are [`index_key`]s: plain bytes compare with one memcmp, where redb's tuple keys
/// were decoded field by field on every comparison of an insert.
const INDEX: TableDefinition<&[u8], ()> = TableDefinition::new("eq_index");
/// Attribute name (lower case) -> its equality rule's name ("" for none).
const INDEXED: TableDefinition<&str, &str> = TableDefinition::new("indexed");
/// The tuple-keyed index of earlier versions; dropped when the index is rebuilt.
const OLD_INDEX: TableDefinition<(&str, &[u8], u64), ()> = TableDefinition::new("index");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The audit trail: (microseconds since the epoch, sequence) -> an encoded record, which
/// only `crate::audit` reads.
const AUDIT: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("audit");
const AUDIT_SEQ: &str = "audit_seq";
/// A cluster member's replication state, written in the transaction of each write it
/// applies (see `Writer::set_replicated`): the last log entry applied and the membership.
const REPLICATED: TableDefinition<&str, &[u8]> = TableDefinition::new("replicated");

const NEXT_ID: &str = "next_id";
const INDEX_FORMAT: &str = "index_format";
/// Changes whenever the index's keys would come out differently for the same entry.
const CURRENT_INDEX_FORMAT: u64 = 2;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path} is in use by another process (is a Tessera server running on it?)")]
    InUse { path: String },
    /// What redb reported, kept typed: a full disk is told from other failures.
    #[error("storage error: {0}")]
    Engine(#[from] redb::Error),
    /// A file operation of the store's own (data directory, backup copy) failed.
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
    /// The handle let go of a database that an I/O error poisoned, and opening it again
    /// failed; the next operation tries again.
    #[error("the database is unavailable after an I/O error")]
    Unavailable,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "database {path} is damaged ({detail}). Check it with `tessera db verify`; to recover, \
         stop the server and put a backup (made by `tessera db backup`) in its place"
    )]
    Damaged { path: String, detail: String },
    /// A file that is not a Tessera database (a foreign redb file, say), and why.
    #[error("not a Tessera database: {0}")]
    Foreign(String),
    #[error("entry already exists")]
    AlreadyExists,
    #[error("parent entry does not exist")]
    NoParent,
    #[error("background task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Did the disk run out of space? The directory is then unavailable for writes, not
    /// damaged, and says so.
    pub fn is_disk_full(&self) -> bool {
        let io = match self {
            StoreError::Engine(redb::Error::Io(io)) => io,
            StoreError::File { source, .. } => source,
            _ => return false,
        };
        io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28)
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::from(redb::Error::from(e))
            }
        }
    )*};
}
storage_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

/// Entries and index ranges a read on an async worker may touch (see `Store::read_inline`):
/// an inline search meets at most 32 candidates, each with a few lookups for its computed
/// attributes and the caller's view.
pub const INLINE_READ_BOUND: u32 = 512;

/// Why the configured directory could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The schema and the store `config` names: the shipped schema plus `schema_dir`, and the
/// database file in `data_dir` (created owner-only when missing). The server and the
/// offline `db` commands open the directory the same way.
pub fn open_configured(config: &Config) -> Result<(Schema, Store), OpenError> {
    let mut schema = Schema::shipped()?;
    if let Some(dir) = &config.schema_dir {
        schema = schema.load_dir(dir)?;
    }
    let store = Store::open(&config.db_path(), &schema, &config.index)?;
    Ok((schema, store))
}

/// Which attributes have equality indexes, with the rule that normalises their keys.
#[derive(Debug)]
pub struct Ctx {
    /// Sorted by name, lower case; the position is the attribute's code in index keys.
    indexed: Vec<(String, Option<MatchingRule>)>,
    examined: AtomicU64,
    /// Write transactions committed since the store opened: what was derived from the
    /// directory at one count is still true while the count stays.
    commits: AtomicU64,
    /// Why the equality index was rebuilt when the store opened, if it was.
    rebuilt: Option<&'static str>,
    /// Told how long each commit took (the metrics).
    commit_observer: std::sync::OnceLock<CommitObserver>,
}

/// An audit record as stored: its key (microseconds since the epoch, sequence) and bytes.
pub type AuditRow = ((u64, u64), Vec<u8>);

/// Told how long each commit took.
pub struct CommitObserver(Box<dyn Fn(std::time::Duration) + Send + Sync>);

impl std::fmt::Debug for CommitObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitObserver")
    }
}

impl Ctx {
    /// The code of `attr` in index keys; None when it has no index.
    fn code(&self, attr: &str) -> Option<usize> {
        self.indexed
            .iter()
            .position(|(name, _)| name.eq_ignore_ascii_case(attr))
    }
}

#[derive(Clone)]
pub struct Store {
    /// None after an I/O failure poisoned the database, until it is opened again.
    db: Arc<RwLock<Option<Arc<Database>>>>,
    /// The file, to open again after such a failure; None in memory.
    path: Option<Arc<PathBuf>>,
    ctx: Arc<Ctx>,
}

impl Store {
    /// Open or create the database file (see `file::prepare` for the file's own rules: owner-only,
    /// never empty); a lock held by another process is reported as such.
    /// The whole file is checked first (redb's checksums over every page), so a damaged file
    /// is refused at start, with its name, instead of being served until a read reaches the
    /// bad page. redb can panic on some damage; that is reported as damage too.
    pub fn open(path: &Path, schema: &Schema, indexed: &[String]) -> Result<Store, StoreError> {
        file::prepare(path)?;
        let opened = guarded(path, || {
            // The check reads every page once: through a small cache, so that it does not
            // leave the whole file's size in freed heap behind it. The serving handle then
            // starts with an empty cache, and memory follows what is served.
            let mut db = open_database(path, |p| {
                Database::builder()
                    .set_cache_size(CHECK_CACHE_BYTES)
                    .create(p)
            })?;
            check_integrity(path, &mut db)?;
            drop(db);
            let db = open_database(path, |p| Database::create(p))?;
            Store::from_db(db, schema, indexed)
        });
        let mut store = opened?;
        store.path = Some(Arc::new(path.to_path_buf()));
        Ok(store)
    }

    /// The database file at `path` as it is, to check it (a backup, say) without a
    /// configuration: it must exist and be a Tessera database ([`StoreError::Foreign`]
    /// otherwise); nothing is created or rebuilt, and the equality index is taken to be the
    /// one the file records.
    pub fn open_as_is(path: &Path) -> Result<Store, StoreError> {
        let not_ours = |why: String| StoreError::Foreign(why);
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() == 0 => return Err(not_ours("it is empty".into())),
            Ok(_) => {}
            Err(source) => {
                return Err(StoreError::File {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
        let opened = guarded(path, || {
            let db = open_database(path, |p| Database::open(p))?;
            let txn = db.begin_read()?;
            let tables = [
                ENTRIES.name(),
                DN2ID.name(),
                CHILDREN.name(),
                INDEX.name(),
                META.name(),
            ];
            for table in tables {
                let present = txn.list_tables()?.any(|t| t.name() == table);
                if !present {
                    return Err(not_ours(format!("it has no '{table}' table")));
                }
            }
            let mut indexed = Vec::new();
            if let Ok(table) = txn.open_table(INDEXED) {
                for row in table.iter()? {
                    let (attr, rule) = row?;
                    let rule = match rule.value() {
                        "" => None,
                        name => Some(MatchingRule::from_name(name).ok_or_else(|| {
                            not_ours(format!(
                                "its index uses the matching rule '{name}', which this \
                                 version does not know"
                            ))
                        })?),
                    };
                    indexed.push((attr.value().to_string(), rule));
                }
            }
            drop(txn);
            Ok((db, indexed))
        });
        let (db, indexed) = opened?;
        Ok(Store {
            db: Arc::new(RwLock::new(Some(Arc::new(db)))),
            path: Some(Arc::new(path.to_path_buf())),
            ctx: Arc::new(Ctx {
                indexed,
                examined: AtomicU64::new(0),
                commits: AtomicU64::new(0),
                rebuilt: None,
                commit_observer: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The database, opened again first if an I/O failure had poisoned it.
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        // A poisoned lock (a panic while reopening) still holds a valid slot: use it rather
        // than refuse every operation until a restart.
        let current = self
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(db) = current {
            return Ok(db);
        }
        let unavailable = || StoreError::Unavailable;
        let Some(path) = &self.path else {
            return Err(unavailable());
        };
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = slot.clone() {
            return Ok(db);
        }
        // Fails while transactions of the old handle are still open; the next use retries.
        let db = Arc::new(Database::create(path.as_path()).map_err(|_| unavailable())?);
        tracing::info!(path = %path.display(), "database opened again after an I/O error");
        *slot = Some(db.clone());
        Ok(db)
    }

    /// After a failed write: redb refuses every later write once an I/O error (a full disk)
    /// hit a commit, until the file is opened again. Let go of such a handle, so the next
    /// use opens it afresh (and works once the disk has room again).
    fn release_if_poisoned(&self, failed: Arc<Database>) {
        if self.path.is_none() {
            return;
        }
        let poisoned = matches!(
            failed.begin_write(),
            Err(redb::TransactionError::Storage(
                redb::StorageError::PreviousIo
            ))
        );
        if !poisoned {
            return;
        }
        if let Ok(mut slot) = self.db.write()
            && slot.as_ref().is_some_and(|db| Arc::ptr_eq(db, &failed))
        {
            *slot = None;
            tracing::warn!("write failed on an I/O error; the database will be opened again");
        }
    }

    /// redb's own integrity check on a file no server holds: Ok(true) clean, Ok(false)
    /// repaired.
    pub fn check_file(path: &Path) -> Result<bool, StoreError> {
        guarded(path, || {
            let mut db = open_database(path, |p| {
                Database::builder()
                    .set_cache_size(CHECK_CACHE_BYTES)
                    .open(p)
            })?;
            check_integrity(path, &mut db)
        })
    }

    /// Write a consistent copy of the whole store, as of one read transaction, to a new file
    /// `dest` that a server can start from (or, when `dest` is a directory, to a file in it
    /// named by the time). Written beside it and renamed into place, so a partial copy never
    /// looks like a backup. Returns the file written and the entry count.
    pub fn backup_to(&self, dest: &Path) -> Result<(PathBuf, u64), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let dest = if dest.is_dir() {
            let now = time::OffsetDateTime::now_utc();
            let stamp = format!(
                "tessera-{:04}{:02}{:02}-{:02}{:02}{:02}.redb",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            );
            dest.join(stamp)
        } else {
            dest.to_path_buf()
        };
        if dest.exists() {
            return Err(StoreError::Refused(format!(
                "{} exists already; name a new file or a directory",
                dest.display()
            )));
        }
        let folder = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !folder.is_dir() {
            return Err(StoreError::Refused(format!(
                "{}: no such directory",
                folder.display()
            )));
        }
        let partial = dest.with_extension("partial");
        let io = |source: std::io::Error| StoreError::File {
            path: dest.display().to_string(),
            source,
        };
        // Owner-only from the first byte: the copy holds password and token hashes.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io)?;
        let copied = self.copy_into(&partial);
        if copied.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        let entries = copied?;
        std::fs::rename(&partial, &dest).map_err(io)?;
        Ok((dest, entries))
    }

    /// A backup: the directory without a cluster member's replication state, so it can
    /// start a single server or a new cluster (`tessera cluster init`).
    fn copy_into(&self, path: &Path) -> Result<u64, StoreError> {
        self.copy_with_state(path, false)
            .map(|(entries, _)| entries)
    }

    /// Copy the store to a new file at `path`, as of one read transaction, with the
    /// replication state when `replicated` (a snapshot); the entry count and that state.
    fn copy_with_state(
        &self,
        path: &Path,
        replicated: bool,
    ) -> Result<(u64, Replicated), StoreError> {
        let target = Database::create(path)?;
        let source = self.database()?.begin_read()?;
        let state = replicated_in(&source)?;
        let txn = target.begin_write()?;
        let entries = {
            let entries = copy_table(&source.open_table(ENTRIES)?, &mut txn.open_table(ENTRIES)?)?;
            copy_table(&source.open_table(DN2ID)?, &mut txn.open_table(DN2ID)?)?;
            copy_table(
                &source.open_table(CHILDREN)?,
                &mut txn.open_table(CHILDREN)?,
            )?;
            copy_table(&source.open_table(INDEX)?, &mut txn.open_table(INDEX)?)?;
            copy_table(&source.open_table(INDEXED)?, &mut txn.open_table(INDEXED)?)?;
            copy_table(&source.open_table(META)?, &mut txn.open_table(META)?)?;
            copy_table(&source.open_table(AUDIT)?, &mut txn.open_table(AUDIT)?)?;
            if replicated {
                copy_table(
                    &source.open_table(REPLICATED)?,
                    &mut txn.open_table(REPLICATED)?,
                )?;
            }
            entries
        };
        txn.commit()?;
        Ok((entries, state))
    }

    /// A snapshot for a cluster: a consistent copy of the whole store in the new file
    /// `dest` (owner-only), and the replication state it is as of.
    pub fn snapshot_to(&self, dest: &Path) -> Result<Replicated, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source: std::io::Error| StoreError::File {
            path: dest.display().to_string(),
            source,
        };
        let _ = std::fs::remove_file(dest);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(io)?;
        let copied = self.copy_with_state(dest, true);
        if copied.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        Ok(copied?.1)
    }

    /// The replication state as of now (see [`Writer::set_replicated`]).
    pub fn replicated(&self) -> Result<Replicated, StoreError> {
        let txn = self.database()?.begin_read()?;
        replicated_in(&txn)
    }

    /// Replace the whole store with the file `src` (a snapshot from another node, made by
    /// [`Store::snapshot_to`]): checked and opened as a store (its index rebuilt if it was
    /// built for other attributes), renamed over this store's file, and served from then
    /// on. Reads already running finish on the old one. Its replication state.
    pub fn install(
        &self,
        src: &Path,
        schema: &Schema,
        indexed: &[String],
    ) -> Result<Replicated, StoreError> {
        let Some(path) = self.path.clone() else {
            return Err(StoreError::Refused(
                "a store in memory cannot take a snapshot".into(),
            ));
        };
        let opened = Store::open(src, schema, indexed)?;
        let db = opened.database()?;
        drop(opened);
        std::fs::rename(src, path.as_path()).map_err(|source| StoreError::File {
            path: path.display().to_string(),
            source,
        })?;
        let replicated = replicated_in(&db.begin_read()?)?;
        *self.db.write().unwrap_or_else(PoisonError::into_inner) = Some(db);
        self.ctx.commits.fetch_add(1, Ordering::SeqCst);
        Ok(replicated)
    }

    /// A store in memory, for tests and fuzzing.
    pub fn in_memory(schema: &Schema, indexed: &[String]) -> Result<Store, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Store::from_db(db, schema, indexed)
    }

    fn from_db(db: Database, schema: &Schema, indexed: &[String]) -> Result<Store, StoreError> {
        let indexed = indexed
            .iter()
            .map(|name| match schema.attribute(name) {
                Some(at) => Ok((at.name().to_ascii_lowercase(), at.equality)),
                None => Err(StoreError::Refused(format!(
                    "indexed attribute '{name}' is not in the schema"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted by name: an attribute's position is its code in the keys, so the codes
        // follow the set of attributes, not the order the configuration lists them in.
        let mut indexed = indexed;
        indexed.sort_by(|a, b| a.0.cmp(&b.0));
        indexed.dedup_by(|a, b| a.0 == b.0);
        if indexed.len() > usize::from(u16::MAX) {
            return Err(StoreError::Refused("too many indexed attributes".into()));
        }
        let mut ctx = Ctx {
            indexed,
            examined: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            rebuilt: None,
            commit_observer: std::sync::OnceLock::new(),
        };
        let txn = db.begin_write()?;
        {
            txn.open_table(ENTRIES)?;
            txn.open_table(DN2ID)?;
            txn.open_table(CHILDREN)?;
            txn.open_table(INDEX)?;
            txn.open_table(META)?;
            txn.open_table(AUDIT)?;
            txn.open_table(REPLICATED)?;
            if let Some(why) = index_outdated(&txn, &ctx)? {
                rebuild_index(&txn, &ctx, why)?;
                ctx.rebuilt = Some(why);
            }
        }
        txn.commit()?;
        let store = Store {
            db: Arc::new(RwLock::new(Some(Arc::new(db)))),
            path: None,
            ctx: Arc::new(ctx),
        };
        Ok(store)
    }

    /// Why the equality index was rebuilt from the entries when the store opened (a new
    /// store builds its empty index too); None when the stored one fitted.
    pub fn index_rebuilt(&self) -> Option<&'static str> {
        self.ctx.rebuilt
    }

    /// Have `observe` told how long each commit takes, from now on (once per store).
    pub fn observe_commits(&self, observe: impl Fn(std::time::Duration) + Send + Sync + 'static) {
        let _ = self
            .ctx
            .commit_observer
            .set(CommitObserver(Box::new(observe)));
    }

    /// The size of the database file in bytes; None in memory.
    pub fn file_size(&self) -> Option<u64> {
        let path = self.path.as_ref()?;
        std::fs::metadata(path.as_path()).ok().map(|m| m.len())
    }

    /// Is anything in the audit trail written before `before` (microseconds since the
    /// epoch), or are there more than `max_records` records? A read, so that pruning
    /// writes only when there is something to prune.
    pub fn audit_due(&self, before: u64, max_records: u64) -> Result<bool, StoreError> {
        use redb::{ReadableTable, ReadableTableMetadata};
        let txn = self.database()?.begin_read()?;
        let table = txn.open_table(AUDIT)?;
        if table.len()? > max_records {
            return Ok(true);
        }
        Ok(table.first()?.is_some_and(|(k, _)| k.value().0 < before))
    }

    /// One page of the audit trail, newest first: records written in `[since, until)`
    /// (microseconds since the epoch) with keys below `before` (None: from the newest),
    /// accepted by `keep`, at most `limit` of them. The bool tells whether more may follow
    /// (then the last key is where the next page starts).
    pub fn audit_page(
        &self,
        since: u64,
        until: u64,
        before: Option<(u64, u64)>,
        limit: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<(Vec<AuditRow>, bool), StoreError> {
        let txn = self.database()?.begin_read()?;
        let table = txn.open_table(AUDIT)?;
        let upper = match before {
            Some(key) => key.min((until, 0)),
            None => (until, 0),
        };
        let mut out = Vec::new();
        for row in table.range((since, 0)..upper)?.rev() {
            let (key, value) = row?;
            if !keep(value.value()) {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((key.value(), value.value().to_vec()));
        }
        Ok((out, false))
    }

    /// How many entries have been decoded since the store opened: lets tests show that an
    /// indexed search reads a handful of entries rather than scanning.
    pub fn entries_examined(&self) -> u64 {
        self.ctx.examined.load(Ordering::Relaxed)
    }

    pub async fn read<R, E>(
        &self,
        f: impl FnOnce(&Reader) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        // The caller's span (its connection) goes along, so events logged inside name it.
        let span = tracing::Span::current();
        match tokio::task::spawn_blocking(move || span.in_scope(|| store.read_blocking(f))).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Task(e.to_string()).into()),
        }
    }

    /// A read on a thread that may block: the blocking pool, or an offline command's.
    pub fn read_blocking<R, E>(&self, f: impl FnOnce(&Reader) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let reader = Reader::open(self).map_err(E::from)?;
        f(&reader)
    }

    /// A read on an async worker, the one exception to running every transaction off them:
    /// for a few point lookups (a bind, a compare, the caller's rights, a search through an
    /// index that meets a handful of entries) the hop to the blocking pool costs more than
    /// the read (measured: see tests/bench/README.md). The bound is enforced here: a read
    /// touching more than [`INLINE_READ_BOUND`] entries and index ranges is a bug of its
    /// caller, which must use [`Store::read`] (debug builds fail on it; release builds log
    /// it once).
    pub fn read_inline<R, E>(&self, f: impl FnOnce(&Reader) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let reader = Reader::open(self).map_err(E::from)?;
        let out = f(&reader);
        let touched = reader.touched();
        if touched > INLINE_READ_BOUND {
            debug_assert!(false, "an inline read touched {touched} entries and ranges");
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    touched,
                    bound = INLINE_READ_BOUND,
                    "an inline read went past its bound; it belongs on the blocking pool"
                );
            });
        }
        out
    }

    pub async fn write<R, E>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        let span = tracing::Span::current();
        match tokio::task::spawn_blocking(move || span.in_scope(|| store.write_blocking(f))).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Task(e.to_string()).into()),
        }
    }

    pub fn write_blocking<R, E>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<R, E>,
    ) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let db = self.database()?;
        let outcome = write_in(&db, &self.ctx, f);
        match outcome {
            Ok(result) => {
                self.ctx.commits.fetch_add(1, Ordering::SeqCst);
                Ok(result)
            }
            Err(e) => {
                self.release_if_poisoned(db);
                Err(e)
            }
        }
    }

    /// [`Store::prepare_normalized`], normalising the entry's values itself.
    #[cfg(test)]
    pub fn prepare(&self, entry: &Entry) -> Prepared {
        Prepared::new(entry, &keys::index_keys(&self.ctx.indexed, entry))
    }

    /// What adding `entry` takes from it, for [`Writer::add_prepared`], with the index keys
    /// made from values already normalised by their attribute's equality rule (the rule its
    /// index uses), each with its attribute's [`Store::index_code`].
    pub fn prepare_normalized(&self, entry: &Entry, mut keys: Vec<(usize, Vec<u8>)>) -> Prepared {
        keys.sort();
        keys.dedup();
        Prepared::new(entry, &IndexKeys(keys))
    }

    /// The code of `attr` in index keys, for [`Store::prepare_normalized`]; None when the
    /// attribute has no index.
    pub fn index_code(&self, attr: &str) -> Option<usize> {
        self.ctx.code(attr)
    }

    /// Check redb's own integrity and that the tables agree with each other.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.read_blocking(|r| r.verify())
    }
}

/// A cluster member's replication state as its store holds it: the last log entry applied
/// and the membership, each as its serialized form (the store does not know Raft's types).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replicated {
    pub applied: Option<Vec<u8>>,
    pub membership: Option<Vec<u8>>,
}

const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";

fn replicated_in(txn: &redb::ReadTransaction) -> Result<Replicated, StoreError> {
    let table = match txn.open_table(REPLICATED) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Replicated::default()),
        Err(e) => return Err(e.into()),
    };
    let get = |key: &str| -> Result<Option<Vec<u8>>, StoreError> {
        Ok(table.get(key)?.map(|g| g.value().to_vec()))
    };
    Ok(Replicated {
        applied: get(APPLIED)?,
        membership: get(MEMBERSHIP)?,
    })
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub entries: u64,
    pub problems: Vec<String>,
    /// What could not be checked, and why; not a fault of the file.
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use redb::ReadableTableMetadata;

    use super::*;
    use crate::directory::dn::Dn;

    fn store() -> Store {
        let schema = Schema::shipped().unwrap();
        Store::in_memory(&schema, &["objectClass".into(), "uid".into()]).unwrap()
    }

    fn entry(dn: &str, uid: Option<&str>) -> Entry {
        let mut e = Entry::new(Dn::parse(dn).unwrap());
        e.set_str("objectClass", "top");
        if let Some(uid) = uid {
            e.set_str("uid", uid);
        }
        e
    }

    #[test]
    fn add_lookup_rename_delete() {
        let s = store();
        s.write_blocking(|w| {
            w.add_suffix(&entry("dc=example,dc=com", None))?;
            w.add(&entry("ou=people,dc=example,dc=com", None))?;
            w.add(&entry(
                "uid=alice,ou=people,dc=example,dc=com",
                Some("Alice"),
            ))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
        s.read_blocking(|r| {
            let (id, e) = r
                .entry_by_dn(&Dn::parse("UID=alice,ou=People,dc=example,dc=com")?)?
                .unwrap();
            assert_eq!(e.first_str("uid"), Some("Alice"));
            assert_eq!(r.lookup("uid", b"alice")?.unwrap(), BTreeSet::from([id]));
            assert_eq!(r.subtree(1)?.len(), 3);
            assert!(r.has_children(2)?);
            assert!(r.lookup("cn", b"x")?.is_none());
            assert!(r.verify()?.problems.is_empty());
            Ok::<_, Box<dyn std::error::Error>>(())
        })
        .unwrap();
        let err = s
            .write_blocking(|w| w.add(&entry("uid=x,ou=nowhere,dc=example,dc=com", None)))
            .unwrap_err();
        assert!(matches!(err, StoreError::NoParent));
        s.write_blocking(|w| {
            let (id, old) = w
                .entry_by_dn(&Dn::parse("uid=alice,ou=people,dc=example,dc=com").unwrap())?
                .unwrap();
            let mut new = old.clone();
            new.dn = Dn::parse("uid=alicia,ou=people,dc=example,dc=com").unwrap();
            new.set_str("uid", "alicia");
            w.rename(id, &old, &new)?;
            assert!(w.lookup("uid", b"alice")?.unwrap().is_empty());
            w.delete(id, &new)?;
            assert!(!w.has_children(2)?);
            Ok::<_, StoreError>(())
        })
        .unwrap();
        assert!(s.verify().unwrap().problems.is_empty());
    }

    #[test]
    fn a_parent_renamed_or_replaced_in_one_transaction_is_not_remembered() {
        let s = store();
        let people = || entry("ou=people,dc=example,dc=com", None);
        let child = |uid: &str| entry(&format!("uid={uid},ou=people,dc=example,dc=com"), Some(uid));
        let (old, new, bob) = s
            .write_blocking(|w| {
                w.add_suffix(&entry("dc=example,dc=com", None))?;
                let old = w.add(&people())?;
                let ann_id = w.add(&child("ann"))?;
                // The same DN again is refused, and leaves the first one where it was.
                assert!(matches!(
                    w.add(&child("ann")),
                    Err(StoreError::AlreadyExists)
                ));
                assert_eq!(w.id_of(&child("ann").dn)?, Some(ann_id));
                // Renamed away: no child can be added under the old name.
                w.delete(ann_id, &child("ann"))?;
                let mut moved = people();
                moved.dn = Dn::parse("ou=staff,dc=example,dc=com").unwrap();
                w.rename(old, &people(), &moved)?;
                assert!(matches!(w.add(&child("cy")), Err(StoreError::NoParent)));
                // Gone and made again (with no parent lookup between): children go to
                // the new entry.
                w.add(&entry("uid=dee,ou=staff,dc=example,dc=com", Some("dee")))?;
                let dee = w.id_of(&Dn::parse("uid=dee,ou=staff,dc=example,dc=com").unwrap())?;
                w.delete(
                    dee.unwrap(),
                    &entry("uid=dee,ou=staff,dc=example,dc=com", Some("dee")),
                )?;
                w.delete(old, &moved)?;
                let new = w.add_suffix(&moved)?;
                let bob = w.add(&entry("uid=bob,ou=staff,dc=example,dc=com", Some("bob")))?;
                Ok::<_, StoreError>((old, new, bob))
            })
            .unwrap();
        assert_ne!(old, new);
        s.read_blocking(|r| {
            assert_eq!(r.children(new)?, vec![bob]);
            assert!(r.children(old)?.is_empty());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    }

    #[test]
    fn ids_keep_counting_across_transactions_and_prepared_keys_index() {
        let s = store();
        let bob = entry("uid=bob,dc=example,dc=com", Some("bob"));
        let prepared = s.prepare(&bob);
        let first = s
            .write_blocking(|w| {
                w.add_suffix(&entry("dc=example,dc=com", None))?;
                w.add_prepared(&bob, &prepared)
            })
            .unwrap();
        // A transaction that fails after taking an id leaves the counter as it was.
        let failed = s.write_blocking(|w| {
            w.add(&entry("uid=x,dc=example,dc=com", None))?;
            Err::<(), _>(StoreError::AlreadyExists)
        });
        assert!(failed.is_err());
        let second = s
            .write_blocking(|w| w.add(&entry("uid=carol,dc=example,dc=com", Some("carol"))))
            .unwrap();
        assert_eq!(second, first + 1);
        s.read_blocking(|r| {
            assert_eq!(r.entry(first)?.unwrap().first_str("uid"), Some("bob"));
            assert_eq!(r.entry(second)?.unwrap().first_str("uid"), Some("carol"));
            assert_eq!(r.lookup("uid", b"bob")?.unwrap(), BTreeSet::from([first]));
            assert_eq!(r.entry_count()?, 3);
            Ok::<_, StoreError>(())
        })
        .unwrap();
        assert!(s.verify().unwrap().problems.is_empty());
    }

    fn open(path: &Path, attrs: &[&str]) -> Store {
        let schema = Schema::shipped().unwrap();
        let attrs: Vec<String> = attrs.iter().map(|a| a.to_string()).collect();
        Store::open(path, &schema, &attrs).unwrap()
    }

    /// A closed store file in `dir` indexing uid and objectClass, holding the suffix and
    /// alice (uid alice, a mail address); its path and alice's id.
    fn stored_alice(dir: &Path) -> (PathBuf, u64) {
        let path = dir.join("data").join("t.redb");
        let s = open(&path, &["uid", "objectClass"]);
        let mut alice = entry("uid=alice,dc=example,dc=com", Some("alice"));
        alice.set_str("mail", "Alice@Example.COM");
        let id = s
            .write_blocking(|w| {
                w.add_suffix(&entry("dc=example,dc=com", None))?;
                w.add(&alice)
            })
            .unwrap();
        (path, id)
    }

    fn found(s: &Store, attr: &str, key: &[u8]) -> Option<BTreeSet<u64>> {
        s.read_blocking(|r| r.lookup(attr, key)).unwrap()
    }

    fn index_rows(s: &Store) -> u64 {
        s.read_blocking(|r| Ok::<_, StoreError>(r.index().len()?))
            .unwrap()
    }

    #[test]
    fn the_index_is_rebuilt_when_its_attributes_change_and_kept_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let (path, alice) = stored_alice(dir.path());

        // The same attributes, listed otherwise: the index stands as it was.
        let s = open(&path, &["objectClass", "UID", "uid"]);
        assert_eq!(s.index_rebuilt(), None);
        assert_eq!(found(&s, "uid", b"alice"), Some(BTreeSet::from([alice])));
        // So does a backup's.
        let copy = dir.path().join("data").join("copy.redb");
        s.backup_to(&copy).unwrap();
        let restored = open(&copy, &["uid", "objectClass"]);
        assert_eq!(restored.index_rebuilt(), None);
        assert_eq!(
            found(&restored, "uid", b"alice"),
            Some(BTreeSet::from([alice]))
        );
        drop((s, restored));

        // A newly indexed attribute finds the entries written before it was listed.
        let s = open(&path, &["objectClass", "uid", "mail"]);
        assert!(s.index_rebuilt().is_some());
        assert_eq!(
            found(&s, "mail", b"alice@example.com"),
            Some(BTreeSet::from([alice]))
        );
        assert_eq!(found(&s, "uid", b"alice"), Some(BTreeSet::from([alice])));
        assert!(s.verify().unwrap().problems.is_empty());
        drop(s);

        // Attributes taken off the list leave no rows behind: only alice's uid is left.
        let s = open(&path, &["uid"]);
        assert!(s.index_rebuilt().is_some());
        assert_eq!(found(&s, "mail", b"alice@example.com"), None);
        assert_eq!(found(&s, "uid", b"alice"), Some(BTreeSet::from([alice])));
        assert_eq!(index_rows(&s), 1);
    }

    #[test]
    fn snapshots_carry_the_replication_state_backups_do_not_and_installing_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, alice) = stored_alice(dir.path());
        let s = open(&path, &["uid", "objectClass"]);
        s.write_blocking(|w| w.set_replicated(b"applied 7", Some(b"members")))
            .unwrap();
        let snapshot = dir.path().join("data").join("snapshot.redb");
        let state = s.snapshot_to(&snapshot).unwrap();
        assert_eq!(state.applied.as_deref(), Some(&b"applied 7"[..]));
        assert_eq!(state.membership.as_deref(), Some(&b"members"[..]));
        let backup = dir.path().join("data").join("backup.redb");
        s.backup_to(&backup).unwrap();
        let restored = open(&backup, &["uid", "objectClass"]);
        assert_eq!(restored.replicated().unwrap(), Replicated::default());
        assert_eq!(
            found(&restored, "uid", b"alice"),
            Some(BTreeSet::from([alice]))
        );
        drop(restored);

        // Another store takes the snapshot in place of its own file, and serves it.
        let other_path = dir.path().join("data").join("other.redb");
        let other = open(&other_path, &["uid", "objectClass"]);
        assert_eq!(found(&other, "uid", b"alice"), Some(BTreeSet::new()));
        let schema = Schema::shipped().unwrap();
        let indexed = ["uid".to_string(), "objectClass".to_string()];
        let installed = other.install(&snapshot, &schema, &indexed).unwrap();
        assert_eq!(installed, state);
        assert_eq!(
            found(&other, "uid", b"alice"),
            Some(BTreeSet::from([alice]))
        );
        assert_eq!(other.replicated().unwrap(), state);
        assert!(!snapshot.exists(), "the snapshot file became the store's");
        drop(other);
        let reopened = open(&other_path, &["uid", "objectClass"]);
        assert_eq!(reopened.replicated().unwrap(), state);
    }

    #[test]
    fn inline_reads_stay_within_their_bound() {
        let s = store();
        s.write_blocking(|w| {
            w.add_suffix(&entry("dc=example,dc=com", None))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
        let point = s.read_inline(|r| r.entry(1));
        assert!(point.unwrap().is_some(), "a point read is fine");
        let scan = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.read_inline(|r| {
                for _ in 0..=INLINE_READ_BOUND {
                    r.entry(1)?;
                }
                Ok::<_, StoreError>(())
            })
        }));
        assert_eq!(
            scan.is_err(),
            cfg!(debug_assertions),
            "past the bound, debug builds fail (release builds log)"
        );
    }

    #[test]
    fn a_file_as_it_is_is_checked_against_the_index_it_records() {
        let dir = tempfile::tempdir().unwrap();
        // Indexed on mail too, which the store opened as is must learn from the file.
        let (path, _) = stored_alice(dir.path());
        drop(open(&path, &["objectClass", "uid", "mail"]));
        let s = Store::open_as_is(&path).unwrap();
        let indexed: Vec<&str> = s.ctx.indexed.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(indexed, ["mail", "objectclass", "uid"]);
        let report = s.verify().unwrap();
        assert!(
            report.problems.is_empty() && report.notes.is_empty(),
            "{report:?}"
        );
        drop(s);

        // An index in another version's format is noted, not checked key by key.
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(INDEX_FORMAT, 1)
            .unwrap();
        txn.commit().unwrap();
        drop(db);
        let report = Store::open_as_is(&path).unwrap().verify().unwrap();
        assert!(report.problems.is_empty(), "{report:?}");
        assert!(report.notes[0].contains("format 1, not 2"), "{report:?}");

        // A redb file that is not a Tessera database, and a missing one (not created).
        let foreign = dir.path().join("foreign.redb");
        drop(Database::create(&foreign).unwrap());
        match Store::open_as_is(&foreign) {
            Err(StoreError::Foreign(why)) => assert!(why.contains("'entries'"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
        let missing = dir.path().join("missing.redb");
        assert!(matches!(
            Store::open_as_is(&missing),
            Err(StoreError::File { .. })
        ));
        assert!(!missing.exists());
    }

    #[test]
    fn the_file_and_its_directory_are_owner_only_and_never_empty() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let chmod = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let schema = Schema::shipped().unwrap();
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("data");
        let path = dir.join("t.redb");
        drop(Store::open(&path, &schema, &[]).unwrap());
        assert_eq!(mode(&dir), 0o700, "a new data directory");
        assert_eq!(mode(&path), 0o600, "a new database file");
        // Readable by others: refused with the chmod that fixes it, then accepted.
        for (target, bad, fix) in [(&dir, 0o755, "chmod 0700"), (&path, 0o644, "chmod 0600")] {
            chmod(target, bad);
            let err = Store::open(&path, &schema, &[]).err().unwrap().to_string();
            assert!(err.contains(fix) && err.contains("other users"), "{err}");
            chmod(target, if target == &dir { 0o700 } else { 0o600 });
            drop(Store::open(&path, &schema, &[]).unwrap());
        }
        // A group may be given access, as with key files.
        chmod(&dir, 0o750);
        drop(Store::open(&path, &schema, &[]).unwrap());
        // An empty file is not a new directory.
        let empty = dir.join("empty.redb");
        std::fs::File::create(&empty).unwrap();
        chmod(&empty, 0o600);
        let err = Store::open(&empty, &schema, &[]).err().unwrap().to_string();
        assert!(err.contains("is empty"), "{err}");
        assert_eq!(
            std::fs::metadata(&empty).unwrap().len(),
            0,
            "left as it was"
        );
    }

    #[test]
    fn a_store_with_the_tuple_keyed_index_gets_it_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let (path, alice) = stored_alice(dir.path());
        // The file as the earlier format left it: the tuple-keyed table, and neither the
        // list of indexed attributes nor the format mark.
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(INDEX).unwrap();
            txn.delete_table(INDEXED).unwrap();
            txn.open_table(META).unwrap().remove(INDEX_FORMAT).unwrap();
            txn.open_table(OLD_INDEX)
                .unwrap()
                .insert(("uid", b"alice".as_slice(), alice), ())
                .unwrap();
            txn.commit().unwrap();
        }
        let s = open(&path, &["uid", "objectClass"]);
        assert_eq!(s.index_rebuilt(), Some("the index format changed"));
        assert_eq!(found(&s, "uid", b"alice"), Some(BTreeSet::from([alice])));
        assert_eq!(
            found(&s, "objectClass", b"top").map(|ids| ids.len()),
            Some(2)
        );
        assert!(s.verify().unwrap().problems.is_empty());
        drop(s);
        use redb::TableHandle;
        let db = Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let tables: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        assert!(!tables.iter().any(|t| t == "index"), "{tables:?}");
    }

    #[test]
    fn index_keys_of_one_value_never_meet_a_longer_values() {
        let s = store();
        let ids = s
            .write_blocking(|w| {
                w.add_suffix(&entry("dc=example,dc=com", None))?;
                let mut ids = Vec::new();
                // Without the value's length in the key, "a"'s keys would range over every
                // longer value that starts with "a".
                for uid in ["a", "ab", "abcdefghijk", "b"] {
                    let dn = format!("cn=x{},dc=example,dc=com", ids.len());
                    ids.push(w.add(&entry(&dn, Some(uid)))?);
                }
                Ok::<_, StoreError>(ids)
            })
            .unwrap();
        assert_eq!(found(&s, "uid", b"a"), Some(BTreeSet::from([ids[0]])));
        assert_eq!(found(&s, "uid", b"ab"), Some(BTreeSet::from([ids[1]])));
        assert_eq!(found(&s, "uid", b"b"), Some(BTreeSet::from([ids[3]])));
    }
}
