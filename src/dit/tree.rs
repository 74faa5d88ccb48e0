//! The entries every directory starts with: the suffix, `ou=people`, `ou=groups`,
//! `ou=services`, `ou=roles` and the built-in roles. Created when missing, so a first
//! start and every later start converge on the same tree.

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::schema::Schema;
use crate::directory::time::generalized;
use crate::dit::entry;
use crate::dit::names::{CONTAINERS, ROLE_CLASS, container, role};
use crate::store::{DirectoryRead, Store, StoreError, Writer};

/// A built-in role: name, description, the containers it reaches (subtrees), rights, and
/// the attributes it reads (none listed: all).
struct RoleDef {
    cn: &'static str,
    description: &'static str,
    bases: &'static [&'static str],
    rights: &'static [&'static str],
    read_allow: &'static [&'static str],
}

const WRITE_ALL: &[&str] = &[
    "read",
    "compare",
    "write",
    "add",
    "delete",
    "rename",
    "manage-tokens",
];

/// What every directory starts with; admins may change them like any other role.
const BUILT_IN_ROLES: &[RoleDef] = &[
    RoleDef {
        cn: "directory-admins",
        description: "Directory administrators: every right on every entry",
        bases: &[],
        rights: &[],
        read_allow: &[],
    },
    RoleDef {
        cn: "people-admins",
        description: "Manage people and groups, and reset their passwords",
        bases: &["people", "groups"],
        rights: &[
            "read",
            "compare",
            "write",
            "add",
            "delete",
            "rename",
            "manage-tokens",
            "reset-password",
        ],
        read_allow: &[],
    },
    RoleDef {
        cn: "service-account-admins",
        description: "Manage service accounts and their tokens",
        bases: &["services"],
        rights: WRITE_ALL,
        read_allow: &[],
    },
    RoleDef {
        cn: "directory-readers",
        description: "Read people and groups: what SSSD, nslcd and NAS bind accounts need",
        bases: &["people", "groups"],
        rights: &["read", "compare"],
        read_allow: &[
            "*",
            "memberOf",
            "entryUUID",
            "entryDN",
            "createTimestamp",
            "modifyTimestamp",
            "hasSubordinates",
            "structuralObjectClass",
            "subschemaSubentry",
        ],
    },
    RoleDef {
        cn: "directory-sync",
        description: "Read people and groups with every operational attribute, for sync tools",
        bases: &["people", "groups"],
        rights: &["read", "compare"],
        read_allow: &["*", "+"],
    },
];

pub fn built_in_role_dns(suffix: &Dn) -> Vec<Dn> {
    BUILT_IN_ROLES.iter().map(|d| role(suffix, d.cn)).collect()
}

fn built_in(suffix: &Dn, def: &RoleDef) -> Entry {
    let mut e = Entry::new(role(suffix, def.cn));
    e.set(
        "objectClass",
        vec![b"top".to_vec(), ROLE_CLASS.as_bytes().to_vec()],
    );
    e.set_str("cn", def.cn);
    e.set_str("description", def.description);
    let bytes = |values: &[&str]| values.iter().map(|v| v.as_bytes().to_vec()).collect();
    let bases: Vec<Vec<u8>> = def
        .bases
        .iter()
        .map(|ou| container(suffix, ou).to_string().into_bytes())
        .collect();
    if !bases.is_empty() {
        e.set("roleScopeBase", bases);
        e.set_str("roleScopeLevel", "sub");
    }
    if !def.rights.is_empty() {
        e.set("roleRight", bytes(def.rights));
    }
    if !def.read_allow.is_empty() {
        e.set("roleReadAllow", bytes(def.read_allow));
    }
    e
}

/// Create what is missing of the tree every directory starts with, in one write of its
/// own; the number of entries created.
pub fn bootstrap(store: &Store, schema: &Schema, suffix: &Dn) -> Result<usize, StoreError> {
    let uuids: Vec<String> = (0..wanted_count()).map(|_| entry::new_uuid()).collect();
    let now = time::OffsetDateTime::now_utc();
    store.write_blocking(|w| create_missing(w, schema, suffix, now, &uuids))
}

/// How many entries the starting tree has: the `entryUUID`s [`create_missing`] takes.
pub fn wanted_count() -> usize {
    1 + CONTAINERS.len() + BUILT_IN_ROLES.len()
}

/// Create the entries of the starting tree that are missing, stamped at `now`, the n-th
/// with the n-th of `uuids` (decided beforehand, so every node of a cluster stamps the
/// same); the number created.
pub fn create_missing(
    w: &mut Writer<'_>,
    schema: &Schema,
    suffix: &Dn,
    now: time::OffsetDateTime,
    uuids: &[String],
) -> Result<usize, StoreError> {
    let mut wanted = vec![suffix_entry(suffix)];
    for ou in CONTAINERS {
        let mut e = Entry::new(container(suffix, ou));
        e.set(
            "objectClass",
            vec![b"top".to_vec(), b"organizationalUnit".to_vec()],
        );
        e.set_str("ou", ou);
        wanted.push(e);
    }
    for def in BUILT_IN_ROLES {
        wanted.push(built_in(suffix, def));
    }
    if uuids.len() < wanted.len() {
        return Err(StoreError::Refused(format!(
            "the starting tree needs {} entry UUIDs, {} given",
            wanted.len(),
            uuids.len()
        )));
    }
    let mut created = 0;
    let now = generalized(now);
    for (mut new, uuid) in wanted.into_iter().zip(uuids) {
        if w.id_of(&new.dn)?.is_some() {
            continue;
        }
        entry::stamp_new(schema, &mut new, "", &now, uuid);
        if &new.dn == suffix {
            w.add_suffix(&new)?;
        } else {
            w.add(&new)?;
        }
        created += 1;
    }
    Ok(created)
}

/// Is anything of the starting tree missing?
pub fn incomplete(r: &impl DirectoryRead, suffix: &Dn) -> Result<bool, StoreError> {
    let mut wanted = vec![suffix.clone()];
    wanted.extend(CONTAINERS.iter().map(|ou| container(suffix, ou)));
    wanted.extend(built_in_role_dns(suffix));
    for dn in wanted {
        if r.id_of(&dn)?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn suffix_entry(suffix: &Dn) -> Entry {
    let mut e = Entry::new(suffix.clone());
    let Some(rdn) = suffix.rdn().and_then(|r| r.avas.first()) else {
        return e;
    };
    let value = rdn.value.clone();
    match rdn.attr.to_ascii_lowercase().as_str() {
        "dc" => {
            e.set(
                "objectClass",
                vec![
                    b"top".to_vec(),
                    b"dcObject".to_vec(),
                    b"organization".to_vec(),
                ],
            );
            e.set_str("dc", &value);
            e.set_str("o", &value);
        }
        "o" => {
            e.set(
                "objectClass",
                vec![b"top".to_vec(), b"organization".to_vec()],
            );
            e.set_str("o", &value);
        }
        "ou" => {
            e.set(
                "objectClass",
                vec![b"top".to_vec(), b"organizationalUnit".to_vec()],
            );
            e.set_str("ou", &value);
        }
        other => {
            e.set(
                "objectClass",
                vec![b"top".to_vec(), b"extensibleObject".to_vec()],
            );
            e.set_str(other, &value);
        }
    }
    e
}
