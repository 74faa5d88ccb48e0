//! A cluster member's Raft log, in a redb file of its own beside the store (`raft.redb`):
//! entries by index, and the little state Raft keeps beside them (the vote, the last
//! purged entry, the committed one), each as serialized bytes. Knows indexes and bytes,
//! not Raft's types (`cluster::storage` does). Every change is one durable commit.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::StoreError;
use super::file::{guarded, open_database, prepare};

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");

/// The log file. Cheap to clone; every method blocks (run it off the async workers).
#[derive(Clone)]
pub struct RaftLog {
    db: Arc<Database>,
}

impl RaftLog {
    /// Open or create the log file at `path` (owner-only, as the store).
    pub fn open(path: &Path) -> Result<RaftLog, StoreError> {
        prepare(path)?;
        let db = guarded(path, || open_database(path, |p| Database::create(p)))?;
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.open_table(STATE)?;
        txn.commit()?;
        Ok(RaftLog { db: Arc::new(db) })
    }

    /// A log in memory, for tests.
    pub fn in_memory() -> Result<RaftLog, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.open_table(STATE)?;
        txn.commit()?;
        Ok(RaftLog { db: Arc::new(db) })
    }

    /// Append (or overwrite) entries by index, durably.
    pub fn append(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ENTRIES)?;
            for (index, bytes) in entries {
                table.insert(*index, bytes.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Remove the entries from `index` on (a leader's log overrode them).
    pub fn truncate_from(&self, index: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ENTRIES)?;
            table.retain_in(index.., |_, _| false)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Remove the entries up to `index`, inclusive, and note `purged` (what the last of
    /// them was) in the same commit.
    pub fn purge_to(&self, index: u64, purged: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ENTRIES)?;
            table.retain_in(..=index, |_, _| false)?;
            txn.open_table(STATE)?.insert(PURGED, purged)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The entries in `range` that are present, in order.
    pub fn range(&self, range: RangeInclusive<u64>) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTRIES)?;
        let mut out = Vec::new();
        for row in table.range(range)? {
            let (_, v) = row?;
            out.push(v.value().to_vec());
        }
        Ok(out)
    }

    /// The last entry, if any.
    pub fn last(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTRIES)?;
        Ok(table.last()?.map(|(_, v)| v.value().to_vec()))
    }

    /// The state value `key` (`VOTE`, `PURGED`, `COMMITTED`).
    pub fn state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STATE)?;
        Ok(table.get(key)?.map(|g| g.value().to_vec()))
    }

    /// Set the state value `key`, durably.
    pub fn set_state(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(STATE)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }
}

/// The vote this node last gave or holds.
pub const VOTE: &str = "vote";
/// The last entry removed from the front of the log.
pub const PURGED: &str = "purged";
/// The last entry known committed.
pub const COMMITTED: &str = "committed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_truncate_purge_and_state() {
        let log = RaftLog::in_memory().unwrap();
        let entries: Vec<(u64, Vec<u8>)> = (1..=5).map(|i| (i, vec![i as u8])).collect();
        log.append(&entries).unwrap();
        assert_eq!(log.range(2..=3).unwrap(), vec![vec![2], vec![3]]);
        log.truncate_from(4).unwrap();
        assert_eq!(log.last().unwrap(), Some(vec![3]));
        log.purge_to(2, b"p").unwrap();
        assert_eq!(log.range(0..=10).unwrap(), vec![vec![3]]);
        assert_eq!(log.state(PURGED).unwrap(), Some(b"p".to_vec()));
        log.set_state(VOTE, b"v").unwrap();
        assert_eq!(log.state(VOTE).unwrap(), Some(b"v".to_vec()));
        assert_eq!(log.state(COMMITTED).unwrap(), None);
    }
}
