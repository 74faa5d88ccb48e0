//! The redb store: the only module that imports redb.
//!
//! Tables: `entries` (id -> encoded entry), `dn2id` (normalised DN -> id), `children`
//! ((parent, child) -> ()), `eq_index` (flat keys of attribute code, normalised value and
//! id -> ()) for equality lookups, `indexed` (the attributes that index was built for, with
//! their rules) and `meta` (counters, the index format). Every transaction runs on the blocking pool through
//! [`Store::read`] and [`Store::write`]; writes use two-phase commit because directory
//! values are client-controlled. Knows entries and DNs, not LDAP semantics or access.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use redb::{
    Database, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, WriteTransaction,
};
use thiserror::Error;

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::filter::normalize;
use crate::directory::matching::MatchingRule;
use crate::directory::schema::Schema;

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

const NEXT_ID: &str = "next_id";
const INDEX_FORMAT: &str = "index_format";
/// Changes whenever the index's keys would come out differently for the same entry.
const CURRENT_INDEX_FORMAT: u64 = 2;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path} is in use by another process (is a Tessera server running on it?)")]
    InUse { path: String },
    #[error("storage error: {0}")]
    Storage(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "database {path} is damaged ({detail}). Check it with `tessera db verify`; to recover, \
         stop the server and put a backup (made by `tessera db backup`) in its place"
    )]
    Damaged { path: String, detail: String },
    #[error("entry already exists")]
    AlreadyExists,
    #[error("parent entry does not exist")]
    NoParent,
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Storage(e.to_string())
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
    /// Open or create the database file; a lock held by another process is reported as such.
    /// The whole file is checked first (redb's checksums over every page), so a damaged file
    /// is refused at start, with its name, instead of being served until a read reaches the
    /// bad page. redb can panic on some damage; that is reported as damage too.
    pub fn open(path: &Path, schema: &Schema, indexed: &[String]) -> Result<Store, StoreError> {
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
        let unavailable =
            || StoreError::Storage("the database is unavailable after an I/O error".into());
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
    /// `dest` that a server can start from. Written beside `dest` and renamed into place,
    /// so a partial copy never looks like a backup. Returns the entry count.
    pub fn backup_to(&self, dest: &Path) -> Result<u64, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        if dest.exists() {
            return Err(StoreError::Storage(format!(
                "{} exists already",
                dest.display()
            )));
        }
        let partial = dest.with_extension("partial");
        let io = |e: std::io::Error| StoreError::Storage(format!("{}: {e}", partial.display()));
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
        std::fs::rename(&partial, dest).map_err(io)?;
        Ok(entries)
    }

    fn copy_into(&self, path: &Path) -> Result<u64, StoreError> {
        let target = Database::create(path)?;
        let source = self.database()?.begin_read()?;
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
            entries
        };
        txn.commit()?;
        Ok(entries)
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
                None => Err(StoreError::Storage(format!(
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
            return Err(StoreError::Storage("too many indexed attributes".into()));
        }
        let mut ctx = Ctx {
            indexed,
            examined: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            rebuilt: None,
        };
        let txn = db.begin_write()?;
        {
            txn.open_table(ENTRIES)?;
            txn.open_table(DN2ID)?;
            txn.open_table(CHILDREN)?;
            txn.open_table(INDEX)?;
            txn.open_table(META)?;
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

    /// A read on the calling thread. For a few point lookups (a bind, a compare, the
    /// caller's rights, a small search) the hop to the blocking pool costs more than the read.
    pub fn read_blocking<R, E>(&self, f: impl FnOnce(&Reader) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let reader = Reader::open(self).map_err(E::from)?;
        f(&reader)
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
        Prepared::new(entry, &index_keys(&self.ctx.indexed, entry))
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

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub entries: u64,
    pub problems: Vec<String>,
}

/// redb's page cache for the whole-file integrity check.
const CHECK_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Open the file with `how`, naming it in every error.
fn open_database(
    path: &Path,
    how: impl FnOnce(&Path) -> Result<Database, redb::DatabaseError>,
) -> Result<Database, StoreError> {
    match how(path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::InUse {
            path: path.display().to_string(),
        }),
        Err(e) => Err(opening_failed(path, e)),
    }
}

/// A failure to open or check the file: damage, or another storage error, naming the file.
fn opening_failed(path: &Path, e: redb::DatabaseError) -> StoreError {
    if is_damage(&e) {
        StoreError::Damaged {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    } else {
        StoreError::Storage(format!("{}: {e}", path.display()))
    }
}

/// redb's check of every page against its checksum: Ok(true) clean, Ok(false) repaired
/// (a crash had left it needing repair; the repair is logged).
fn check_integrity(path: &Path, db: &mut Database) -> Result<bool, StoreError> {
    match db.check_integrity() {
        Ok(clean) => {
            if !clean {
                tracing::warn!(path = %path.display(), "database repaired after an unclean stop");
            }
            Ok(clean)
        }
        Err(e) => Err(opening_failed(path, e)),
    }
}

fn is_damage(e: &redb::DatabaseError) -> bool {
    match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => true,
        // What redb reports for a file that is not a redb database (a damaged header).
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
            io.kind() == std::io::ErrorKind::InvalidData
        }
        _ => false,
    }
}

/// Run `f` on the file at `path`, turning a panic inside redb (it has them on some
/// damaged files) into a `Damaged` error.
fn guarded<R>(path: &Path, f: impl FnOnce() -> Result<R, StoreError>) -> Result<R, StoreError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StoreError::Damaged {
                path: path.display().to_string(),
                detail: format!("the storage engine failed reading it: {what}"),
            })
        }
    }
}

