//! Reading: what read and write transactions both offer (`DirectoryRead`), and `Reader`,
//! a read transaction.

use std::cell::Cell;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use redb::{ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::keys::{index_key, index_key_id, index_keys};
use super::{
    CHILDREN, CURRENT_INDEX_FORMAT, Ctx, DN2ID, ENTRIES, INDEX, INDEX_FORMAT, META, Store,
    StoreError, VerifyReport,
};
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;

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
        // A file from a version with another index layout (a backup checked as it is): the
        // index cannot be checked here, and a server opening the file rebuilds it.
        let format = self.meta(INDEX_FORMAT)?;
        let index_current = format == Some(CURRENT_INDEX_FORMAT);
        if !index_current {
            report.notes.push(format!(
                "the equality index is in format {}, not {CURRENT_INDEX_FORMAT}: it was not \
                 checked, and a server opening the file rebuilds it",
                format.map_or("none".to_string(), |f| f.to_string())
            ));
        }
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
            if !index_current {
                continue;
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
    /// Entry and index reads made through this transaction (see `Store::read_inline`).
    touched: Cell<u32>,
    entries: ReadOnlyTable<u64, &'static [u8]>,
    dn2id: ReadOnlyTable<&'static str, u64>,
    children: ReadOnlyTable<(u64, u64), ()>,
    index: ReadOnlyTable<&'static [u8], ()>,
    meta: ReadOnlyTable<&'static str, u64>,
    ctx: Arc<Ctx>,
    generation: u64,
}

impl Reader {
    pub(super) fn open(store: &Store) -> Result<Reader, StoreError> {
        // Counted before the snapshot is taken, so the snapshot holds at least those commits.
        let generation = store.ctx.commits.load(Ordering::SeqCst);
        let txn = store.database()?.begin_read()?;
        Ok(Reader {
            touched: Cell::new(0),
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

impl Reader {
    fn touch(&self) {
        self.touched.set(self.touched.get().saturating_add(1));
    }

    /// Entry and index reads made so far.
    pub(super) fn touched(&self) -> u32 {
        self.touched.get()
    }
}

impl DirectoryRead for Reader {
    type Entries = ReadOnlyTable<u64, &'static [u8]>;
    type Dn2Id = ReadOnlyTable<&'static str, u64>;
    type Children = ReadOnlyTable<(u64, u64), ()>;
    type Index = ReadOnlyTable<&'static [u8], ()>;
    type Meta = ReadOnlyTable<&'static str, u64>;

    fn entries(&self) -> &Self::Entries {
        self.touch();
        &self.entries
    }
    fn dn2id(&self) -> &Self::Dn2Id {
        &self.dn2id
    }
    fn children_table(&self) -> &Self::Children {
        &self.children
    }
    fn index(&self) -> &Self::Index {
        self.touch();
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
