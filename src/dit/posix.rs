//! POSIX numbers: uidNumber and gidNumber allocated where missing and kept unique, inside
//! the write transaction, so allocation is atomic with the write that needs it.

use ldap3_proto::proto::LdapResultCode;

use crate::config::Posix;
use crate::directory::entry::Entry;
use crate::directory::matching::normalize;
use crate::dit::error::DitError;
use crate::store::{DirectoryRead, StoreError, Writer};

const NEXT_UID: &str = "next_uid_number";
const NEXT_GID: &str = "next_gid_number";

/// Allocate missing POSIX ids and refuse duplicates: uidNumber among accounts,
/// gidNumber among groups. `id` is the entry's own id when it already exists.
///
/// An account without a gidNumber gets a user private group: gidNumber = uidNumber. So
/// that such a gid never lands on a group's, every allocated number (a uidNumber, or a
/// group's gidNumber) is one that no entry holds as a uidNumber or gidNumber, and that
/// neither allocator has handed out before, even if its holder was deleted.
///
/// Only ever adds attributes; true if it added any (the entry is no longer as given).
pub fn posix_ids(
    w: &mut Writer<'_>,
    posix: &Posix,
    entry: &mut Entry,
    id: Option<u64>,
) -> Result<bool, DitError> {
    let mut completed = false;
    if entry.has_class("posixAccount") {
        if entry.get("uidNumber").is_none() {
            let n = allocate(w, posix, Pool::Uid)?;
            entry.set_str("uidNumber", &n.to_string());
            completed = true;
        }
        if entry.get("gidNumber").is_none() {
            let uid = entry.first_str("uidNumber").unwrap_or_default().to_string();
            // A chosen uidNumber may be a group's gid; joining that group silently as the
            // primary one would hand over its files, so the client must say which gid.
            if in_use(w, "gidNumber", &["posixGroup"], uid.as_bytes(), id)? {
                return Err(DitError::new(
                    LdapResultCode::ConstraintViolation,
                    format!(
                        "gidNumber {uid} (from uidNumber) is a group's gidNumber; give a gidNumber"
                    ),
                ));
            }
            entry.set_str("gidNumber", &uid);
            completed = true;
        }
        let uid = entry.first_str("uid").map(str::to_string);
        if let Some(uid) = uid.filter(|_| entry.get("homeDirectory").is_none()) {
            entry.set_str("homeDirectory", &format!("/home/{uid}"));
            completed = true;
        }
        unique(w, entry, id, "uidNumber", "posixAccount")?;
    }
    if entry.has_class("posixGroup") {
        if entry.get("gidNumber").is_none() {
            let n = allocate(w, posix, Pool::Gid)?;
            entry.set_str("gidNumber", &n.to_string());
            completed = true;
        }
        unique(w, entry, id, "gidNumber", "posixGroup")?;
    }
    Ok(completed)
}

/// The two allocators: account uidNumbers (and so user private gids), group gidNumbers.
#[derive(Clone, Copy)]
enum Pool {
    Uid,
    Gid,
}

fn allocate(w: &mut Writer<'_>, posix: &Posix, pool: Pool) -> Result<u32, DitError> {
    let (key, min, max, attr, other_key, other_min) = match pool {
        Pool::Uid => (
            NEXT_UID,
            posix.uid_min,
            posix.uid_max,
            "uidNumber",
            NEXT_GID,
            posix.gid_min,
        ),
        Pool::Gid => (
            NEXT_GID,
            posix.gid_min,
            posix.gid_max,
            "gidNumber",
            NEXT_UID,
            posix.uid_min,
        ),
    };
    // Each counter is a high-water mark: [min, counter) has been handed out by that pool.
    let other_min = u64::from(other_min);
    let other_next = w.meta(other_key)?.map_or(other_min, |n| n.max(other_min));
    let mut next = w
        .meta(key)?
        .map_or(u64::from(min), |n| n.max(u64::from(min)));
    while next <= u64::from(max) {
        if (other_min..other_next).contains(&next) {
            next = other_next;
            continue;
        }
        let candidate = next;
        next += 1;
        let text = candidate.to_string();
        let taken = in_use(w, "uidNumber", &[], text.as_bytes(), None)?
            || in_use(w, "gidNumber", &[], text.as_bytes(), None)?;
        if !taken {
            w.set_meta(key, next)?;
            return u32::try_from(candidate).map_err(|_| DitError::other("id out of range"));
        }
    }
    Err(DitError::unwilling(format!(
        "no free {attr} left in the configured range"
    )))
}

fn unique(
    w: &Writer<'_>,
    entry: &Entry,
    id: Option<u64>,
    attr: &str,
    class: &str,
) -> Result<(), DitError> {
    for v in entry.values(attr) {
        if in_use(w, attr, &[class], v, id)? {
            return Err(DitError::new(
                LdapResultCode::ConstraintViolation,
                format!("{attr} {} is already in use", String::from_utf8_lossy(v)),
            ));
        }
    }
    Ok(())
}

/// Does an entry other than `except`, of one of `classes` (any entry when empty), hold
/// `value` as `attr`?
fn in_use(
    w: &Writer<'_>,
    attr: &str,
    classes: &[&str],
    value: &[u8],
    except: Option<u64>,
) -> Result<bool, StoreError> {
    let rule = crate::directory::matching::MatchingRule::from_name("integerMatch");
    let Some(key) = normalize(rule, value) else {
        return Ok(false);
    };
    let Some(ids) = w.lookup(attr, &key)? else {
        return Ok(false);
    };
    for other in ids {
        if Some(other) == except {
            continue;
        }
        if classes.is_empty() {
            return Ok(true);
        }
        if w.entry(other)?
            .is_some_and(|e| classes.iter().any(|c| e.has_class(c)))
        {
            return Ok(true);
        }
    }
    Ok(false)
}
