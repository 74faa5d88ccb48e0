//! The equality index: its flat byte keys (attribute code, value length, value, id), the
//! keys an entry contributes, entries prepared for adding with their keys worked out, and
//! rebuilding the index when the attributes, rules or key format it was built for change.

use redb::{ReadableTable, WriteTransaction};

use super::{
    CURRENT_INDEX_FORMAT, Ctx, ENTRIES, INDEX, INDEX_FORMAT, INDEXED, META, OLD_INDEX, StoreError,
};
use crate::directory::entry::Entry;
use crate::directory::matching::MatchingRule;
use crate::directory::matching::normalize;

/// Why the stored equality index does not fit `ctx`, if it does not: built for other
/// attributes or rules (a changed `index.attributes`, or schema), or by an earlier format.
/// Searching it then would miss entries, so it is rebuilt rather than used.
pub(super) fn index_outdated(
    txn: &WriteTransaction,
    ctx: &Ctx,
) -> Result<Option<&'static str>, StoreError> {
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

pub(super) fn rule_name(rule: Option<MatchingRule>) -> String {
    rule.map(|r| r.name().to_string()).unwrap_or_default()
}

/// Build the equality index again from every entry, in the opening transaction: a crash
/// part way leaves the old index and the old manifest in place, to be rebuilt next time.
pub(super) fn rebuild_index(
    txn: &WriteTransaction,
    ctx: &Ctx,
    why: &str,
) -> Result<(), StoreError> {
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
pub(super) fn index_key(buf: &mut Vec<u8>, code: usize, value: &[u8], id: u64) {
    buf.clear();
    push_index_key(buf, code, value, id);
}

/// [`index_key`], added to the end of `buf`.
pub(super) fn push_index_key(buf: &mut Vec<u8>, code: usize, value: &[u8], id: u64) {
    // from_db caps the attributes at u16::MAX; values are far below u32::MAX (message cap).
    buf.extend_from_slice(&(code as u16).to_be_bytes());
    buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
    buf.extend_from_slice(value);
    buf.extend_from_slice(&id.to_be_bytes());
}

/// The id at the end of an [`index_key`].
pub(super) fn index_key_id(key: &[u8]) -> Result<u64, StoreError> {
    key.len()
        .checked_sub(8)
        .and_then(|at| key[at..].try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("equality index key too short".into()))
}

/// The (indexed attribute's code, key) pairs an entry contributes to the equality index,
/// sorted and without repeats.
pub(super) struct IndexKeys(pub(super) Vec<(usize, Vec<u8>)>);

/// What adding an entry takes from it alone: its encoding and its index keys, worked out
/// beforehand by [`Store::prepare_normalized`], off the writing thread.
pub struct Prepared {
    pub(super) encoded: Vec<u8>,
    /// The [`index_key`]s, one after another, each with id 0: the writer puts the id in.
    pub(super) keys: Vec<u8>,
    /// Where each key ends in `keys`.
    pub(super) ends: Vec<usize>,
}

impl Prepared {
    pub(super) fn new(entry: &Entry, keys: &IndexKeys) -> Prepared {
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

pub(super) fn index_keys(indexed: &[(String, Option<MatchingRule>)], entry: &Entry) -> IndexKeys {
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
