//! `tessera service-account …` and the token commands (`api-token`, and `person
//! app-password`): service accounts under `ou=services`, tokens minted by the server.

use ldap3_proto::proto::{
    LdapFilter, LdapModify, LdapModifyType, LdapPartialAttribute, LdapResultCode,
    LdapSearchResultEntry, LdapSearchScope,
};

use crate::admin::client::Client;
use crate::admin::person::delete_with_children;
use crate::admin::{
    AdminError, check_duration, check_expiry, container, group, member_dn, time_text,
};
use crate::directory::dn::{Dn, Rdn};
use crate::ldap::ber;
use crate::ldap::oid;

pub fn dn(suffix: &Dn, id: &str) -> Dn {
    container(suffix, "services").child(Rdn::single("uid", id))
}

pub struct NewAccount<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    /// A group name, a person id, or a DN.
    pub managed_by: &'a str,
    pub description: Option<&'a str>,
    pub expires: Option<&'a str>,
    pub groups: &'a [String],
}

pub async fn create(
    client: &mut Client,
    suffix: &Dn,
    new: &NewAccount<'_>,
) -> Result<String, AdminError> {
    let manager = manager_dn(client, suffix, new.managed_by).await?;
    let mut attrs = vec![
        ("objectClass", vec!["tesseraServiceAccount".to_string()]),
        ("uid", vec![new.id.to_string()]),
        ("cn", vec![new.id.to_string()]),
        ("displayName", vec![new.display_name.to_string()]),
        ("entryManagedBy", vec![manager]),
    ];
    if let Some(d) = new.description {
        attrs.push(("description", vec![d.to_string()]));
    }
    if let Some(e) = new.expires {
        attrs.push(("accountExpires", vec![to_generalized(e)?]));
    }
    let account = dn(suffix, new.id);
    let dn = account.to_string();
    client.add(&dn, attrs).await.map_err(|e| {
        e.explain(LdapResultCode::EntryAlreadyExists, || {
            format!("a service account '{}' exists already ({account})", new.id)
        })
    })?;
    for g in new.groups {
        group::members(client, suffix, g, std::slice::from_ref(&dn), true).await?;
    }
    Ok(dn)
}

/// `entryManagedBy`: a DN as given, else a group of that name if one exists, else a person.
async fn manager_dn(client: &mut Client, suffix: &Dn, name: &str) -> Result<String, AdminError> {
    if name.contains('=') {
        return Ok(name.to_string());
    }
    let group = group::dn(suffix, name).to_string();
    let found = client.read(&group, &["1.1"]).await;
    match found {
        Ok(entries) if !entries.is_empty() => Ok(group),
        _ => Ok(member_dn(suffix, name)),
    }
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
        .map_err(|e| e.missing("service account", id, &dn))
}

pub async fn list(client: &mut Client, suffix: &Dn) -> Result<Vec<String>, AdminError> {
    let base = container(suffix, "services").to_string();
    client.names(&base, "tesseraServiceAccount", "uid").await
}

pub async fn delete(client: &mut Client, suffix: &Dn, id: &str) -> Result<(), AdminError> {
    let dn = dn(suffix, id);
    delete_with_children(client, &dn.to_string())
        .await
        .map_err(|e| e.missing("service account", id, &dn))
}

/// Replace the given attributes (display name, description, manager, expiry).
pub async fn update(
    client: &mut Client,
    suffix: &Dn,
    id: &str,
    changes: Vec<(&str, String)>,
) -> Result<(), AdminError> {
    let mut mods = Vec::new();
    for (attr, value) in changes {
        let value = match attr {
            "entryManagedBy" => manager_dn(client, suffix, &value).await?,
            "accountExpires" => to_generalized(&value)?,
            _ => value,
        };
        mods.push(LdapModify {
            operation: LdapModifyType::Replace,
            modification: LdapPartialAttribute {
                atype: attr.to_string(),
                vals: vec![value.into_bytes()],
            },
        });
    }
    if mods.is_empty() {
        return Err(AdminError::Usage("nothing to update".into()));
    }
    let dn = dn(suffix, id);
    client
        .modify(&dn.to_string(), mods)
        .await
        .map_err(|e| e.missing("service account", id, &dn))
}

/// A freshly minted token, shown once.
pub struct Minted {
    pub id: String,
    pub token: String,
    pub expires: Option<String>,
}

pub struct TokenRequest<'a> {
    pub account: &'a Dn,
    pub label: &'a str,
    pub expires: Option<&'a str>,
    pub read_write: bool,
    pub app_password: bool,
    /// An http-api token (for the HTTP API's Bearer header) rather than an LDAP one.
    pub http: bool,
    pub extend_on_use: Option<&'a str>,
}

pub async fn generate(client: &mut Client, req: &TokenRequest<'_>) -> Result<Minted, AdminError> {
    if let Some(e) = req.expires {
        check_expiry("expiry", e, true)?;
    }
    if let Some(x) = req.extend_on_use {
        check_duration("--extend-on-use", x)?;
    }
    let mut body = ber::write(0x80, req.account.to_string().as_bytes());
    body.extend(ber::write(0x81, req.label.as_bytes()));
    if req.read_write {
        body.extend(ber::write(0x82, b"read-write"));
    }
    if let Some(e) = req.expires {
        body.extend(ber::write(0x83, e.as_bytes()));
    }
    if req.app_password {
        body.extend(ber::write(0x84, b"app-password"));
    } else if req.http {
        body.extend(ber::write(0x84, b"http-api"));
    }
    if let Some(x) = req.extend_on_use {
        body.extend(ber::write(0x85, x.as_bytes()));
    }
    let value = client
        .extended(oid::TOKEN_GENERATE, Some(ber::write(0x30, &body)))
        .await
        .map_err(|e| no_account(e, req.account))?;
    minted(value)
}

