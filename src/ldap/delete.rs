//! Delete (RFC 4511 §4.8): leaf entries only (66 otherwise).

use ldap3_proto::proto::LdapResultCode;

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::ldap::OpContext;
use crate::ldap::result::LdapError;
use crate::ldap::{access, token};
use crate::store::{DirectoryRead, StoreError};

pub async fn delete(ctx: &OpContext, dn: &str) -> Result<(), LdapError> {
    let state = &ctx.state;
    let target = Dn::parse(dn).ok();
    crate::ldap::write::may_attempt(ctx, move |r, caller| {
        let Some((_, entry)) = target.map(|dn| r.entry_by_dn(&dn)).transpose()?.flatten() else {
            return Ok(false);
        };
        revokes(r, caller, &entry)
    })
    .await?;
    let dn = Dn::parse(dn)?;
    let suffix = state.config.suffix.clone();
    let principal = ctx.session.principal.clone();
    let now = ctx.state.now();
    state
        .store
        .write(move |w| {
            let caller = access::caller(w, &principal, &suffix, &now)?;
            let Some((id, entry)) = w.entry_by_dn(&dn)? else {
                caller.require_write()?;
                return Err(LdapError::missing(w, &dn));
            };
            let revoke = revokes(w, &caller, &entry)?;
            if !revoke {
                caller.require_write()?;
            }
            if w.has_children(id)? {
                return Err(LdapError::new(
                    LdapResultCode::NotAllowedOnNonLeaf,
                    "subordinate objects must be deleted first",
                ));
            }
            w.delete(id, &entry)?;
            if revoke || entry.has_class(token::CLASS) {
                tracing::info!(event = "token-revoked", dn = %entry.dn, actor = ?caller.dn().map(ToString::to_string));
            }
            crate::ldap::write::refint(w, &entry.dn, None)?;
            tracing::info!(dn = %entry.dn, actor = ?caller.dn().map(ToString::to_string), "entry deleted");
            Ok(())
        })
        .await
}

/// Revoking a token: its account's managers may, as well as administrators.
fn revokes(
    r: &impl DirectoryRead,
    caller: &access::Caller,
    entry: &Entry,
) -> Result<bool, StoreError> {
    let Some(account) = entry
        .has_class(token::CLASS)
        .then(|| entry.dn.parent())
        .flatten()
    else {
        return Ok(false);
    };
    match r.entry_by_dn(&account)? {
        Some((_, account)) => token::may_manage(r, caller, &account),
        None => Ok(false),
    }
}
