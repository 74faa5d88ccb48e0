//! Delete (RFC 4511 §4.8): leaf entries only (66 otherwise), decided by
//! `dit::write::delete`. Deleting a token's entry revokes it.

use crate::directory::dn::Dn;
use crate::dit::DitError;
use crate::dit::command::Op;
use crate::dit::write::Attempt;
use crate::ldap::OpContext;

pub async fn delete(ctx: &OpContext, dn: &str) -> Result<(), DitError> {
    let state = &ctx.state;
    // A token's managers may revoke it: the target decides.
    crate::ldap::may_attempt(ctx, Attempt::Delete, Dn::parse(dn).ok()).await?;
    let dn = Dn::parse(dn)?;
    let op = Op::Delete { dn: dn.to_string() };
    state.submit(ctx.command(op)).await.map(drop)
}
