//! `tessera person …`: people under `ou=people`, their passwords and app passwords.

use ldap3_proto::proto::{
    LdapFilter, LdapModify, LdapModifyType, LdapPartialAttribute, LdapResultCode,
    LdapSearchResultEntry, LdapSearchScope, OID_PASSWORD_MODIFY,
};

use crate::admin::client::Client;
use crate::admin::{AdminError, check_person_id, container};
use crate::directory::dn::{Dn, Rdn};
use crate::ldap::ber;

pub fn dn(suffix: &Dn, id: &str) -> Dn {
    container(suffix, "people").child(Rdn::single("uid", id))
}

/// What `person create` makes.
#[derive(Debug, Default)]
pub struct NewPerson<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    pub mail: Option<&'a str>,
    pub posix: bool,
    pub posix_attrs: Posix,
}

/// POSIX attributes given rather than allocated.
#[derive(Debug, Default, Clone)]
pub struct Posix {
    pub uid_number: Option<u32>,
    pub gid_number: Option<u32>,
    pub home_directory: Option<String>,
    pub login_shell: Option<String>,
}

impl Posix {
    fn any(&self) -> bool {
        self.uid_number.is_some()
            || self.gid_number.is_some()
            || self.home_directory.is_some()
            || self.login_shell.is_some()
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(n) = self.uid_number {
            out.push(("uidNumber", n.to_string()));
        }
        if let Some(n) = self.gid_number {
            out.push(("gidNumber", n.to_string()));
        }
        if let Some(h) = &self.home_directory {
            out.push(("homeDirectory", h.clone()));
        }
        if let Some(s) = &self.login_shell {
            out.push(("loginShell", s.clone()));
        }
        out
    }
}

/// Create a person; the id must be a login name ([`check_person_id`]). Given POSIX
/// numbers imply posixAccount; the server allocates the rest.
pub async fn create(
    client: &mut Client,
    suffix: &Dn,
    new: &NewPerson<'_>,
) -> Result<String, AdminError> {
    check_person_id(new.id)?;
    let mut classes = vec!["inetOrgPerson".to_string()];
    if new.posix || new.posix_attrs.any() {
        classes.push("posixAccount".into());
    }
    let mut attrs = vec![
        ("objectClass", classes),
        ("uid", vec![new.id.to_string()]),
        ("cn", vec![new.display_name.to_string()]),
        ("displayName", vec![new.display_name.to_string()]),
        ("sn", vec![surname(new.display_name, new.id)]),
    ];
    if let Some(m) = new.mail {
        attrs.push(("mail", vec![m.to_string()]));
    }
    for (attr, value) in new.posix_attrs.attrs() {
        attrs.push((attr, vec![value]));
    }
    let dn = dn(suffix, new.id);
    let text = dn.to_string();
    client.add(&text, attrs).await.map_err(|e| {
        e.explain(LdapResultCode::EntryAlreadyExists, || {
            format!("a person '{}' exists already ({dn})", new.id)
        })
    })?;
    Ok(text)
}

/// What `person update` changes.
#[derive(Debug, Default)]
pub struct Changes {
    pub display_name: Option<String>,
    /// `Some("")` removes the mail address.
    pub mail: Option<String>,
    /// Add posixAccount if the person is not one yet.
    pub posix: bool,
    pub posix_attrs: Posix,
}

pub async fn update(
    client: &mut Client,
    suffix: &Dn,
    id: &str,
    changes: &Changes,
) -> Result<(), AdminError> {
    let dn = dn(suffix, id);
    let replace = |attr: &str, vals: Vec<String>| LdapModify {
        operation: LdapModifyType::Replace,
        modification: LdapPartialAttribute {
            atype: attr.to_string(),
            vals: vals.into_iter().map(String::into_bytes).collect(),
        },
    };
    let mut mods = Vec::new();
    if changes.posix || changes.posix_attrs.any() {
        let found = client
            .read(&dn.to_string(), &["objectClass"])
            .await
            .map_err(|e| e.missing("person", id, &dn))?;
        let is_posix = found.iter().flat_map(|e| &e.attributes).any(|a| {
            a.atype.eq_ignore_ascii_case("objectClass")
                && a.vals
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(b"posixAccount"))
        });
        if !is_posix {
            mods.push(LdapModify {
                operation: LdapModifyType::Add,
                modification: LdapPartialAttribute {
                    atype: "objectClass".into(),
                    vals: vec![b"posixAccount".to_vec()],
                },
            });
        }
    }
    if let Some(name) = &changes.display_name {
        for attr in ["cn", "displayName"] {
            mods.push(replace(attr, vec![name.clone()]));
        }
        mods.push(replace("sn", vec![surname(name, id)]));
    }
    if let Some(mail) = &changes.mail {
        let vals = if mail.is_empty() {
            Vec::new()
        } else {
            vec![mail.clone()]
        };
        mods.push(replace("mail", vals));
    }
    for (attr, value) in changes.posix_attrs.attrs() {
        mods.push(replace(attr, vec![value]));
    }
    if mods.is_empty() {
        return Err(AdminError::Usage(
            "nothing to update: give --display-name, --mail, --posix, --uid-number, --gid-number, --home-directory or --login-shell".into(),
        ));
    }
    client
        .modify(&dn.to_string(), mods)
        .await
        .map_err(|e| e.missing("person", id, &dn))
}

/// sn: the display name's last word.
fn surname(display_name: &str, id: &str) -> String {
    display_name
        .split_whitespace()
        .last()
        .unwrap_or(id)
        .to_string()
}

pub async fn get(
    client: &mut Client,
    suffix: &Dn,
    id: &str,
) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
    let dn = dn(suffix, id);
    client
        .read(&dn.to_string(), &["*", "memberOf", "entryUUID"])
        .await
        .map_err(|e| e.missing("person", id, &dn))
}

pub async fn list(client: &mut Client, suffix: &Dn) -> Result<Vec<String>, AdminError> {
    let base = container(suffix, "people").to_string();
    client.names(&base, "person", "uid").await
}

pub async fn delete(client: &mut Client, suffix: &Dn, id: &str) -> Result<(), AdminError> {
    let dn = dn(suffix, id);
    delete_with_children(client, &dn.to_string())
        .await
        .map_err(|e| e.missing("person", id, &dn))
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
        .await
        .map_err(|e| e.missing("person", id, &dn(suffix, id)))?;
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