/// Why the stored equality index does not fit `ctx`, if it does not: built for other
/// attributes or rules (a changed `index.attributes`, or schema), or by an earlier format.
/// Searching it then would miss entries, so it is rebuilt rather than used.
fn index_outdated(txn: &WriteTransaction, ctx: &Ctx) -> Result<Option<&'static str>, StoreError> {
    let format = txn.open_table(META)?.get(INDEX_FORMAT)?.map(|g| g.value());
    if format != Some(CURRENT_INDEX_FORMAT) {
        return Ok(Some("the index format changed"));
    }
    let stored = txn.open_table(INDEXED)?;
    let mut built = Vec::new();
    for row in stored.iter()? {
        let (attr, rule) = row?;
        built.push((attr.value().to_string(), rule.value().to_string()));
    }
    let wanted = ctx
        .indexed
        .iter()
        .map(|(attr, rule)| (attr.clone(), rule_name(*rule)));
    if !built.into_iter().eq(wanted) {
        return Ok(Some(
            "the indexed attributes or their matching rules changed",
        ));
    }
    Ok(None)
}

fn rule_name(rule: Option<MatchingRule>) -> String {
    rule.map(|r| r.name().to_string()).unwrap_or_default()
}

/// Build the equality index again from every entry, in the opening transaction: a crash
/// part way leaves the old index and the old manifest in place, to be rebuilt next time.
fn rebuild_index(txn: &WriteTransaction, ctx: &Ctx, why: &str) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    txn.delete_table(OLD_INDEX)?;
    txn.delete_table(INDEX)?;
    txn.delete_table(INDEXED)?;
    let mut index = txn.open_table(INDEX)?;
    let entries = txn.open_table(ENTRIES)?;
    let mut key = Vec::new();
    let mut count = 0u64;
    for row in entries.iter()? {
        let (id, value) = row?;
        let id = id.value();
        let entry = Entry::decode(value.value())
            .map_err(|e| StoreError::Corrupt(format!("entry {id}: {e}")))?;
        for (code, value) in &index_keys(&ctx.indexed, &entry).0 {
            index_key(&mut key, *code, value, id);
            index.insert(key.as_slice(), ())?;
        }
        count += 1;
    }
    let mut stored = txn.open_table(INDEXED)?;
    for (attr, rule) in &ctx.indexed {
        stored.insert(attr.as_str(), rule_name(*rule).as_str())?;
    }
    txn.open_table(META)?
        .insert(INDEX_FORMAT, CURRENT_INDEX_FORMAT)?;
    if count > 0 {
        tracing::warn!(
            entries = count,
            seconds = started.elapsed().as_secs_f64(),
            "equality index rebuilt: {why}"
        );
    }
    Ok(())
}

