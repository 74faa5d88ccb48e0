//! For the rules' unit tests: a directory in memory with the tree every directory starts
//! with, a policy at a fixed time, and a few people, groups, accounts and grants, written
//! as an administrator through the same writes every front end uses.

use std::sync::Arc;

use crate::config::Config;
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::schema::Schema;
use crate::directory::time::parse_generalized;
use crate::dit::caller::{self, Caller, Policy, Principal, RightsCache};
use crate::dit::error::DitError;
use crate::dit::write::{self, Change, ChangeKind};
use crate::dit::{names, tree};
use crate::store::Store;

pub const SUFFIX: &str = "dc=example,dc=com";

/// A store in memory, bootstrapped, and a policy for it at 2026-06-01 12:00 UTC.
pub fn directory() -> (Store, Policy) {
    let config =
        Config::parse("[argon2]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n").unwrap();
    let schema = Schema::shipped().unwrap();
    let store = Store::in_memory(&schema, &config.index).unwrap();
    tree::bootstrap(&store, &schema, &config.suffix).unwrap();
    let now = parse_generalized("20260601120000Z").unwrap();
    let policy = Policy::new(
        Arc::new(config),
        Arc::new(schema),
        RightsCache::default(),
        now,
    );
    (store, policy)
}

pub fn dn(text: &str) -> Dn {
    Dn::parse(text).unwrap()
}

pub fn person(uid: &str) -> Dn {
    names::people(&dn(SUFFIX)).child(crate::directory::dn::Rdn::single("uid", uid))
}

pub fn group(cn: &str) -> Dn {
    names::groups(&dn(SUFFIX)).child(crate::directory::dn::Rdn::single("cn", cn))
}

pub fn service(uid: &str) -> Dn {
    names::services(&dn(SUFFIX)).child(crate::directory::dn::Rdn::single("uid", uid))
}

pub fn role(cn: &str) -> Dn {
    names::role(&dn(SUFFIX), cn)
}

/// Who `principal` is in a read of `store`.
pub fn caller_of(
    store: &Store,
    policy: &Policy,
    principal: &Principal,
) -> Result<Caller, DitError> {
    store.read_blocking(|r| caller::caller(r, principal, policy))
}

/// The local administrator.
pub fn admin() -> Principal {
    Principal::Local {
        dn: dn("gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"),
        admin: true,
    }
}

/// Add an entry as `principal`, through `write::add`.
pub fn add_as(
    store: &Store,
    policy: &Policy,
    principal: &Principal,
    at: &Dn,
    attrs: &[(&str, &[&str])],
) -> Result<Entry, DitError> {
    let attrs: Vec<(String, Vec<Vec<u8>>)> = attrs
        .iter()
        .map(|(n, vs)| {
            (
                n.to_string(),
                vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
            )
        })
        .collect();
    let new = write::new_entry(&policy.schema, &policy.suffix, at.clone(), attrs)?;
    store.write_blocking(|w| {
        let caller = caller::caller(w, principal, policy)?;
        write::add(w, policy, &caller, new, &crate::dit::entry::new_uuid())
    })
}

/// Modify as `principal`, through `write::modify`.
pub fn modify_as(
    store: &Store,
    policy: &Policy,
    principal: &Principal,
    at: &Dn,
    kind: ChangeKind,
    attr: &str,
    values: &[&str],
) -> Result<Entry, DitError> {
    let values = values.iter().map(|v| v.as_bytes().to_vec()).collect();
    let change = Change::from_request(&policy.schema, &policy.suffix, kind, attr, values)?;
    store.write_blocking(|w| {
        let caller = caller::caller(w, principal, policy)?;
        write::modify(w, policy, &caller, at, &[change])
    })
}

/// A person `uid` (no password), added by the administrator.
pub fn add_person(store: &Store, policy: &Policy, uid: &str) -> Dn {
    let at = person(uid);
    add_as(
        store,
        policy,
        &admin(),
        &at,
        &[
            ("objectClass", &["inetOrgPerson"]),
            ("cn", &[uid]),
            ("sn", &[uid]),
        ],
    )
    .unwrap();
    at
}

/// A group `cn` with `members`, added by the administrator.
pub fn add_group(store: &Store, policy: &Policy, cn: &str, members: &[&Dn]) -> Dn {
    let at = group(cn);
    let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    add_as(
        store,
        policy,
        &admin(),
        &at,
        &[
            ("objectClass", &["groupOfNames"]),
            ("cn", &[cn]),
            ("member", &members),
        ],
    )
    .unwrap();
    at
}

/// A service account `uid`, managed by `manager` if given, added by the administrator.
pub fn add_service(store: &Store, policy: &Policy, uid: &str, manager: Option<&Dn>) -> Dn {
    let at = service(uid);
    let manager = manager.map(ToString::to_string);
    let uids = [uid];
    let mut attrs: Vec<(&str, &[&str])> =
        vec![("objectClass", &["tesseraServiceAccount"]), ("uid", &uids)];
    let managers: Vec<&str> = manager.iter().map(String::as_str).collect();
    if !managers.is_empty() {
        attrs.push(("entryManagedBy", &managers));
    }
    add_as(store, policy, &admin(), &at, &attrs).unwrap();
    at
}

/// Make `member` a holder of the role `cn`.
pub fn grant(store: &Store, policy: &Policy, cn: &str, member: &Dn) {
    let value = member.to_string();
    modify_as(
        store,
        policy,
        &admin(),
        &role(cn),
        ChangeKind::Add,
        "member",
        &[&value],
    )
    .unwrap();
}
