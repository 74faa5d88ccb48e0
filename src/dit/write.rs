//! The writes every front end shares: add, modify, delete and rename an entry, as a caller,
//! in one write transaction. Each decides the caller's right, finishes the entry and checks
//! it through the one rule path (`check_new`, `check_changed`), so LDAP, the offline
//! importer and every later front end refuse exactly the same things.
//!
//! Passwords arrive hashed: argon2 runs on the hashing pool before the transaction.

use ldap3_proto::proto::LdapResultCode;

use crate::audit::{self, Event, Kind};
use crate::directory::access::Rights;
use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::directory::matching::normalize;
use crate::directory::schema::Schema;
use crate::directory::time::generalized;
use crate::dit::caller::{self, Caller, Policy};
use crate::dit::entry::{self, RequestAttr};
use crate::dit::error::DitError;
use crate::dit::names::{SERVICE_CLASS, TOKEN_CLASS};
use crate::dit::{control, posix, references, token};
use crate::identity::password::StoredPassword;
use crate::store::{DirectoryRead, StoreError, Writer};

/// The kind of write a caller is about to attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Add,
    Modify,
    Delete,
    Rename,
}

/// Refuse a write before its request is validated or its passwords hashed, so a caller who
/// may not write anything costs nothing and gets the same answer whatever it sends: 8 when
/// anonymous, 50 when bound with no writing right anywhere, unless the target is one it may
/// act on all the same (a service account it manages, a token it may revoke). The write
/// transaction then decides for good, entry by entry.
pub fn may_attempt(
    r: &impl DirectoryRead,
    caller: &Caller,
    attempt: Attempt,
    target: Option<&Dn>,
) -> Result<(), DitError> {
    caller.require_bound()?;
    if caller.may_write_somewhere() {
        return Ok(());
    }
    let delegated = match (attempt, target) {
        (Attempt::Modify, Some(dn)) => match r.entry_by_dn(dn)? {
            Some((_, e)) => e.has_class(SERVICE_CLASS) && token::may_manage(r, caller, &e)?,
            None => false,
        },
        (Attempt::Delete, Some(dn)) => match r.entry_by_dn(dn)? {
            Some((_, e)) => revokes(r, caller, &e)?,
            None => false,
        },
        _ => false,
    };
    if delegated {
        Ok(())
    } else {
        Err(DitError::insufficient_access())
    }
}

/// A new entry from a client's request: attribute names resolved (`attrs` from
/// [`entry::request_attrs`]), server-maintained attributes refused, `memberUid` turned into
/// `member`, the RDN's values present and the classes' superclasses listed. Needs no
/// store; [`add`] finishes it.
pub fn new_entry(
    schema: &Schema,
    suffix: &Dn,
    dn: Dn,
    attrs: Vec<RequestAttr>,
) -> Result<Entry, DitError> {
    let mut new = Entry::new(dn);
    let mut member_uids = Vec::new();
    for (name, values) in attrs {
        entry::check_user_modifiable(schema, &name)?;
        if values.is_empty() {
            return Err(DitError::protocol(format!("{name}: no values given")));
        }
        if name.eq_ignore_ascii_case("memberUid") {
            member_uids = values;
            continue;
        }
        new.set(&name, values);
    }
    entry::add_member_uids(suffix, &mut new, &member_uids);
    entry::ensure_rdn_values(schema, &mut new)?;
    entry::expand_classes(schema, &mut new);
    Ok(new)
}

