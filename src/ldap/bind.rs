//! Bind (RFC 4511 §4.2, RFC 4513): anonymous, simple with a password, and SASL EXTERNAL
//! on the LDAPI socket (peer credentials) and over TLS (a verified client certificate).
//!
//! Every failed credential check gives the same 49 with the same message, after an argon2
//! verification whether or not the entry exists, so neither code nor timing tells an
//! unknown DN from a wrong password; the reason goes to the audit log (`event=bind`,
//! `reason=...`), never the secret. The connection is anonymous until a bind succeeds.
//! An anonymous bind is refused with 48 when `security.anonymous = "none"`.

use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapResult, LdapResultCode};

use crate::config::AnonymousAccess;
use crate::directory::dn::Dn;
use crate::dit::caller::Principal;
use crate::dit::command::{Command, Op};
use crate::dit::credentials::TokenCheck;
use crate::dit::names::SERVICE_CLASS;
use crate::dit::{DitError, credentials};
use crate::identity::password::StoredPassword;
use crate::identity::throttle::Source;
use crate::identity::token as token_format;
use crate::ldap::result::{failure, success};
use crate::ldap::session::{ClientCert, Session, Transport};
use crate::state::{State, hashers_failed};
use crate::store::DirectoryRead;

/// Run a bind. `readable` is false when the simple bind's password was octets that are not
/// UTF-8 (see `server::frame`): such a bind fails as a wrong password does.
pub async fn bind(
    state: &State,
    session: &mut Session,
    req: &LdapBindRequest,
    readable: bool,
) -> LdapResult {
    // RFC 4513 §4: a bind, whatever its outcome, first drops the current identity.
    session.principal = Principal::Anonymous;
    let source = Source::of(session.peer);
    // Only guessable credentials are throttled; a certificate or peer credential is not.
    let simple = matches!(req.cred, LdapBindCred::Simple(_));
    match run(state, session, req, readable).await {
        Ok(principal) => {
            if simple && !matches!(principal, Principal::Anonymous | Principal::Local { .. }) {
                state.throttle.succeeded(&account_key(&req.dn), &source);
            }
            let token_id = match &principal {
                Principal::Token { token_id, .. } => token_id.as_str(),
                _ => "",
            };
            tracing::info!(
                event = "bind",
                outcome = "success",
                dn = %principal.dn().map(ToString::to_string).unwrap_or_default(),
                token_id,
            );
            session.principal = principal;
            success()
        }
        Err(Refused { error: e, reason }) => {
            if simple && e.code == LdapResultCode::InvalidCredentials {
                hold_failure(state, &req.dn, &source).await;
            }
            // The token id is public; the secret after it is never logged.
            let token_id = match &req.cred {
                LdapBindCred::Simple(pw) => token_format::parse(pw).map(|p| p.id.to_string()),
                _ => None,
            };
            tracing::info!(
                event = "bind",
                outcome = "failure",
                code = e.code.clone() as i64,
                reason,
                dn = %req.dn,
                token_id = token_id.unwrap_or_default(),
            );
            failure(e)
        }
    }
}

