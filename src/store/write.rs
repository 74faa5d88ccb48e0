//! Writing: `Writer`, the changes one write transaction makes, keeping the entries,
//! `dn2id`, `children` and the equality index in step.

use std::sync::atomic::Ordering;

use redb::{Database, ReadableTable, Table, WriteTransaction};

use super::keys::{IndexKeys, Prepared, index_key, index_keys};
use super::read::DirectoryRead;
use super::{
    APPLIED, AUDIT, AUDIT_SEQ, CHILDREN, Ctx, DN2ID, ENTRIES, INDEX, MEMBERSHIP, META, NEXT_ID,
    REPLICATED, StoreError,
};
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;

/// One write transaction on `db`, committed when `f` succeeds.
pub(super) fn write_in<R, E>(
    db: &Database,
    ctx: &Ctx,
    f: impl FnOnce(&mut Writer<'_>) -> Result<R, E>,
) -> Result<R, E>
where
    E: From<StoreError>,
{
    let mut txn = db.begin_write().map_err(StoreError::from)?;
    txn.set_two_phase_commit(true);
    let (result, committed) = {
        let mut writer = Writer::open(&txn, ctx).map_err(E::from)?;
        let result = f(&mut writer)?;
        writer.finish()?;
        (result, std::mem::take(&mut writer.committed))
    };
    let started = std::time::Instant::now();
    txn.commit().map_err(StoreError::from)?;
    if let Some(observe) = ctx.commit_observer.get() {
        (observe.0)(started.elapsed());
    }
    for run in committed {
        run();
    }
    Ok(result)
}

/// Something to do once the transaction has committed (and never if it does not).
type Committed = Box<dyn FnOnce() + Send>;

pub struct Writer<'t> {
    txn: &'t WriteTransaction,
    entries: Table<'t, u64, &'static [u8]>,
    dn2id: Table<'t, &'static str, u64>,
    children: Table<'t, (u64, u64), ()>,
    index: Table<'t, &'static [u8], ()>,
    meta: Table<'t, &'static str, u64>,
    replicated: Table<'t, &'static str, &'static [u8]>,
    ctx: &'t Ctx,
    /// The next entry id, once read: kept here and written back once, at the end of the
    /// transaction, rather than read and rewritten for every entry an import adds.
    next_id: Option<u64>,
    /// The parent the last entry was added under: (normal form, id). Forgotten at every
    /// delete and rename, so it never names an entry that has gone.
    last_parent: Option<(String, u64)>,
    committed: Vec<Committed>,
}

impl<'t> Writer<'t> {
    fn open(txn: &'t WriteTransaction, ctx: &'t Ctx) -> Result<Writer<'t>, StoreError> {
        Ok(Writer {
            txn,
            entries: txn.open_table(ENTRIES)?,
            dn2id: txn.open_table(DN2ID)?,
            children: txn.open_table(CHILDREN)?,
            index: txn.open_table(INDEX)?,
            meta: txn.open_table(META)?,
            replicated: txn.open_table(REPLICATED)?,
            ctx,
            next_id: None,
            last_parent: None,
            committed: Vec::new(),
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

    /// Run `f` once this transaction has committed; never when it fails.
    pub fn on_commit(&mut self, f: impl FnOnce() + Send + 'static) {
        self.committed.push(Box::new(f));
    }

    /// Append an audit record written at `micros` (since the epoch); records are kept in
    /// time order, and the store does not look inside them.
    pub fn append_audit(&mut self, micros: u64, record: &[u8]) -> Result<(), StoreError> {
        let seq = self.meta(AUDIT_SEQ)?.unwrap_or(0) + 1;
        self.meta.insert(AUDIT_SEQ, seq)?;
        self.txn.open_table(AUDIT)?.insert((micros, seq), record)?;
        Ok(())
    }

    /// Drop audit records written before `before_micros`, then the oldest beyond
    /// `max_records`, at most `budget` of them in this transaction; how many went.
    pub fn prune_audit(
        &mut self,
        before_micros: u64,
        max_records: u64,
        budget: u64,
    ) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let mut table = self.txn.open_table(AUDIT)?;
        let mut len = table.len()?;
        let mut removed = 0;
        while removed < budget {
            let Some(micros) = table.first()?.map(|(k, _)| k.value().0) else {
                break;
            };
            if micros >= before_micros && len <= max_records {
                break;
            }
            table.pop_first()?;
            len -= 1;
            removed += 1;
        }
        Ok(removed)
    }

    /// Record, in this transaction, the log entry a cluster member applies with it (and the
    /// membership, when the entry changes it): what it applied and its store commit
    /// together, so a restart resumes exactly after it.
    pub fn set_replicated(
        &mut self,
        applied: &[u8],
        membership: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.replicated.insert(APPLIED, applied)?;
        if let Some(m) = membership {
            self.replicated.insert(MEMBERSHIP, m)?;
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
