//! Modify (RFC 4511 §4.6): add/delete/replace/increment applied in order, atomically,
//! then the result is schema-checked as a whole.

use ldap3_proto::proto::{LdapModifyRequest, LdapModifyType, LdapResultCode};

use crate::directory::access::Rights;
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::filter::normalize;
use crate::directory::schema::Schema;
use crate::identity::password::StoredPassword;
use crate::ldap::OpContext;
use crate::ldap::result::LdapError;
use crate::ldap::write::{self, check_entry, check_user_modifiable};
use crate::ldap::{access, token};
use crate::store::DirectoryRead;

/// One change with the attribute resolved and passwords already hashed.
struct Change {
    op: LdapModifyType,
    name: String,
    values: Vec<Vec<u8>>,
}

pub async fn modify(ctx: &OpContext, req: &LdapModifyRequest) -> Result<(), LdapError> {
    let state = &ctx.state;
    // A service account's managers may update it (see `managed_update`).
    let target = Dn::parse(&req.dn).ok();
    write::may_attempt(ctx, move |r, caller| {
        let Some((_, entry)) = target.map(|dn| r.entry_by_dn(&dn)).transpose()?.flatten() else {
            return Ok(false);
        };
        Ok(entry.has_class(token::SERVICE_CLASS) && token::may_manage(r, caller, &entry)?)
    })
    .await?;
    let dn = Dn::parse(&req.dn)?;
    let suffix = state.config.suffix.clone();
    let mut changes = Vec::with_capacity(req.changes.len());
    for m in &req.changes {
        let mut name = write::attr_name(&state.schema, &m.modification.atype)?;
        check_user_modifiable(&state.schema, &name)?;
        let mut values = m.modification.vals.clone();
        if name.eq_ignore_ascii_case("memberUid") {
            name = "member".into();
            values = write::member_uid_to_member(&suffix, &values);
        }
        if name.eq_ignore_ascii_case("userPassword")
            && matches!(m.operation, LdapModifyType::Add | LdapModifyType::Replace)
        {
            values = write::hash_passwords(state, values).await?;
        }
        changes.push(Change {
            op: m.operation.clone(),
            name,
            values,
        });
    }
    let schema = state.schema.clone();
    let posix = state.config.posix.clone();
    let policy = access::Policy::of(state);
    let principal = ctx.session.principal.clone();
    state
        .store
        .write(move |w| {
            let caller = access::caller(w, &principal, &policy)?;
            caller.require_bound()?;
            let Some((id, old)) = access::visible(w, &caller, &dn)? else {
                return Err(LdapError::missing(w, &dn));
            };
            if !managed_update(w, &caller, &old, &changes, &policy)? {
                let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
                let decided = caller.decidable(w, &old)?;
                if !caller.may_attrs(Rights::WRITE, &decided, &names, &schema) {
                    return Err(LdapError::insufficient_access());
                }
                privileged(w, &caller, &old, &names, &policy)?;
            }
            let mut entry = old.clone();
            for change in &changes {
                apply(&schema, &mut entry, change)?;
            }
            check_rdn_kept(&schema, &entry)?;
            write::expand_classes(&schema, &mut entry);
            if structural(&old) != structural_after(&schema, &entry, &old) {
                return Err(LdapError::new(
                    LdapResultCode::ObjectClassModsProhibited,
                    "structural object class modification not allowed",
                ));
            }
            write::derive_member_uid(&mut entry);
            write::posix_ids(w, &posix, &mut entry, Some(id))?;
            let actor = caller.dn().map(ToString::to_string).unwrap_or_default();
            write::stamp_modified(&mut entry, &actor, &write::now_generalized());
            write::check_service_account(&entry)?;
            access::check_role(&entry, &policy)?;
            check_entry(&schema, &entry)?;
            w.replace(id, &old, &entry)?;
            tracing::info!(dn = %entry.dn, actor = %actor, "entry modified");
            Ok(())
        })
        .await
}

/// Managers of a service account (see `token::may_manage`) may update it, except that
/// re-delegating an account that is a directory administrator takes an administrator.
fn managed_update(
    r: &impl DirectoryRead,
    caller: &access::Caller,
    entry: &Entry,
    changes: &[Change],
    policy: &access::Policy,
) -> Result<bool, crate::store::StoreError> {
    if caller.is_admin() || !entry.has_class(token::SERVICE_CLASS) {
        return Ok(false);
    }
    if !token::may_manage(r, caller, entry)? {
        return Ok(false);
    }
    let redelegates = changes
        .iter()
        .any(|c| c.name.eq_ignore_ascii_case("entryManagedBy"));
    Ok(!(redelegates && access::is_admin(r, &entry.dn, policy)?))
}

