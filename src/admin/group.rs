//! `tessera group …`: groups under `ou=groups` (groupOfNames, optionally posixGroup).

use ldap3_proto::proto::{LdapModify, LdapModifyType, LdapPartialAttribute, LdapSearchResultEntry};

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
    let dn = dn(suffix, name).to_string();
    client
        .add(
            &dn,
            vec![("objectClass", classes), ("cn", vec![name.to_string()])],
        )
        .await?;
    Ok(dn)
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
    client
        .modify(&dn(suffix, name).to_string(), vec![change])
        .await
}

pub async fn get(
    client: &mut Client,
    suffix: &Dn,
    name: &str,
) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
    let dn = dn(suffix, name).to_string();
    client.read(&dn, &["*", "entryUUID"]).await
}

pub async fn list(client: &mut Client, suffix: &Dn) -> Result<Vec<String>, AdminError> {
    let base = container(suffix, "groups").to_string();
    client.names(&base, "groupOfNames", "cn").await
}

pub async fn delete(client: &mut Client, suffix: &Dn, name: &str) -> Result<(), AdminError> {
    client.delete(&dn(suffix, name).to_string()).await
}
