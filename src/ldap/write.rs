//! What every write shares: attribute names resolved to the schema, schema checks,
//! server-maintained attributes (timestamps, entryUUID, derived `memberUid`), POSIX id
//! allocation, and hashing of cleartext `userPassword`.
//!
//! Checks run inside the write transaction so that uniqueness and allocation are atomic.

use std::collections::{BTreeSet, HashSet};

use ldap3_proto::proto::{LdapPartialAttribute, LdapResultCode};

use crate::config::Posix;
use crate::directory::dn::{self, Dn};
use crate::directory::entry::Entry;
use crate::directory::filter::normalize;
use crate::directory::schema::{ClassKind, Schema};
use crate::identity::hashers::HashersError;
use crate::identity::password;
use crate::ldap::access::{self, Caller};
use crate::ldap::result::LdapError;
use crate::ldap::{OpContext, State};
use crate::store::{DirectoryRead, Reader, StoreError, Writer};

const NEXT_UID: &str = "next_uid_number";
const NEXT_GID: &str = "next_gid_number";

/// Attributes the server maintains; clients may not write them.
const SERVER_ATTRS: &[&str] = &[
    "entryUUID",
    "entryDN",
    "createTimestamp",
    "modifyTimestamp",
    "creatorsName",
    "modifiersName",
    "structuralObjectClass",
    "hasSubordinates",
    "subschemaSubentry",
    "memberOf",
];

/// Refuse a write before its request is validated or its passwords hashed, so a caller who
/// may not write anything costs nothing and gets the same answer whatever it sends: 8 when
/// anonymous, 50 when bound with no writing right anywhere, unless `delegated` (which sees
/// the caller in a read transaction) lets it try. The write transaction then decides for
/// good, entry by entry.
pub async fn may_attempt(
    ctx: &OpContext,
    delegated: impl FnOnce(&Reader, &Caller) -> Result<bool, StoreError> + Send + 'static,
) -> Result<(), LdapError> {
    let principal = ctx.session.principal.clone();
    let policy = access::Policy::of(&ctx.state);
    ctx.state.store.read_blocking(move |r| {
        let caller = access::caller(r, &principal, &policy)?;
        caller.require_bound()?;
        if caller.may_write_somewhere() || delegated(r, &caller)? {
            Ok(())
        } else {
            Err(LdapError::insufficient_access())
        }
    })
}

/// Resolve a client attribute description to the schema's name (17 if unknown).
pub fn attr_name(schema: &Schema, description: &str) -> Result<String, LdapError> {
    let base = description.split(';').next().unwrap_or(description);
    match schema.attribute(base) {
        Some(at) => Ok(at.name().to_string()),
        None => Err(LdapError::new(
            LdapResultCode::UndefinedAttributeType,
            format!("{base}: attribute type undefined"),
        )),
    }
}

/// Refuse client writes of server-maintained or NO-USER-MODIFICATION attributes.
pub fn check_user_modifiable(schema: &Schema, name: &str) -> Result<(), LdapError> {
    let server = SERVER_ATTRS.iter().any(|a| a.eq_ignore_ascii_case(name));
    let no_mod = schema
        .attribute(name)
        .is_some_and(|a| a.no_user_modification);
    if server || no_mod {
        return Err(LdapError::new(
            LdapResultCode::ConstraintViolation,
            format!("{name}: no user modification allowed"),
        ));
    }
    Ok(())
}

/// An attribute of a request: schema name and values.
pub type RequestAttr = (String, Vec<Vec<u8>>);

/// Convert request attributes into (schema name, values), merging repeated names.
pub fn request_attrs(
    schema: &Schema,
    attrs: &[LdapPartialAttribute],
) -> Result<Vec<RequestAttr>, LdapError> {
    let mut out: Vec<RequestAttr> = Vec::new();
    for a in attrs {
        let name = attr_name(schema, &a.atype)?;
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some((_, vals)) => vals.extend(a.vals.iter().cloned()),
            None => out.push((name, a.vals.clone())),
        }
    }
    Ok(out)
}

/// Hash cleartext `userPassword` values; already-hashed values are kept as they are.
/// Runs argon2 on the password hashing pool.
pub async fn hash_passwords(
    state: &State,
    values: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, LdapError> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        if password::is_hashed(&v) {
            out.push(v);
            continue;
        }
        out.push(hash_one(state, v).await?.into_bytes());
    }
    Ok(out)
}

