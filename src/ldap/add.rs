//! Add (RFC 4511 §4.7): decoded here, decided and stored by `dit::write::add` (as a
//! command, `State::submit`), with passwords hashed on the hashing pool first.

use ldap3_proto::proto::LdapAddRequest;

use crate::directory::dn::Dn;
use crate::dit::command::Op;
use crate::dit::write::{self, Attempt};
use crate::dit::{DitError, entry};
use crate::ldap::OpContext;

pub async fn add(ctx: &OpContext, req: &LdapAddRequest) -> Result<(), DitError> {
    let state = &ctx.state;
    crate::ldap::may_attempt(ctx, Attempt::Add, None).await?;
    let dn = Dn::parse(&req.dn)?;
    let attrs = entry::request_attrs(
        &state.schema,
        req.attributes
            .iter()
            .map(|a| (a.atype.as_str(), a.vals.as_slice())),
    )?;
    let mut new = write::new_entry(&state.schema, &state.config.suffix, dn, attrs)?;
    if let Some(attr) = new.get_mut("userPassword") {
        let values = std::mem::take(&mut attr.values);
        attr.values = state.hash_passwords(values).await?;
    }
    let command = ctx.command(Op::add(&new));
    state.submit(command).await.map(drop)
}
