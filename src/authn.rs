//! Authenticating a name and a secret, for every front end: LDAP's simple bind, HTTP's
//! Basic (a person's password) and Bearer (an API token) credentials, and the web
//! console's sign-in (a person's password).
//!
//! A password is checked with argon2 on the hashing pool, against a decoy hash when the
//! name has none, so neither the answer nor its timing tells an unknown name from a wrong
//! password; a token is looked up by its id and its secret's SHA-256 compared. Every
//! failure is the same 49, slowed down by the one bind throttle (per name and source
//! address, and per source), whichever front end it came through; every outcome is an
//! audit record (`bind`, with the reason a failure had) and a metric. What a front end
//! does with the identity is its own business.

use std::net::IpAddr;

use ldap3_proto::proto::LdapResultCode;

use crate::audit::{Event, Kind, Origin};
use crate::directory::dn::Dn;
use crate::dit::DitError;
use crate::dit::caller::Principal;
use crate::dit::command::{Command, Op};
use crate::dit::credentials::{self, Presentation, TokenCheck};
use crate::identity::password::StoredPassword;
use crate::identity::throttle::Source;
use crate::identity::token as token_format;
use crate::state::{State, hashers_failed};
use crate::store::DirectoryRead;

/// Which front end a credential came through: it decides which tokens it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// LDAP simple bind: passwords, API tokens (`api-token`) and app passwords.
    Ldap,
    /// HTTP Basic: a person's (or entry's) password, never a token.
    HttpBasic,
    /// HTTP Bearer: an API token minted for HTTP (`http-api`), nothing else.
    HttpBearer,
    /// The web console's sign-in: a person's password, never a token or app password.
    Console,
}

/// A name and a secret to check.
pub struct Simple<'a> {
    /// A DN, `dn=token`, or empty (with an empty secret: anonymous).
    pub dn: &'a str,
    pub secret: &'a str,
    /// False when the secret's octets were not UTF-8: it fails as a wrong password does.
    pub readable: bool,
    /// Over TLS or the local socket, where a secret may travel.
    pub protected: bool,
    pub front: Front,
}

impl std::fmt::Debug for Simple<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simple")
            .field("dn", &self.dn)
            .field("secret", &"<redacted>")
            .field("front", &self.front)
            .finish()
    }
}

/// A refused credential: the client's answer, and for the audit trail, why.
pub struct Refused {
    pub error: DitError,
    pub reason: &'static str,
}

impl From<DitError> for Refused {
    fn from(error: DitError) -> Self {
        Refused { error, reason: "" }
    }
}

/// The one answer for every failed credential check (49), and the reason behind it.
pub fn invalid(reason: &'static str) -> Refused {
    Refused {
        error: DitError::invalid_credentials(),
        reason,
    }
}

/// Check `cred` from `peer`, throttled, recorded and counted: the identity it proves.
pub async fn simple(
    state: &State,
    origin: &Origin,
    peer: Option<IpAddr>,
    cred: &Simple<'_>,
) -> Result<Principal, DitError> {
    let result = check(state, origin, cred).await;
    let presented = cred.readable.then_some(cred.secret);
    conclude(
        state,
        origin,
        peer,
        cred.dn,
        presented,
        method(cred),
        result,
    )
    .await
}