pub async fn hash_one(state: &State, cleartext: Vec<u8>) -> Result<String, LdapError> {
    let params = state.config.argon2;
    let hashed = state
        .hashers
        .run(move |memory| password::hash_in(&cleartext, &params, memory))
        .await
        .map_err(hashers_failed)?;
    hashed.map_err(|e| match e {
        password::PasswordError::Empty | password::PasswordError::TooLong => LdapError::new(
            LdapResultCode::ConstraintViolation,
            format!("userPassword: {e}"),
        ),
        other => {
            tracing::error!(error = %other, "password hashing failed");
            LdapError::other("password hashing failed")
        }
    })
}

/// The answer when the hashing pool cannot take or finish a job.
pub fn hashers_failed(e: HashersError) -> LdapError {
    match e {
        HashersError::Stopped => {
            LdapError::new(LdapResultCode::Unavailable, "server is shutting down")
        }
        other => {
            tracing::error!(error = %other, "password hashing failed");
            LdapError::other("password hashing failed")
        }
    }
}

/// Check an entry against the schema (RFC 4512 §3.3): known classes, one structural
/// chain, MUST present, nothing outside MUST/MAY, single-valued attributes, value syntax.
pub fn check_entry(schema: &Schema, entry: &Entry) -> Result<(), LdapError> {
    let rules = ClassRules::of(schema, entry.values("objectClass"))?;
    check_entry_with(schema, entry, &rules)
}

/// What an entry's object classes allow: the part of [`check_entry`] that depends on the
/// classes alone, so a bulk load can work it out once per distinct class list.
#[derive(Debug, Clone)]
pub struct ClassRules {
    must: BTreeSet<String>,
    may: BTreeSet<String>,
    extensible: bool,
}

impl ClassRules {
    pub fn of(schema: &Schema, classes: &[Vec<u8>]) -> Result<ClassRules, LdapError> {
        if classes.is_empty() {
            return Err(oc_violation("no objectClass attribute"));
        }
        let mut must = BTreeSet::new();
        let mut may = BTreeSet::new();
        let mut structural = false;
        let mut extensible = false;
        for class in classes {
            let name = String::from_utf8_lossy(class);
            let Some(oc) = schema.object_class(&name) else {
                return Err(LdapError::new(
                    LdapResultCode::InvalidAttributeSyntax,
                    format!("objectClass: value '{name}' is not a known object class"),
                ));
            };
            structural |= oc.kind == ClassKind::Structural;
            for sup in schema.superclasses(&name) {
                extensible |= sup
                    .names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case("extensibleObject"));
                must.extend(sup.must.iter().map(|m| canonical(schema, m)));
                may.extend(sup.may.iter().map(|m| canonical(schema, m)));
            }
        }
        if !structural {
            return Err(oc_violation("no structural object class provided"));
        }
        Ok(ClassRules {
            must,
            may,
            extensible,
        })
    }
}

/// [`check_entry`] with the rules of the entry's classes already worked out.
pub fn check_entry_with(
    schema: &Schema,
    entry: &Entry,
    rules: &ClassRules,
) -> Result<(), LdapError> {
    check_entry_keeping(schema, entry, rules, &mut |_, _| {})
}

/// [`check_entry_with`], handing `keep` each attribute's name and its values as normalised
/// by its equality rule (sorted), which the check works out anyway.
pub fn check_entry_keeping(
    schema: &Schema,
    entry: &Entry,
    rules: &ClassRules,
    keep: &mut dyn FnMut(&str, Vec<Vec<u8>>),
) -> Result<(), LdapError> {
    let ClassRules {
        must,
        may,
        extensible,
    } = rules;
    for m in must {
        if entry.get(m).is_none() {
            return Err(oc_violation(&format!(
                "object class requires attribute '{m}'"
            )));
        }
    }
    let mut key = String::new();
    for attr in &entry.attrs {
        let Some(at) = schema.attribute(&attr.name) else {
            return Err(LdapError::new(
                LdapResultCode::UndefinedAttributeType,
                format!("{}: attribute type undefined", attr.name),
            ));
        };
        key.clear();
        key.extend(at.name().chars().map(|c| c.to_ascii_lowercase()));
        let allowed = at.is_operational()
            || *extensible
            || must.contains(key.as_str())
            || may.contains(key.as_str());
        if !allowed {
            return Err(oc_violation(&format!(
                "attribute '{}' not allowed by the entry's object classes",
                attr.name
            )));
        }
        if at.single_value && attr.values.len() > 1 {
            return Err(LdapError::new(
                LdapResultCode::ConstraintViolation,
                format!("{}: single-valued attribute has multiple values", attr.name),
            ));
        }
        let mut seen = Vec::with_capacity(attr.values.len());
        for (i, v) in attr.values.iter().enumerate() {
            let Some(norm) = normalize(at.equality, v) else {
                return Err(LdapError::new(
                    LdapResultCode::InvalidAttributeSyntax,
                    format!("{}: value #{i} invalid per syntax", attr.name),
                ));
            };
            seen.push(norm);
        }
        // Sorted once, not kept in a set: groups carry hundreds of values.
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return Err(LdapError::new(
                LdapResultCode::AttributeOrValueExists,
                format!("{}: duplicate value", attr.name),
            ));
        }
        keep(at.name(), seen);
    }
    Ok(())
}

