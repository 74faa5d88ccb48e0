//! Acting as another identity (LDAP's proxied authorization, RFC 4370, and the HTTP
//! API's "search as"): who may, and as whom. Holders of the impersonate right over an
//! identity whose rights they cover (see `dit::control`) may; administrators always.

use crate::directory::access::Rights;
use crate::directory::dn::{Dn, Rdn};
use crate::dit::DitError;
use crate::dit::caller::{self, Policy, Principal};
use crate::dit::control;
use crate::store::DirectoryRead;

/// The identity `authz` names (the root DN for anonymous), if the caller may act as it,
/// and whether the caller is read-only (a read-only token stays one).
pub fn authorize(
    r: &impl DirectoryRead,
    policy: &Policy,
    principal: &Principal,
    authz: &str,
) -> Result<Option<(Dn, bool)>, DitError> {
    let caller = caller::caller(r, principal, policy)?;
    if caller.is_anonymous() {
        return Ok(None);
    }
    let target = if authz.is_empty() {
        let may = caller.is_admin() || caller.has_right_anywhere(Rights::IMPERSONATE);
        return Ok(may.then(|| (Dn::root(), caller.is_read_only())));
    } else if let Some(dn) = authz.strip_prefix("dn:") {
        match Dn::parse(dn) {
            Ok(dn) => dn,
            Err(_) => return Ok(None),
        }
    } else if let Some(name) = authz.strip_prefix("u:") {
        let Some(dn) = by_name(r, &policy.suffix, name)? else {
            return Ok(None);
        };
        dn
    } else {
        return Ok(None);
    };
    let Some((_, entry)) = caller::visible(r, &caller, &target)? else {
        return Ok(None);
    };
    if !caller.is_admin() {
        let decided = caller.decidable(r, &entry)?;
        // Acting as another takes rights that cover theirs (see `dit::control`).
        if !caller.may(Rights::IMPERSONATE, &decided)
            || control::require_cover(r, &caller, &target, policy, "act as it").is_err()
        {
            return Ok(None);
        }
    }
    Ok(Some((target, caller.is_read_only())))
}

/// `u:NAME`: a person, else a service account.
fn by_name(
    r: &impl DirectoryRead,
    suffix: &Dn,
    name: &str,
) -> Result<Option<Dn>, crate::store::StoreError> {
    for ou in ["people", "services"] {
        let dn = suffix
            .child(Rdn::single("ou", ou))
            .child(Rdn::single("uid", name));
        if r.id_of(&dn)?.is_some() {
            return Ok(Some(dn));
        }
    }
    Ok(None)
}