/// Add `new` (from [`new_entry`], passwords hashed) as `caller`, with the `entryUUID`
/// decided beforehand (`entry::new_uuid`); the entry as stored.
pub fn add(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    mut new: Entry,
    uuid: &str,
) -> Result<Entry, DitError> {
    let suffix = &policy.suffix;
    // The right is checked before existence, so only those who may add learn what is there.
    caller.require_on(w, Rights::ADD, &new)?;
    let dn = new.dn.clone();
    if !dn.is_within(suffix) {
        return Err(DitError::no_such_object(String::new()));
    }
    if w.id_of(&dn)?.is_some() {
        return Err(StoreError::AlreadyExists.into());
    }
    if &dn != suffix {
        let parent = dn.parent().unwrap_or_else(Dn::root);
        if w.id_of(&parent)?.is_none() {
            return Err(DitError::missing(w, &dn));
        }
    }
    // Roles are defined by administrators; a name that references already give rights to
    // (listed in a group or role, or as a manager) is taken only by one who covers them.
    let attrs: Vec<&str> = new.attrs.iter().map(|a| a.name.as_str()).collect();
    control::require_role_definition(caller, policy, &new, &attrs)?;
    control::require_cover(w, caller, &dn, policy, "take its name")?;
    let actor = actor(caller);
    entry::stamp_new(
        &policy.schema,
        &mut new,
        &actor,
        &generalized(policy.now),
        uuid,
    );
    check_new(w, policy, &mut new)?;
    if &dn == suffix {
        w.add_suffix(&new)?;
    } else {
        w.add(&new)?;
    }
    if control::is_role(policy, &new) {
        let event = Event::new(Kind::RoleChanged)
            .actor(&actor)
            .target(&new.dn)
            .detail("created");
        audit::write(w, policy.now, &policy.origin, event)?;
    }
    tracing::info!(dn = %new.dn, actor = %actor, "entry added");
    Ok(new)
}

/// The one rule path for a new entry, stamped: derived `memberUid`, POSIX numbers, its
/// references, then the rules that need only the entry (`entry::check_finished`: service
/// accounts, roles, the schema). Every writer of new entries goes through these steps; the
/// importer takes them in bulk (see `db::import`).
pub fn check_new(w: &mut Writer<'_>, policy: &Policy, new: &mut Entry) -> Result<(), DitError> {
    entry::derive_member_uid(new);
    posix::posix_ids(w, &policy.config.posix, new, None)?;
    references::check(w, &policy.suffix, None, new)?;
    check_finished(policy, new, None)
}

/// The one rule path for a changed entry (`id` is its own id, `old` what it was).
pub fn check_changed(
    w: &mut Writer<'_>,
    policy: &Policy,
    id: u64,
    old: &Entry,
    changed: &mut Entry,
) -> Result<(), DitError> {
    entry::derive_member_uid(changed);
    posix::posix_ids(w, &policy.config.posix, changed, Some(id))?;
    references::check(w, &policy.suffix, Some(old), changed)?;
    check_finished(policy, changed, Some(old))
}

fn check_finished(policy: &Policy, e: &Entry, old: Option<&Entry>) -> Result<(), DitError> {
    let rules = entry::ClassRules::of(&policy.schema, e.values("objectClass"))?;
    entry::check_finished(
        &policy.schema,
        &policy.suffix,
        e,
        old,
        &rules,
        &mut |_, _| {},
    )
}

/// How one attribute of an entry changes (RFC 4511 §4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Add,
    Delete,
    Replace,
    Increment,
}

/// One change with the attribute resolved and passwords already hashed.
#[derive(Clone, Debug)]
pub struct Change {
    pub kind: ChangeKind,
    pub name: String,
    pub values: Vec<Vec<u8>>,
}

impl Change {
    /// A change from a client's request: the attribute resolved, server-maintained
    /// attributes refused, `memberUid` written as `member`. Passwords are still to hash.
    pub fn from_request(
        schema: &Schema,
        suffix: &Dn,
        kind: ChangeKind,
        description: &str,
        values: Vec<Vec<u8>>,
    ) -> Result<Change, DitError> {
        let mut name = entry::attr_name(schema, description)?;
        entry::check_user_modifiable(schema, &name)?;
        let mut values = values;
        if name.eq_ignore_ascii_case("memberUid") {
            name = "member".into();
            values = entry::member_uid_to_member(suffix, &values);
        }
        Ok(Change { kind, name, values })
    }

    /// Does this change set cleartext-to-hash `userPassword` values?
    pub fn sets_password(&self) -> bool {
        self.name.eq_ignore_ascii_case("userPassword")
            && matches!(self.kind, ChangeKind::Add | ChangeKind::Replace)
    }
}