pub async fn rotate(
    client: &mut Client,
    account: &Dn,
    token_id: &str,
    overlap: Option<&str>,
) -> Result<Minted, AdminError> {
    if let Some(o) = overlap {
        check_duration("--overlap", o)?;
    }
    let mut body = ber::write(0x80, account.to_string().as_bytes());
    body.extend(ber::write(0x81, token_id.as_bytes()));
    if let Some(o) = overlap {
        body.extend(ber::write(0x82, o.as_bytes()));
    }
    let value = client
        .extended(oid::TOKEN_ROTATE, Some(ber::write(0x30, &body)))
        .await
        .map_err(|e| {
            e.explain(LdapResultCode::NoSuchObject, || {
                format!("no token '{token_id}' on {account}")
            })
        })?;
    minted(value)
}

/// One token as `status` lists it; times as RFC 3339.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    pub id: String,
    pub label: String,
    pub scope: String,
    pub intent: String,
    pub created: String,
    /// "never" for a token without expiry.
    pub expires: String,
    /// "-" when never used.
    pub last_used: String,
    /// What is wrong with it, if anything: "expired", "exposed <time>: rotate it".
    pub marks: Vec<String>,
}

/// The account's tokens, each with its state as of `now`.
pub async fn status(client: &mut Client, account: &Dn) -> Result<Vec<TokenStatus>, AdminError> {
    use crate::directory::time::parse_generalized;
    let now = time::OffsetDateTime::now_utc();
    let filter = LdapFilter::Equality("objectClass".into(), "tesseraApiToken".into());
    let attrs = [
        "tokenId",
        "tokenLabel",
        "tokenScope",
        "tokenIntent",
        "createTimestamp",
        "tokenExpires",
        "tokenLastUsed",
        "tokenExposed",
    ];
    let found = client
        .search(
            &account.to_string(),
            LdapSearchScope::OneLevel,
            filter,
            &attrs,
        )
        .await
        .map_err(|e| no_account(e, account))?;
    let account_expired = client
        .read(&account.to_string(), &["accountExpires"])
        .await
        .ok()
        .and_then(|entries| value_of(entries.first()?, "accountExpires"))
        .and_then(|v| parse_generalized(&v))
        .is_some_and(|t| t <= now);
    Ok(found
        .iter()
        .map(|e| {
            let get = |a: &str| value_of(e, a);
            let expires = get("tokenExpires");
            let mut marks = Vec::new();
            if expires
                .as_deref()
                .and_then(parse_generalized)
                .is_some_and(|t| t <= now)
            {
                marks.push("expired".to_string());
            }
            if let Some(exposed) = get("tokenExposed") {
                marks.push(format!("exposed {}: rotate it", time_text(&exposed)));
            }
            if account_expired {
                marks.push("account expired".to_string());
            }
            TokenStatus {
                id: get("tokenId").unwrap_or_default(),
                label: get("tokenLabel").unwrap_or_default(),
                scope: get("tokenScope").unwrap_or_else(|| "-".into()),
                intent: get("tokenIntent").unwrap_or_else(|| "-".into()),
                created: get("createTimestamp").map_or("-".into(), |t| time_text(&t)),
                expires: expires.map_or("never".into(), |t| time_text(&t)),
                last_used: get("tokenLastUsed").map_or("-".into(), |t| time_text(&t)),
                marks,
            }
        })
        .collect())
}

fn value_of(entry: &LdapSearchResultEntry, attr: &str) -> Option<String> {
    entry
        .attributes
        .iter()
        .find(|x| x.atype.eq_ignore_ascii_case(attr))
        .and_then(|x| x.vals.first())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn no_account(e: AdminError, account: &Dn) -> AdminError {
    e.explain(LdapResultCode::NoSuchObject, || {
        format!("no such account: {account}")
    })
}

pub async fn destroy(client: &mut Client, account: &Dn, token_id: &str) -> Result<(), AdminError> {
    let dn = account.child(Rdn::single("tokenId", token_id));
    client.delete(&dn.to_string()).await.map_err(|e| {
        e.explain(LdapResultCode::NoSuchObject, || {
            format!("no token '{token_id}' on {account}")
        })
    })
}

fn minted(value: Option<Vec<u8>>) -> Result<Minted, AdminError> {
    let bad = || AdminError::Protocol("malformed token response".into());
    let items = value.as_deref().and_then(ber::sequence).ok_or_else(bad)?;
    let field = |tag: u8| {
        items
            .iter()
            .find(|i| i.tag == tag)
            .map(|i| String::from_utf8_lossy(i.content).into_owned())
    };
    Ok(Minted {
        id: field(0x80).ok_or_else(bad)?,
        token: field(0x81).ok_or_else(bad)?,
        expires: field(0x82),
    })
}

/// Account expiry as generalizedTime, from the same forms token expiry accepts.
fn to_generalized(text: &str) -> Result<String, AdminError> {
    use crate::directory::time::{Expiry, generalized, parse_expiry};
    check_expiry("--expires", text, false)?;
    match parse_expiry(text, time::OffsetDateTime::now_utc()) {
        Ok(Expiry::At(t)) => Ok(generalized(t)),
        Ok(Expiry::Never) => Err(AdminError::Usage(
            "an account expiry cannot be 'never'; leave it unset".into(),
        )),
        Err(e) => Err(AdminError::Usage(e)),
    }
}
