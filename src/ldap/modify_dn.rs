//! ModifyDN (RFC 4511 §4.9): rename a leaf entry and/or move it under a new superior.

use ldap3_proto::proto::{LdapModifyDNRequest, LdapResultCode};

use crate::directory::access::Rights;
use crate::directory::dn::{Dn, Rdn};
use crate::directory::filter::normalize;
use crate::ldap::OpContext;
use crate::ldap::access;
use crate::ldap::result::LdapError;
use crate::ldap::write::{self, check_entry};
use crate::store::{DirectoryRead, StoreError};

pub async fn modify_dn(ctx: &OpContext, req: &LdapModifyDNRequest) -> Result<(), LdapError> {
    let state = &ctx.state;
    write::may_attempt(ctx, |_, _| Ok(false)).await?;
    let dn = Dn::parse(&req.dn)?;
    let new_rdn = Rdn::parse(&req.newrdn)?;
    let new_superior = match &req.new_superior {
        Some(s) => Some(Dn::parse(s)?),
        None => None,
    };
    let delete_old = req.deleteoldrdn;
    let suffix = state.config.suffix.clone();
    let schema = state.schema.clone();
    let policy = access::Policy::of(state);
    let principal = ctx.session.principal.clone();
    state
        .store
        .write(move |w| {
            let caller = access::caller(w, &principal, &policy)?;
            caller.require_bound()?;
            let Some((id, old)) = access::visible(w, &caller, &dn)? else {
                return Err(LdapError::missing(w, &dn));
            };
            caller.require_on(w, Rights::RENAME, &old)?;
            if dn == suffix {
                return Err(LdapError::unwilling("the suffix entry cannot be renamed"));
            }
            if w.has_children(id)? {
                return Err(LdapError::new(
                    LdapResultCode::NotAllowedOnNonLeaf,
                    "renaming entries with subordinates is not supported",
                ));
            }
            let parent = match new_superior {
                Some(p) => p,
                None => dn.parent().unwrap_or_else(Dn::root),
            };
            if !parent.is_within(&suffix) {
                return Err(LdapError::unwilling(
                    "new superior is outside the directory",
                ));
            }
            if w.id_of(&parent)?.is_none() {
                return Err(LdapError::missing(w, &parent));
            }
            let new_dn = parent.child(new_rdn.clone());
            if new_dn != dn && w.id_of(&new_dn)?.is_some() {
                return Err(StoreError::AlreadyExists.into());
            }
            let mut entry = old.clone();
            entry.dn = new_dn.clone();
            // The new name must be within the caller's reach too.
            caller.require_on(w, Rights::RENAME, &entry)?;
            if let Some(old_rdn) = dn.rdn().filter(|_| delete_old) {
                for ava in &old_rdn.avas {
                    let name = write::attr_name(&schema, &ava.attr)?;
                    let rule = schema.attribute(&name).and_then(|a| a.equality);
                    let gone = normalize(rule, ava.value.as_bytes());
                    let kept: Vec<Vec<u8>> = entry
                        .values(&name)
                        .iter()
                        .filter(|v| normalize(rule, v) != gone)
                        .cloned()
                        .collect();
                    entry.set(&name, kept);
                }
            }
            write::ensure_rdn_values(&schema, &mut entry)?;
            let actor = caller.dn().map(ToString::to_string).unwrap_or_default();
            write::stamp_modified(&mut entry, &actor, &write::now_generalized());
            check_entry(&schema, &entry)?;
            w.rename(id, &old, &entry)?;
            write::refint(w, &old.dn, Some(&new_dn))?;
            tracing::info!(from = %old.dn, to = %new_dn, actor = %actor, "entry renamed");
            Ok(())
        })
        .await
}
