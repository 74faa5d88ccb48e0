//! Setting a password (Password Modify, and every later front end that sets or resets
//! one): who may, and the write. The new password arrives hashed; verifying an old one
//! runs on the hashing pool before the transaction.

use crate::audit::{self, Event, Kind};
use crate::directory::access::Rights;
use crate::directory::dn::Dn;
use crate::directory::time::generalized;
use crate::dit::caller::{self, Caller, Policy};
use crate::dit::error::DitError;
use crate::dit::{control, entry};
use crate::store::{DirectoryRead, Writer};

/// Everyone may set their own password; others' takes the reset-password right over them,
/// and rights that cover theirs (see `dit::control`).
pub fn require_may_set(
    r: &impl DirectoryRead,
    policy: &Policy,
    caller: &Caller,
    target: &Dn,
) -> Result<(), DitError> {
    if caller.is_read_only() {
        return Err(DitError::insufficient_access());
    }
    if caller.dn() == Some(target) || caller.is_admin() {
        return Ok(());
    }
    let Some((_, e)) = caller::visible(r, caller, target)? else {
        return Err(DitError::insufficient_access());
    };
    let e = caller.decidable(r, &e)?;
    if !caller.may(Rights::RESET_PASSWORD, &e) {
        return Err(DitError::insufficient_access());
    }
    control::require_cover(r, caller, target, policy, "set its password")
}

/// Replace the password of `target` with `hashed`, as `caller`.
pub fn set(
    w: &mut Writer<'_>,
    policy: &Policy,
    caller: &Caller,
    target: &Dn,
    hashed: String,
) -> Result<(), DitError> {
    require_may_set(w, policy, caller, target)?;
    let Some((id, old)) = w.entry_by_dn(target)? else {
        return Err(DitError::no_such_object(String::new()));
    };
    if !old.has_class("person") && !old.has_class("simpleSecurityObject") {
        return Err(DitError::unwilling("this entry cannot have a password"));
    }
    let mut changed = old.clone();
    changed.set("userPassword", vec![hashed.into_bytes()]);
    let actor = caller.dn().map(ToString::to_string).unwrap_or_default();
    entry::stamp_modified(&mut changed, &actor, &generalized(policy.now));
    w.replace(id, &old, &changed)?;
    let event = Event::new(Kind::PasswordChanged)
        .actor(&actor)
        .target(&changed.dn);
    audit::write(w, policy.now, &policy.origin, event)?;
    Ok(())
}