/// An equality index key: the attribute's code, the value's length and the value (so no
/// value's keys run into a longer value's), then the id, big-endian so ids sort in order.
fn index_key(buf: &mut Vec<u8>, code: usize, value: &[u8], id: u64) {
    buf.clear();
    push_index_key(buf, code, value, id);
}

/// [`index_key`], added to the end of `buf`.
fn push_index_key(buf: &mut Vec<u8>, code: usize, value: &[u8], id: u64) {
    // from_db caps the attributes at u16::MAX; values are far below u32::MAX (message cap).
    buf.extend_from_slice(&(code as u16).to_be_bytes());
    buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
    buf.extend_from_slice(value);
    buf.extend_from_slice(&id.to_be_bytes());
}

/// The id at the end of an [`index_key`].
fn index_key_id(key: &[u8]) -> Result<u64, StoreError> {
    key.len()
        .checked_sub(8)
        .and_then(|at| key[at..].try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("equality index key too short".into()))
}

/// One write transaction on `db`, committed when `f` succeeds.
fn write_in<R, E>(
    db: &Database,
    ctx: &Ctx,
    f: impl FnOnce(&mut Writer<'_>) -> Result<R, E>,
) -> Result<R, E>
where
    E: From<StoreError>,
{
    let mut txn = db.begin_write().map_err(StoreError::from)?;
    txn.set_two_phase_commit(true);
    let result = {
        let mut writer = Writer::open(&txn, ctx).map_err(E::from)?;
        let result = f(&mut writer)?;
        writer.finish()?;
        result
    };
    txn.commit().map_err(StoreError::from)?;
    Ok(result)
}

/// Copy every row of `from` into `to`; the number of rows.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadOnlyTable<K, V>,
    to: &mut Table<'_, K, V>,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

/// Read access shared by read and write transactions.
pub trait DirectoryRead {
    type Entries: ReadableTable<u64, &'static [u8]>;
    type Dn2Id: ReadableTable<&'static str, u64>;
    type Children: ReadableTable<(u64, u64), ()>;
    type Index: ReadableTable<&'static [u8], ()>;
    type Meta: ReadableTable<&'static str, u64>;

    fn entries(&self) -> &Self::Entries;
    fn dn2id(&self) -> &Self::Dn2Id;
    fn children_table(&self) -> &Self::Children;
    fn index(&self) -> &Self::Index;
    fn meta_table(&self) -> &Self::Meta;
    fn ctx(&self) -> &Ctx;
    /// The commit count this transaction's view starts from (see `Ctx::commits`).
    fn generation(&self) -> u64;

    fn id_of(&self, dn: &Dn) -> Result<Option<u64>, StoreError> {
        Ok(self.dn2id().get(dn.norm())?.map(|g| g.value()))
    }

    fn entry(&self, id: u64) -> Result<Option<Entry>, StoreError> {
        self.entry_only(id, |_| true)
    }

    /// Entry `id` with only the attributes `keep` accepts.
    fn entry_only(
        &self,
        id: u64,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Option<Entry>, StoreError> {
        let Some(raw) = self.entries().get(id)? else {
            return Ok(None);
        };
        self.ctx().examined.fetch_add(1, Ordering::Relaxed);
        Entry::decode_only(raw.value(), keep)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("entry {id}: {e}")))
    }

    /// The DN of entry `id`, without decoding the rest of it.
    fn dn_of(&self, id: u64) -> Result<Option<Dn>, StoreError> {
        let Some(raw) = self.entries().get(id)? else {
            return Ok(None);
        };
        Entry::decode_dn(raw.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("entry {id}: {e}")))
    }

    /// The DN of entry `id` as stored, not parsed: for showing it, as `memberOf` does.
    fn dn_text_of(&self, id: u64) -> Result<Option<String>, StoreError> {
        let Some(raw) = self.entries().get(id)? else {
            return Ok(None);
        };
        Entry::decode_dn_text(raw.value())
            .map(|dn| Some(dn.to_string()))
            .map_err(|e| StoreError::Corrupt(format!("entry {id}: {e}")))
    }

    fn entry_by_dn(&self, dn: &Dn) -> Result<Option<(u64, Entry)>, StoreError> {
        let Some(id) = self.id_of(dn)? else {
            return Ok(None);
        };
        Ok(self.entry(id)?.map(|e| (id, e)))
    }

    /// The nearest existing strict ancestor of `dn`, for a noSuchObject's matchedDN;
    /// empty when there is none.
    fn closest_ancestor(&self, dn: &Dn) -> Result<String, StoreError> {
        let mut cur = dn.parent();
        while let Some(p) = cur.filter(|p| !p.is_root()) {
            if let Some((_, e)) = self.entry_by_dn(&p)? {
                return Ok(e.dn.to_string());
            }
            cur = p.parent();
        }
        Ok(String::new())
    }

    fn children(&self, id: u64) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for item in self.children_table().range((id, 0)..=(id, u64::MAX))? {
            out.push(item?.0.value().1);
        }
        Ok(out)
    }

    fn has_children(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self
            .children_table()
            .range((id, 0)..=(id, u64::MAX))?
            .next()
            .is_some())
    }

    /// `id` and all entries below it, in ascending id order.
    fn subtree(&self, id: u64) -> Result<Vec<u64>, StoreError> {
        let mut out = vec![id];
        let mut queue = VecDeque::from([id]);
        while let Some(next) = queue.pop_front() {
            for child in self.children(next)? {
                out.push(child);
                queue.push_back(child);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn is_indexed(&self, attr: &str) -> bool {
        self.ctx().code(attr).is_some()
    }

    /// Ids whose `attr` has a value equal (under its rule) to the normalised `key`; None
    /// when `attr` has no index.
    fn lookup(&self, attr: &str, key: &[u8]) -> Result<Option<BTreeSet<u64>>, StoreError> {
        let Some(code) = self.ctx().code(attr) else {
            return Ok(None);
        };
        let (mut low, mut high) = (Vec::new(), Vec::new());
        index_key(&mut low, code, key, 0);
        index_key(&mut high, code, key, u64::MAX);
        let mut out = BTreeSet::new();
        for item in self.index().range(low.as_slice()..=high.as_slice())? {
            out.insert(index_key_id(item?.0.value())?);
        }
        Ok(Some(out))
    }

    fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.meta_table().get(key)?.map(|g| g.value()))
    }

    fn entry_count(&self) -> Result<u64, StoreError> {
        Ok(self.entries().len()?)
    }

    /// Every entry in id order (parents before children), for export.
    fn for_each_entry(
        &self,
        mut f: impl FnMut(u64, Entry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.entries().iter()? {
            let (k, v) = item?;
            let id = k.value();
            let entry = Entry::decode(v.value())
                .map_err(|e| StoreError::Corrupt(format!("entry {id}: {e}")))?;
            f(id, entry)?;
        }
        Ok(())
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        for item in self.entries().iter()? {
            let (k, v) = item?;
            let id = k.value();
            report.entries += 1;
            let entry = match Entry::decode(v.value()) {
                Ok(e) => e,
                Err(e) => {
                    report
                        .problems
                        .push(format!("entry {id} does not decode: {e}"));
                    continue;
                }
            };
            match self.id_of(&entry.dn)? {
                Some(found) if found == id => {}
                _ => report
                    .problems
                    .push(format!("entry {id} ({}) is missing from dn2id", entry.dn)),
            }
            let indexed = &self.ctx().indexed;
            let mut key = Vec::new();
            for (code, value) in &index_keys(indexed, &entry).0 {
                index_key(&mut key, *code, value, id);
                if self.index().get(key.as_slice())?.is_none() {
                    report.problems.push(format!(
                        "entry {id} ({}): {} index key missing",
                        entry.dn, indexed[*code].0
                    ));
                }
            }
        }
        let dn_count = self.dn2id().len()?;
        if dn_count != report.entries {
            report.problems.push(format!(
                "dn2id has {dn_count} names for {} entries",
                report.entries
            ));
        }
        Ok(report)
    }
}

pub struct Reader {
    entries: ReadOnlyTable<u64, &'static [u8]>,
    dn2id: ReadOnlyTable<&'static str, u64>,
    children: ReadOnlyTable<(u64, u64), ()>,
    index: ReadOnlyTable<&'static [u8], ()>,
    meta: ReadOnlyTable<&'static str, u64>,
    ctx: Arc<Ctx>,
    generation: u64,
}

impl Reader {
    fn open(store: &Store) -> Result<Reader, StoreError> {
        // Counted before the snapshot is taken, so the snapshot holds at least those commits.
        let generation = store.ctx.commits.load(Ordering::SeqCst);
        let txn = store.database()?.begin_read()?;
        Ok(Reader {
            generation,
            entries: txn.open_table(ENTRIES)?,
            dn2id: txn.open_table(DN2ID)?,
            children: txn.open_table(CHILDREN)?,
            index: txn.open_table(INDEX)?,
            meta: txn.open_table(META)?,
            ctx: store.ctx.clone(),
        })
    }
}

impl DirectoryRead for Reader {
    type Entries = ReadOnlyTable<u64, &'static [u8]>;
    type Dn2Id = ReadOnlyTable<&'static str, u64>;
    type Children = ReadOnlyTable<(u64, u64), ()>;
    type Index = ReadOnlyTable<&'static [u8], ()>;
    type Meta = ReadOnlyTable<&'static str, u64>;

    fn entries(&self) -> &Self::Entries {
        &self.entries
    }
    fn dn2id(&self) -> &Self::Dn2Id {
        &self.dn2id
    }
    fn children_table(&self) -> &Self::Children {
        &self.children
    }
    fn index(&self) -> &Self::Index {
        &self.index
    }
    fn meta_table(&self) -> &Self::Meta {
        &self.meta
    }
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn generation(&self) -> u64 {
        self.generation
    }
}

pub struct Writer<'t> {
    entries: Table<'t, u64, &'static [u8]>,
    dn2id: Table<'t, &'static str, u64>,
    children: Table<'t, (u64, u64), ()>,
    index: Table<'t, &'static [u8], ()>,
    meta: Table<'t, &'static str, u64>,
    ctx: &'t Ctx,
    /// The next entry id, once read: kept here and written back once, at the end of the
    /// transaction, rather than read and rewritten for every entry an import adds.
    next_id: Option<u64>,
    /// The parent the last entry was added under: (normal form, id). Forgotten at every
    /// delete and rename, so it never names an entry that has gone.
    last_parent: Option<(String, u64)>,
}

