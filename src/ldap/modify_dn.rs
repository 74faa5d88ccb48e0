//! ModifyDN (RFC 4511 §4.9): rename a leaf entry and/or move it under a new superior,
//! decided by `dit::write::rename`.

use ldap3_proto::proto::LdapModifyDNRequest;

use crate::directory::dn::{Dn, Rdn};
use crate::dit::write::{self, Attempt, Rename};
use crate::dit::{DitError, caller};
use crate::ldap::OpContext;

pub async fn modify_dn(ctx: &OpContext, req: &LdapModifyDNRequest) -> Result<(), DitError> {
    let state = &ctx.state;
    crate::ldap::may_attempt(ctx, Attempt::Rename, None).await?;
    let rename = Rename {
        dn: Dn::parse(&req.dn)?,
        new_rdn: Rdn::parse(&req.newrdn)?,
        new_superior: req.new_superior.as_deref().map(Dn::parse).transpose()?,
        delete_old_rdn: req.deleteoldrdn,
    };
    let policy = ctx.policy();
    let principal = ctx.session.principal.clone();
    state
        .store
        .write(move |w| {
            let caller = caller::caller(w, &principal, &policy)?;
            write::rename(w, &policy, &caller, &rename).map(drop)
        })
        .await
}
