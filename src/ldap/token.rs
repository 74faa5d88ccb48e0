//! API tokens and app passwords as directory entries: finding and validating a token
//! for a bind or a later operation, and minting one (the generate extended operation).
//!
//! A token is the entry `tokenId=ID,<account DN>` (class tesseraApiToken) holding its
//! metadata and `tokenSecretHash`, which nobody can read. Validity is decided here, from
//! the store and the clock, every time: revoking (deleting the entry) or expiring the
//! token or its account takes effect on the next operation of every connection.

use ldap3_proto::proto::LdapResultCode;

use crate::directory::access::Rights;
use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::directory::matching::MatchingRule;
use crate::directory::time::{Expiry, generalized, parse_expiry, parse_generalized};
use crate::identity::token::{self, Presented};
use crate::ldap::result::LdapError;
use crate::ldap::{State, write};
use crate::store::{DirectoryRead, StoreError, Writer};

pub const CLASS: &str = "tesseraApiToken";
pub const SERVICE_CLASS: &str = "tesseraServiceAccount";
pub const HASH_ATTR: &str = "tokenSecretHash";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    ApiToken,
    AppPassword,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::ApiToken => "api-token",
            Intent::AppPassword => "app-password",
        }
    }

    fn parse(value: &str) -> Option<Intent> {
        match value.to_ascii_lowercase().as_str() {
            "api-token" => Some(Intent::ApiToken),
            "app-password" => Some(Intent::AppPassword),
            _ => None,
        }
    }
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
    pub expiries: Vec<String>,
}

