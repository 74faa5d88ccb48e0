//! Add (RFC 4511 §4.7): schema-checked, with server-maintained attributes, POSIX id
//! allocation and hashed passwords, in one write transaction.

use ldap3_proto::proto::LdapAddRequest;

use crate::directory::access::Rights;
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::ldap::OpContext;
use crate::ldap::access;
use crate::ldap::result::LdapError;
use crate::ldap::write::{self, check_entry, check_user_modifiable};
use crate::store::{DirectoryRead, StoreError};

pub async fn add(ctx: &OpContext, req: &LdapAddRequest) -> Result<(), LdapError> {
    let state = &ctx.state;
    write::may_attempt(ctx, |_, _| Ok(false)).await?;
    let dn = Dn::parse(&req.dn)?;
    let mut entry = Entry::new(dn.clone());
    let mut member_uids = Vec::new();
    for (name, values) in write::request_attrs(&state.schema, &req.attributes)? {
        check_user_modifiable(&state.schema, &name)?;
        if values.is_empty() {
            return Err(LdapError::protocol(format!("{name}: no values given")));
        }
        if name.eq_ignore_ascii_case("memberUid") {
            member_uids = values;
            continue;
        }
        let values = if name.eq_ignore_ascii_case("userPassword") {
            write::hash_passwords(state, values).await?
        } else {
            values
        };
        entry.set(&name, values);
    }
    let suffix = state.config.suffix.clone();
    write::add_member_uids(&suffix, &mut entry, &member_uids);
    write::ensure_rdn_values(&state.schema, &mut entry)?;
    write::expand_classes(&state.schema, &mut entry);
    let schema = state.schema.clone();
    let posix = state.config.posix.clone();
    let policy = access::Policy::of(state);
    let principal = ctx.session.principal.clone();
    state
        .store
        .write(move |w| {
            let caller = access::caller(w, &principal, &policy)?;
            // The right is checked before existence, so only those who may add learn
            // what is there.
            caller.require_on(w, Rights::ADD, &entry)?;
            if !dn.is_within(&suffix) {
                return Err(LdapError::no_such_object(String::new()));
            }
            if w.id_of(&dn)?.is_some() {
                return Err(StoreError::AlreadyExists.into());
            }
            if dn != suffix {
                let parent = dn.parent().unwrap_or_else(Dn::root);
                if w.id_of(&parent)?.is_none() {
                    return Err(LdapError::missing(w, &dn));
                }
            }
            write::derive_member_uid(&mut entry);
            write::posix_ids(w, &posix, &mut entry, None)?;
            let actor = caller.dn().map(ToString::to_string).unwrap_or_default();
            write::stamp_new(&schema, &mut entry, &actor, &write::now_generalized());
            write::check_service_account(&entry)?;
            access::check_role(&entry, &policy)?;
            check_entry(&schema, &entry)?;
            if dn == suffix {
                w.add_suffix(&entry)?;
            } else {
                w.add(&entry)?;
            }
            tracing::info!(dn = %entry.dn, actor = %actor, "entry added");
            Ok(())
        })
        .await
}
