//! The versioned JSON API (`/api/v1`): each handler decodes its request, runs the same
//! `dit` operation LDAP runs, as the authenticated caller, in one store transaction, and
//! encodes what it returns. Entries are seen exactly as the caller sees them over LDAP
//! (`dit::search`); every write goes through `dit::write`, `dit::token` or
//! `dit::password`, so every rule (rights, control, schema, references) is LDAP's own.

pub mod audit;
pub mod directory;
pub mod tokens;

use std::collections::BTreeMap;

use base64::Engine;
use ldap3_proto::proto::LdapSearchScope;
use serde::{Deserialize, Serialize};

use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::directory::filter::{Filter, FilterLimits};
use crate::dit::DitError;
use crate::dit::caller::{self, Caller, Policy};
use crate::dit::command::{Op, Outcome};
use crate::dit::names;
use crate::dit::search::{self, Examiner, Query};
use crate::http::Api;
use crate::http::auth::Authenticated;
use crate::http::problem::Problem;
use crate::store::{DirectoryRead, Reader};

/// Run `f` in a read transaction as the request's caller.
pub async fn read<R>(
    api: &Api,
    who: &Authenticated,
    f: impl FnOnce(&Reader, &Caller, &Policy) -> Result<R, DitError> + Send + 'static,
) -> Result<R, Problem>
where
    R: Send + 'static,
{
    let principal = who.principal.clone();
    let policy = api.state.policy().from(&who.origin);
    api.state
        .store
        .read(move |r| {
            let caller = caller::caller(r, &principal, &policy)?;
            f(r, &caller, &policy)
        })
        .await
        .map_err(Problem::from)
}

/// Run a write as the request's caller: a `dit::command`, through `State::submit`, the
/// one path every front end's writes take (and a cluster's log).
pub async fn submit(api: &Api, who: &Authenticated, op: Op) -> Result<Outcome, Problem> {
    let command = api.state.command(&who.principal, op).from(&who.origin);
    api.state.submit(command).await.map_err(Problem::from)
}

/// An entry as the caller sees it: its DN, and its attributes with their values (UTF-8
/// text; other octets as `base64:` and their base64).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryJson {
    pub dn: String,
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl EntryJson {
    fn of(entry: &Entry, policy: &Policy) -> EntryJson {
        let mut attributes = BTreeMap::new();
        for a in &entry.attrs {
            let operational = policy
                .schema
                .attribute(&a.name)
                .is_some_and(|at| at.is_operational());
            if operational
                && !SHOWN_OPERATIONAL
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&a.name))
            {
                continue;
            }
            let values = a.values.iter().map(|v| value_text(v)).collect();
            attributes.insert(a.name.clone(), values);
        }
        EntryJson {
            dn: entry.dn.to_string(),
            attributes,
        }
    }
}

/// Operational attributes shown with entries (the caller's view still decides).
const SHOWN_OPERATIONAL: &[&str] = &[
    "entryUUID",
    "createTimestamp",
    "modifyTimestamp",
    "creatorsName",
    "modifiersName",
    "memberOf",
];

pub fn value_text(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(text) if !text.starts_with("base64:") => text.to_string(),
        _ => format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(v)
        ),
    }
}

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Listing {
    pub items: Vec<EntryJson>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Paging and filtering of a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Entries per page (1 to 100000, default 100; pages hold at most the server's size
    /// limit, except for directory administrators).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    pub limit: Option<usize>,
    /// Where the page starts: the `next` of the previous page.
    pub cursor: Option<String>,
    /// An LDAP filter (RFC 4515) the entries must also match, e.g. `(mail=*@example.com)`.
    pub filter: Option<String>,
}

/// What a kind of entry the API manages is: its container, class and naming attribute.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    pub container: &'static str,
    pub class: &'static str,
    pub naming: &'static str,
    /// What to call one in a message.
    pub noun: &'static str,
}

pub const PEOPLE: Kind = Kind {
    container: "people",
    class: "person",
    naming: "uid",
    noun: "person",
};
pub const GROUPS: Kind = Kind {
    container: "groups",
    class: "groupOfNames",
    naming: "cn",
    noun: "group",
};
pub const SERVICES: Kind = Kind {
    container: "services",
    class: "tesseraServiceAccount",
    naming: "uid",
    noun: "service account",
};
pub const ROLES: Kind = Kind {
    container: "roles",
    class: "tesseraRole",
    naming: "cn",
    noun: "role",
};

impl Kind {
    pub fn base(&self, suffix: &Dn) -> Dn {
        names::container(suffix, self.container)
    }

    pub fn dn(&self, suffix: &Dn, name: &str) -> Dn {
        self.base(suffix).child(Rdn::single(self.naming, name))
    }
}

/// An LDAP filter from its string form, with the server's limits.
pub fn parse_filter(policy: &Policy, text: &str) -> Result<Filter, DitError> {
    let ldap = crate::directory::filter_string::parse(text)
        .map_err(|e| DitError::protocol(format!("filter: {e}")))?;
    let limits = FilterLimits {
        max_depth: policy.config.limits.max_filter_depth,
        max_elements: policy.config.limits.max_filter_elements,
    };
    Ok(Filter::from_ldap(&ldap, &policy.schema, limits)?)
}

