//! Finishing and checking an entry, the steps every writer shares: attribute names
//! resolved to the schema, server-maintained attributes (timestamps, entryUUID, derived
//! `memberUid`, superclasses), the schema check, and the rules for service accounts, login
//! names and role definitions.
//!
//! Pure over the entry and the schema; what needs the store (POSIX ids, references) is in
//! `dit::posix` and `dit::references`, run in the same write transaction.

use std::collections::{BTreeSet, HashSet};

use ldap3_proto::proto::LdapResultCode;

use crate::directory::access::Grant;
use crate::directory::dn::{self, Dn};
use crate::directory::entry::Entry;
use crate::directory::matching::normalize;
use crate::directory::schema::{ClassKind, Schema};
use crate::dit::error::DitError;
use crate::dit::names::{ROLE_CLASS, SERVICE_CLASS};

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

/// Resolve a client attribute description to the schema's name (17 if unknown).
pub fn attr_name(schema: &Schema, description: &str) -> Result<String, DitError> {
    let base = description.split(';').next().unwrap_or(description);
    match schema.attribute(base) {
        Some(at) => Ok(at.name().to_string()),
        None => Err(DitError::new(
            LdapResultCode::UndefinedAttributeType,
            format!("{base}: attribute type undefined"),
        )),
    }
}

/// Refuse client writes of server-maintained or NO-USER-MODIFICATION attributes.
pub fn check_user_modifiable(schema: &Schema, name: &str) -> Result<(), DitError> {
    let server = SERVER_ATTRS.iter().any(|a| a.eq_ignore_ascii_case(name));
    let no_mod = schema
        .attribute(name)
        .is_some_and(|a| a.no_user_modification);
    if server || no_mod {
        return Err(DitError::new(
            LdapResultCode::ConstraintViolation,
            format!("{name}: no user modification allowed"),
        ));
    }
    Ok(())
}

/// An attribute of a request: schema name and values.
pub type RequestAttr = (String, Vec<Vec<u8>>);

/// Convert request attributes (description, values) into (schema name, values), merging
/// repeated names.
pub fn request_attrs<'a>(
    schema: &Schema,
    attrs: impl IntoIterator<Item = (&'a str, &'a [Vec<u8>])>,
) -> Result<Vec<RequestAttr>, DitError> {
    let mut out: Vec<RequestAttr> = Vec::new();
    for (description, values) in attrs {
        let name = attr_name(schema, description)?;
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some((_, vals)) => vals.extend(values.iter().cloned()),
            None => out.push((name, values.to_vec())),
        }
    }
    Ok(out)
}

/// Everything a finished entry must meet that needs only the entry itself (and, for a
/// change, what it was: `old`): the service-account, login-name and role rules, then the
/// schema, with `rules` (the entry's classes' rules, which a bulk load works out once per
/// class list). `keep` is handed each attribute's normalised values, as
/// [`check_entry_keeping`] does.
pub fn check_finished(
    schema: &Schema,
    suffix: &Dn,
    e: &Entry,
    old: Option<&Entry>,
    rules: &ClassRules,
    keep: &mut dyn FnMut(&str, Vec<Vec<u8>>),
) -> Result<(), DitError> {
    check_service_account(e)?;
    check_login_names(e, old)?;
    check_role(schema, suffix, e)?;
    check_entry_keeping(schema, e, rules, keep)
}

