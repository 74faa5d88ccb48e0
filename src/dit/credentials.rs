//! Credentials as entries: finding and checking a presented token for a bind or a later
//! operation, recording its use, marking it exposed.
//!
//! A token is the entry `tokenId=ID,<account DN>` (class tesseraApiToken) holding its
//! metadata and `tokenSecretHash`, which nobody can read. Validity is decided here, from
//! the store and the clock, every time: revoking (deleting the entry) or expiring the
//! token or its account takes effect on the next operation of every connection.

use time::OffsetDateTime;

use crate::config::Config;
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::time::{generalized, parse_generalized};
use crate::dit::names::{HASH_ATTR, TOKEN_CLASS};
use crate::identity::token::Presented;
use crate::store::{DirectoryRead, StoreError, Writer};

pub use crate::directory::time::expired;

/// What a token is for, fixed when it is minted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// A service account's token for LDAP binds (`dn=token` or the account's DN).
    ApiToken,
    /// A person's token for LDAP binds with their own DN (one per device).
    AppPassword,
    /// A service account's token for the HTTP API (`Authorization: Bearer`), and only for
    /// it: a token handed to an SSSD host or a NAS cannot drive the API, and an API token
    /// cannot bind over LDAP.
    HttpApi,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::ApiToken => "api-token",
            Intent::AppPassword => "app-password",
            Intent::HttpApi => "http-api",
        }
    }

    pub fn parse(value: &str) -> Option<Intent> {
        match value.to_ascii_lowercase().as_str() {
            "api-token" => Some(Intent::ApiToken),
            "app-password" => Some(Intent::AppPassword),
            "http-api" => Some(Intent::HttpApi),
            _ => None,
        }
    }
}

/// How a token was presented, which decides the tokens it may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presentation {
    /// An LDAP bind as `dn=token`: any live API token.
    TokenDn,
    /// An LDAP bind as this account's DN: its own API tokens, or a person's app passwords.
    Account(Dn),
    /// An HTTP `Authorization: Bearer`: HTTP API tokens only.
    Bearer,
}

/// A token that is valid right now.
#[derive(Clone, Debug)]
pub struct Valid {
    pub entry_id: u64,
    pub id: String,
    pub account: Dn,
    pub intent: Intent,
    pub read_only: bool,
    /// The expiry times the check passed (the token's and its account's): the token stays
    /// live until the first of them, unless the directory changes.
    pub expiries: Vec<OffsetDateTime>,
}

/// Find token `id` and check it is live: not expired, its account present and not expired.
pub fn find_valid(
    r: &impl DirectoryRead,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<(Valid, Entry)>, StoreError> {
    match find(r, id, now)? {
        Found::Live(valid, entry) => Ok(Some((valid, *entry))),
        Found::NotLive | Found::Unknown => Ok(None),
    }
}

/// How a token lookup ended: for timing, a bind must know whether anything was read.
enum Found {
    Live(Valid, Box<Entry>),
    /// An entry with the id exists, but it or its account is not live.
    NotLive,
    /// No entry has the id.
    Unknown,
}

fn find(r: &impl DirectoryRead, id: &str, now: OffsetDateTime) -> Result<Found, StoreError> {
    let Some(ids) = r.lookup("tokenId", id.to_lowercase().as_bytes())? else {
        return Ok(Found::Unknown);
    };
    if ids.is_empty() {
        return Ok(Found::Unknown);
    }
    for entry_id in ids {
        let Some(entry) = r.entry(entry_id)? else {
            continue;
        };
        if !entry.has_class(TOKEN_CLASS) || expired(entry.first_str("tokenExpires"), now) {
            continue;
        }
        let Some(account) = entry.dn.parent() else {
            continue;
        };
        let Some((_, account_entry)) = r.entry_by_dn(&account)? else {
            continue;
        };
        if expired(account_entry.first_str("accountExpires"), now) {
            continue;
        }
        let Some(intent) = entry.first_str("tokenIntent").and_then(Intent::parse) else {
            continue;
        };
        let read_only = !entry
            .first_str("tokenScope")
            .is_some_and(|s| s.eq_ignore_ascii_case("read-write"));
        // Both parsed, as `expired` just showed.
        let expiries = [
            entry.first_str("tokenExpires"),
            account_entry.first_str("accountExpires"),
        ]
        .into_iter()
        .flatten()
        .filter_map(parse_generalized)
        .collect();
        let valid = Valid {
            entry_id,
            id: id.to_string(),
            account,
            intent,
            read_only,
            expiries,
        };
        return Ok(Found::Live(valid, Box::new(entry)));
    }
    Ok(Found::NotLive)
}

/// What checking a presented token found. Every outcome but `Valid` is the same 49 to the
/// client; the audit log records which it was.
#[derive(Debug)]
pub enum TokenCheck {
    Valid(Valid),
    /// No token has the id: it never existed, or it was revoked.
    Unknown,
    /// The token, or its account, has expired.
    Expired,
    /// The secret does not match.
    WrongSecret,
    /// A valid token, for another account, or an app password sent as `dn=token`.
    NotForThisDn,
    /// A valid token presented where its intent does not allow: an LDAP token over HTTP,
    /// or an HTTP API token in an LDAP bind.
    WrongProtocol,
}

impl TokenCheck {
    /// Why the bind failed, for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenCheck::Valid(_) => "",
            TokenCheck::Unknown => "unknown or revoked token",
            TokenCheck::Expired => "expired token or account",
            TokenCheck::WrongSecret => "wrong token secret",
            TokenCheck::NotForThisDn => "token not valid for this bind DN",
            TokenCheck::WrongProtocol => "token not minted for this protocol",
        }
    }
}

