//! Computed attributes: values no entry stores, worked out when read (`entryDN`,
//! `subschemaSubentry`, `hasSubordinates`, `memberOf`). Every reader of entries (searches,
//! compares, access decisions that filter on `memberOf`) gets them here.

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::store::{DirectoryRead, StoreError};

/// Where the subschema subentry lives (RFC 4512 §4.2).
pub const SUBSCHEMA_DN: &str = "cn=Subschema";

/// Attach the computed operational attributes that `want` asks for.
pub fn add_computed(
    r: &impl DirectoryRead,
    id: u64,
    entry: &mut Entry,
    want: impl Fn(&str) -> bool,
) -> Result<(), StoreError> {
    if want("entryDN") && entry.get("entryDN").is_none() {
        let dn = entry.dn.to_string();
        entry.set_str("entryDN", &dn);
    }
    if want("subschemaSubentry") && entry.get("subschemaSubentry").is_none() {
        entry.set_str("subschemaSubentry", SUBSCHEMA_DN);
    }
    if want("hasSubordinates") && entry.get("hasSubordinates").is_none() {
        let v = if r.has_children(id)? { "TRUE" } else { "FALSE" };
        entry.set_str("hasSubordinates", v);
    }
    if want("memberOf") && entry.get("memberOf").is_none() {
        let groups = member_of(r, &entry.dn)?;
        entry.set(
            "memberOf",
            groups.into_iter().map(String::into_bytes).collect(),
        );
    }
    Ok(())
}

/// DNs of the groups that list `dn` as a `member`.
pub fn member_of(r: &impl DirectoryRead, dn: &Dn) -> Result<Vec<String>, StoreError> {
    let Some(ids) = r.lookup("member", dn.norm().as_bytes())? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for id in ids {
        if let Some(group) = r.dn_text_of(id)? {
            out.push(group);
        }
    }
    Ok(out)
}
