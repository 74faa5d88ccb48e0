//! `tessera group …`: groups under `ou=groups` (groupOfNames, optionally posixGroup).

use ldap3_proto::proto::{
    LdapModify, LdapModifyType, LdapPartialAttribute, LdapResultCode, LdapSearchResultEntry,
};

use crate::admin::client::Client;
use crate::admin::{AdminError, container, member_dn};
use crate::directory::dn::{Dn, Rdn};

pub fn dn(suffix: &Dn, name: &str) -> Dn {
    container(suffix, "groups").child(Rdn::single("cn", name))
}

pub async fn create(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
    posix: bool,
) -> Result<String, AdminError> {
    let mut classes = vec!["groupOfNames".to_string()];
    if posix {
        classes.push("posixGroup".into());
    }
    let dn = dn(suffix, name);
    client
        .add(
            &dn.to_string(),
            vec![("objectClass", classes), ("cn", vec![name.to_string()])],
        )
        .await
        .map_err(|e| {
            e.explain(LdapResultCode::EntryAlreadyExists, || {
                format!("a group '{name}' exists already ({dn})")
            })
        })?;
    Ok(dn.to_string())
}

pub async fn members(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
    members: &[String],
    add: bool,
) -> Result<(), AdminError> {
    let op = if add {
        LdapModifyType::Add
    } else {
        LdapModifyType::Delete
    };
    let change = LdapModify {
        operation: op,
        modification: LdapPartialAttribute {
            atype: "member".into(),
            vals: members
                .iter()
                .map(|m| member_dn(suffix, m).into_bytes())
                .collect(),
        },
    };
    let group = dn(suffix, name);
    client
        .modify(&group.to_string(), vec![change])
        .await
        .map_err(|e| e.missing("group", name, &group))
}

pub async fn get(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
    let dn = dn(suffix, name);
    client
        .read(&dn.to_string(), &["*", "entryUUID"])
        .await
        .map_err(|e| e.missing("group", name, &dn))
}

pub async fn list(client: &mut Client, suffix: &Dn) -> Result<Vec<String>, AdminError> {
    let base = container(suffix, "groups").to_string();
    client.names(&base, "groupOfNames", "cn").await
}

pub async fn delete(client: &mut Client, suffix: &Dn, name: &str) -> Result<(), AdminError> {
    let dn = dn(suffix, name);
    client
        .delete(&dn.to_string())
        .await
        .map_err(|e| e.missing("group", name, &dn))
}