/// Check a presented token: `dn=token` takes any API token; a service account's DN takes
/// only its own API tokens; a person's DN only their app passwords; a Bearer header only
/// HTTP API tokens.
pub fn verify_bind(
    r: &impl DirectoryRead,
    presented: &Presented<'_>,
    how: &Presentation,
    now: OffsetDateTime,
) -> Result<TokenCheck, StoreError> {
    let (valid, entry) = match find(r, presented.id, now)? {
        Found::Live(valid, entry) => (valid, entry),
        Found::NotLive => {
            // Its entries were read; the digest a live one would cost, still.
            let _ = presented.verify(DECOY_HASH);
            return Ok(TokenCheck::Expired);
        }
        Found::Unknown => {
            decoy(r, presented)?;
            return Ok(TokenCheck::Unknown);
        }
    };
    let hash = entry.values(HASH_ATTR).first().cloned().unwrap_or_default();
    if !presented.verify(&hash) {
        return Ok(TokenCheck::WrongSecret);
    }
    let http = valid.intent == Intent::HttpApi;
    Ok(match how {
        Presentation::Bearer if http => TokenCheck::Valid(valid),
        Presentation::TokenDn | Presentation::Account(_) if http => TokenCheck::WrongProtocol,
        Presentation::Bearer => TokenCheck::WrongProtocol,
        Presentation::TokenDn if valid.intent == Intent::ApiToken => TokenCheck::Valid(valid),
        Presentation::Account(dn) if &valid.account == dn => TokenCheck::Valid(valid),
        Presentation::TokenDn | Presentation::Account(_) => TokenCheck::NotForThisDn,
    })
}

/// Stand-in work for a token id that matches nothing: two entry reads, as for a
/// token's entry and its account's, and a digest comparison. Without it an unknown token id
/// is refused about a quarter faster than a known one with a wrong secret (measured by
/// `cargo bench --bench bind_timing`), which would tell which ids exist. Entry 1 is the
/// first one ever added, the suffix.
fn decoy(r: &impl DirectoryRead, presented: &Presented<'_>) -> Result<(), StoreError> {
    if let Some(first) = r.entry(1)? {
        let _ = r.entry_by_dn(&first.dn)?;
    }
    let _ = presented.verify(DECOY_HASH);
    Ok(())
}

/// The length of a real stored hash (hex SHA-256), matching no secret.
const DECOY_HASH: &[u8] = &[b'0'; 64];

/// Is `dn` the magic token bind DN (`dn=token`, any case)?
pub fn is_token_dn(dn: &str) -> bool {
    Dn::parse(dn).is_ok_and(|d| d.norm() == "dn=token")
}

/// How often a token's use is written at most.
pub const USE_RECORDED_EVERY: time::Duration = time::Duration::minutes(1);

/// Write the uses of tokens `uses` (token id, when last used): `tokenLastUsed` moves to
/// the later of the stored one and this one (uses merged from several nodes commute), and
/// a sliding token gets a later `tokenExpires` (see [`extended_expiry`]). Tokens that are
/// gone (revoked since) are passed over. The number of tokens written.
pub fn record_uses(
    w: &mut Writer<'_>,
    uses: &[(String, OffsetDateTime)],
    max_lifetime: Option<time::Duration>,
) -> Result<usize, StoreError> {
    let mut written = 0;
    for (id, at) in uses {
        let Some((entry_id, old)) = token_entry(w, id)? else {
            continue;
        };
        let stored = old.first_str("tokenLastUsed").and_then(parse_generalized);
        if stored.is_some_and(|t| t >= *at) {
            continue;
        }
        let mut new = old.clone();
        new.set_str("tokenLastUsed", &generalized(*at));
        if let Some(until) = extended_expiry(&new, *at, max_lifetime) {
            new.set_str("tokenExpires", &generalized(until));
        }
        w.replace(entry_id, &old, &new)?;
        written += 1;
    }
    Ok(written)
}

