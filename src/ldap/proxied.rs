//! Proxied authorization (RFC 4370): one operation run as another identity, with exactly
//! its rights, for holders of the impersonate right over that identity.
//!
//! The control must be critical; its value is an authzId (`dn:DN`, `u:NAME`, or empty for
//! anonymous). Refusals are 123 authorizationDenied, whatever the reason, so the control
//! does not tell which identities exist.

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::LdapResultCode;

use crate::dit::DitError;
use crate::dit::caller::Principal;
use crate::dit::proxy::authorize;
use crate::ldap::{OpContext, oid};

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
    let policy = ctx.policy();
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