/// Apply `changes` to the entry `dn` as `caller`, atomically; the entry as stored.
pub fn modify(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    dn: &Dn,
    changes: &[Change],
) -> Result<Entry, DitError> {
    let schema = &policy.schema;
    caller.require_bound()?;
    let Some((id, old)) = caller::visible(w, caller, dn)? else {
        return Err(DitError::missing(w, dn));
    };
    let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    if !managed_update(w, caller, &old)? {
        let decided = caller.decidable(w, &old)?;
        if !caller.may_attrs(Rights::WRITE, &decided, &names, schema) {
            return Err(DitError::insufficient_access());
        }
    }
    require_control(w, policy, caller, &old, &names)?;
    let mut changed = old.clone();
    for change in changes {
        apply(schema, &mut changed, change)?;
    }
    check_rdn_kept(schema, &changed)?;
    entry::expand_classes(schema, &mut changed);
    if structural(&old) != structural_after(&changed, &old) {
        return Err(DitError::new(
            LdapResultCode::ObjectClassModsProhibited,
            "structural object class modification not allowed",
        ));
    }
    let actor = actor(caller);
    entry::stamp_modified(&mut changed, &actor, &generalized(policy.now));
    check_changed(w, policy, id, &old, &mut changed)?;
    w.replace(id, &old, &changed)?;
    for event in control_events(policy, &old, &changed, &names) {
        audit::write(w, policy.now, &policy.origin, event.actor(&actor))?;
    }
    tracing::info!(dn = %changed.dn, actor = %actor, "entry modified");
    Ok(changed)
}

/// Delete the leaf entry `dn` as `caller` (66 for an entry with children), dropping the
/// references to it; the entry as it was.
pub fn delete(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    dn: &Dn,
) -> Result<Entry, DitError> {
    caller.require_bound()?;
    let Some((id, old)) = caller::visible(w, caller, dn)? else {
        return Err(DitError::missing(w, dn));
    };
    if !revokes(w, caller, &old)? {
        caller.require_on(w, Rights::DELETE, &old)?;
    }
    if w.has_children(id)? {
        return Err(DitError::new(
            LdapResultCode::NotAllowedOnNonLeaf,
            "subordinate objects must be deleted first",
        ));
    }
    w.delete(id, &old)?;
    references::refint(w, &old.dn, None)?;
    let actor = actor(caller);
    if old.has_class(TOKEN_CLASS) {
        let event = Event::new(Kind::TokenRevoked)
            .actor(&actor)
            .target(old.dn.parent().map(|a| a.to_string()).unwrap_or_default())
            .token(old.first_str("tokenId").unwrap_or_default());
        audit::write(w, policy.now, &policy.origin, event)?;
    }
    if control::is_role(policy, &old) {
        let event = Event::new(Kind::RoleChanged)
            .actor(&actor)
            .target(&old.dn)
            .detail("deleted");
        audit::write(w, policy.now, &policy.origin, event)?;
    }
    tracing::info!(dn = %old.dn, actor = %actor, "entry deleted");
    Ok(old)
}

/// Revoking a token: its account's managers may, as well as administrators.
fn revokes(r: &impl DirectoryRead, caller: &Caller, e: &Entry) -> Result<bool, StoreError> {
    let Some(account) = e.has_class(TOKEN_CLASS).then(|| e.dn.parent()).flatten() else {
        return Ok(false);
    };
    match r.entry_by_dn(&account)? {
        Some((_, account)) => token::may_manage(r, caller, &account),
        None => Ok(false),
    }
}

/// What a rename asks for (RFC 4511 §4.9).
#[derive(Clone, Debug)]
pub struct Rename {
    pub dn: Dn,
    pub new_rdn: Rdn,
    pub new_superior: Option<Dn>,
    pub delete_old_rdn: bool,
}

