//! Delete (RFC 4511 §4.8): leaf entries only (66 otherwise), decided by
//! `dit::write::delete`. Deleting a token's entry revokes it.

use crate::directory::dn::Dn;
use crate::dit::write::{self, Attempt};
use crate::dit::{DitError, caller};
use crate::ldap::OpContext;

pub async fn delete(ctx: &OpContext, dn: &str) -> Result<(), DitError> {
    let state = &ctx.state;
    // A token's managers may revoke it: the target decides.
    crate::ldap::may_attempt(ctx, Attempt::Delete, Dn::parse(dn).ok()).await?;
    let dn = Dn::parse(dn)?;
    let policy = ctx.policy();
    let principal = ctx.session.principal.clone();
    state
        .store
        .write(move |w| {
            let caller = caller::caller(w, &principal, &policy)?;
            write::delete(w, &policy, &caller, &dn).map(drop)
        })
        .await
}
