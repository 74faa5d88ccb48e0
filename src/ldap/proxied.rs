//! Proxied authorization (RFC 4370): one operation run as another identity, with exactly
//! its rights, for holders of the impersonate right over that identity.
//!
//! The control must be critical; its value is an authzId (`dn:DN`, `u:NAME`, or empty for
//! anonymous). Refusals are 123 authorizationDenied, whatever the reason, so the control
//! does not tell which identities exist.

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::LdapResultCode;

use crate::directory::access::Rights;
use crate::directory::dn::{Dn, Rdn};
use crate::dit::DitError;
use crate::dit::caller::{self, Policy, Principal};
use crate::dit::control;
use crate::ldap::{OpContext, oid};
use crate::store::DirectoryRead;

/// Take the proxied authorization control out of `ctx` and, when there is one, put the
/// identity it names in the operation's session.
pub async fn apply(ctx: &mut OpContext) -> Result<(), DitError> {
    let Some(at) = ctx
        .controls
        .iter()
        .position(|c| matches!(c, LdapControl::Unknown { oid: o, .. } if o == oid::PROXIED_AUTHZ))
    else {
        return Ok(());
    };
    let LdapControl::Unknown {
        criticality, value, ..
    } = ctx.controls.remove(at)
    else {
        return Ok(());
    };
    if !criticality {
        return Err(DitError::protocol(
            "the proxied authorization control must be critical",
        ));
    }
    let authz = String::from_utf8(value.unwrap_or_default())
        .map_err(|_| DitError::protocol("the authzId is not UTF-8"))?;
    let principal = ctx.session.principal.clone();
    let policy = ctx.state.policy();
    let target = ctx
        .state
        .store
        .read_inline(move |r| authorize(r, &policy, &principal, &authz))?;
    let Some((target, read_only)) = target else {
        return Err(denied());
    };
    tracing::info!(
        event = "proxied-authorization",
        actor = %ctx.session.principal.dn().map(ToString::to_string).unwrap_or_default(),
        target = %target,
    );
    ctx.session.principal = Principal::Proxied { target, read_only };
    Ok(())
}

fn denied() -> DitError {
    DitError::new(
        LdapResultCode::AuthorizationError,
        "proxied authorization denied",
    )
}

/// The identity `authz` names (the root DN for anonymous), if the caller may act as it,
/// and whether the caller is read-only (a read-only token stays one).
fn authorize(
    r: &impl DirectoryRead,
    policy: &Policy,
    principal: &Principal,
    authz: &str,
) -> Result<Option<(Dn, bool)>, DitError> {
    let caller = caller::caller(r, principal, policy)?;
    if caller.is_anonymous() {
        return Ok(None);
    }
    let target = if authz.is_empty() {
        let may = caller.is_admin() || caller.has_right_anywhere(Rights::IMPERSONATE);
        return Ok(may.then(|| (Dn::root(), caller.is_read_only())));
    } else if let Some(dn) = authz.strip_prefix("dn:") {
        match Dn::parse(dn) {
            Ok(dn) => dn,
            Err(_) => return Ok(None),
        }
    } else if let Some(name) = authz.strip_prefix("u:") {
        let Some(dn) = by_name(r, &policy.suffix, name)? else {
            return Ok(None);
        };
        dn
    } else {
        return Ok(None);
    };
    let Some((_, entry)) = caller::visible(r, &caller, &target)? else {
        return Ok(None);
    };
    if !caller.is_admin() {
        let decided = caller.decidable(r, &entry)?;
        // Acting as another takes rights that cover theirs (see `dit::control`).
        if !caller.may(Rights::IMPERSONATE, &decided)
            || control::require_cover(r, &caller, &target, policy, "act as it").is_err()
        {
            return Ok(None);
        }
    }
    Ok(Some((target, caller.is_read_only())))
}

/// `u:NAME`: a person, else a service account.
fn by_name(
    r: &impl DirectoryRead,
    suffix: &Dn,
    name: &str,
) -> Result<Option<Dn>, crate::store::StoreError> {
    for ou in ["people", "services"] {
        let dn = suffix
            .child(Rdn::single("ou", ou))
            .child(Rdn::single("uid", name));
        if r.id_of(&dn)?.is_some() {
            return Ok(Some(dn));
        }
    }
    Ok(None)
}
