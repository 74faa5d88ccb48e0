//! References between entries: the DN-valued attributes that confer rights on the entries
//! they name (`member`: the group's roles and management; `entryManagedBy`: control of the
//! account). A value written must name an entry that exists, and deleting or renaming an entry removes or rewrites every reference to it in the same
//! transaction, as OpenLDAP's refint overlay does. So no name can inherit what a deleted or
//! never-existing entry was given.

use ldap3_proto::proto::LdapResultCode;

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::dit::entry::derive_member_uid;
use crate::dit::error::DitError;
use crate::store::{DirectoryRead, StoreError, Writer};

/// The attributes whose values confer rights on the entries they name.
pub const CONFERRING: &[&str] = &["member", "entryManagedBy"];

/// Refuse (21, naming it) a value of a conferring attribute in `new` that `old` did not
/// have and that names no entry of the directory. An entry may name itself; a DN outside
/// the suffix names nothing that could ever exist here, so nothing can inherit through it
/// (Keycloak writes `member: cn=empty-membership-placeholder` into each new groupOfNames,
/// which must have a member).
pub fn check(
    r: &impl DirectoryRead,
    suffix: &Dn,
    old: Option<&Entry>,
    new: &Entry,
) -> Result<(), DitError> {
    for attr in CONFERRING {
        let before: Vec<Dn> = old.map(|o| dns(o.values(attr))).unwrap_or_default();
        for dn in dns(new.values(attr)) {
            if dn == new.dn || before.contains(&dn) || !dn.is_within(suffix) {
                continue;
            }
            if r.id_of(&dn)?.is_none() {
                return Err(missing(attr, &dn));
            }
        }
    }
    Ok(())
}

/// The refusal for a reference to `dn`, which does not exist.
pub fn missing(attr: &str, dn: &Dn) -> DitError {
    DitError::new(
        LdapResultCode::InvalidAttributeSyntax,
        format!("{attr}: {dn} does not exist"),
    )
}

/// The DNs among `values`; one that does not parse is the schema check's to refuse.
pub fn dns(values: &[Vec<u8>]) -> Vec<Dn> {
    values
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter_map(|v| Dn::parse(v).ok())
        .collect()
}

/// Keep references pointing at real entries: when `old` is deleted (or renamed to `new`),
/// drop (or rewrite) it in every entry's `member` and `entryManagedBy`. An account whose
/// only manager goes is left to directory administrators.
pub fn refint(w: &mut Writer<'_>, old: &Dn, new: Option<&Dn>) -> Result<(), StoreError> {
    for attr in CONFERRING {
        let Some(ids) = w.lookup(attr, old.norm().as_bytes())? else {
            continue;
        };
        for id in ids {
            let Some(holder) = w.entry(id)? else {
                continue;
            };
            let mut updated = holder.clone();
            let mut values: Vec<Vec<u8>> = holder
                .values(attr)
                .iter()
                .filter(|v| {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|v| Dn::parse(v).ok())
                        .is_none_or(|v| &v != old)
                })
                .cloned()
                .collect();
            if let Some(new) = new {
                values.push(new.to_string().into_bytes());
            }
            updated.set(attr, values);
            derive_member_uid(&mut updated);
            w.replace(id, &holder, &updated)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::testing::*;
    use crate::dit::write::ChangeKind;
    use crate::store::DirectoryRead;

    #[test]
    fn references_must_name_entries_and_follow_them() {
        let (store, policy) = directory();
        let ann = add_person(&store, &policy, "ann");
        let staff = add_group(&store, &policy, "staff", &[&ann]);
        let svc = add_service(&store, &policy, "svc", Some(&staff));
        let zed = person("zed");
        let err = modify_as(
            &store,
            &policy,
            &admin(),
            &staff,
            ChangeKind::Add,
            "member",
            &[&zed.to_string()],
        )
        .unwrap_err();
        assert_eq!(err.code, LdapResultCode::InvalidAttributeSyntax);
        assert!(
            err.message
                .contains(&format!("member: {zed} does not exist")),
            "{}",
            err.message
        );
        let values = |dn: &Dn, attr: &str| {
            store
                .read_blocking(|r| {
                    Ok::<_, StoreError>(r.entry_by_dn(dn)?.unwrap().1.values(attr).to_vec())
                })
                .unwrap()
        };
        // Rename ann: the group follows; delete the group: the account is left unmanaged.
        store
            .write_blocking(|w| {
                let caller = crate::dit::caller::caller(w, &admin(), &policy)?;
                let rename = crate::dit::write::Rename {
                    dn: ann.clone(),
                    new_rdn: crate::directory::dn::Rdn::single("uid", "anne"),
                    new_superior: None,
                    delete_old_rdn: true,
                };
                crate::dit::write::rename(w, &policy, &caller, &rename)
            })
            .unwrap();
        assert_eq!(
            values(&staff, "member"),
            vec![person("anne").to_string().into_bytes()]
        );
        store
            .write_blocking(|w| {
                let caller = crate::dit::caller::caller(w, &admin(), &policy)?;
                crate::dit::write::delete(w, &policy, &caller, &staff)
            })
            .unwrap();
        assert!(values(&svc, "entryManagedBy").is_empty());
    }
}
