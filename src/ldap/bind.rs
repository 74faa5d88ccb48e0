//! Bind (RFC 4511 §4.2, RFC 4513): anonymous, simple with a password or token (checked by
//! `authn`, which every front end shares), and SASL EXTERNAL on the LDAPI socket (peer
//! credentials) and over TLS (a verified client certificate).
//!
//! Every failed credential check gives the same 49 with the same message; the reason goes
//! to the audit trail (`event=bind`, `reason=...`), never the secret. The connection is
//! anonymous until a bind succeeds. An anonymous bind is refused with 48 when
//! `security.anonymous = "none"`.

use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapResult, LdapResultCode};

use crate::authn::{self, Front, Refused, Simple, invalid};
use crate::directory::dn::Dn;
use crate::dit::caller::Principal;
use crate::dit::names::SERVICE_CLASS;
use crate::dit::{DitError, credentials};
use crate::ldap::result::{failure, success};
use crate::ldap::session::{ClientCert, Session, Transport};
use crate::state::State;
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
    let cut_off = state
        .cut_off()
        .filter(|_| !matches!(session.transport, Transport::Ldapi { .. }));
    let result = match (&req.cred, req.version) {
        (_, version) if version != 3 => {
            let refused = DitError::protocol("historical protocol version requested, use LDAPv3");
            authn::conclude(
                state,
                &session.origin,
                session.peer,
                &req.dn,
                None,
                "other",
                Err(refused.into()),
            )
            .await
        }
        // A cluster member cut off from its cluster: 52, so the client fails over. The
        // local administrator on LDAPI may still look.
        (_, _) if cut_off.is_some() => {
            let refused = cut_off.unwrap_or_else(|| DitError::other("cut off"));
            authn::conclude(
                state,
                &session.origin,
                session.peer,
                &req.dn,
                None,
                "other",
                Err(refused.into()),
            )
            .await
        }
        (LdapBindCred::Simple(password), _) => {
            let cred = Simple {
                dn: &req.dn,
                secret: password,
                readable,
                protected: session.transport.is_protected(),
                front: Front::Ldap,
            };
            authn::simple(state, &session.origin, session.peer, &cred).await
        }
        (cred, _) => {
            let result = other(state, session, cred).await;
            authn::conclude(
                state,
                &session.origin,
                session.peer,
                &req.dn,
                None,
                "external",
                result,
            )
            .await
        }
    };
    match result {
        Ok(principal) => {
            session.principal = principal;
            success()
        }
        Err(e) => failure(e),
    }
}

/// SASL binds, and credentials of no kind this server knows.
async fn other(
    state: &State,
    session: &Session,
    cred: &LdapBindCred,
) -> Result<Principal, Refused> {
    match cred {
        LdapBindCred::SASL(sasl) if sasl.mechanism.eq_ignore_ascii_case("EXTERNAL") => {
            external(state, session, &sasl.credentials).await
        }
        LdapBindCred::SASL(sasl) => Err(DitError::new(
            LdapResultCode::AuthMethodNotSupported,
            format!("SASL mechanism {} is not supported", sasl.mechanism),
        )
        .into()),
        LdapBindCred::Simple(_) | LdapBindCred::Unsupported => Err(DitError::new(
            LdapResultCode::AuthMethodNotSupported,
            "authentication method not supported",
        )
        .into()),
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