/// What a credential is, for the metrics: `anonymous`, `token` or `password`.
fn method(cred: &Simple<'_>) -> &'static str {
    if cred.dn.is_empty() && cred.secret.is_empty() {
        "anonymous"
    } else if is_token(cred) {
        "token"
    } else {
        "password"
    }
}

fn is_token(cred: &Simple<'_>) -> bool {
    cred.readable
        && (token_format::looks_like_token(cred.secret) || credentials::is_token_dn(cred.dn))
}

/// Finish an authentication of `dn` whatever its kind: on success the throttle forgets the
/// name's failures from there; on a failed guessable credential (`method` is `password` or
/// `token`) the answer is held as the throttle says. Either way an audit record and a
/// metric. `presented` is the secret, only to name the token (its public id) in the record.
pub async fn conclude(
    state: &State,
    origin: &Origin,
    peer: Option<IpAddr>,
    dn: &str,
    presented: Option<&str>,
    method: &'static str,
    result: Result<Principal, Refused>,
) -> Result<Principal, DitError> {
    let source = Source::of(peer);
    let guessable = matches!(method, "password" | "token");
    let now = state.clock.now();
    let mut event = Event::new(Kind::Bind);
    match result {
        Ok(principal) => {
            if guessable {
                state.throttle.succeeded(&account_key(dn), &source);
            }
            let token_id = match &principal {
                Principal::Token { token_id, .. } => token_id.clone(),
                _ => String::new(),
            };
            event.outcome = "success".into();
            event = event
                .actor(principal.dn().map(ToString::to_string).unwrap_or_default())
                .token(token_id);
            state.audit.push(now, origin, event);
            state.metrics.bind(method, &LdapResultCode::Success);
            Ok(principal)
        }
        Err(Refused { error, reason }) => {
            if guessable && error.code == LdapResultCode::InvalidCredentials {
                hold_failure(state, origin, dn, &source).await;
            }
            // The token id is public; the secret after it is never logged.
            let token_id = presented
                .and_then(token_format::parse)
                .map(|p| p.id.to_string())
                .unwrap_or_default();
            event.outcome = "failure".into();
            event.code = Some(error.code.clone() as u32);
            event.reason = reason.to_string();
            event = event.actor(dn).token(token_id);
            state.audit.push(now, origin, event);
            state.metrics.bind(method, &error.code);
            Err(error)
        }
    }
}

/// Slow a failed bind down as the throttle says, before its 49 goes out: the same answer,
/// only later, so the delay tells nothing an attacker did not know.
async fn hold_failure(state: &State, origin: &Origin, dn: &str, source: &Source) {
    let account = account_key(dn);
    let now = state.clock.now();
    let failure = state.throttle.failed(&account, source, now);
    if failure.started {
        let mut event = Event::new(Kind::BindThrottled)
            .target(&account)
            .detail(failure.failures.to_string());
        event.peer = source.to_string();
        state.audit.push(now, origin, event);
        state.metrics.throttled();
    }
    if !failure.hold.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(failure.hold) => {}
            () = state.shutdown.cancelled() => {}
        }
    }
}

/// The throttle's name for a bind DN: normalised when it parses.
fn account_key(dn: &str) -> String {
    match Dn::parse(dn) {
        Ok(dn) => dn.norm().to_string(),
        Err(_) => dn.to_ascii_lowercase(),
    }
}

/// The identity `cred` proves, or why not; neither throttled nor recorded.
async fn check(state: &State, origin: &Origin, cred: &Simple<'_>) -> Result<Principal, Refused> {
    let (dn, password) = (cred.dn, cred.secret);
    if dn.is_empty() && password.is_empty() {
        if cred.front != Front::Ldap {
            return Err(invalid("no credentials"));
        }
        // As slapd's `disallow bind_anon` and 389-ds do.
        if state.config.security.anonymous == crate::config::AnonymousAccess::None {
            return Err(DitError::new(
                LdapResultCode::InappropriateAuthentication,
                "anonymous bind disallowed",
            )
            .into());
        }
        return Ok(Principal::Anonymous);
    }
    if password.is_empty() {
        return Err(
            DitError::unwilling("unauthenticated bind (DN with no password) disallowed").into(),
        );
    }
    if state.config.security.require_tls_for_bind && !cred.protected {
        // Refused, but the secret has crossed the wire readable already (RFC 4513 §6.3.3).
        state.token_exposed(origin, dn, password).await;
        return Err(DitError::new(
            LdapResultCode::ConfidentialityRequired,
            "binds with a password require TLS (use ldaps:// or StartTLS) or LDAPI",
        )
        .into());
    }
    match cred.front {
        Front::HttpBearer => return token(state, dn, password, Front::HttpBearer).await,
        Front::HttpBasic if is_token(cred) => {
            return Err(invalid(
                "a token sent as a password (tokens go in a Bearer header)",
            ));
        }
        Front::Console if is_token(cred) => {
            return Err(invalid(
                "a token or app password given to the console, which takes passwords only",
            ));
        }
        Front::Ldap if is_token(cred) => return token(state, dn, password, Front::Ldap).await,
        Front::HttpBasic | Front::Console | Front::Ldap => {}
    }
    password_check(state, dn, password, cred.readable).await
}

