//! The token operations every front end shares: who may manage an account's API tokens
//! and app passwords, generating one (its secret shown once), and rotating one with an
//! overlap. Checking a presented token is `dit::credentials`.

use std::time::Duration;

use ldap3_proto::proto::LdapResultCode;

use crate::audit::{self, Event, Kind};
use crate::directory::access::Rights;
use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::directory::time::{Expiry, generalized, parse_expiry, parse_generalized};
use crate::dit::caller::{self, Caller, Policy};
use crate::dit::credentials::{Intent, max_lifetime, seconds, to_time};
use crate::dit::error::DitError;
use crate::dit::names::{HASH_ATTR, SERVICE_CLASS, TOKEN_CLASS};
use crate::dit::{control, entry};
use crate::identity::token;
use crate::store::{DirectoryRead, StoreError, Writer};

/// What a generate request asks for.
#[derive(Debug)]
pub struct Request {
    pub account: Dn,
    pub label: String,
    pub read_write: bool,
    /// RFC 3339 time, duration or "never"; the server's default lifetime when absent.
    pub expires: Option<String>,
    pub intent: Intent,
    /// Sliding expiry: each use moves the expiry to now + this many seconds.
    pub extend_on_use: Option<u64>,
}

/// What the client gets back, once. The secret never reaches a log or `Debug` output.
pub struct Minted {
    pub id: String,
    pub token: String,
    pub expires: Option<String>,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

impl Minted {
    /// The client's answer: what the write issued, with the secret only the front end
    /// that made [`Fresh`] holds.
    pub fn new(issued: Issued, secret: Secret) -> Minted {
        Minted {
            id: issued.id,
            token: secret.0,
            expires: issued.expires,
        }
    }
}

/// A new token's public parts, decided before the write is logged (see `dit::command`):
/// its id, the hash of its secret and its entry's `entryUUID`. Every node of a cluster
/// stores these; the secret itself stays with the front end that returns it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fresh {
    pub id: String,
    pub hash: String,
    pub uuid: String,
}

/// A whole new token, as the client will present it; shown once, never logged.
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Fresh {
    /// A new random token: its public parts, and the secret to hand back.
    pub fn generate() -> Result<(Fresh, Secret), DitError> {
        let new = token::generate().map_err(|e| {
            tracing::error!(error = %e, "minting a token failed");
            DitError::other("the token could not be generated")
        })?;
        let fresh = Fresh {
            id: new.id,
            hash: new.hash,
            uuid: entry::new_uuid(),
        };
        Ok((fresh, Secret(new.token)))
    }
}

/// What a generation or rotation wrote: the new token's id and expiry (None: never).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issued {
    pub id: String,
    pub expires: Option<String>,
}

/// A rotation: the new token, and when the old one now expires (None: never).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rotated {
    pub issued: Issued,
    pub old_expires: Option<String>,
}

/// How long a rotated token keeps working beside its successor, unless asked otherwise.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// Generate the token `fresh` for `req.account`, as `caller`.
pub fn generate(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    req: &Request,
    fresh: &Fresh,
) -> Result<Issued, DitError> {
    check_label(&req.label)?;
    manageable(w, policy, caller, &req.account)?;
    let creator = caller.dn().map(ToString::to_string).unwrap_or_default();
    let issued = mint(w, policy, req, &creator, fresh)?;
    let event = Event::new(Kind::TokenGenerated)
        .actor(&creator)
        .target(&req.account)
        .token(&issued.id)
        .detail(describe(req, issued.expires.as_deref()));
    audit::write(w, policy.now, &policy.origin, event)?;
    Ok(issued)
}

/// What a minted token is, for the audit trail.
fn describe(req: &Request, expires: Option<&str>) -> String {
    let scope = if req.read_write {
        "read-write"
    } else {
        "read-only"
    };
    format!(
        "intent={} scope={scope} expires={}",
        req.intent.as_str(),
        expires.unwrap_or("never")
    )
}