impl<'t> Writer<'t> {
    fn open(txn: &'t WriteTransaction, ctx: &'t Ctx) -> Result<Writer<'t>, StoreError> {
        Ok(Writer {
            entries: txn.open_table(ENTRIES)?,
            dn2id: txn.open_table(DN2ID)?,
            children: txn.open_table(CHILDREN)?,
            index: txn.open_table(INDEX)?,
            meta: txn.open_table(META)?,
            ctx,
            next_id: None,
            last_parent: None,
        })
    }

    /// Add a new entry under an existing parent.
    pub fn add(&mut self, entry: &Entry) -> Result<u64, StoreError> {
        self.add_keyed(entry, None)
    }

    /// [`Writer::add`] with what the entry takes worked out beforehand (by
    /// [`Store::prepare_normalized`] on the entry exactly as given), off the writing thread.
    pub fn add_prepared(&mut self, entry: &Entry, prepared: &Prepared) -> Result<u64, StoreError> {
        self.add_keyed(entry, Some(prepared))
    }

    fn add_keyed(&mut self, entry: &Entry, prepared: Option<&Prepared>) -> Result<u64, StoreError> {
        // The parent's normal form is a slice of the entry's: no parent DN is built.
        let parent = match entry.dn.parent_norm() {
            Some(p) if !p.is_empty() => Some(self.parent_of_new(p)?),
            _ => None,
        };
        self.insert(entry, parent, prepared)
    }

    /// The id of a new entry's parent, by its normal form. A bulk load adds thousands of
    /// entries under one parent in a row: the last one found is kept.
    fn parent_of_new(&mut self, norm: &str) -> Result<u64, StoreError> {
        if let Some((last, id)) = &self.last_parent
            && last == norm
        {
            return Ok(*id);
        }
        let id = self.dn2id.get(norm)?.map(|g| g.value());
        let id = id.ok_or(StoreError::NoParent)?;
        self.last_parent = Some((norm.to_string(), id));
        Ok(id)
    }

    /// Add the root of a naming context: an entry whose parent is not in the store.
    pub fn add_suffix(&mut self, entry: &Entry) -> Result<u64, StoreError> {
        self.insert(entry, None, None)
    }

    fn insert(
        &mut self,
        entry: &Entry,
        parent: Option<u64>,
        prepared: Option<&Prepared>,
    ) -> Result<u64, StoreError> {
        let id = match self.next_id {
            Some(id) => id,
            None => self.meta(NEXT_ID)?.unwrap_or(1),
        };
        match prepared {
            Some(p) => self.entries.insert(id, p.encoded.as_slice())?,
            None => self.entries.insert(id, entry.encode().as_slice())?,
        };
        // The insert returns what it replaced: one lookup both checks for and adds the DN.
        let taken = self.dn2id.insert(entry.dn.norm(), id)?.map(|g| g.value());
        if let Some(other) = taken {
            self.dn2id.insert(entry.dn.norm(), other)?;
            self.entries.remove(id)?;
            return Err(StoreError::AlreadyExists);
        }
        self.next_id = Some(id + 1);
        if let Some(parent) = parent {
            self.children.insert((parent, id), ())?;
        }
        match prepared {
            Some(p) => self.insert_prepared_keys(id, p)?,
            None => self.add_index(id, entry)?,
        }
        Ok(id)
    }

    /// Replace the entry `id` (same DN) with `new`, keeping indexes in step.
    pub fn replace(&mut self, id: u64, old: &Entry, new: &Entry) -> Result<(), StoreError> {
        self.remove_index(id, old)?;
        self.entries.insert(id, new.encode().as_slice())?;
        self.add_index(id, new)?;
        Ok(())
    }

    /// Move a leaf entry to a new DN (new RDN and/or new parent).
    pub fn rename(&mut self, id: u64, old: &Entry, new: &Entry) -> Result<(), StoreError> {
        self.last_parent = None;
        if self.id_of(&new.dn)?.is_some_and(|other| other != id) {
            return Err(StoreError::AlreadyExists);
        }
        let old_parent = self.parent_id(&old.dn)?;
        let new_parent = match new.dn.parent() {
            Some(p) if !p.is_root() => Some(self.id_of(&p)?.ok_or(StoreError::NoParent)?),
            _ => None,
        };
        self.dn2id.remove(old.dn.norm())?;
        self.dn2id.insert(new.dn.norm(), id)?;
        if let Some(p) = old_parent {
            self.children.remove((p, id))?;
        }
        if let Some(p) = new_parent {
            self.children.insert((p, id), ())?;
        }
        self.replace(id, old, new)
    }

    pub fn delete(&mut self, id: u64, entry: &Entry) -> Result<(), StoreError> {
        self.last_parent = None;
        self.remove_index(id, entry)?;
        self.entries.remove(id)?;
        self.dn2id.remove(entry.dn.norm())?;
        if let Some(p) = self.parent_id(&entry.dn)? {
            self.children.remove((p, id))?;
        }
        Ok(())
    }

    /// Write back what the transaction kept in memory; before it commits.
    fn finish(&mut self) -> Result<(), StoreError> {
        if let Some(id) = self.next_id {
            self.meta.insert(NEXT_ID, id)?;
        }
        Ok(())
    }

    pub fn set_meta(&mut self, key: &str, value: u64) -> Result<(), StoreError> {
        self.meta.insert(key, value)?;
        Ok(())
    }

    fn parent_id(&self, dn: &Dn) -> Result<Option<u64>, StoreError> {
        match dn.parent() {
            Some(p) if !p.is_root() => self.id_of(&p),
            _ => Ok(None),
        }
    }

    fn add_index(&mut self, id: u64, entry: &Entry) -> Result<(), StoreError> {
        self.insert_keys(id, &index_keys(&self.ctx.indexed, entry))
    }

    fn insert_keys(&mut self, id: u64, keys: &IndexKeys) -> Result<(), StoreError> {
        let mut key = Vec::new();
        for (code, value) in &keys.0 {
            index_key(&mut key, *code, value, id);
            self.index.insert(key.as_slice(), ())?;
        }
        Ok(())
    }

    fn insert_prepared_keys(&mut self, id: u64, p: &Prepared) -> Result<(), StoreError> {
        let mut key = Vec::new();
        let mut start = 0;
        for &end in &p.ends {
            key.clear();
            key.extend_from_slice(&p.keys[start..end]);
            let at = key.len() - 8;
            key[at..].copy_from_slice(&id.to_be_bytes());
            self.index.insert(key.as_slice(), ())?;
            start = end;
        }
        Ok(())
    }

    fn remove_index(&mut self, id: u64, entry: &Entry) -> Result<(), StoreError> {
        let mut key = Vec::new();
        for (code, value) in &index_keys(&self.ctx.indexed, entry).0 {
            index_key(&mut key, *code, value, id);
            self.index.remove(key.as_slice())?;
        }
        Ok(())
    }
}