/// Slow a failed bind down as the throttle says, before its 49 goes out: the same answer,
/// only later, so the delay tells nothing an attacker did not know.
async fn hold_failure(state: &State, dn: &str, source: &Source) {
    let account = account_key(dn);
    let failure = state.throttle.failed(&account, source, state.clock.now());
    if failure.started {
        tracing::warn!(
            event = "bind-throttled",
            account = %account,
            source = %source,
            failures = failure.failures,
            "failed binds are being slowed down"
        );
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

/// A refused bind: the client's answer, and for the audit log, why.
struct Refused {
    error: DitError,
    reason: &'static str,
}

impl From<DitError> for Refused {
    fn from(error: DitError) -> Self {
        Refused { error, reason: "" }
    }
}

/// The one answer for every failed credential check (49), and the reason behind it.
fn invalid(reason: &'static str) -> Refused {
    Refused {
        error: DitError::invalid_credentials(),
        reason,
    }
}

async fn run(
    state: &State,
    session: &Session,
    req: &LdapBindRequest,
    readable: bool,
) -> Result<Principal, Refused> {
    if req.version != 3 {
        return Err(DitError::protocol("historical protocol version requested, use LDAPv3").into());
    }
    // A cluster member cut off from its cluster: 52, so the client fails over. The local
    // administrator on LDAPI may still look.
    if !matches!(session.transport, Transport::Ldapi { .. })
        && let Some(refusal) = state.cut_off()
    {
        return Err(refusal.into());
    }
    match &req.cred {
        LdapBindCred::Simple(password) => simple(state, session, &req.dn, password, readable).await,
        LdapBindCred::SASL(sasl) if sasl.mechanism.eq_ignore_ascii_case("EXTERNAL") => {
            external(state, session, &sasl.credentials).await
        }
        LdapBindCred::SASL(sasl) => Err(DitError::new(
            LdapResultCode::AuthMethodNotSupported,
            format!("SASL mechanism {} is not supported", sasl.mechanism),
        )
        .into()),
        LdapBindCred::Unsupported => Err(DitError::new(
            LdapResultCode::AuthMethodNotSupported,
            "authentication method not supported",
        )
        .into()),
    }
}

async fn simple(
    state: &State,
    session: &Session,
    dn: &str,
    password: &str,
    readable: bool,
) -> Result<Principal, Refused> {
    if dn.is_empty() && password.is_empty() {
        // As slapd's `disallow bind_anon` and 389-ds do.
        if state.config.security.anonymous == AnonymousAccess::None {
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
    if state.config.security.require_tls_for_bind && !session.transport.is_protected() {
        // Refused, but the secret has crossed the wire readable already (RFC 4513 §6.3.3).
        state.token_exposed(dn, password).await;
        return Err(DitError::new(
            LdapResultCode::ConfidentialityRequired,
            "binds with a password require TLS (use ldaps:// or StartTLS) or LDAPI",
        )
        .into());
    }
    if readable && (token_format::looks_like_token(password) || credentials::is_token_dn(dn)) {
        return token_bind(state, dn, password).await;
    }
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

/// A bind with an API token (`dn=token` or the account's DN) or an app password (the
/// person's DN). Tokens are high-entropy, so this is a SHA-256, not an argon2 run.
async fn token_bind(state: &State, dn: &str, password: &str) -> Result<Principal, Refused> {
    let target = if credentials::is_token_dn(dn) {
        None
    } else {
        Some(Dn::parse(dn).map_err(|_| invalid("bind DN is not a DN"))?)
    };
    let password = password.to_string();
    let now = state.clock.now();
    let checked = state.store.read_inline(move |r| {
        let Some(presented) = token_format::parse(&password) else {
            return Ok::<_, DitError>(None);
        };
        Ok(Some(credentials::verify_bind(
            r,
            &presented,
            target.as_ref(),
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

/// SASL EXTERNAL: the peer credentials of the LDAPI socket, or the client certificate of
/// a TLS connection when `tls.client_ca` is set.
async fn external(state: &State, session: &Session, authzid: &[u8]) -> Result<Principal, Refused> {
    match session.transport {
        Transport::Ldapi { uid, gid } => Ok(peer_credentials(state, uid, gid, authzid)?),
        Transport::Tls if state.config.tls.client_ca.is_some() => {
            certificate(state, session, authzid).await
        }
        Transport::Tls | Transport::Plain => Err(DitError::new(
            LdapResultCode::InappropriateAuthentication,
            "SASL EXTERNAL needs the LDAPI socket or a TLS client certificate",
        )
        .into()),
    }
}

/// The peer credentials of the LDAPI socket, in OpenLDAP's DN form.
fn peer_credentials(
    state: &State,
    uid: u32,
    gid: u32,
    authzid: &[u8],
) -> Result<Principal, DitError> {
    let text = format!("gidNumber={gid}+uidNumber={uid},cn=peercred,cn=external,cn=auth");
    let dn = Dn::parse(&text)?;
    if !authzid.is_empty() {
        let asked = std::str::from_utf8(authzid).unwrap_or_default();
        let asked = asked.strip_prefix("dn:").unwrap_or(asked);
        if Dn::parse(asked).ok().as_ref() != Some(&dn) {
            return Err(DitError::new(
                LdapResultCode::InappropriateAuthentication,
                "authorization identity does not match the peer credentials",
            ));
        }
    }
    let admin = uid == state.own_uid || state.config.security.admin_uids.contains(&uid);
    Ok(Principal::Local { dn, admin })
}

/// The entry whose DN is the verified certificate's subject: a person or a service
/// account, not expired. It then binds exactly as a password or token bind of that DN
/// would. No certificate, no such entry, another kind of entry, an expired account: 49.
/// An authorization identity other than `dn:<that DN>` is 50, as slapd answers an authzid
/// the authenticated identity may not assume.
async fn certificate(
    state: &State,
    session: &Session,
    authzid: &[u8],
) -> Result<Principal, Refused> {
    let subject = match &session.client_cert {
        ClientCert::Verified(subject) => subject.clone(),
        ClientCert::Absent => {
            return Err(Refused {
                error: DitError::new(LdapResultCode::InvalidCredentials, "no client certificate"),
                reason: "no client certificate",
            });
        }
        ClientCert::Unnamed => return Err(invalid("certificate subject names no entry")),
    };
    if !subject.is_within(&state.config.suffix) {
        return Err(invalid("certificate subject outside the directory"));
    }
    let now = state.clock.now();
    let lookup = subject.clone();
    let found = state
        .store
        .read(move |r| Ok::<_, DitError>(r.entry_by_dn(&lookup)?.map(|(_, e)| e)))
        .await?;
    let Some(entry) = found else {
        return Err(invalid("certificate subject names no entry"));
    };
    let account = entry.has_class("person") || entry.has_class(SERVICE_CLASS);
    if !account {
        return Err(invalid(
            "certificate subject is not a person or service account",
        ));
    }
    if credentials::expired(entry.first_str("accountExpires"), now) {
        return Err(invalid("expired account"));
    }
    if !authzid.is_empty() {
        let asked = std::str::from_utf8(authzid).unwrap_or_default();
        let same = asked
            .strip_prefix("dn:")
            .and_then(|dn| Dn::parse(dn).ok())
            .is_some_and(|dn| dn == entry.dn);
        if !same {
            return Err(DitError::insufficient_access().into());
        }
    }
    Ok(Principal::Entry(entry.dn))
}