/// Find token `id` and check it is live: not expired, its account present and not expired.
pub fn find_valid(
    r: &impl DirectoryRead,
    id: &str,
    now: &str,
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

fn find(r: &impl DirectoryRead, id: &str, now: &str) -> Result<Found, StoreError> {
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
        if !entry.has_class(CLASS) || expired(entry.first_str("tokenExpires"), now) {
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
        let expiries = [
            entry.first_str("tokenExpires"),
            account_entry.first_str("accountExpires"),
        ]
        .into_iter()
        .flatten()
        .map(str::to_string)
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

/// Is `value` (a generalizedTime) at or before `now`? Unparseable expiry counts as
/// expired: refusing is the safe side.
pub fn expired(value: Option<&str>, now: &str) -> bool {
    let Some(value) = value else {
        return false;
    };
    let rule = MatchingRule::from_name("generalizedTimeOrderingMatch");
    match rule.and_then(|r| r.compare(value.as_bytes(), now.as_bytes())) {
        Some(order) => order != std::cmp::Ordering::Greater,
        None => true,
    }
}

/// Check a presented token for a bind as `dn`: `dn=token` takes any API token; a service
/// account's DN takes only its own API tokens; a person's DN only their app passwords.
pub fn verify_bind(
    r: &impl DirectoryRead,
    presented: &Presented<'_>,
    dn: Option<&Dn>,
    now: &str,
) -> Result<Option<Valid>, StoreError> {
    let (valid, entry) = match find(r, presented.id, now)? {
        Found::Live(valid, entry) => (valid, entry),
        Found::NotLive => {
            // Its entries were read; the digest a live one would cost, still.
            let _ = presented.verify(DECOY_HASH);
            return Ok(None);
        }
        Found::Unknown => {
            decoy(r, presented)?;
            return Ok(None);
        }
    };
    let hash = entry.values(HASH_ATTR).first().cloned().unwrap_or_default();
    if !presented.verify(&hash) {
        return Ok(None);
    }
    let fits = match dn {
        None => valid.intent == Intent::ApiToken,
        Some(dn) => &valid.account == dn,
    };
    Ok(fits.then_some(valid))
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

/// What a generate request asks for.
#[derive(Debug)]
pub struct Request {
    pub account: Dn,
    pub label: String,
    pub read_write: bool,
    pub expires: Option<String>,
    pub intent: Intent,
    pub extend_on_use: Option<u64>,
}

/// What the client gets back, once.
pub struct Minted {
    pub id: String,
    pub token: String,
    pub expires: Option<String>,
}

/// Mint a token under `req.account`, in the caller's write transaction.
pub fn mint(
    state: &State,
    w: &mut Writer<'_>,
    req: &Request,
    creator: &str,
) -> Result<Minted, LdapError> {
    let now = state.clock.now();
    let Some((_, account)) = w.entry_by_dn(&req.account)? else {
        return Err(LdapError::no_such_object(String::new()));
    };
    match req.intent {
        Intent::ApiToken if !account.has_class(SERVICE_CLASS) => {
            return Err(LdapError::unwilling(
                "API tokens belong to service accounts",
            ));
        }
        Intent::AppPassword if !write::is_a(&state.schema, &account, "person") => {
            return Err(LdapError::unwilling("app passwords belong to people"));
        }
        _ => {}
    }
    let extend = req.extend_on_use.map(seconds);
    let too_far = || LdapError::protocol("the expiry is too far in the future");
    let expiry = match (&req.expires, extend) {
        (Some(text), _) => parse_expiry(text, now).map_err(LdapError::protocol)?,
        // A sliding token starts with one period to live.
        (None, Some(period)) => Expiry::At(now.checked_add(period).ok_or_else(too_far)?),
        (None, None) => {
            let lifetime = to_time(state.config.tokens.default_lifetime);
            Expiry::At(now.checked_add(lifetime).ok_or_else(too_far)?)
        }
    };
    if let Some(max) = state.config.tokens.max_lifetime.map(to_time) {
        let too_long = match (expiry, now.checked_add(max)) {
            (Expiry::Never, _) => true,
            (Expiry::At(t), Some(limit)) => t > limit,
            (Expiry::At(_), None) => false,
        };
        if too_long || extend.is_some_and(|period| period > max) {
            return Err(LdapError::new(
                LdapResultCode::ConstraintViolation,
                "expiry exceeds the server's maximum token lifetime",
            ));
        }
    }
    let minted = token::generate().map_err(|e| LdapError::other(e.to_string()))?;
    let mut entry = Entry::new(req.account.child(Rdn::single("tokenId", &minted.id)));
    entry.set(
        "objectClass",
        vec![b"top".to_vec(), CLASS.as_bytes().to_vec()],
    );
    entry.set_str("tokenId", &minted.id);
    entry.set_str("tokenLabel", &req.label);
    entry.set_str(
        "tokenScope",
        if req.read_write {
            "read-write"
        } else {
            "read-only"
        },
    );
    entry.set_str("tokenIntent", req.intent.as_str());
    entry.set_str("tokenCreatedBy", creator);
    let expires = match expiry {
        Expiry::Never => None,
        Expiry::At(t) => Some(generalized(t)),
    };
    if let Some(e) = &expires {
        entry.set_str("tokenExpires", e);
    }
    if let Some(secs) = req.extend_on_use {
        entry.set_str("tokenExtendOnUse", &secs.to_string());
    }
    entry.set(HASH_ATTR, vec![minted.hash.as_bytes().to_vec()]);
    write::stamp_new(&state.schema, &mut entry, creator, &generalized(now));
    write::check_entry(&state.schema, &entry)?;
    w.add(&entry)?;
    Ok(Minted {
        id: minted.id,
        token: minted.token,
        expires,
    })
}

/// How often a token's use is written at most.
pub const USE_RECORDED_EVERY: time::Duration = time::Duration::minutes(1);
/// Tokens whose last write is remembered; past this, entries older than a minute go.
const MAX_REMEMBERED_USES: usize = 100_000;

/// Note a use of the token: `tokenLastUsed` (and, for extend-on-use tokens, a later
/// `tokenExpires`), written at most once a minute per token by the policy clock, in the
/// background, so binds never wait on a write.
pub fn record_use(state: &State, valid: &Valid) {
    let now = state.clock.now();
    {
        // A map of timestamps stays usable after a panic elsewhere poisoned the lock.
        let mut uses = state
            .token_uses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if uses
            .get(&valid.id)
            .is_some_and(|t| now - *t < USE_RECORDED_EVERY)
        {
            return;
        }
        if uses.len() >= MAX_REMEMBERED_USES {
            uses.retain(|_, t| now - *t < USE_RECORDED_EVERY);
        }
        // Still full of recent uses: skip recording rather than grow without bound.
        if uses.len() >= MAX_REMEMBERED_USES {
            return;
        }
        uses.insert(valid.id.clone(), now);
    }
    let state = state.clone();
    let entry_id = valid.entry_id;
    let max_lifetime = state.config.tokens.max_lifetime.map(to_time);
    tokio::spawn(async move {
        let stamp = generalized(now);
        let result = state
            .store
            .write(move |w| {
                let Some(old) = w.entry(entry_id)? else {
                    return Ok::<_, StoreError>(());
                };
                let mut entry = old.clone();
                entry.set_str("tokenLastUsed", &stamp);
                if let Some(until) = extended_expiry(&entry, now, max_lifetime) {
                    entry.set_str("tokenExpires", &generalized(until));
                }
                w.replace(entry_id, &old, &entry)
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "recording token use failed");
        }
    });
}

/// A token sent in a simple bind over an unprotected connection, which was refused with 13:
/// if it is valid, its secret has been readable on the wire. Logged (`token-exposed`, with
/// the id, never the secret) and stamped `tokenExposed`, or revoked (deleted) when
/// `tokens.revoke_on_cleartext` is on. Only a token that verifies counts, so nobody can
/// mark or revoke another's token by sending its public id.
pub async fn exposed(state: &State, dn: &str, password: &str) {
    let token_dn = is_token_dn(dn);
    if !token::looks_like_token(password) && !token_dn {
        return;
    }
    let target = if token_dn {
        None
    } else {
        let Ok(dn) = Dn::parse(dn) else {
            return;
        };
        Some(dn)
    };
    let revoke = state.config.tokens.revoke_on_cleartext;
    let now = state.now();
    let password = password.to_string();
    let marked = state
        .store
        .write(move |w| {
            let Some(presented) = token::parse(&password) else {
                return Ok::<_, StoreError>(None);
            };
            let Some(valid) = verify_bind(w, &presented, target.as_ref(), &now)? else {
                return Ok(None);
            };
            let Some(old) = w.entry(valid.entry_id)? else {
                return Ok(None);
            };
            if revoke {
                w.delete(valid.entry_id, &old)?;
            } else {
                let mut entry = old.clone();
                entry.set_str("tokenExposed", &now);
                w.replace(valid.entry_id, &old, &entry)?;
            }
            Ok(Some(valid))
        })
        .await;
    match marked {
        Ok(Some(valid)) => tracing::warn!(
            event = "token-exposed",
            token_id = %valid.id,
            account = %valid.account,
            revoked = revoke,
            "a valid token was sent in a bind without TLS; rotate it"
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "marking an exposed token failed"),
    }
}

/// A sliding token's new expiry after a use at `now`: now + its period, never earlier than
/// the expiry it has, never past its creation + the server's maximum lifetime.
fn extended_expiry(
    entry: &Entry,
    now: time::OffsetDateTime,
    max_lifetime: Option<time::Duration>,
) -> Option<time::OffsetDateTime> {
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

fn seconds(secs: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn to_time(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// `TesseraRoot.4.1`: generate a token. Request `SEQUENCE { account [0], label [1],
/// scope [2] OPTIONAL ("read-only" | "read-write"), expires [3] OPTIONAL (RFC 3339 time,
/// duration or "never"), intent [4] OPTIONAL ("api-token" | "app-password"),
/// extendOnUse [5] OPTIONAL (duration) }`, all OCTET STRINGs; response
/// `SEQUENCE { tokenId [0], token [1], expires [2] OPTIONAL }`.
pub const OID_GENERATE: &str = "2.25.235497813471364094925541187040296631981.4.1";
/// `TesseraRoot.4.2`: rotate a token. Request `SEQUENCE { account [0], tokenId [1],
/// overlap [2] OPTIONAL (duration, default 24h) }`; response as for generate.
pub const OID_ROTATE: &str = "2.25.235497813471364094925541187040296631981.4.2";

const DEFAULT_OVERLAP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// May `caller` manage the tokens of `account`? Administrators may; so may the account's
/// manager (`entryManagedBy`: that entry, or a member of that group), holders of the
/// manage-tokens right over it, and a person for their own app passwords. Never with a
/// read-only token.
pub fn may_manage(
    r: &impl DirectoryRead,
    caller: &crate::ldap::access::Caller,
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

/// The refusal for an account that is missing or invisible: 50, as for one the caller may
/// not manage, so the answer tells nothing of what exists; administrators see 32.
fn not_manageable(caller: &crate::ldap::access::Caller) -> LdapError {
    if caller.is_admin() {
        LdapError::no_such_object(String::new())
    } else {
        LdapError::insufficient_access()
    }
}

pub fn parse_generate(value: &[u8]) -> Option<Request> {
    let items = crate::ldap::ber::sequence(value)?;
    let field = |tag: u8| {
        items
            .iter()
            .find(|i| i.tag == tag)
            .and_then(|i| std::str::from_utf8(i.content).ok())
    };
    let account = Dn::parse(field(0x80)?).ok()?;
    let label = field(0x81)?.to_string();
    let read_write = match field(0x82) {
        None => false,
        Some(s) if s.eq_ignore_ascii_case("read-only") => false,
        Some(s) if s.eq_ignore_ascii_case("read-write") => true,
        Some(_) => return None,
    };
    let intent = match field(0x84) {
        None => Intent::ApiToken,
        Some(s) => Intent::parse(s)?,
    };
    let extend_on_use = match field(0x85) {
        None => None,
        Some(s) => Some(crate::config::parse_duration(s)?.as_secs()),
    };
    Some(Request {
        account,
        label,
        read_write,
        expires: field(0x83).map(str::to_string),
        intent,
        extend_on_use,
    })
}

pub fn response_value(minted: &Minted) -> Vec<u8> {
    use crate::ldap::ber::write as tlv;
    let mut body = tlv(0x80, minted.id.as_bytes());
    body.extend(tlv(0x81, minted.token.as_bytes()));
    if let Some(e) = &minted.expires {
        body.extend(tlv(0x82, e.as_bytes()));
    }
    tlv(0x30, &body)
}

/// Handle a generate request for `principal`; returns the response value.
pub async fn generate(
    state: &State,
    principal: &crate::ldap::session::Principal,
    value: Option<&[u8]>,
) -> Result<Vec<u8>, LdapError> {
    let req = value
        .and_then(parse_generate)
        .ok_or_else(|| LdapError::protocol("malformed token generation request"))?;
    if req.label.trim().is_empty() {
        return Err(LdapError::new(
            LdapResultCode::ConstraintViolation,
            "a token needs a label",
        ));
    }
    let principal = principal.clone();
    let st = state.clone();
    let policy = crate::ldap::access::Policy::of(state);
    state
        .store
        .write(move |w| {
            let caller = crate::ldap::access::caller(w, &principal, &policy)?;
            let Some((_, account)) = crate::ldap::access::visible(w, &caller, &req.account)? else {
                return Err(not_manageable(&caller));
            };
            if !may_manage(w, &caller, &account)? {
                return Err(LdapError::insufficient_access());
            }
            let creator = caller.dn().map(ToString::to_string).unwrap_or_default();
            let minted = mint(&st, w, &req, &creator)?;
            Ok((minted, req, creator))
        })
        .await
        .map(|(minted, req, creator)| {
            // Logged once committed, and never with the secret.
            tracing::info!(
                event = "token-generated",
                token_id = %minted.id,
                account = %req.account,
                intent = req.intent.as_str(),
                read_write = req.read_write,
                expires = minted.expires.as_deref().unwrap_or("never"),
                actor = %creator,
            );
            response_value(&minted)
        })
}

/// Handle a rotate request: a new token with the old one's label, scope and intent; the
/// old one lives on for the overlap, then expires.
pub async fn rotate(
    state: &State,
    principal: &crate::ldap::session::Principal,
    value: Option<&[u8]>,
) -> Result<Vec<u8>, LdapError> {
    let malformed = || LdapError::protocol("malformed token rotation request");
    let items = value
        .and_then(crate::ldap::ber::sequence)
        .ok_or_else(malformed)?;
    let field = |tag: u8| {
        items
            .iter()
            .find(|i| i.tag == tag)
            .and_then(|i| std::str::from_utf8(i.content).ok())
    };
    let account_dn = field(0x80)
        .and_then(|a| Dn::parse(a).ok())
        .ok_or_else(malformed)?;
    let token_id = field(0x81).ok_or_else(malformed)?.to_string();
    let overlap = match field(0x82) {
        Some(d) => crate::config::parse_duration(d).ok_or_else(malformed)?,
        None => DEFAULT_OVERLAP,
    };
    let principal = principal.clone();
    let st = state.clone();
    let policy = crate::ldap::access::Policy::of(state);
    state
        .store
        .write(move |w| {
            let caller = crate::ldap::access::caller(w, &principal, &policy)?;
            let Some((_, account)) = crate::ldap::access::visible(w, &caller, &account_dn)? else {
                return Err(not_manageable(&caller));
            };
            if !may_manage(w, &caller, &account)? {
                return Err(LdapError::insufficient_access());
            }
            let old_dn = account_dn.child(Rdn::single("tokenId", &token_id));
            let Some((old_id, old)) = w.entry_by_dn(&old_dn)? else {
                return Err(LdapError::no_such_object(account_dn.to_string()));
            };
            let req = Request {
                account: account_dn.clone(),
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
            let minted = mint(&st, w, &req, &creator)?;
            let overlap = time::Duration::try_from(overlap).map_err(|_| malformed())?;
            let until = st.clock.now().checked_add(overlap).ok_or_else(malformed)?;
            let until = generalized(until);
            let mut retiring = old.clone();
            let sooner = old
                .first_str("tokenExpires")
                .is_none_or(|current| expired(Some(until.as_str()), current));
            if sooner {
                retiring.set_str("tokenExpires", &until);
            }
            retiring.remove("tokenExtendOnUse");
            w.replace(old_id, &old, &retiring)?;
            let until = retiring
                .first_str("tokenExpires")
                .unwrap_or("never")
                .to_string();
            Ok((minted, token_id, creator, account_dn, until))
        })
        .await
        .map(|(minted, old, creator, account, until)| {
            tracing::info!(
                event = "token-rotated",
                account = %account,
                old_token_id = %old,
                old_expires = %until,
                token_id = %minted.id,
                expires = minted.expires.as_deref().unwrap_or("never"),
                actor = %creator,
            );
            response_value(&minted)
        })
}