/// [`generate`] with a new random token, in one store (tests, fuzzing, and every caller
/// that writes to its store directly): the secret comes back with it.
pub fn generate_now(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    req: &Request,
) -> Result<Minted, DitError> {
    let (fresh, secret) = Fresh::generate()?;
    let issued = generate(w, policy, caller, req, &fresh)?;
    Ok(Minted::new(issued, secret))
}

/// Rotate token `token_id` of `account`: a new token with the old one's label, scope and
/// intent; the old one lives on for `overlap` (or until its own expiry, if sooner), then
/// expires. The new token is `fresh`.
pub fn rotate(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    account: &Dn,
    token_id: &str,
    overlap: Duration,
    fresh: &Fresh,
) -> Result<Rotated, DitError> {
    manageable(w, policy, caller, account)?;
    let old_dn = account.child(Rdn::single("tokenId", token_id));
    let Some((old_id, old)) = w.entry_by_dn(&old_dn)? else {
        return Err(DitError::no_such_object(account.to_string()));
    };
    let req = Request {
        account: account.clone(),
        label: old.first_str("tokenLabel").unwrap_or_default().to_string(),
        read_write: old
            .first_str("tokenScope")
            .is_some_and(|s| s.eq_ignore_ascii_case("read-write")),
        expires: None,
        intent: old
            .first_str("tokenIntent")
            .and_then(Intent::parse)
            .unwrap_or(Intent::ApiToken),
        extend_on_use: old
            .first_str("tokenExtendOnUse")
            .and_then(|s| s.parse().ok()),
    };
    let creator = caller.dn().map(ToString::to_string).unwrap_or_default();
    let issued = mint(w, policy, &req, &creator, fresh)?;
    let too_far = || DitError::protocol("the overlap is too long");
    let overlap = time::Duration::try_from(overlap).map_err(|_| too_far())?;
    let until = policy.now.checked_add(overlap).ok_or_else(too_far)?;
    let mut retiring = old.clone();
    let current = old.first_str("tokenExpires").map(parse_generalized);
    // An expiry that does not parse has passed already (see `expired`).
    let sooner = match current {
        None => true,
        Some(current) => current.is_some_and(|c| until <= c),
    };
    if sooner {
        retiring.set_str("tokenExpires", &generalized(until));
    }
    retiring.remove("tokenExtendOnUse");
    w.replace(old_id, &old, &retiring)?;
    let mut event = Event::new(Kind::TokenRotated)
        .actor(&creator)
        .target(account)
        .token(&issued.id)
        .detail(format!(
            "{} old_expires={}",
            describe(&req, issued.expires.as_deref()),
            retiring.first_str("tokenExpires").unwrap_or("never")
        ));
    event.old_token_id = token_id.to_string();
    audit::write(w, policy.now, &policy.origin, event)?;
    Ok(Rotated {
        issued,
        old_expires: retiring.first_str("tokenExpires").map(str::to_string),
    })
}

/// The longest label a token may have, in characters.
pub const MAX_LABEL_CHARS: usize = 128;

/// The shortest life a token may be given: one that expires at birth, or before a client
/// could use it, is a mistake.
pub const MIN_LIFETIME: time::Duration = time::Duration::minutes(1);

/// A label names a token for people: present, at most [`MAX_LABEL_CHARS`], printable.
fn check_label(label: &str) -> Result<(), DitError> {
    let refuse = |why: String| Err(DitError::new(LdapResultCode::ConstraintViolation, why));
    if label.trim().is_empty() {
        return refuse("a token needs a label".into());
    }
    let chars = label.chars().count();
    if chars > MAX_LABEL_CHARS {
        return refuse(format!(
            "a token label is at most {MAX_LABEL_CHARS} characters; this one has {chars}"
        ));
    }
    if label.chars().any(char::is_control) {
        return refuse(
            "a token label may not hold control characters (newlines, NUL, tabs)".into(),
        );
    }
    Ok(())
}