impl<'t> DirectoryRead for Writer<'t> {
    type Entries = Table<'t, u64, &'static [u8]>;
    type Dn2Id = Table<'t, &'static str, u64>;
    type Children = Table<'t, (u64, u64), ()>;
    type Index = Table<'t, &'static [u8], ()>;
    type Meta = Table<'t, &'static str, u64>;

    fn entries(&self) -> &Self::Entries {
        &self.entries
    }
    fn dn2id(&self) -> &Self::Dn2Id {
        &self.dn2id
    }
    fn children_table(&self) -> &Self::Children {
        &self.children
    }
    fn index(&self) -> &Self::Index {
        &self.index
    }
    fn meta_table(&self) -> &Self::Meta {
        &self.meta
    }
    fn ctx(&self) -> &Ctx {
        self.ctx
    }

    /// Writes are serialised: nothing commits while this transaction is open.
    fn generation(&self) -> u64 {
        self.ctx.commits.load(Ordering::SeqCst)
    }
}

/// The (indexed attribute's code, key) pairs an entry contributes to the equality index,
/// sorted and without repeats.
struct IndexKeys(Vec<(usize, Vec<u8>)>);

/// What adding an entry takes from it alone: its encoding and its index keys, worked out
/// beforehand by [`Store::prepare_normalized`], off the writing thread.
pub struct Prepared {
    encoded: Vec<u8>,
    /// The [`index_key`]s, one after another, each with id 0: the writer puts the id in.
    keys: Vec<u8>,
    /// Where each key ends in `keys`.
    ends: Vec<usize>,
}

impl Prepared {
    fn new(entry: &Entry, keys: &IndexKeys) -> Prepared {
        let mut flat = Vec::new();
        let mut ends = Vec::with_capacity(keys.0.len());
        for (code, value) in &keys.0 {
            push_index_key(&mut flat, *code, value, 0);
            ends.push(flat.len());
        }
        Prepared {
            encoded: entry.encode(),
            keys: flat,
            ends,
        }
    }
}

fn index_keys(indexed: &[(String, Option<MatchingRule>)], entry: &Entry) -> IndexKeys {
    let mut keys = Vec::new();
    for (i, (attr, rule)) in indexed.iter().enumerate() {
        for value in entry.values(attr) {
            if let Some(key) = normalize(*rule, value) {
                keys.push((i, key));
            }
        }
    }
    keys.sort();
    keys.dedup();
    IndexKeys(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let path = dir.join("t.redb");
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
        let copy = dir.path().join("copy.redb");
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
