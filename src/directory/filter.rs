//! Search filters: conversion from the codec's `LdapFilter` into schema-resolved form,
//! and RFC 4511 three-valued evaluation against entries.
//!
//! Conversion resolves attribute names and matching rules once per search, so that
//! evaluating an entry does no schema lookups. Unknown attributes become `Undefined`.
//! No I/O, no store access: the search layer decides candidates, this decides matches.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use ldap3_proto::proto::LdapFilter;
use thiserror::Error;

use crate::directory::entry::Entry;
use crate::directory::matching::{MatchingRule, RuleKind, normalize};
use crate::directory::schema::{AttributeType, Schema};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("filter nested too deeply (limit {0})")]
    TooDeep(usize),
    #[error("filter has too many elements (limit {0})")]
    TooWide(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Undefined,
}

/// An attribute as a filter refers to it: canonical name and its rules.
#[derive(Clone, Debug)]
pub struct AttrRef {
    pub name: String,
    pub equality: Option<MatchingRule>,
    pub ordering: Option<MatchingRule>,
    pub substr: Option<MatchingRule>,
}

#[derive(Clone, Debug)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// Assertion value already normalised by the equality rule.
    Equality(AttrRef, Vec<u8>),
    Substring {
        attr: AttrRef,
        initial: Option<String>,
        any: Vec<String>,
        final_: Option<String>,
    },
    GreaterOrEqual(AttrRef, Vec<u8>),
    LessOrEqual(AttrRef, Vec<u8>),
    Present(AttrRef),
    /// RFC 4511 §4.5.1.7.7, evaluated by the rule's kind (RFC 4517): equality, ordering
    /// (true when the value is less than the assertion) or substrings.
    Extensible {
        /// The attribute named, if any (then `applies` holds its names).
        attr: Option<AttrRef>,
        /// Lower-case names and OIDs of the attributes the rule is applied to: the one
        /// named, or, with no type, every attribute the rule can be applied to.
        applies: BTreeSet<String>,
        rule: MatchingRule,
        assertion: Assertion,
        /// `:dn:`: the DN's attribute values count as the entry's too.
        dn_attributes: bool,
    },
    /// An item over an unknown attribute or with an invalid assertion.
    Undefined,
}

/// An extensible match's assertion, prepared for its rule's kind.
#[derive(Clone, Debug)]
pub enum Assertion {
    /// Normalised by the rule.
    Equal(Vec<u8>),
    /// The raw value, valid for the ordering rule.
    Less(Vec<u8>),
    Substrings {
        initial: Option<String>,
        any: Vec<String>,
        final_: Option<String>,
    },
}

/// Stands in for an assertion value the client sent as octets that are not UTF-8, which the
/// codec can only read as text (the framing puts it in their place): an item carrying it
/// evaluates to Undefined (RFC 4511 §4.5.1.7), as no stored value can equal those octets
/// through a string rule. A noncharacter, so no text a client means carries it.
pub const UNREADABLE: char = '\u{FFFF}';