/// Check an entry against the schema (RFC 4512 §3.3): known classes, one structural
/// chain, MUST present, nothing outside MUST/MAY, single-valued attributes, value syntax.
pub fn check_entry(schema: &Schema, entry: &Entry) -> Result<(), DitError> {
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
    pub fn of(schema: &Schema, classes: &[Vec<u8>]) -> Result<ClassRules, DitError> {
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
                return Err(DitError::new(
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
) -> Result<(), DitError> {
    check_entry_keeping(schema, entry, rules, &mut |_, _| {})
}

/// [`check_entry_with`], handing `keep` each attribute's name and its values as normalised
/// by its equality rule (sorted), which the check works out anyway.
pub fn check_entry_keeping(
    schema: &Schema,
    entry: &Entry,
    rules: &ClassRules,
    keep: &mut dyn FnMut(&str, Vec<Vec<u8>>),
) -> Result<(), DitError> {
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
            return Err(DitError::new(
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
            return Err(DitError::new(
                LdapResultCode::ConstraintViolation,
                format!("{}: single-valued attribute has multiple values", attr.name),
            ));
        }
        let mut seen = Vec::with_capacity(attr.values.len());
        for (i, v) in attr.values.iter().enumerate() {
            let Some(norm) = normalize(at.equality, v) else {
                return Err(DitError::new(
                    LdapResultCode::InvalidAttributeSyntax,
                    format!("{}: value #{i} invalid per syntax", attr.name),
                ));
            };
            seen.push(norm);
        }
        // Sorted once, not kept in a set: groups carry hundreds of values.
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return Err(DitError::new(
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

fn oc_violation(message: &str) -> DitError {
    DitError::new(LdapResultCode::ObjectClassViolation, message.to_string())
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

/// Service accounts: a valid name, and never a password; they bind with tokens only.
pub fn check_service_account(entry: &Entry) -> Result<(), DitError> {
    if !entry.has_class(SERVICE_CLASS) {
        return Ok(());
    }
    if entry.get("userPassword").is_some() {
        return Err(DitError::new(
            LdapResultCode::ConstraintViolation,
            "service accounts have no password; they bind with API tokens",
        ));
    }
    let name = entry.first_str("uid").unwrap_or_default();
    check_account_name(name)
}

/// 1 to 63 of `a-z 0-9 - _`, starting and ending with a letter or digit.
pub fn check_account_name(name: &str) -> Result<(), DitError> {
    const RULE: &str = "service account names are 1 to 63 characters of lowercase letters, digits, '-' and '_', starting and ending with a letter or digit";
    let bad = |why: String| {
        Err(DitError::new(
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

/// POSIX accounts log in by their `uid`: each must be a login name ([`check_login_name`]).
/// Only new values are checked (a new entry's, or those a change or rename brings, or all
/// of them when the entry becomes a posixAccount): an entry stored before the rule keeps
/// working.
pub fn check_login_names(e: &Entry, old: Option<&Entry>) -> Result<(), DitError> {
    if !e.has_class("posixAccount") {
        return Ok(());
    }
    let before = old
        .filter(|o| o.has_class("posixAccount"))
        .map_or(&[][..], |o| o.values("uid"));
    for uid in e.values("uid") {
        if before.contains(uid) {
            continue;
        }
        check_login_name(&String::from_utf8_lossy(uid)).map_err(|why| {
            DitError::new(LdapResultCode::ConstraintViolation, format!("uid: {why}"))
        })?;
    }
    Ok(())
}

/// What a login name may be: as shadow-utils' `useradd` and Debian's `adduser` accept it
/// (and OpenLDAP stores whatever it is given), 1 to 32 characters (what utmp and many NAS
/// systems keep) of lowercase letters, digits, `_`, `.` and `-`, starting with a letter or
/// `_`, with an optional final `$` (Samba's machine accounts). The error says which rule
/// `name` breaks, in people's words.
pub fn check_login_name(name: &str) -> Result<(), String> {
    const RULE: &str = "a login name is 1 to 32 characters: lowercase letters, digits, '_', '.' \
                        and '-', starting with a letter or '_', and an optional final '$'";
    let body = name.strip_suffix('$').unwrap_or(name);
    let first_ok = body
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = body
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if first_ok && rest_ok && name.len() <= 32 {
        return Ok(());
    }
    Err(format!("'{name}' is not a login name: {RULE}"))
}

/// Make sure every RDN value is among the entry's values (RFC 4512 §2.3).
pub fn ensure_rdn_values(schema: &Schema, entry: &mut Entry) -> Result<(), DitError> {
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
pub fn stamp_new(schema: &Schema, entry: &mut Entry, actor: &str, now: &str, uuid: &str) {
    let structural = structural_class(schema, entry);
    stamp_new_as(entry, actor, now, uuid, structural.as_deref());
}

/// A new entry's `entryUUID`: time-ordered (version 7), so its index key goes at the end of
/// that attribute's range, not on a random page of it. Decided before a write is logged
/// (see `dit::command`), so every node of a cluster stamps the same one.
pub fn new_uuid() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// [`stamp_new`] with the entry's structural class already known.
pub fn stamp_new_as(
    entry: &mut Entry,
    actor: &str,
    now: &str,
    uuid: &str,
    structural: Option<&str>,
) {
    entry.set_str("entryUUID", uuid);
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

/// A role entry must define a grant that can be enforced: a bad filter, an unknown right
/// or a scope outside the directory is refused (19), never stored.
pub fn check_role(schema: &Schema, suffix: &Dn, entry: &Entry) -> Result<(), DitError> {
    if !entry.has_class(ROLE_CLASS) {
        return Ok(());
    }
    Grant::from_entry(entry, schema, suffix)
        .map(|_| ())
        .map_err(|e| DitError::new(LdapResultCode::ConstraintViolation, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(uid: &str, posix: bool) -> Entry {
        let mut e =
            Entry::new(Dn::parse(&format!("uid={uid},ou=people,dc=example,dc=com")).unwrap());
        let mut classes = vec![b"inetOrgPerson".to_vec()];
        if posix {
            classes.push(b"posixAccount".to_vec());
        }
        e.set("objectClass", classes);
        e.set_str("uid", uid);
        e
    }

    #[test]
    fn login_names_are_what_useradd_takes() {
        for good in [
            "alice",
            "bob.smith",
            "_svc",
            "a-1",
            "a",
            "ws01$",
            "x_.-9",
            &"x".repeat(32),
        ] {
            assert!(check_login_name(good).is_ok(), "{good}");
        }
        let long = format!("{}$", "x".repeat(32));
        for bad in [
            "",
            "$",
            "Bob",
            "bob smith",
            "1bob",
            "-bob",
            ".bob",
            "bob$x",
            "bob$$",
            "bö",
            &long,
        ] {
            let err = check_login_name(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("'{bad}' is not a login name: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn only_new_uids_of_posix_accounts_are_checked() {
        // Not a POSIX account: anything goes.
        assert!(check_login_names(&account("Bob Smith", false), None).is_ok());
        let err = check_login_names(&account("Bob Smith", true), None).unwrap_err();
        assert_eq!(err.code, LdapResultCode::ConstraintViolation);
        assert!(
            err.message
                .starts_with("uid: 'Bob Smith' is not a login name"),
            "{}",
            err.message
        );
        // Stored before the rule, as a POSIX account: kept as it is through other changes.
        let old = account("Bob Smith", true);
        assert!(check_login_names(&old.clone(), Some(&old)).is_ok());
        // Becoming a POSIX account, or a new value: checked.
        assert!(check_login_names(&old, Some(&account("Bob Smith", false))).is_err());
        let mut more = old.clone();
        more.push_value("uid", b"Robert".to_vec());
        assert!(check_login_names(&more, Some(&old)).is_err());
    }
}