/// Entries of `kind` the caller sees, a page of them.
pub fn list_kind(
    r: &impl DirectoryRead,
    caller: &Caller,
    policy: &Policy,
    kind: Kind,
    q: &ListQuery,
) -> Result<Listing, DitError> {
    let class = format!("(objectClass={})", kind.class);
    let filter = match q.filter.as_deref() {
        Some(extra) if !extra.trim().is_empty() => {
            let extra = extra.trim();
            let extra = if extra.starts_with('(') {
                extra.to_string()
            } else {
                format!("({extra})")
            };
            format!("(&{class}{extra})")
        }
        _ => class,
    };
    let query = Query {
        base: kind.base(&policy.suffix),
        scope: LdapSearchScope::OneLevel,
        filter: parse_filter(policy, &filter)?,
    };
    list(r, caller, policy, &query, q)
}

/// The largest page a list may ask for.
const MAX_PAGE: usize = 100_000;

/// A page of what `query` finds as the caller, in id order.
pub fn list(
    r: &impl DirectoryRead,
    caller: &Caller,
    policy: &Policy,
    query: &Query,
    q: &ListQuery,
) -> Result<Listing, DitError> {
    let max = if caller.is_admin() {
        usize::MAX
    } else {
        policy.config.limits.size_limit
    };
    let limit = match q.limit {
        None => 100,
        Some(n @ 1..=MAX_PAGE) => n,
        Some(_) => return Err(DitError::protocol(format!("limit: from 1 to {MAX_PAGE}"))),
    }
    .min(max);
    let after = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<u64>()
            .map_err(|_| DitError::protocol("cursor: not one this server gave"))?,
    };
    let base_id = search::base(r, caller, &policy.suffix, &query.base)?;
    let ids = search::candidates(r, &query.filter, &query.scope, base_id)?;
    let examiner = Examiner::new(query, caller, None);
    let wants = |name: &str| {
        SHOWN_OPERATIONAL
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    };
    let mut items = Vec::new();
    let mut last = 0;
    for id in ids.into_iter().filter(|id| *id > after) {
        let Some(entry) = examiner.examine(r, caller, &policy.schema, id, &wants)? else {
            continue;
        };
        if items.len() == limit {
            return Ok(Listing {
                items,
                next: Some(last.to_string()),
            });
        }
        items.push(EntryJson::of(&entry, policy));
        last = id;
    }
    Ok(Listing { items, next: None })
}

/// How many entries of `kind` the caller sees (only what deciding needs is decoded).
pub fn count_kind(
    r: &impl DirectoryRead,
    caller: &Caller,
    policy: &Policy,
    kind: Kind,
) -> Result<usize, DitError> {
    let query = Query {
        base: kind.base(&policy.suffix),
        scope: LdapSearchScope::OneLevel,
        filter: parse_filter(policy, &format!("(objectClass={})", kind.class))?,
    };
    let Ok(base_id) = search::base(r, caller, &policy.suffix, &query.base) else {
        return Ok(0);
    };
    let examiner = Examiner::new(&query, caller, Some(Vec::new()));
    let mut n = 0;
    for id in search::candidates(r, &query.filter, &query.scope, base_id)? {
        if examiner
            .examine(r, caller, &policy.schema, id, &|_| false)?
            .is_some()
        {
            n += 1;
        }
    }
    Ok(n)
}

/// The entry `dn` as the caller sees it (404 when it cannot).
pub fn get(
    r: &impl DirectoryRead,
    caller: &Caller,
    policy: &Policy,
    dn: &Dn,
) -> Result<EntryJson, DitError> {
    let query = Query {
        base: dn.clone(),
        scope: LdapSearchScope::Base,
        filter: parse_filter(policy, "(objectClass=*)")?,
    };
    let id = search::base(r, caller, &policy.suffix, dn)?;
    let wants = |name: &str| {
        SHOWN_OPERATIONAL
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    };
    let examiner = Examiner::new(&query, caller, None);
    match examiner.examine(r, caller, &policy.schema, id, &wants)? {
        Some(entry) => Ok(EntryJson::of(&entry, policy)),
        None => Err(DitError::no_such_object(String::new())),
    }
}

/// An entry of `kind` as the caller sees it, checked to be one.
pub fn get_kind(
    r: &impl DirectoryRead,
    caller: &Caller,
    policy: &Policy,
    kind: Kind,
    name: &str,
) -> Result<EntryJson, DitError> {
    let dn = kind.dn(&policy.suffix, name);
    let entry = get(r, caller, policy, &dn)?;
    let is_kind = entry
        .attributes
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("objectClass"))
        .is_some_and(|(_, v)| v.iter().any(|c| c.eq_ignore_ascii_case(kind.class)));
    if !is_kind {
        return Err(DitError::no_such_object(String::new()));
    }
    Ok(entry)
}

/// A member, manager or identity named in a request: a DN as given, or a name looked up
/// as a person, a group, then a service account (a person's DN when none exists).
pub fn reference(r: &impl DirectoryRead, suffix: &Dn, name: &str) -> Result<Dn, DitError> {
    if name.contains('=') {
        return Ok(Dn::parse(name)?);
    }
    for kind in [PEOPLE, GROUPS, SERVICES] {
        let dn = kind.dn(suffix, name);
        if r.id_of(&dn)?.is_some() {
            return Ok(dn);
        }
    }
    Ok(PEOPLE.dn(suffix, name))
}