/// The entry of token `id`, if one is stored.
fn token_entry(r: &impl DirectoryRead, id: &str) -> Result<Option<(u64, Entry)>, StoreError> {
    let Some(ids) = r.lookup("tokenId", id.to_lowercase().as_bytes())? else {
        return Ok(None);
    };
    for entry_id in ids {
        if let Some(entry) = r.entry(entry_id)?
            && entry.has_class(TOKEN_CLASS)
        {
            return Ok(Some((entry_id, entry)));
        }
    }
    Ok(None)
}

/// A token whose secret crossed the wire readable, and which [`exposed_token`] found
/// valid: stamp it `tokenExposed` (or delete it when `revoke`). Its account, or None when
/// it is gone.
pub fn mark_exposed(
    w: &mut Writer<'_>,
    token_id: &str,
    now: OffsetDateTime,
    revoke: bool,
) -> Result<Option<Dn>, StoreError> {
    let Some((entry_id, old)) = token_entry(w, token_id)? else {
        return Ok(None);
    };
    if revoke {
        w.delete(entry_id, &old)?;
    } else {
        let mut new = old.clone();
        new.set_str("tokenExposed", &generalized(now));
        w.replace(entry_id, &old, &new)?;
    }
    Ok(old.dn.parent())
}

/// Is `presented` valid for a bind as `target`? Only a token that verifies counts as
/// exposed, so nobody can mark or revoke another's token by sending its public id.
pub fn exposed_token(
    r: &impl DirectoryRead,
    presented: &Presented<'_>,
    how: &Presentation,
    now: OffsetDateTime,
) -> Result<Option<Valid>, StoreError> {
    match verify_bind(r, presented, how, now)? {
        TokenCheck::Valid(valid) => Ok(Some(valid)),
        _ => Ok(None),
    }
}

/// The server's maximum token lifetime, if it sets one.
pub fn max_lifetime(config: &Config) -> Option<time::Duration> {
    config.tokens.max_lifetime.map(to_time)
}

/// A sliding token's new expiry after a use at `now`: now + its period, never earlier than
/// the expiry it has, never past its creation + the server's maximum lifetime.
fn extended_expiry(
    entry: &Entry,
    now: OffsetDateTime,
    max_lifetime: Option<time::Duration>,
) -> Option<OffsetDateTime> {
    let period = entry
        .first_str("tokenExtendOnUse")
        .and_then(|s| s.parse::<u64>().ok())
        .map(seconds)?;
    let mut until = now.checked_add(period)?;
    if let Some(current) = entry.first_str("tokenExpires").and_then(parse_generalized) {
        until = until.max(current);
    }
    if let Some(max) = max_lifetime {
        let created = entry
            .first_str("createTimestamp")
            .and_then(parse_generalized)?;
        if let Some(limit) = created.checked_add(max) {
            until = until.min(limit);
        }
    }
    Some(until)
}

pub(crate) fn seconds(secs: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

pub(crate) fn to_time(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::caller::caller;
    use crate::dit::testing::*;
    use crate::dit::token::{self, Request};
    use crate::identity::token as format;

    #[test]
    fn a_presented_token_is_valid_wrong_expired_or_unknown() {
        let (store, policy) = directory();
        let svc = add_service(&store, &policy, "svc", None);
        let req = Request {
            account: svc.clone(),
            label: "t".into(),
            read_write: false,
            expires: Some("1h".into()),
            intent: Intent::ApiToken,
            extend_on_use: None,
        };
        let minted = store
            .write_blocking(|w| {
                let admin = caller(w, &admin(), &policy)?;
                token::generate_now(w, &policy, &admin, &req)
            })
            .unwrap();
        let check = |secret: &str, dn: Option<&Dn>, now: OffsetDateTime| {
            let presented = format::parse(secret).unwrap();
            let how = match dn {
                None => Presentation::TokenDn,
                Some(dn) => Presentation::Account(dn.clone()),
            };
            store
                .read_blocking(|r| verify_bind(r, &presented, &how, now))
                .unwrap()
        };
        let now = policy.now;
        assert!(matches!(
            check(&minted.token, None, now),
            TokenCheck::Valid(_)
        ));
        assert!(matches!(
            check(&minted.token, Some(&svc), now),
            TokenCheck::Valid(_)
        ));
        let other = service("other");
        assert!(matches!(
            check(&minted.token, Some(&other), now),
            TokenCheck::NotForThisDn
        ));
        let later = now + time::Duration::hours(2);
        assert!(matches!(
            check(&minted.token, None, later),
            TokenCheck::Expired
        ));
        // Another well-formed token, whose id nothing has.
        let fresh = format::generate().unwrap();
        assert!(matches!(
            check(&fresh.token, None, now),
            TokenCheck::Unknown
        ));
    }
}
