//! Search filters: conversion from the codec's `LdapFilter` into schema-resolved form,
//! and RFC 4511 three-valued evaluation against entries.
//!
//! Conversion resolves attribute names and matching rules once per search, so that
//! evaluating an entry does no schema lookups. Unknown attributes become `Undefined`.
//! No I/O, no store access: the search layer decides candidates, this decides matches.

use std::cmp::Ordering;

use ldap3_proto::proto::LdapFilter;
use thiserror::Error;

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::matching::MatchingRule;
use crate::directory::schema::Schema;

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
    Extensible {
        attr: Option<AttrRef>,
        rule: MatchingRule,
        value: Vec<u8>,
        dn_attributes: bool,
    },
    /// An item over an unknown attribute or with an invalid assertion.
    Undefined,
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
                rule,
                value,
                dn_attributes,
            } => extensible(entry, attr.as_ref(), *rule, value, *dn_attributes),
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
            let rule = match &mra.matching_rule {
                Some(r) => MatchingRule::from_name(r),
                None => attr.as_ref().and_then(|a| a.equality),
            };
            let Some(rule) = rule else {
                return Ok(Filter::Undefined);
            };
            let value = mra.match_value.as_bytes().to_vec();
            Filter::Extensible {
                attr,
                rule,
                value,
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

/// Normalise a value under an equality rule; attributes without one compare as octets.
pub fn normalize(rule: Option<MatchingRule>, value: &[u8]) -> Option<Vec<u8>> {
    match rule {
        Some(rule) => rule.normalize(value),
        None => Some(value.to_vec()),
    }
}

fn equal(rule: Option<MatchingRule>, value: &[u8], assertion: &[u8]) -> Option<bool> {
    normalize(rule, value).map(|v| v == assertion)
}

/// True if any value matches; Undefined if none matched and some could not be evaluated;
/// False when the attribute is absent or no value matched.
fn any_value(entry: &Entry, attr: &AttrRef, test: impl Fn(&[u8]) -> Option<bool>) -> Truth {
    let mut undefined = false;
    for v in entry.values(&attr.name) {
        match test(v) {
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

fn extensible(
    entry: &Entry,
    attr: Option<&AttrRef>,
    rule: MatchingRule,
    value: &[u8],
    dn_attributes: bool,
) -> Truth {
    let Some(assertion) = rule.normalize(value) else {
        return Truth::Undefined;
    };
    let test = |v: &[u8]| rule.normalize(v).map(|n| n == assertion);
    let mut result = match attr {
        Some(a) => any_value(entry, a, test),
        None => {
            let hit = entry
                .attrs
                .iter()
                .flat_map(|a| a.values.iter())
                .any(|v| test(v) == Some(true));
            if hit { Truth::True } else { Truth::False }
        }
    };
    if result != Truth::True && dn_attributes && dn_matches(&entry.dn, attr, &test) {
        result = Truth::True;
    }
    result
}

fn dn_matches(dn: &Dn, attr: Option<&AttrRef>, test: &impl Fn(&[u8]) -> Option<bool>) -> bool {
    dn.rdns().iter().flat_map(|r| r.avas.iter()).any(|ava| {
        let type_ok = attr.is_none_or(|a| a.name.eq_ignore_ascii_case(&ava.attr));
        type_ok && test(ava.value.as_bytes()) == Some(true)
    })
}

#[cfg(test)]
mod tests {
    use ldap3_proto::proto::LdapSubstringFilter;

    use super::*;

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