/// Rename a leaf entry and/or move it under a new superior, as `caller`, rewriting the
/// references to it; the entry's new DN.
pub fn rename(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    req: &Rename,
) -> Result<Dn, DitError> {
    let (schema, suffix, dn) = (&policy.schema, &policy.suffix, &req.dn);
    caller.require_bound()?;
    let Some((id, old)) = caller::visible(w, caller, dn)? else {
        return Err(DitError::missing(w, dn));
    };
    caller.require_on(w, Rights::RENAME, &old)?;
    if dn == suffix {
        return Err(DitError::unwilling("the suffix entry cannot be renamed"));
    }
    if w.has_children(id)? {
        return Err(DitError::new(
            LdapResultCode::NotAllowedOnNonLeaf,
            "renaming entries with subordinates is not supported",
        ));
    }
    let parent = match &req.new_superior {
        Some(p) => p.clone(),
        None => dn.parent().unwrap_or_else(Dn::root),
    };
    if !parent.is_within(suffix) {
        return Err(DitError::unwilling("new superior is outside the directory"));
    }
    if w.id_of(&parent)?.is_none() {
        return Err(DitError::missing(w, &parent));
    }
    let new_dn = parent.child(req.new_rdn.clone());
    if &new_dn != dn && w.id_of(&new_dn)?.is_some() {
        return Err(StoreError::AlreadyExists.into());
    }
    let mut renamed = old.clone();
    renamed.dn = new_dn.clone();
    // The new name must be within the caller's reach too.
    caller.require_on(w, Rights::RENAME, &renamed)?;
    // Moving a role, or making an entry one, redefines who holds what.
    if control::is_role(policy, &old) || control::is_role(policy, &renamed) {
        control::require_role_definition(caller, policy, &renamed, &["objectClass"])?;
    }
    if new_dn != *dn {
        control::require_cover(w, caller, &new_dn, policy, "take its name")?;
    }
    if let Some(old_rdn) = dn.rdn().filter(|_| req.delete_old_rdn) {
        for ava in &old_rdn.avas {
            let name = entry::attr_name(schema, &ava.attr)?;
            let rule = schema.attribute(&name).and_then(|a| a.equality);
            let gone = normalize(rule, ava.value.as_bytes());
            let kept: Vec<Vec<u8>> = renamed
                .values(&name)
                .iter()
                .filter(|v| normalize(rule, v) != gone)
                .cloned()
                .collect();
            renamed.set(&name, kept);
        }
    }
    entry::ensure_rdn_values(schema, &mut renamed)?;
    let actor = actor(caller);
    entry::stamp_modified(&mut renamed, &actor, &generalized(policy.now));
    entry::check_login_names(&renamed, Some(&old))?;
    entry::check_entry(schema, &renamed)?;
    w.rename(id, &old, &renamed)?;
    references::refint(w, &old.dn, Some(&new_dn))?;
    tracing::info!(from = %old.dn, to = %new_dn, actor = %actor, "entry renamed");
    Ok(new_dn)
}

/// The audit records of a modify (actor still to set): members of a group or role added or
/// removed, a manager changed, a role redefined.
fn control_events(policy: &Policy, old: &Entry, changed: &Entry, attrs: &[&str]) -> Vec<Event> {
    let touches = |attr: &str| attrs.iter().any(|n| n.eq_ignore_ascii_case(attr));
    let mut out = Vec::new();
    if touches("member") {
        let norm = |e: &Entry| -> Vec<(String, String)> {
            e.values("member")
                .iter()
                .filter_map(|v| std::str::from_utf8(v).ok())
                .map(|v| {
                    let key =
                        Dn::parse(v).map_or_else(|_| v.to_lowercase(), |d| d.norm().to_string());
                    (key, v.to_string())
                })
                .collect()
        };
        let (before, after) = (norm(old), norm(changed));
        let added: Vec<&str> = after
            .iter()
            .filter(|(k, _)| !before.iter().any(|(b, _)| b == k))
            .map(|(_, v)| v.as_str())
            .collect();
        let removed: Vec<&str> = before
            .iter()
            .filter(|(k, _)| !after.iter().any(|(a, _)| a == k))
            .map(|(_, v)| v.as_str())
            .collect();
        if !added.is_empty() || !removed.is_empty() {
            let mut detail = Vec::new();
            if !added.is_empty() {
                detail.push(format!("added: {}", added.join("; ")));
            }
            if !removed.is_empty() {
                detail.push(format!("removed: {}", removed.join("; ")));
            }
            out.push(
                Event::new(Kind::MembershipChanged)
                    .target(&changed.dn)
                    .detail(detail.join(", ")),
            );
        }
    }
    if touches("entryManagedBy") {
        let managers = changed
            .values("entryManagedBy")
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
            .join("; ");
        out.push(
            Event::new(Kind::ManagerChanged)
                .target(&changed.dn)
                .detail(format!("managed by: {managers}")),
        );
    }
    let defines = attrs
        .iter()
        .any(|a| !a.eq_ignore_ascii_case("member") && !a.eq_ignore_ascii_case("description"));
    if defines && control::is_role(policy, old) {
        out.push(
            Event::new(Kind::RoleChanged)
                .target(&changed.dn)
                .detail(format!("changed: {}", attrs.join(", "))),
        );
    }
    out
}

