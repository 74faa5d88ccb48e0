//! `tessera person …`: people under `ou=people`, their passwords and app passwords.

use ldap3_proto::proto::{LdapFilter, LdapSearchResultEntry, LdapSearchScope, OID_PASSWORD_MODIFY};

use crate::admin::client::Client;
use crate::admin::{AdminError, container};
use crate::directory::dn::{Dn, Rdn};
use crate::ldap::ber;

pub fn dn(suffix: &Dn, id: &str) -> Dn {
    container(suffix, "people").child(Rdn::single("uid", id))
}

pub async fn create(
    client: &mut Client,
    suffix: &Dn,
    id: &str,
    display_name: &str,
    mail: Option<&str>,
    posix: bool,
) -> Result<String, AdminError> {
    let mut classes = vec!["inetOrgPerson".to_string()];
    if posix {
        classes.push("posixAccount".into());
    }
    let sn = display_name
        .split_whitespace()
        .last()
        .unwrap_or(id)
        .to_string();
    let mut attrs = vec![
        ("objectClass", classes),
        ("uid", vec![id.to_string()]),
        ("cn", vec![display_name.to_string()]),
        ("displayName", vec![display_name.to_string()]),
        ("sn", vec![sn]),
    ];
    if let Some(m) = mail {
        attrs.push(("mail", vec![m.to_string()]));
    }
    let dn = dn(suffix, id).to_string();
    client.add(&dn, attrs).await?;
    Ok(dn)
}

pub async fn get(
    client: &mut Client,
    suffix: &Dn,
    id: &str,
) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
    let dn = dn(suffix, id).to_string();
    client.read(&dn, &["*", "memberOf", "entryUUID"]).await
}

pub async fn list(client: &mut Client, suffix: &Dn) -> Result<Vec<String>, AdminError> {
    let base = container(suffix, "people").to_string();
    client.names(&base, "person", "uid").await
}

pub async fn delete(client: &mut Client, suffix: &Dn, id: &str) -> Result<(), AdminError> {
    let dn = dn(suffix, id).to_string();
    delete_with_children(client, &dn).await
}

/// Set a password; None asks the server to generate one, which is returned (once).
pub async fn set_password(
    client: &mut Client,
    suffix: &Dn,
    id: &str,
    new_password: Option<&str>,
) -> Result<Option<String>, AdminError> {
    let mut body = ber::write(0x80, dn(suffix, id).to_string().as_bytes());
    if let Some(p) = new_password {
        body.extend(ber::write(0x82, p.as_bytes()));
    }
    let value = client
        .extended(OID_PASSWORD_MODIFY, Some(ber::write(0x30, &body)))
        .await?;
    Ok(value
        .as_deref()
        .and_then(ber::sequence)
        .and_then(|items| items.into_iter().find(|i| i.tag == 0x80))
        .map(|i| String::from_utf8_lossy(i.content).into_owned()))
}

/// Delete an entry and, first, its token entries (a person's app passwords, a service
/// account's tokens), which the server will not leave orphaned.
pub(crate) async fn delete_with_children(client: &mut Client, dn: &str) -> Result<(), AdminError> {
    let children = client
        .search(
            dn,
            LdapSearchScope::OneLevel,
            LdapFilter::Present("objectClass".into()),
            &["1.1"],
        )
        .await?;
    for child in children {
        client.delete(&child.dn).await?;
    }
    client.delete(dn).await
}