fn canonical(schema: &Schema, name: &str) -> String {
    schema
        .attribute(name)
        .map_or(name, |a| a.name())
        .to_ascii_lowercase()
}

fn oc_violation(message: &str) -> LdapError {
    LdapError::new(LdapResultCode::ObjectClassViolation, message.to_string())
}

/// Add every superclass of the entry's classes to `objectClass`, as OpenLDAP does, so
/// `(objectClass=person)` finds an inetOrgPerson.
pub fn expand_classes(schema: &Schema, entry: &mut Entry) {
    let mut classes: Vec<Vec<u8>> = entry.values("objectClass").to_vec();
    let given: Vec<String> = classes
        .iter()
        .filter_map(|c| std::str::from_utf8(c).ok().map(str::to_string))
        .collect();
    for class in given {
        for sup in schema.superclasses(&class) {
            let name = sup.names.first().map_or(sup.oid.as_str(), String::as_str);
            if !classes
                .iter()
                .any(|c| c.eq_ignore_ascii_case(name.as_bytes()))
            {
                classes.push(name.as_bytes().to_vec());
            }
        }
    }
    entry.set("objectClass", classes);
}

/// Is the entry of `class`, directly or through a subclass?
pub fn is_a(schema: &Schema, entry: &Entry, class: &str) -> bool {
    entry
        .values("objectClass")
        .iter()
        .filter_map(|c| std::str::from_utf8(c).ok())
        .any(|c| {
            schema
                .superclasses(c)
                .iter()
                .any(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(class)))
        })
}

/// Service accounts: a valid name, and never a password; they bind with tokens only.
pub fn check_service_account(entry: &Entry) -> Result<(), LdapError> {
    if !entry.has_class(crate::ldap::token::SERVICE_CLASS) {
        return Ok(());
    }
    if entry.get("userPassword").is_some() {
        return Err(LdapError::new(
            LdapResultCode::ConstraintViolation,
            "service accounts have no password; they bind with API tokens",
        ));
    }
    let name = entry.first_str("uid").unwrap_or_default();
    check_account_name(name)
}