/// Who a write is recorded as (`creatorsName`, `modifiersName`, the log).
fn actor(caller: &Caller) -> String {
    caller.dn().map(ToString::to_string).unwrap_or_default()
}

/// Managers of a service account (see `token::may_manage`) may update it, within the
/// rules of [`require_control`].
fn managed_update(r: &impl DirectoryRead, caller: &Caller, e: &Entry) -> Result<bool, StoreError> {
    if caller.is_admin() || !e.has_class(SERVICE_CLASS) {
        return Ok(false);
    }
    token::may_manage(r, caller, e)
}

/// The control operations among changes to `attrs` of `old` (see `dit::control`): a
/// password set on another entry, a new manager, new members of a group or role that
/// confers rights, and a role's definition.
fn require_control(
    r: &impl DirectoryRead,
    policy: &Policy,
    caller: &Caller,
    old: &Entry,
    attrs: &[&str],
) -> Result<(), DitError> {
    let touches = |attr: &str| attrs.iter().any(|n| n.eq_ignore_ascii_case(attr));
    control::require_role_definition(caller, policy, old, attrs)?;
    let own = caller.dn() == Some(&old.dn);
    if touches("userPassword") && !own {
        control::require_cover(r, caller, &old.dn, policy, "set its password")?;
    }
    if touches("entryManagedBy") {
        control::require_cover(r, caller, &old.dn, policy, "change who manages it")?;
    }
    if touches("member") {
        control::require_cover(r, caller, &old.dn, policy, "change its members")?;
    }
    Ok(())
}

fn apply(schema: &Schema, e: &mut Entry, change: &Change) -> Result<(), DitError> {
    let rule = schema.attribute(&change.name).and_then(|a| a.equality);
    let norm = |v: &[u8]| normalize(rule, v);
    let name = change.name.as_str();
    match change.kind {
        ChangeKind::Add => {
            if change.values.is_empty() {
                return Err(DitError::protocol(format!("{name}: add needs values")));
            }
            let mut current = e.values(name).to_vec();
            for v in &change.values {
                let Some(n) = norm(v) else {
                    return Err(invalid_syntax(name));
                };
                if current.iter().any(|c| norm(c).as_ref() == Some(&n)) {
                    return Err(DitError::new(
                        LdapResultCode::AttributeOrValueExists,
                        format!("{name}: value #0 already exists"),
                    ));
                }
                current.push(v.clone());
            }
            e.set(name, current);
        }
        ChangeKind::Delete => {
            if e.get(name).is_none() {
                return Err(no_such_attribute(name));
            }
            if change.values.is_empty() {
                e.remove(name);
                return Ok(());
            }
            let mut current = e.values(name).to_vec();
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
            e.set(name, current);
        }
        ChangeKind::Replace => {
            e.set(name, change.values.clone());
        }
        ChangeKind::Increment => {
            let [delta] = change.values.as_slice() else {
                return Err(DitError::protocol(format!(
                    "{name}: increment needs one value"
                )));
            };
            let delta: i64 = std::str::from_utf8(delta)
                .ok()
                .and_then(|d| d.trim().parse().ok())
                .ok_or_else(|| invalid_syntax(name))?;
            let values = e.values(name).to_vec();
            if values.is_empty() {
                return Err(no_such_attribute(name));
            }
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                let n: i64 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|d| d.trim().parse().ok())
                    .ok_or_else(|| {
                        DitError::new(
                            LdapResultCode::ConstraintViolation,
                            format!("{name}: increment of a non-integer value"),
                        )
                    })?;
                let sum = n.checked_add(delta).ok_or_else(|| {
                    DitError::new(LdapResultCode::ConstraintViolation, "increment overflows")
                })?;
                out.push(sum.to_string().into_bytes());
            }
            e.set(name, out);
        }
    }
    Ok(())
}

