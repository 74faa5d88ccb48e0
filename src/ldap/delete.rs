//! Delete (RFC 4511 §4.8): leaf entries only (66 otherwise).

use ldap3_proto::proto::LdapResultCode;

use crate::directory::access::Rights;
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
    let policy = access::Policy::of(state);
    let principal = ctx.session.principal.clone();
    state
        .store
        .write(move |w| {
            let caller = access::caller(w, &principal, &policy)?;
            caller.require_bound()?;
            let Some((id, entry)) = access::visible(w, &caller, &dn)? else {
                return Err(LdapError::missing(w, &dn));
            };
            let revoke = revokes(w, &caller, &entry)?;
            if !revoke {
                caller.require_on(w, Rights::DELETE, &entry)?;
            }
            if w.has_children(id)? {
                return Err(LdapError::new(
                    LdapResultCode::NotAllowedOnNonLeaf,
                    "subordinate objects must be deleted first",
                ));
            }
            w.delete(id, &entry)?;
            crate::ldap::write::refint(w, &entry.dn, None)?;
            let actor = caller.dn().map(ToString::to_string).unwrap_or_default();
            Ok((entry, actor))
        })
        .await
        .map(|(entry, actor)| {
            // Logged once committed.
            if entry.has_class(token::CLASS) {
                tracing::info!(
                    event = "token-revoked",
                    token_id = entry.first_str("tokenId").unwrap_or_default(),
                    account = %entry.dn.parent().map(|a| a.to_string()).unwrap_or_default(),
                    actor = %actor,
                );
            }
            tracing::info!(dn = %entry.dn, actor = %actor, "entry deleted");
        })
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