/// A password, checked with argon2 (a decoy's when the DN has none).
async fn password_check(
    state: &State,
    dn: &str,
    password: &str,
    readable: bool,
) -> Result<Principal, Refused> {
    let target = Dn::parse(dn)
        .ok()
        .filter(|d| d.is_within(&state.config.suffix));
    let (stored, expires) = match &target {
        Some(dn) => {
            let dn = dn.clone();
            state
                .store
                .read(move |r| {
                    Ok::<_, DitError>(r.entry_by_dn(&dn)?.map(|(_, e)| {
                        let expires = e.first_str("accountExpires").map(str::to_string);
                        (e.values("userPassword").to_vec(), expires)
                    }))
                })
                .await?
                .unwrap_or_default()
        }
        None => (Vec::new(), None),
    };
    let mut hashes: Vec<StoredPassword> = stored
        .iter()
        .filter_map(|v| StoredPassword::parse(v))
        .collect();
    let reason = match (&target, stored.is_empty(), hashes.is_empty()) {
        (None, _, _) => "no such entry in the directory",
        (Some(_), true, _) => "unknown DN or no password",
        (Some(_), false, true) => "unsupported password hash scheme",
        (Some(_), false, false) => "wrong password",
    };
    let real = !hashes.is_empty();
    // One argon2 run for every bind, whatever is stored: with no argon2 hash to check (an
    // unknown DN, no password, only legacy schemes), the decoy's, so timing tells none apart.
    if !hashes.iter().any(StoredPassword::is_argon2)
        && let Some(decoy) = StoredPassword::parse(state.decoy_hash.as_bytes())
    {
        hashes.push(decoy);
    }
    let candidate = password.as_bytes().to_vec();
    let params = state.config.argon2;
    // The decoy runs on the same pool, in the same queue, as a real check; every hash is
    // checked, a match or not.
    let verified = state
        .hashers
        .run(move |memory| {
            let matched: Vec<bool> = hashes
                .iter()
                .map(|h| h.verify_in(&candidate, memory))
                .collect();
            hashes
                .iter()
                .zip(matched)
                .find(|(_, m)| *m)
                .map(|(h, _)| h.needs_rehash(&params))
        })
        .await
        .map_err(hashers_failed)?;
    if !readable {
        return Err(invalid("password is not UTF-8"));
    }
    let (Some(needs_rehash), true, Some(dn)) = (verified, real, target) else {
        return Err(invalid(reason));
    };
    if credentials::expired(expires.as_deref(), state.clock.now()) {
        return Err(invalid("expired account"));
    }
    if needs_rehash {
        rehash(state, &dn, password).await;
    }
    Ok(Principal::Entry(dn))
}

/// A token: an API token (`dn=token` or the account's DN), an app password (the person's
/// DN), or over HTTP an `http-api` token. Tokens are high-entropy, so this is a SHA-256,
/// not an argon2 run.
async fn token(state: &State, dn: &str, secret: &str, front: Front) -> Result<Principal, Refused> {
    let presentation = if front == Front::HttpBearer {
        Presentation::Bearer
    } else if credentials::is_token_dn(dn) {
        Presentation::TokenDn
    } else {
        Presentation::Account(Dn::parse(dn).map_err(|_| invalid("bind DN is not a DN"))?)
    };
    let secret = secret.to_string();
    let now = state.clock.now();
    let checked = state.store.read_inline(move |r| {
        let Some(presented) = token_format::parse(&secret) else {
            return Ok::<_, DitError>(None);
        };
        Ok(Some(credentials::verify_bind(
            r,
            &presented,
            &presentation,
            now,
        )?))
    })?;
    let valid = match checked {
        Some(TokenCheck::Valid(valid)) => valid,
        Some(other) => return Err(invalid(other.reason())),
        None => return Err(invalid("malformed token (bad checksum or shape)")),
    };
    state.record_token_use(&valid);
    Ok(Principal::Token {
        account: valid.account,
        token_id: valid.id,
    })
}

/// Replace an imported legacy hash with argon2id after a successful bind. Best effort:
/// a failure is logged and the bind still succeeds.
async fn rehash(state: &State, dn: &Dn, password: &str) {
    let hashed = match state.hash_password(password.as_bytes().to_vec()).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(dn = %dn, error = %e.message, "password rehash failed");
            return;
        }
    };
    let op = Op::Rehash {
        dn: dn.to_string(),
        hashed,
    };
    let result = state.submit(Command::server(state.clock.now(), op)).await;
    match result {
        Ok(_) => tracing::info!(
            event = "password-rehash",
            "legacy password hash upgraded to argon2id"
        ),
        Err(e) => tracing::warn!(error = %e.message, "password rehash failed"),
    }
}
