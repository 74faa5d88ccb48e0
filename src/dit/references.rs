//! References between entries: the DN-valued attributes that confer rights (`member`,
//! `entryManagedBy`) must name entries that exist, and follow them when they are deleted
//! or renamed, as OpenLDAP's refint overlay does.

use crate::directory::dn::Dn;
use crate::dit::entry::derive_member_uid;
use crate::store::{DirectoryRead, StoreError, Writer};

/// Keep group membership pointing at real entries: when `old` is deleted (or renamed to
/// `new`), drop (or rewrite) it in every group's `member`, as OpenLDAP's refint overlay does.
pub fn refint(w: &mut Writer<'_>, old: &Dn, new: Option<&Dn>) -> Result<(), StoreError> {
    let Some(groups) = w.lookup("member", old.norm().as_bytes())? else {
        return Ok(());
    };
    for gid in groups {
        let Some(group) = w.entry(gid)? else {
            continue;
        };
        let mut updated = group.clone();
        let mut members: Vec<Vec<u8>> = group
            .values("member")
            .iter()
            .filter(|m| {
                std::str::from_utf8(m)
                    .ok()
                    .and_then(|m| Dn::parse(m).ok())
                    .is_none_or(|m| &m != old)
            })
            .cloned()
            .collect();
        if let Some(new) = new {
            members.push(new.to_string().into_bytes());
        }
        updated.set("member", members);
        derive_member_uid(&mut updated);
        w.replace(gid, &group, &updated)?;
    }
    Ok(())
}
