//! Delete (RFC 4511 §4.8): leaf entries only (66 otherwise).

use ldap3_proto::proto::LdapResultCode;

use crate::directory::dn::Dn;
use crate::ldap::OpContext;
use crate::ldap::access;
use crate::ldap::result::LdapError;
use crate::store::DirectoryRead;

pub async fn delete(ctx: &OpContext, dn: &str) -> Result<(), LdapError> {
    let state = &ctx.state;
    let dn = Dn::parse(dn)?;
    let suffix = state.config.suffix.clone();
    let principal = ctx.session.principal.clone();
    state
        .store
        .write(move |w| {
            let caller = access::caller(w, &principal, &suffix)?;
            caller.require_write()?;
            let Some((id, entry)) = w.entry_by_dn(&dn)? else {
                return Err(LdapError::missing(w, &dn));
            };
            if w.has_children(id)? {
                return Err(LdapError::new(
                    LdapResultCode::NotAllowedOnNonLeaf,
                    "subordinate objects must be deleted first",
                ));
            }
            w.delete(id, &entry)?;
            crate::ldap::write::refint(w, &entry.dn, None)?;
            tracing::info!(dn = %entry.dn, actor = ?caller.dn().map(ToString::to_string), "entry deleted");
            Ok(())
        })
        .await
}