/// Does this item (not its sub-filters) carry [`UNREADABLE`] in a value?
fn carries_unreadable(filter: &LdapFilter) -> bool {
    let has = |s: &str| s.contains(UNREADABLE);
    match filter {
        LdapFilter::Equality(_, v)
        | LdapFilter::Approx(_, v)
        | LdapFilter::GreaterOrEqual(_, v)
        | LdapFilter::LessOrEqual(_, v) => has(v),
        LdapFilter::Substring(_, sub) => {
            sub.initial.as_deref().is_some_and(has)
                || sub.final_.as_deref().is_some_and(has)
                || sub.any.iter().any(|a| has(a))
        }
        LdapFilter::Extensible(mra) => has(&mra.match_value),
        _ => false,
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FilterLimits {
    pub max_depth: usize,
    pub max_elements: usize,
}

impl Filter {
    pub fn from_ldap(
        filter: &LdapFilter,
        schema: &Schema,
        limits: FilterLimits,
    ) -> Result<Filter, FilterError> {
        let mut elements = 0;
        convert(filter, schema, limits, 0, &mut elements)
    }

    pub fn matches(&self, entry: &Entry) -> Truth {
        match self {
            Filter::And(items) => {
                let mut acc = Truth::True;
                for item in items {
                    match item.matches(entry) {
                        Truth::False => return Truth::False,
                        Truth::Undefined => acc = Truth::Undefined,
                        Truth::True => {}
                    }
                }
                acc
            }
            Filter::Or(items) => {
                let mut acc = Truth::False;
                for item in items {
                    match item.matches(entry) {
                        Truth::True => return Truth::True,
                        Truth::Undefined => acc = Truth::Undefined,
                        Truth::False => {}
                    }
                }
                acc
            }
            Filter::Not(inner) => match inner.matches(entry) {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                Truth::Undefined => Truth::Undefined,
            },
            Filter::Equality(attr, assertion) => {
                any_value(entry, attr, |v| equal(attr.equality, v, assertion))
            }
            Filter::Substring {
                attr,
                initial,
                any,
                final_,
            } => {
                let Some(rule) = attr.substr else {
                    return Truth::Undefined;
                };
                any_value(entry, attr, |v| {
                    rule.substrings(v, initial.as_deref(), any, final_.as_deref())
                })
            }
            Filter::GreaterOrEqual(attr, assertion) => {
                let Some(rule) = attr.ordering else {
                    return Truth::Undefined;
                };
                any_value(entry, attr, |v| {
                    rule.compare(v, assertion).map(|o| o != Ordering::Less)
                })
            }
            Filter::LessOrEqual(attr, assertion) => {
                let Some(rule) = attr.ordering else {
                    return Truth::Undefined;
                };
                any_value(entry, attr, |v| {
                    rule.compare(v, assertion).map(|o| o != Ordering::Greater)
                })
            }
            Filter::Present(attr) => {
                if entry.get(&attr.name).is_some() {
                    Truth::True
                } else {
                    Truth::False
                }
            }
            Filter::Extensible {
                attr,
                applies,
                rule,
                assertion,
                dn_attributes,
            } => extensible(
                entry,
                attr.as_ref(),
                applies,
                *rule,
                assertion,
                *dn_attributes,
            ),
            Filter::Undefined => Truth::Undefined,
        }
    }

    /// Every attribute name the filter reads, so computed attributes can be supplied.
    pub fn attributes(&self, out: &mut Vec<String>) {
        match self {
            Filter::And(items) | Filter::Or(items) => {
                items.iter().for_each(|f| f.attributes(out));
            }
            Filter::Not(inner) => inner.attributes(out),
            Filter::Equality(a, _)
            | Filter::GreaterOrEqual(a, _)
            | Filter::LessOrEqual(a, _)
            | Filter::Present(a)
            | Filter::Substring { attr: a, .. } => out.push(a.name.clone()),
            Filter::Extensible { attr, .. } => match attr {
                Some(a) => out.push(a.name.clone()),
                None => out.push("*".to_string()),
            },
            Filter::Undefined => {}
        }
    }
}

fn convert(
    filter: &LdapFilter,
    schema: &Schema,
    limits: FilterLimits,
    depth: usize,
    elements: &mut usize,
) -> Result<Filter, FilterError> {
    if depth > limits.max_depth {
        return Err(FilterError::TooDeep(limits.max_depth));
    }
    *elements += 1;
    if *elements > limits.max_elements {
        return Err(FilterError::TooWide(limits.max_elements));
    }
    let list = |items: &[LdapFilter], elements: &mut usize| {
        items
            .iter()
            .map(|f| convert(f, schema, limits, depth + 1, elements))
            .collect::<Result<Vec<_>, _>>()
    };
    if carries_unreadable(filter) {
        return Ok(Filter::Undefined);
    }
    Ok(match filter {
        LdapFilter::And(items) => Filter::And(list(items, elements)?),
        LdapFilter::Or(items) => Filter::Or(list(items, elements)?),
        LdapFilter::Not(inner) => Filter::Not(Box::new(convert(
            inner,
            schema,
            limits,
            depth + 1,
            elements,
        )?)),
        LdapFilter::Equality(name, value) | LdapFilter::Approx(name, value) => {
            let Some(attr) = resolve(schema, name) else {
                return Ok(Filter::Undefined);
            };
            match normalize(attr.equality, value.as_bytes()) {
                Some(norm) => Filter::Equality(attr, norm),
                None => Filter::Undefined,
            }
        }
        LdapFilter::Substring(name, sub) => {
            let Some(attr) = resolve(schema, name) else {
                return Ok(Filter::Undefined);
            };
            Filter::Substring {
                attr,
                initial: sub.initial.clone(),
                any: sub.any.clone(),
                final_: sub.final_.clone(),
            }
        }
        LdapFilter::GreaterOrEqual(name, value) => match resolve(schema, name) {
            Some(attr) => Filter::GreaterOrEqual(attr, value.as_bytes().to_vec()),
            None => Filter::Undefined,
        },
        LdapFilter::LessOrEqual(name, value) => match resolve(schema, name) {
            Some(attr) => Filter::LessOrEqual(attr, value.as_bytes().to_vec()),
            None => Filter::Undefined,
        },
        LdapFilter::Present(name) => match resolve(schema, name) {
            Some(attr) => Filter::Present(attr),
            None => Filter::Undefined,
        },
        LdapFilter::Extensible(mra) => {
            let attr = match &mra.type_ {
                Some(name) => match resolve(schema, name) {
                    Some(a) => Some(a),
                    None => return Ok(Filter::Undefined),
                },
                None => None,
            };
            // An unknown rule, or an assertion the rule cannot take, is Undefined: RFC 4511
            // §4.5.1.7 forbids an error for either.
            let rule = match &mra.matching_rule {
                Some(r) => MatchingRule::from_name(r),
                None => attr.as_ref().and_then(|a| a.equality),
            };
            let Some(rule) = rule else {
                return Ok(Filter::Undefined);
            };
            let Some(assertion) = prepare(rule, &mra.match_value) else {
                return Ok(Filter::Undefined);
            };
            let applies = match &mra.type_ {
                Some(name) => schema.attribute(name).map(names).unwrap_or_default(),
                None => schema
                    .attributes()
                    .filter(|at| rule.applies_to(at.syntax, &[at.equality, at.ordering, at.substr]))
                    .flat_map(names)
                    .collect(),
            };
            Filter::Extensible {
                attr,
                applies,
                rule,
                assertion,
                dn_attributes: mra.dn_attributes,
            }
        }
    })
}

/// Resolve an attribute description (`cn`, `CN;lang-en`, an OID) to its schema type.
pub fn resolve(schema: &Schema, description: &str) -> Option<AttrRef> {
    let name = description.split(';').next().unwrap_or(description);
    let at = schema.attribute(name)?;
    Some(AttrRef {
        name: at.name().to_string(),
        equality: at.equality,
        ordering: at.ordering,
        substr: at.substr,
    })
}

fn equal(rule: Option<MatchingRule>, value: &[u8], assertion: &[u8]) -> Option<bool> {
    normalize(rule, value).map(|v| v == assertion)
}

/// True if any value matches; Undefined if none matched and some could not be evaluated;
/// False when the attribute is absent or no value matched.
fn any_value(entry: &Entry, attr: &AttrRef, test: impl Fn(&[u8]) -> Option<bool>) -> Truth {
    fold(entry.values(&attr.name).iter().map(|v| test(v)))
}

/// Every name and the OID of an attribute type, lower-cased.
fn names(at: &AttributeType) -> BTreeSet<String> {
    at.names
        .iter()
        .chain(std::iter::once(&at.oid))
        .map(|n| n.to_ascii_lowercase())
        .collect()
}

/// Prepare an extensible match's assertion for the rule's kind; None when it is invalid.
fn prepare(rule: MatchingRule, value: &str) -> Option<Assertion> {
    match rule.kind() {
        RuleKind::Equality => rule.normalize(value.as_bytes()).map(Assertion::Equal),
        RuleKind::Ordering => rule
            .ordering_key(value.as_bytes())
            .map(|_| Assertion::Less(value.as_bytes().to_vec())),
        RuleKind::Substrings => substring_assertion(value),
    }
}

/// Parse RFC 4517 §3.3.30 `[initial] * [any *]... [final]`, where `\2A` and `\5C` stand
/// for a literal `*` and `\`. At least one `*` is required.
fn substring_assertion(value: &str) -> Option<Assertion> {
    let mut parts = value
        .split('*')
        .map(unescape)
        .collect::<Option<Vec<String>>>()?;
    if parts.len() < 2 {
        return None;
    }
    let final_ = parts.pop().filter(|p| !p.is_empty());
    let initial = Some(parts.remove(0)).filter(|p| !p.is_empty());
    let any: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    if initial.is_none() && final_.is_none() && any.is_empty() {
        // `*` alone is a presence test, not a substrings assertion.
        return None;
    }
    Some(Assertion::Substrings {
        initial,
        any,
        final_,
    })
}

/// Replace `\XX` hex escapes; None for a dangling or bad escape or invalid UTF-8.
fn unescape(part: &str) -> Option<String> {
    if !part.contains('\\') {
        return Some(part.to_string());
    }
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn extensible(
    entry: &Entry,
    attr: Option<&AttrRef>,
    applies: &BTreeSet<String>,
    rule: MatchingRule,
    assertion: &Assertion,
    dn_attributes: bool,
) -> Truth {
    let test = |v: &[u8]| match assertion {
        Assertion::Equal(a) => rule.normalize(v).map(|n| n == *a),
        Assertion::Less(a) => rule.compare(v, a).map(|o| o == Ordering::Less),
        Assertion::Substrings {
            initial,
            any,
            final_,
        } => rule.substrings(v, initial.as_deref(), any, final_.as_deref()),
    };
    let mut result = match attr {
        Some(a) => any_value(entry, a, test),
        None => {
            let values = entry
                .attrs
                .iter()
                .filter(|a| applies.contains(&a.name.to_ascii_lowercase()))
                .flat_map(|a| a.values.iter());
            fold(values.map(|v| test(v)))
        }
    };
    if result != Truth::True && dn_attributes {
        // RFC 4511: the assertion also applies to every AVA of the entry's DN.
        let avas = entry
            .dn
            .rdns()
            .iter()
            .flat_map(|r| r.avas.iter())
            .filter(|ava| applies.contains(&ava.attr.to_ascii_lowercase()));
        if fold(avas.map(|ava| test(ava.value.as_bytes()))) == Truth::True {
            result = Truth::True;
        }
    }
    result
}

/// True if any test is true; Undefined if none is and some could not be evaluated.
fn fold(results: impl Iterator<Item = Option<bool>>) -> Truth {
    let mut undefined = false;
    for r in results {
        match r {
            Some(true) => return Truth::True,
            Some(false) => {}
            None => undefined = true,
        }
    }
    if undefined {
        Truth::Undefined
    } else {
        Truth::False
    }
}

#[cfg(test)]
mod tests {
    use ldap3_proto::proto::{LdapMatchingRuleAssertion, LdapSubstringFilter};

    use super::*;
    use crate::directory::dn::Dn;

    const LIMITS: FilterLimits = FilterLimits {
        max_depth: 32,
        max_elements: 1000,
    };

    fn entry() -> Entry {
        let mut e = Entry::new(Dn::parse("uid=alice,ou=people,dc=example,dc=com").unwrap());
        e.set(
            "objectClass",
            vec![b"inetOrgPerson".to_vec(), b"posixAccount".to_vec()],
        );
        e.set_str("uid", "alice");
        e.set_str("cn", "Alice  Liddell");
        e.set_str("uidNumber", "1000");
        e.set_str("createTimestamp", "20260101120000Z");
        e
    }

    fn eval(f: LdapFilter) -> Truth {
        let schema = Schema::shipped().unwrap();
        Filter::from_ldap(&f, &schema, LIMITS)
            .unwrap()
            .matches(&entry())
    }

    fn eq(a: &str, v: &str) -> LdapFilter {
        LdapFilter::Equality(a.into(), v.into())
    }

    #[test]
    fn equality_follows_schema() {
        assert_eq!(eval(eq("UID", "ALICE")), Truth::True);
        assert_eq!(eval(eq("cn", "alice liddell")), Truth::True);
        assert_eq!(eval(eq("uidNumber", "01000")), Truth::True);
        assert_eq!(eval(eq("objectclass", "POSIXACCOUNT")), Truth::True);
        assert_eq!(eval(eq("uid", "bob")), Truth::False);
        assert_eq!(eval(eq("mail", "x@y")), Truth::False);
    }

    #[test]
    fn ordering_and_substrings() {
        assert_eq!(
            eval(LdapFilter::GreaterOrEqual("uidNumber".into(), "999".into())),
            Truth::True
        );
        assert_eq!(
            eval(LdapFilter::LessOrEqual("uidNumber".into(), "999".into())),
            Truth::False
        );
        assert_eq!(
            eval(LdapFilter::GreaterOrEqual(
                "createTimestamp".into(),
                "20260101115959.5Z".into()
            )),
            Truth::True
        );
        let sub = LdapSubstringFilter {
            initial: Some("ali".into()),
            any: vec![],
            final_: None,
        };
        assert_eq!(eval(LdapFilter::Substring("uid".into(), sub)), Truth::True);
    }

    #[test]
    fn three_valued_logic() {
        let unknown = eq("noSuchAttr", "x");
        assert_eq!(eval(unknown.clone()), Truth::Undefined);
        assert_eq!(
            eval(LdapFilter::Not(Box::new(unknown.clone()))),
            Truth::Undefined
        );
        assert_eq!(
            eval(LdapFilter::Or(vec![unknown.clone(), eq("uid", "alice")])),
            Truth::True
        );
        assert_eq!(
            eval(LdapFilter::And(vec![unknown.clone(), eq("uid", "bob")])),
            Truth::False
        );
        assert_eq!(
            eval(LdapFilter::And(vec![unknown, eq("uid", "alice")])),
            Truth::Undefined
        );
        assert_eq!(eval(eq("uidNumber", "notanumber")), Truth::Undefined);
        assert_eq!(eval(LdapFilter::And(vec![])), Truth::True);
        assert_eq!(eval(LdapFilter::Or(vec![])), Truth::False);
    }

    /// `[type][:dn][:rule]:=value`
    fn ext(type_: Option<&str>, dn: bool, rule: Option<&str>, value: &str) -> LdapFilter {
        LdapFilter::Extensible(LdapMatchingRuleAssertion {
            matching_rule: rule.map(String::from),
            type_: type_.map(String::from),
            match_value: value.into(),
            dn_attributes: dn,
        })
    }

    #[test]
    fn extensible_ordering_is_less_than() {
        let ord = |a, r, v| eval(ext(Some(a), false, Some(r), v));
        assert_eq!(
            ord("uidNumber", "integerOrderingMatch", "1001"),
            Truth::True
        );
        assert_eq!(
            ord("uidNumber", "integerOrderingMatch", "1000"),
            Truth::False
        );
        assert_eq!(ord("uidNumber", "2.5.13.15", "999"), Truth::False);
        // 999 < 1000 as integers, though "1000" < "999" as strings.
        assert_eq!(
            ord("uidNumber", "integerOrderingMatch", "10000"),
            Truth::True
        );
        assert_eq!(
            ord("uidNumber", "integerOrderingMatch", "many"),
            Truth::Undefined
        );
        assert_eq!(ord("cn", "caseIgnoreOrderingMatch", "BOB"), Truth::True);
        assert_eq!(ord("cn", "caseIgnoreOrderingMatch", "alice"), Truth::False);
        let time = "generalizedTimeOrderingMatch";
        assert_eq!(ord("createTimestamp", time, "20270101000000Z"), Truth::True);
        assert_eq!(
            ord("createTimestamp", time, "20260101120000Z"),
            Truth::False
        );
        assert_eq!(
            ord("createTimestamp", time, "20260101130000+0100"),
            Truth::False,
            "the same instant is not less"
        );
        assert_eq!(ord("createTimestamp", time, "yesterday"), Truth::Undefined);
        // An ordering rule that cannot read the attribute's values: Undefined, not equality.
        assert_eq!(ord("cn", "integerOrderingMatch", "5"), Truth::Undefined);
    }

    #[test]
    fn extensible_substrings() {
        let sub = |v| eval(ext(Some("cn"), false, Some("caseIgnoreSubstringsMatch"), v));
        assert_eq!(sub("ALI*dell"), Truth::True);
        assert_eq!(sub("*LIDD*"), Truth::True);
        assert_eq!(sub("alice*liddell"), Truth::True);
        assert_eq!(sub("*ice*lid*"), Truth::True);
        assert_eq!(sub("bob*"), Truth::False);
        assert_eq!(sub("*alice"), Truth::False);
        // `\2A` is a literal asterisk, not a wildcard.
        assert_eq!(sub("ali\\2Ace*"), Truth::False);
        assert_eq!(
            sub("alice liddell"),
            Truth::Undefined,
            "no * is no assertion"
        );
        assert_eq!(sub("*"), Truth::Undefined);
        assert_eq!(sub("ali\\zz*"), Truth::Undefined);
        let exact = eval(ext(
            Some("cn"),
            false,
            Some("caseExactSubstringsMatch"),
            "Ali*",
        ));
        assert_eq!(exact, Truth::True);
        let exact = eval(ext(
            Some("cn"),
            false,
            Some("caseExactSubstringsMatch"),
            "ali*",
        ));
        assert_eq!(exact, Truth::False);
    }

    #[test]
    fn extensible_equality_and_attributes() {
        assert_eq!(eval(ext(Some("uid"), false, None, "ALICE")), Truth::True);
        assert_eq!(
            eval(ext(Some("uid"), false, Some("caseExactMatch"), "ALICE")),
            Truth::False
        );
        // No type: every attribute the rule applies to, and only those.
        assert_eq!(
            eval(ext(None, false, Some("caseIgnoreMatch"), "ALICE")),
            Truth::True
        );
        assert_eq!(
            eval(ext(None, false, Some("integerMatch"), "01000")),
            Truth::True
        );
        assert_eq!(
            eval(ext(None, false, Some("caseIgnoreMatch"), "posixAccount")),
            Truth::False,
            "objectClass values are OIDs, not directory strings"
        );
        // RFC 4511 §4.5.1.7: unknown rules and types are Undefined, never an error.
        assert_eq!(
            eval(ext(Some("uid"), false, Some("noSuchMatch"), "alice")),
            Truth::Undefined
        );
        assert_eq!(
            eval(LdapFilter::Not(Box::new(ext(
                None,
                false,
                Some("1.2.3.4"),
                "x"
            )))),
            Truth::Undefined
        );
        assert_eq!(
            eval(ext(Some("noSuchAttr"), false, None, "x")),
            Truth::Undefined
        );
    }

    #[test]
    fn extensible_dn_attributes() {
        // The entry has no `ou` or `dc` values; its DN does.
        assert_eq!(eval(ext(Some("ou"), false, None, "people")), Truth::False);
        assert_eq!(eval(ext(Some("ou"), true, None, "PEOPLE")), Truth::True);
        assert_eq!(
            eval(ext(Some("organizationalUnitName"), true, None, "people")),
            Truth::True
        );
        assert_eq!(
            eval(ext(Some("ou"), true, Some("caseIgnoreMatch"), "groups")),
            Truth::False
        );
        assert_eq!(
            eval(ext(None, true, Some("caseIgnoreMatch"), "people")),
            Truth::True
        );
        assert_eq!(
            eval(ext(
                Some("dc"),
                true,
                Some("caseIgnoreIA5SubstringsMatch"),
                "exa*"
            )),
            Truth::True
        );
        assert_eq!(
            eval(ext(
                Some("dc"),
                true,
                Some("caseIgnoreIA5SubstringsMatch"),
                "*xyz*"
            )),
            Truth::False
        );
        // The type still limits which AVAs count.
        assert_eq!(eval(ext(Some("cn"), true, None, "people")), Truth::False);
    }

    #[test]
    fn depth_limit() {
        let mut f = eq("uid", "alice");
        for _ in 0..40 {
            f = LdapFilter::Not(Box::new(f));
        }
        let schema = Schema::shipped().unwrap();
        assert_eq!(
            Filter::from_ldap(&f, &schema, LIMITS).unwrap_err(),
            FilterError::TooDeep(32)
        );
    }
}
