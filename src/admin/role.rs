//! `tessera role …` and `tessera search --as`: roles under `ou=roles`, their holders and
//! rights, and a look at the directory through another identity's eyes (proxied
//! authorization, so the server applies exactly that identity's rights).

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapModify, LdapModifyType, LdapPartialAttribute, LdapResultCode, LdapSearchResultEntry,
    LdapSearchScope,
};

use crate::admin::client::Client;
use crate::admin::{AdminError, container, group, person, service_account};
use crate::directory::dn::{Dn, Rdn};
use crate::ldap::oid;

pub fn dn(suffix: &Dn, name: &str) -> Dn {
    container(suffix, "roles").child(Rdn::single("cn", name))
}

/// What `role create` defines.
#[derive(Debug, Default)]
pub struct Definition {
    pub description: Option<String>,
    /// DNs, or the container names `people`, `groups`, `services`, `roles`.
    pub bases: Vec<String>,
    pub level: Option<String>,
    pub filter: Option<String>,
    pub rights: Vec<String>,
    pub read_allow: Vec<String>,
    pub read_deny: Vec<String>,
    pub write_allow: Vec<String>,
    pub write_deny: Vec<String>,
}

/// Create a role; the server refuses a definition it could not enforce (19).
pub async fn create(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
    def: &Definition,
) -> Result<String, AdminError> {
    let mut attrs = vec![
        ("objectClass", vec!["tesseraRole".to_string()]),
        ("cn", vec![name.to_string()]),
    ];
    let bases = def.bases.iter().map(|b| base_dn(suffix, b)).collect();
    let lists = [
        ("roleScopeBase", bases),
        ("roleRight", def.rights.clone()),
        ("roleReadAllow", def.read_allow.clone()),
        ("roleReadDeny", def.read_deny.clone()),
        ("roleWriteAllow", def.write_allow.clone()),
        ("roleWriteDeny", def.write_deny.clone()),
    ];
    attrs.extend(lists.into_iter().filter(|(_, v)| !v.is_empty()));
    let single = [
        ("description", &def.description),
        ("roleScopeLevel", &def.level),
        ("roleScopeFilter", &def.filter),
    ];
    for (attr, value) in single {
        if let Some(v) = value {
            attrs.push((attr, vec![v.clone()]));
        }
    }
    let dn = dn(suffix, name).to_string();
    client.add(&dn, attrs).await?;
    Ok(dn)
}

/// `people` → `ou=people,<suffix>`; anything with `=` is a DN already.
fn base_dn(suffix: &Dn, base: &str) -> String {
    if base.contains('=') {
        base.to_string()
    } else {
        container(suffix, base).to_string()
    }
}

pub async fn get(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
    let dn = dn(suffix, name);
    client
        .read(&dn.to_string(), &["*"])
        .await
        .map_err(|e| e.missing("role", name, &dn))
}

pub async fn list(client: &mut Client, suffix: &Dn) -> Result<Vec<String>, AdminError> {
    let base = container(suffix, "roles").to_string();
    client.names(&base, "tesseraRole", "cn").await
}

pub async fn delete(client: &mut Client, suffix: &Dn, name: &str) -> Result<(), AdminError> {
    let dn = dn(suffix, name);
    client
        .delete(&dn.to_string())
        .await
        .map_err(|e| e.missing("role", name, &dn))
}

/// Add or remove holders: DNs, or names resolved as a person, a service account or a group.
pub async fn members(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
    members: &[String],
    add: bool,
) -> Result<(), AdminError> {
    let mut dns = Vec::with_capacity(members.len());
    for m in members {
        dns.push(holder_dn(client, suffix, m).await?.into_bytes());
    }
    change(client, suffix, name, "member", dns, add).await
}

/// Grant or revoke rights.
pub async fn rights(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
    rights: &[String],
    grant: bool,
) -> Result<(), AdminError> {
    let values = rights.iter().map(|r| r.clone().into_bytes()).collect();
    change(client, suffix, name, "roleRight", values, grant).await
}

async fn change(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
    attr: &str,
    values: Vec<Vec<u8>>,
    add: bool,
) -> Result<(), AdminError> {
    let change = LdapModify {
        operation: if add {
            LdapModifyType::Add
        } else {
            LdapModifyType::Delete
        },
        modification: LdapPartialAttribute {
            atype: attr.into(),
            vals: values,
        },
    };
    let role = dn(suffix, name);
    client
        .modify(&role.to_string(), vec![change])
        .await
        .map_err(|e| e.missing("role", name, &role))
}

/// A holder named on the command line: a DN as given, else the person, service account or
/// group of that name, in that order.
async fn holder_dn(client: &mut Client, suffix: &Dn, name: &str) -> Result<String, AdminError> {
    if name.contains('=') {
        return Ok(name.to_string());
    }
    let candidates = [
        person::dn(suffix, name),
        service_account::dn(suffix, name),
        group::dn(suffix, name),
    ];
    for dn in candidates {
        let dn = dn.to_string();
        if matches!(client.read(&dn, &["1.1"]).await, Ok(found) if !found.is_empty()) {
            return Ok(dn);
        }
    }
    Err(AdminError::Usage(format!(
        "no person, service account or group is called '{name}'"
    )))
}

/// Search as `identity` (a DN, or a person's or service account's name): the server runs
/// the search with exactly that identity's rights.
pub async fn search_as(
    client: &mut Client,
    suffix: &Dn,
    identity: &str,
    base: &str,
    scope: LdapSearchScope,
    filter: &str,
    attrs: &[&str],
) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
    let filter = crate::directory::filter_string::parse(filter)
        .map_err(|e| AdminError::Usage(format!("bad filter: {e}")))?;
    let authz = if identity.contains('=') {
        format!("dn:{identity}")
    } else {
        format!("u:{identity}")
    };
    let control = LdapControl::Unknown {
        oid: oid::PROXIED_AUTHZ.into(),
        criticality: true,
        value: Some(authz.into_bytes()),
    };
    let refused = match client
        .search_with(base, scope, filter, attrs, vec![control])
        .await
    {
        Err(e) if e.code() == Some(LdapResultCode::AuthorizationError) => e,
        other => return other,
    };
    // 123 says only "denied": tell a name that is nobody from a right that is missing.
    let exists = match identity.contains('=') {
        true => client
            .read(identity, &["1.1"])
            .await
            .is_ok_and(|f| !f.is_empty()),
        false => {
            let mut found = false;
            for dn in [
                person::dn(suffix, identity),
                service_account::dn(suffix, identity),
            ] {
                found |= client
                    .read(&dn.to_string(), &["1.1"])
                    .await
                    .is_ok_and(|f| !f.is_empty());
            }
            found
        }
    };
    Err(refused.explain(LdapResultCode::AuthorizationError, || {
        if exists {
            format!(
                "you may not search as '{identity}': that needs a role with the impersonate right over it \
                 (directory administrators have it)"
            )
        } else {
            format!("no such identity '{identity}': no person or service account has that name (or DN)")
        }
    }))
}
