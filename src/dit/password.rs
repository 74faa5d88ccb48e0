//! Setting a password (Password Modify, and every later front end that sets or resets
//! one): who may, and the write. The new password arrives hashed; verifying an old one
//! runs on the hashing pool before the transaction.

use crate::directory::access::Rights;
use crate::directory::dn::Dn;
use crate::directory::time::generalized;
use crate::dit::caller::{self, Caller, Policy};
use crate::dit::entry;
use crate::dit::error::DitError;
use crate::store::{DirectoryRead, StoreError, Writer};

/// Everyone may set their own password; others' takes the reset-password right over them.
pub fn may_set(r: &impl DirectoryRead, caller: &Caller, target: &Dn) -> Result<bool, StoreError> {
    if caller.is_read_only() {
        return Ok(false);
    }
    if caller.dn() == Some(target) || caller.is_admin() {
        return Ok(true);
    }
    let Some((_, e)) = caller::visible(r, caller, target)? else {
        return Ok(false);
    };
    let e = caller.decidable(r, &e)?;
    Ok(caller.may(Rights::RESET_PASSWORD, &e))
}

/// Replace the password of `target` with `hashed`, as `caller`.
pub fn set(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    target: &Dn,
    hashed: String,
) -> Result<(), DitError> {
    if !may_set(w, caller, target)? {
        return Err(DitError::insufficient_access());
    }
    let Some((id, old)) = w.entry_by_dn(target)? else {
        return Err(DitError::no_such_object(String::new()));
    };
    if !entry::is_a(&policy.schema, &old, "person")
        && !entry::is_a(&policy.schema, &old, "simpleSecurityObject")
    {
        return Err(DitError::unwilling("this entry cannot have a password"));
    }
    let mut changed = old.clone();
    changed.set("userPassword", vec![hashed.into_bytes()]);
    let actor = caller.dn().map(ToString::to_string).unwrap_or_default();
    entry::stamp_modified(&mut changed, &actor, &generalized(policy.now));
    w.replace(id, &old, &changed)?;
    tracing::info!(dn = %changed.dn, actor = %actor, "password changed");
    Ok(())
}