/// Refuse (as minting would) unless `caller` may mint or rotate the tokens of `dn`: for a
/// front end deciding whether to offer the form, by the same rule.
pub fn require_manageable(
    r: &impl DirectoryRead,
    policy: &Policy,
    caller: &Caller,
    dn: &Dn,
) -> Result<(), DitError> {
    manageable(r, policy, caller, dn).map(drop)
}

/// The account `dn`, if `caller` may manage its tokens. A missing or invisible account is
/// refused with 50, as one the caller may not manage, so the answer tells nothing of what
/// exists; administrators see 32.
fn manageable(
    r: &impl DirectoryRead,
    policy: &Policy,
    caller: &Caller,
    dn: &Dn,
) -> Result<Entry, DitError> {
    let Some((_, account)) = caller::visible(r, caller, dn)? else {
        return Err(if caller.is_admin() {
            DitError::no_such_object(String::new())
        } else {
            DitError::insufficient_access()
        });
    };
    if !may_manage(r, caller, &account)? {
        return Err(DitError::insufficient_access());
    }
    // A right over tokens is not control of an account more privileged than the caller;
    // a manager named by entryManagedBy was given that control (see `dit::control`).
    let own = caller.dn() == Some(dn);
    if !own && !caller.manages(dn) {
        control::require_cover(r, caller, dn, policy, "mint or rotate its tokens")?;
    }
    Ok(account)
}

/// May `caller` manage the tokens of `account`? Administrators may; so may the account's
/// manager (`entryManagedBy`: that entry, or a member of that group), holders of the
/// manage-tokens right over it, and a person for their own app passwords. Never with a
/// read-only token.
pub fn may_manage(
    r: &impl DirectoryRead,
    caller: &Caller,
    account: &Entry,
) -> Result<bool, StoreError> {
    if caller.is_read_only() {
        return Ok(false);
    }
    let Some(me) = caller.dn() else {
        return Ok(false);
    };
    let own_app_passwords = &account.dn == me && !account.has_class(SERVICE_CLASS);
    if caller.is_admin() || own_app_passwords || caller.manages(&account.dn) {
        return Ok(true);
    }
    let account = caller.decidable(r, account)?;
    Ok(caller.may(Rights::MANAGE_TOKENS, &account))
}

