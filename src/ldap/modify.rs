//! Modify (RFC 4511 §4.6): decoded here, applied atomically and checked by
//! `dit::write::modify`, with new passwords hashed on the hashing pool first.

use ldap3_proto::proto::{LdapModifyRequest, LdapModifyType};

use crate::directory::dn::Dn;
use crate::dit::DitError;
use crate::dit::command::Op;
use crate::dit::write::{Attempt, Change, ChangeKind};
use crate::ldap::OpContext;

pub async fn modify(ctx: &OpContext, req: &LdapModifyRequest) -> Result<(), DitError> {
    let state = &ctx.state;
    // A service account's managers may update it: the target decides.
    let target = Dn::parse(&req.dn).ok();
    crate::ldap::may_attempt(ctx, Attempt::Modify, target).await?;
    let dn = Dn::parse(&req.dn)?;
    let mut changes = Vec::with_capacity(req.changes.len());
    for m in &req.changes {
        let kind = match m.operation {
            LdapModifyType::Add => ChangeKind::Add,
            LdapModifyType::Delete => ChangeKind::Delete,
            LdapModifyType::Replace => ChangeKind::Replace,
            LdapModifyType::Increment => ChangeKind::Increment,
        };
        let mut change = Change::from_request(
            &state.schema,
            &state.config.suffix,
            kind,
            &m.modification.atype,
            m.modification.vals.clone(),
        )?;
        if change.sets_password() {
            change.values = state.hash_passwords(change.values).await?;
        }
        changes.push(change);
    }
    let command = ctx.command(Op::modify(&dn, changes));
    state.submit(command).await.map(drop)
}