/// The RDN's values must stay in the entry (RFC 4511 §4.6: notAllowedOnRDN).
fn check_rdn_kept(schema: &Schema, e: &Entry) -> Result<(), DitError> {
    let Some(rdn) = e.dn.rdn() else {
        return Ok(());
    };
    for ava in &rdn.avas {
        let Some(at) = schema.attribute(&ava.attr) else {
            continue;
        };
        let want = normalize(at.equality, ava.value.as_bytes());
        let kept = e
            .values(at.name())
            .iter()
            .any(|v| normalize(at.equality, v) == want);
        if !kept {
            return Err(DitError::new(
                LdapResultCode::NotALlowedOnRDN,
                format!("{}: cannot remove the naming value", at.name()),
            ));
        }
    }
    Ok(())
}

fn structural(e: &Entry) -> Option<String> {
    e.first_str("structuralObjectClass")
        .map(str::to_ascii_lowercase)
}

/// The structural class the modified entry would have: unchanged if the old one is still
/// among its classes.
fn structural_after(changed: &Entry, old: &Entry) -> Option<String> {
    let old_class = structural(old)?;
    changed
        .values("objectClass")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(old_class.as_bytes()))
        .then_some(old_class)
}

fn no_such_attribute(name: &str) -> DitError {
    DitError::new(
        LdapResultCode::NoSuchAttribute,
        format!("{name}: no such attribute or value"),
    )
}

fn invalid_syntax(name: &str) -> DitError {
    DitError::new(
        LdapResultCode::InvalidAttributeSyntax,
        format!("{name}: value invalid per syntax"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::caller::Principal;
    use crate::dit::testing::*;

    #[test]
    fn the_rule_path_refuses_what_no_writer_may_store() {
        let (store, policy) = directory();
        let refused = |at: &Dn, attrs: &[(&str, &[&str])]| {
            add_as(&store, &policy, &admin(), at, attrs)
                .unwrap_err()
                .message
        };
        let why = refused(
            &service("svc"),
            &[
                (
                    "objectClass",
                    &["tesseraServiceAccount", "simpleSecurityObject"],
                ),
                ("uid", &["svc"]),
                ("userPassword", &["{SSHA}c2VjcmV0c2FsdA=="]),
            ],
        );
        assert!(why.contains("service accounts have no password"), "{why}");
        let why = refused(
            &role("broken"),
            &[
                ("objectClass", &["tesseraRole"]),
                ("cn", &["broken"]),
                ("roleRight", &["all-of-it"]),
            ],
        );
        assert!(why.contains("unknown right"), "{why}");
        let why = refused(
            &person("nosn"),
            &[("objectClass", &["inetOrgPerson"]), ("cn", &["x"])],
        );
        assert!(why.contains("requires attribute 'sn'"), "{why}");
    }

    #[test]
    fn roles_are_defined_by_administrators_only() {
        let (store, policy) = directory();
        let re = add_person(&store, &policy, "re");
        let editors = [
            ("objectClass", &["tesseraRole"][..]),
            ("cn", &["editors"]),
            ("roleScopeBase", &["ou=roles,dc=example,dc=com"]),
            ("roleRight", &["read", "write", "add"]),
        ];
        add_as(&store, &policy, &admin(), &role("editors"), &editors).unwrap();
        grant(&store, &policy, "editors", &re);
        let as_re = Principal::Entry(re);
        let err = modify_as(
            &store,
            &policy,
            &as_re,
            &role("editors"),
            ChangeKind::Replace,
            "roleRight",
            &["all"],
        )
        .unwrap_err();
        assert_eq!(err.code, LdapResultCode::InsufficentAccessRights);
        assert!(
            err.message
                .contains("only directory administrators define roles"),
            "{}",
            err.message
        );
        // Its description is the editors' to change.
        modify_as(
            &store,
            &policy,
            &as_re,
            &role("editors"),
            ChangeKind::Replace,
            "description",
            &["x"],
        )
        .unwrap();
    }
}
