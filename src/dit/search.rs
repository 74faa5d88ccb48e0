//! Searching the tree as a caller: checking the base, choosing the candidates from the
//! equality indexes where the filter allows (else the scope), and deciding each candidate:
//! in scope, given the computed attributes the filter or the result needs, seen as the
//! caller may see it (hidden attributes removed, references to invisible entries pruned),
//! then matched. LDAP Search streams, pages and encodes the results; every other front end
//! that lists entries ("search as" included) reads them the same way.

use std::collections::BTreeSet;

use ldap3_proto::proto::LdapSearchScope;

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::filter::{Filter, Truth};
use crate::directory::schema::Schema;
use crate::dit::caller::{self, Caller};
use crate::dit::computed::add_computed;
use crate::dit::error::DitError;
use crate::store::{DirectoryRead, StoreError};

/// What to look for: below `base`, to `scope`, matching `filter`.
#[derive(Debug, Clone)]
pub struct Query {
    pub base: Dn,
    pub scope: LdapSearchScope,
    pub filter: Filter,
}

/// The base's id, if the search may start there: within the directory (32 otherwise),
/// existing (32 naming the closest ancestor), and visible to the caller (32, as if it did
/// not exist).
pub fn base(
    r: &impl DirectoryRead,
    caller: &Caller,
    suffix: &Dn,
    base: &Dn,
) -> Result<u64, DitError> {
    if !base.is_within(suffix) {
        return Err(DitError::no_such_object(String::new()));
    }
    let Some(id) = r.id_of(base)? else {
        return Err(DitError::missing(r, base));
    };
    if caller::visible(r, caller, base)?.is_none() {
        return Err(DitError::no_such_object(String::new()));
    }
    Ok(id)
}

/// Decides candidates for one query and caller.
pub struct Examiner<'q> {
    query: &'q Query,
    /// The stored attributes to decode: those the result, the filter and the caller's view
    /// read; None for all.
    stored: Option<Vec<String>>,
    /// The attributes the filter reads.
    needed: Vec<String>,
}

impl<'q> Examiner<'q> {
    /// `returned`: the stored attributes the result shows, or None for all of them.
    pub fn new(query: &'q Query, caller: &Caller, returned: Option<Vec<String>>) -> Self {
        let mut needed = Vec::new();
        query.filter.attributes(&mut needed);
        let stored = returned
            .map(|mut names| {
                names.extend(needed.iter().cloned());
                caller.decision_attributes(&mut names);
                names
            })
            .filter(|names| !names.iter().any(|n| n == "*"));
        Examiner {
            query,
            stored,
            needed,
        }
    }

    /// The entry `id` as the caller sees it, if it is in scope, visible and matches;
    /// computed attributes the filter or `wants` asks for are added.
    pub fn examine(
        &self,
        r: &impl DirectoryRead,
        caller: &Caller,
        schema: &Schema,
        id: u64,
        wants: &dyn Fn(&str) -> bool,
    ) -> Result<Option<Entry>, StoreError> {
        let found = match &self.stored {
            Some(names) => r.entry_only(id, |name| {
                names.iter().any(|n| n.eq_ignore_ascii_case(name))
            })?,
            None => r.entry(id)?,
        };
        let Some(mut e) = found else {
            return Ok(None);
        };
        if !in_scope(&e.dn, &self.query.base, &self.query.scope) {
            return Ok(None);
        }
        // Everything the filter or the result needs, computed once; then what the caller
        // may not see goes, before the filter looks.
        add_computed(r, id, &mut e, |name| {
            wants(name)
                || self
                    .needed
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name) || n == "*")
        })?;
        caller.with_member_of(r, &mut e)?;
        let Some(view) = caller.view(&e) else {
            return Ok(None);
        };
        caller.redact(&view, &mut e, schema);
        caller.prune(r, id, &mut e)?;
        if self.query.filter.matches(&e) != Truth::True {
            return Ok(None);
        }
        Ok(Some(e))
    }
}

/// The ids to examine, ascending. Uses equality indexes where the filter allows.
pub fn candidates(
    r: &impl DirectoryRead,
    filter: &Filter,
    scope: &LdapSearchScope,
    base_id: u64,
) -> Result<Vec<u64>, StoreError> {
    if *scope == LdapSearchScope::Base {
        return Ok(vec![base_id]);
    }
    if let Some(ids) = plan(r, filter)? {
        return Ok(ids.into_iter().collect());
    }
    match scope {
        LdapSearchScope::OneLevel => {
            let mut ids = r.children(base_id)?;
            ids.sort_unstable();
            Ok(ids)
        }
        _ => r.subtree(base_id),
    }
}

/// A superset of the matching ids from the indexes, or None when a scan is needed.
fn plan(r: &impl DirectoryRead, filter: &Filter) -> Result<Option<BTreeSet<u64>>, StoreError> {
    match filter {
        Filter::Equality(attr, key) if attr.name.eq_ignore_ascii_case("memberOf") => {
            let Some(group) = std::str::from_utf8(key)
                .ok()
                .and_then(|k| Dn::parse(k).ok())
            else {
                return Ok(Some(BTreeSet::new()));
            };
            let Some((_, group)) = r.entry_by_dn(&group)? else {
                return Ok(Some(BTreeSet::new()));
            };
            let mut ids = BTreeSet::new();
            for member in group.values("member") {
                let Some(dn) = std::str::from_utf8(member)
                    .ok()
                    .and_then(|m| Dn::parse(m).ok())
                else {
                    continue;
                };
                if let Some(id) = r.id_of(&dn)? {
                    ids.insert(id);
                }
            }
            Ok(Some(ids))
        }
        Filter::Equality(attr, key) => r.lookup(&attr.name, key),
        Filter::And(items) => {
            // Selective conjuncts first (objectClass matches most of the directory), and
            // none once the candidates are few: every candidate meets the whole filter
            // anyway, so a conjunct left out only widens the superset. Without this a
            // getpwnam reads every posixAccount id from the index.
            let mut order: Vec<&Filter> = items.iter().collect();
            order.sort_by_key(|f| is_broad(f));
            let mut best: Option<BTreeSet<u64>> = None;
            for item in order {
                if best.as_ref().is_some_and(|b| b.len() <= FEW_CANDIDATES) {
                    break;
                }
                if let Some(ids) = plan(r, item)? {
                    best = Some(match best {
                        Some(prev) => prev.intersection(&ids).copied().collect(),
                        None => ids,
                    });
                }
            }
            Ok(best)
        }
        Filter::Or(items) => {
            let mut all = BTreeSet::new();
            for item in items {
                match plan(r, item)? {
                    Some(ids) => all.extend(ids),
                    None => return Ok(None),
                }
            }
            Ok(Some(all))
        }
        _ => Ok(None),
    }
}

/// Candidates few enough that narrowing them further costs more than testing them.
const FEW_CANDIDATES: usize = 16;

/// An equality on objectClass: indexed, but usually true of a large part of the tree.
fn is_broad(filter: &Filter) -> bool {
    matches!(filter, Filter::Equality(attr, _) if attr.name.eq_ignore_ascii_case("objectClass"))
}

pub fn in_scope(dn: &Dn, base: &Dn, scope: &LdapSearchScope) -> bool {
    if !dn.is_within(base) {
        return false;
    }
    match scope {
        LdapSearchScope::Base => dn == base,
        LdapSearchScope::OneLevel => dn.depth() == base.depth() + 1,
        LdapSearchScope::Subtree => true,
        LdapSearchScope::Children => dn != base,
    }
}
