//! ModifyDN (RFC 4511 §4.9): rename a leaf entry and/or move it under a new superior,
//! decided by `dit::write::rename` (as a command, `State::submit`).

use ldap3_proto::proto::LdapModifyDNRequest;

use crate::directory::dn::{Dn, Rdn};
use crate::dit::DitError;
use crate::dit::command::Op;
use crate::dit::write::Attempt;
use crate::ldap::OpContext;

pub async fn modify_dn(ctx: &OpContext, req: &LdapModifyDNRequest) -> Result<(), DitError> {
    let state = &ctx.state;
    crate::ldap::may_attempt(ctx, Attempt::Rename, None).await?;
    // Parsed here, so a malformed name is refused before anything is logged.
    let dn = Dn::parse(&req.dn)?;
    Rdn::parse(&req.newrdn)?;
    let new_superior = req.new_superior.as_deref().map(Dn::parse).transpose()?;
    let op = Op::Rename {
        dn: dn.to_string(),
        new_rdn: req.newrdn.clone(),
        new_superior: new_superior.map(|d| d.to_string()),
        delete_old_rdn: req.deleteoldrdn,
    };
    state.submit(ctx.command(op)).await.map(drop)
}