/// Mint the token `fresh` under `req.account`, in the caller's write transaction. The
/// caller's right to do so was checked before.
fn mint(
    w: &mut Writer<'_>,
    policy: &Policy,
    req: &Request,
    creator: &str,
    fresh: &Fresh,
) -> Result<Issued, DitError> {
    let now = policy.now;
    let Some((_, account)) = w.entry_by_dn(&req.account)? else {
        return Err(DitError::no_such_object(String::new()));
    };
    match req.intent {
        Intent::ApiToken | Intent::HttpApi if !account.has_class(SERVICE_CLASS) => {
            return Err(DitError::unwilling("API tokens belong to service accounts"));
        }
        Intent::AppPassword if !account.has_class("person") => {
            return Err(DitError::unwilling("app passwords belong to people"));
        }
        _ => {}
    }
    let extend = req.extend_on_use.map(seconds);
    let too_far = || DitError::protocol("the expiry is too far in the future");
    let expiry = match (&req.expires, extend) {
        (Some(text), _) => parse_expiry(text, now)
            .map_err(|e| DitError::new(LdapResultCode::ConstraintViolation, e))?,
        // A sliding token starts with one period to live.
        (None, Some(period)) => Expiry::At(now.checked_add(period).ok_or_else(too_far)?),
        (None, None) => {
            let lifetime = to_time(policy.config.tokens.default_lifetime);
            Expiry::At(now.checked_add(lifetime).ok_or_else(too_far)?)
        }
    };
    let short = |period: time::Duration| period < MIN_LIFETIME;
    if matches!(expiry, Expiry::At(t) if short(t - now)) || extend.is_some_and(short) {
        return Err(DitError::new(
            LdapResultCode::ConstraintViolation,
            format!(
                "a token must live at least {} minute; give a later expiry (e.g. 90d)",
                MIN_LIFETIME.whole_minutes()
            ),
        ));
    }
    if let Some(max) = max_lifetime(&policy.config) {
        let too_long = match (expiry, now.checked_add(max)) {
            (Expiry::Never, _) => true,
            (Expiry::At(t), Some(limit)) => t > limit,
            (Expiry::At(_), None) => false,
        };
        if too_long || extend.is_some_and(|period| period > max) {
            return Err(DitError::new(
                LdapResultCode::ConstraintViolation,
                "expiry exceeds the server's maximum token lifetime",
            ));
        }
    }
    let mut new = Entry::new(req.account.child(Rdn::single("tokenId", &fresh.id)));
    new.set(
        "objectClass",
        vec![b"top".to_vec(), TOKEN_CLASS.as_bytes().to_vec()],
    );
    new.set_str("tokenId", &fresh.id);
    new.set_str("tokenLabel", &req.label);
    new.set_str(
        "tokenScope",
        if req.read_write {
            "read-write"
        } else {
            "read-only"
        },
    );
    new.set_str("tokenIntent", req.intent.as_str());
    new.set_str("tokenCreatedBy", creator);
    let expires = match expiry {
        Expiry::Never => None,
        Expiry::At(t) => Some(generalized(t)),
    };
    if let Some(e) = &expires {
        new.set_str("tokenExpires", e);
    }
    if let Some(secs) = req.extend_on_use {
        new.set_str("tokenExtendOnUse", &secs.to_string());
    }
    new.set(HASH_ATTR, vec![fresh.hash.as_bytes().to_vec()]);
    entry::stamp_new(
        &policy.schema,
        &mut new,
        creator,
        &generalized(now),
        &fresh.uuid,
    );
    entry::check_entry(&policy.schema, &new)?;
    w.add(&new)?;
    Ok(Issued {
        id: fresh.id.clone(),
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::caller::{Principal, caller};
    use crate::dit::testing::*;

    fn request(account: &Dn, label: &str, expires: Option<&str>) -> Request {
        Request {
            account: account.clone(),
            label: label.into(),
            read_write: true,
            expires: expires.map(str::to_string),
            intent: Intent::ApiToken,
            extend_on_use: None,
        }
    }

    #[test]
    fn managers_mint_and_requests_are_checked() {
        let (store, policy) = directory();
        let ann = add_person(&store, &policy, "ann");
        let svc = add_service(&store, &policy, "svc", Some(&ann));
        let mint = |who: &Principal, req: Request| {
            store.write_blocking(|w| {
                let c = caller(w, who, &policy)?;
                generate_now(w, &policy, &c, &req)
            })
        };
        let as_ann = Principal::Entry(ann);
        let minted = mint(&as_ann, request(&svc, "ci", None)).unwrap();
        assert!(
            format!("{minted:?}").contains("<redacted>"),
            "no secret in Debug"
        );
        assert!(!format!("{minted:?}").contains(&minted.token));
        for (label, expires, why) in [
            ("", None, "a token needs a label"),
            ("two\nlines", None, "control characters"),
            ("x", Some("30s"), "at least 1 minute"),
        ] {
            let err = mint(&as_ann, request(&svc, label, expires)).unwrap_err();
            assert!(
                err.message.contains(why),
                "{label:?} {expires:?}: {}",
                err.message
            );
        }
        let long = "x".repeat(MAX_LABEL_CHARS + 1);
        assert!(mint(&as_ann, request(&svc, &long, None)).is_err());
        // Not hers: 50, whether or not the account exists.
        let bob = Principal::Entry(add_person(&store, &policy, "bob"));
        assert_eq!(
            mint(&bob, request(&svc, "x", None)).unwrap_err().code,
            LdapResultCode::InsufficentAccessRights
        );
        assert_eq!(
            mint(&bob, request(&service("nope"), "x", None))
                .unwrap_err()
                .code,
            LdapResultCode::InsufficentAccessRights
        );
    }
}