/// What only administrators change, whatever roles say: who manages an account that is
/// a directory administrator, and the members of a group that makes its members
/// administrators.
fn privileged(
    r: &impl DirectoryRead,
    caller: &access::Caller,
    entry: &Entry,
    names: &[&str],
    policy: &access::Policy,
) -> Result<(), LdapError> {
    if caller.is_admin() {
        return Ok(());
    }
    let touches = |attr: &str| names.iter().any(|n| n.eq_ignore_ascii_case(attr));
    if (touches("entryManagedBy") || touches("member")) && access::is_admin(r, &entry.dn, policy)? {
        return Err(LdapError::insufficient_access());
    }
    Ok(())
}

fn apply(schema: &Schema, entry: &mut Entry, change: &Change) -> Result<(), LdapError> {
    let rule = schema.attribute(&change.name).and_then(|a| a.equality);
    let norm = |v: &[u8]| normalize(rule, v);
    let name = change.name.as_str();
    match change.op {
        LdapModifyType::Add => {
            if change.values.is_empty() {
                return Err(LdapError::protocol(format!("{name}: add needs values")));
            }
            let mut current = entry.values(name).to_vec();
            for v in &change.values {
                let Some(n) = norm(v) else {
                    return Err(invalid_syntax(name));
                };
                if current.iter().any(|c| norm(c).as_ref() == Some(&n)) {
                    return Err(LdapError::new(
                        LdapResultCode::AttributeOrValueExists,
                        format!("{name}: value #0 already exists"),
                    ));
                }
                current.push(v.clone());
            }
            entry.set(name, current);
        }
        LdapModifyType::Delete => {
            if entry.get(name).is_none() {
                return Err(no_such_attribute(name));
            }
            if change.values.is_empty() {
                entry.remove(name);
                return Ok(());
            }
            let mut current = entry.values(name).to_vec();
            for v in &change.values {
                let before = current.len();
                if name.eq_ignore_ascii_case("userPassword") {
                    current.retain(|c| {
                        c != v && !StoredPassword::parse(c).is_some_and(|p| p.verify(v))
                    });
                } else {
                    let n = norm(v);
                    current.retain(|c| n.is_none() || norm(c) != n);
                }
                if current.len() == before {
                    return Err(no_such_attribute(name));
                }
            }
            entry.set(name, current);
        }
        LdapModifyType::Replace => {
            entry.set(name, change.values.clone());
        }
        LdapModifyType::Increment => {
            let [delta] = change.values.as_slice() else {
                return Err(LdapError::protocol(format!(
                    "{name}: increment needs one value"
                )));
            };
            let delta: i64 = std::str::from_utf8(delta)
                .ok()
                .and_then(|d| d.trim().parse().ok())
                .ok_or_else(|| invalid_syntax(name))?;
            let values = entry.values(name).to_vec();
            if values.is_empty() {
                return Err(no_such_attribute(name));
            }
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                let n: i64 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|d| d.trim().parse().ok())
                    .ok_or_else(|| {
                        LdapError::new(
                            LdapResultCode::ConstraintViolation,
                            format!("{name}: increment of a non-integer value"),
                        )
                    })?;
                let sum = n.checked_add(delta).ok_or_else(|| {
                    LdapError::new(LdapResultCode::ConstraintViolation, "increment overflows")
                })?;
                out.push(sum.to_string().into_bytes());
            }
            entry.set(name, out);
        }
    }
    Ok(())
}

/// The RDN's values must stay in the entry (RFC 4511 §4.6: notAllowedOnRDN).
fn check_rdn_kept(schema: &Schema, entry: &Entry) -> Result<(), LdapError> {
    let Some(rdn) = entry.dn.rdn() else {
        return Ok(());
    };
    for ava in &rdn.avas {
        let Some(at) = schema.attribute(&ava.attr) else {
            continue;
        };
        let want = normalize(at.equality, ava.value.as_bytes());
        let kept = entry
            .values(at.name())
            .iter()
            .any(|v| normalize(at.equality, v) == want);
        if !kept {
            return Err(LdapError::new(
                LdapResultCode::NotALlowedOnRDN,
                format!("{}: cannot remove the naming value", at.name()),
            ));
        }
    }
    Ok(())
}

fn structural(entry: &Entry) -> Option<String> {
    entry
        .first_str("structuralObjectClass")
        .map(str::to_ascii_lowercase)
}

/// The structural class the modified entry would have: unchanged if the old one is still
/// among its classes.
fn structural_after(schema: &Schema, entry: &Entry, old: &Entry) -> Option<String> {
    let old_class = structural(old)?;
    let kept = entry
        .values("objectClass")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(old_class.as_bytes()));
    if kept {
        Some(old_class)
    } else {
        let _ = schema;
        None
    }
}

fn no_such_attribute(name: &str) -> LdapError {
    LdapError::new(
        LdapResultCode::NoSuchAttribute,
        format!("{name}: no such attribute or value"),
    )
}

fn invalid_syntax(name: &str) -> LdapError {
    LdapError::new(
        LdapResultCode::InvalidAttributeSyntax,
        format!("{name}: value invalid per syntax"),
    )
}