/// 1 to 63 of `a-z 0-9 - _`, starting and ending with a letter or digit.
pub fn check_account_name(name: &str) -> Result<(), LdapError> {
    const RULE: &str = "service account names are 1 to 63 characters of lowercase letters, digits, '-' and '_', starting and ending with a letter or digit";
    let bad = |why: String| {
        Err(LdapError::new(
            LdapResultCode::ConstraintViolation,
            format!("{RULE}; {why}"),
        ))
    };
    if name.is_empty() || name.chars().count() > 63 {
        return bad(format!("'{name}' has {} characters", name.chars().count()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return bad(format!("'{name}' contains '{c}'"));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return bad(format!("'{name}' starts or ends with '-' or '_'"));
    }
    Ok(())
}

/// Make sure every RDN value is among the entry's values (RFC 4512 §2.3).
pub fn ensure_rdn_values(schema: &Schema, entry: &mut Entry) -> Result<(), LdapError> {
    let Some(rdn) = entry.dn.rdn().cloned() else {
        return Ok(());
    };
    for ava in rdn.avas {
        let name = attr_name(schema, &ava.attr)?;
        let rule = schema.attribute(&name).and_then(|a| a.equality);
        let want = normalize(rule, ava.value.as_bytes());
        let present = entry
            .values(&name)
            .iter()
            .any(|v| normalize(rule, v) == want);
        if !present {
            entry.push_value(&name, ava.value.into_bytes());
        }
    }
    Ok(())
}

/// Derive `memberUid` from `member` on POSIX groups, so the two never disagree.
pub fn derive_member_uid(entry: &mut Entry) {
    if !entry.has_class("posixGroup") {
        entry.remove("memberUid");
        return;
    }
    let uids: Vec<Vec<u8>> = entry
        .values("member")
        .iter()
        .filter_map(|m| std::str::from_utf8(m).ok())
        .filter_map(|m| dn::rdn_value_of(m, "uid"))
        .map(String::into_bytes)
        .collect();
    entry.set("memberUid", uids);
}

/// Add the `member` DNs that client-written `memberUid` values stand for, skipping people
/// already in `member`: an exported group carries both, and must import as it was.
pub fn add_member_uids(suffix: &Dn, entry: &mut Entry, uids: &[Vec<u8>]) {
    if uids.is_empty() {
        return;
    }
    let mut present: HashSet<String> = entry
        .values("member")
        .iter()
        .filter_map(|m| std::str::from_utf8(m).ok())
        .filter_map(dn::normalize_dn)
        .collect();
    let people = PeopleDns::new(suffix);
    for u in uids.iter().filter_map(|u| std::str::from_utf8(u).ok()) {
        let (norm, text) = people.of(u);
        if present.insert(norm) {
            entry.push_value("member", text.into_bytes());
        }
    }
}

/// Turn client-written `memberUid` values into `member` DNs under `ou=people`.
pub fn member_uid_to_member(suffix: &Dn, uids: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let people = PeopleDns::new(suffix);
    uids.iter()
        .filter_map(|u| std::str::from_utf8(u).ok())
        .map(|u| people.of(u).1.into_bytes())
        .collect()
}

/// The DNs memberUid values stand for: `uid=<value>` under `ou=people`.
struct PeopleDns {
    people: Dn,
    text: String,
}

impl PeopleDns {
    fn new(suffix: &Dn) -> PeopleDns {
        let people = suffix.child(dn::Rdn::single("ou", "people"));
        let text = people.to_string();
        PeopleDns { people, text }
    }

    /// The DN for `uid`: its normal form and its text. A uid that needs no escaping makes
    /// the text without a DN being built; groups list hundreds of them.
    fn of(&self, uid: &str) -> (String, String) {
        if !uid.is_empty() && uid.bytes().all(dn::is_plain_value_byte) {
            let text = format!("uid={uid},{}", self.text);
            if let Some(norm) = dn::normalize_dn(&text) {
                return (norm, text);
            }
        }
        let dn = self.people.child(dn::Rdn::single("uid", uid));
        (dn.norm().to_string(), dn.to_string())
    }
}

/// Set the server-maintained attributes of a new entry.
pub fn stamp_new(schema: &Schema, entry: &mut Entry, actor: &str, now: &str) {
    let structural = structural_class(schema, entry);
    stamp_new_as(entry, actor, now, structural.as_deref());
}

/// [`stamp_new`] with the entry's structural class already known.
pub fn stamp_new_as(entry: &mut Entry, actor: &str, now: &str, structural: Option<&str>) {
    // Time-ordered (version 7): a new entry's entryUUID index key goes at the end of that
    // attribute's range, not on a random page of it.
    let uuid = uuid::Uuid::now_v7().hyphenated().to_string();
    entry.set_str("entryUUID", &uuid);
    entry.set_str("createTimestamp", now);
    entry.set_str("modifyTimestamp", now);
    entry.set_str("creatorsName", actor);
    entry.set_str("modifiersName", actor);
    if let Some(s) = structural {
        entry.set_str("structuralObjectClass", s);
    }
}

pub fn stamp_modified(entry: &mut Entry, actor: &str, now: &str) {
    entry.set_str("modifyTimestamp", now);
    entry.set_str("modifiersName", actor);
}

/// The most specific structural class of the entry.
pub fn structural_class(schema: &Schema, entry: &Entry) -> Option<String> {
    let structural: Vec<String> = entry
        .values("objectClass")
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter(|c| {
            schema
                .object_class(c)
                .is_some_and(|oc| oc.kind == ClassKind::Structural)
        })
        .map(str::to_string)
        .collect();
    // The one that is not a superclass of another.
    structural
        .iter()
        .find(|c| {
            !structural.iter().any(|other| {
                other != *c
                    && schema
                        .superclasses(other)
                        .iter()
                        .any(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(c)))
            })
        })
        .cloned()
}

/// generalizedTime with microseconds, so incremental sync by modifyTimestamp is exact.
pub fn now_generalized() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

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
) -> Result<bool, LdapError> {
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
                return Err(LdapError::new(
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

fn allocate(w: &mut Writer<'_>, posix: &Posix, pool: Pool) -> Result<u32, LdapError> {
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
            return u32::try_from(candidate).map_err(|_| LdapError::other("id out of range"));
        }
    }
    Err(LdapError::unwilling(format!(
        "no free {attr} left in the configured range"
    )))
}

fn unique(
    w: &Writer<'_>,
    entry: &Entry,
    id: Option<u64>,
    attr: &str,
    class: &str,
) -> Result<(), LdapError> {
    for v in entry.values(attr) {
        if in_use(w, attr, &[class], v, id)? {
            return Err(LdapError::new(
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
