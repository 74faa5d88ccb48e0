//! Control of one identity by another: the rule that no identity may, through any
//! operation it is allowed, gain control of an identity whose rights it does not hold.
//!
//! Controlling an identity means setting its password, minting or rotating its tokens or
//! app passwords, acting as it (proxied authorization), becoming its manager
//! (`entryManagedBy`), or joining a group that confers roles or management. An identity's
//! rights are what controlling it (or joining it, for a group or role) confers: the
//! administrators' role, the other roles it holds, and the accounts it manages. An actor
//! covers a target when it is a directory administrator, or the target is not one, holds
//! no role the actor does not, and every account it manages the actor manages or covers.
//! Control operations on a target the actor does not cover are refused with 50 and a
//! message saying which right stands in the way. Role definitions (anything of an entry
//! under `ou=roles` but its members and description) are directory administrators' only.

use ldap3_proto::proto::LdapResultCode;

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::dit::caller::{self, Caller, Policy};
use crate::dit::error::{DitError, Refusal, Uncovered};
use crate::dit::names::{self, ROLE_CLASS};
use crate::store::{DirectoryRead, StoreError};

/// How far management is followed (an account that manages accounts that manage ...).
const MAX_DEPTH: usize = 4;

/// Refuse (50, saying why) unless `caller` covers `target`'s rights: what controlling
/// `target`, or joining it when it is a group or role, would confer. `doing` completes
/// "only a holder of every right it has may ...". The error carries the reason as a
/// [`Refusal`] too, for front ends that say it in their own words.
pub fn require_cover(
    r: &impl DirectoryRead,
    caller: &Caller,
    target: &Dn,
    policy: &Policy,
    doing: &str,
) -> Result<(), DitError> {
    if caller.is_admin() {
        return Ok(());
    }
    let mut seen = Vec::new();
    match uncovered(r, caller, target, policy, 0, &mut seen)? {
        None => Ok(()),
        Some(why) => {
            let mut e = DitError::new(
                LdapResultCode::InsufficentAccessRights,
                format!(
                    "{target} {}; only a holder of every right it has may {doing}",
                    why.third_person()
                ),
            );
            e.refusal = Some(Box::new(Refusal {
                target: target.clone(),
                why,
            }));
            Err(e)
        }
    }
}

/// Does changing `attrs` of `e` (an entry as stored, or about to be) touch a role's
/// definition? Only administrators may: a role's holders would otherwise widen it.
pub fn require_role_definition(
    caller: &Caller,
    policy: &Policy,
    e: &Entry,
    attrs: &[&str],
) -> Result<(), DitError> {
    if caller.is_admin() || !is_role(policy, e) {
        return Ok(());
    }
    let defines = attrs
        .iter()
        .any(|a| !a.eq_ignore_ascii_case("member") && !a.eq_ignore_ascii_case("description"));
    if defines {
        return Err(DitError::new(
            LdapResultCode::InsufficentAccessRights,
            format!(
                "{} is a role; only directory administrators define roles",
                e.dn
            ),
        ));
    }
    Ok(())
}

/// Is `e` a role: a `tesseraRole` entry directly under `ou=roles`?
pub fn is_role(policy: &Policy, e: &Entry) -> bool {
    e.has_class(ROLE_CLASS)
        && e.dn.parent().as_ref() == Some(&names::roles_container(&policy.suffix))
}

/// Why `caller` does not cover `target`, or None when it does.
fn uncovered(
    r: &impl DirectoryRead,
    caller: &Caller,
    target: &Dn,
    policy: &Policy,
    depth: usize,
    seen: &mut Vec<Dn>,
) -> Result<Option<Uncovered>, StoreError> {
    if seen.contains(target) {
        return Ok(None);
    }
    seen.push(target.clone());
    let admins = names::admin_role(&policy.suffix);
    let rights = caller::resolve(r, target, policy)?;
    if rights.is_admin() || target == &admins {
        return Ok(Some(Uncovered::Admin));
    }
    // A role confers itself on its members.
    let own_role = match r.entry_by_dn(target)? {
        Some((_, e)) if is_role(policy, &e) => Some(target.clone()),
        _ => None,
    };
    for role in own_role.iter().chain(rights.roles()) {
        if !caller.holds(role) {
            let name = role.rdn_value("cn").unwrap_or_default().to_string();
            return Ok(Some(if own_role.as_ref() == Some(role) {
                Uncovered::IsRole(name)
            } else {
                Uncovered::HoldsRole(name)
            }));
        }
    }
    for account in rights.managed() {
        let Ok(account) = Dn::parse(account) else {
            continue;
        };
        if caller.manages(&account) {
            continue;
        }
        if depth >= MAX_DEPTH {
            return Ok(Some(Uncovered::Manages(account, None)));
        }
        if let Some(why) = uncovered(r, caller, &account, policy, depth + 1, seen)? {
            return Ok(Some(Uncovered::Manages(account, Some(Box::new(why)))));
        }
    }
    Ok(None)
}

/// A DN as its text in serialized data.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::caller::Principal;
    use crate::dit::testing::*;

    /// Whether `actor` covers `target`, and the refusal's reason if not.
    fn covers(
        store: &crate::store::Store,
        policy: &Policy,
        actor: &Dn,
        target: &Dn,
    ) -> Result<(), String> {
        let caller = caller_of(store, policy, &Principal::Entry(actor.clone())).unwrap();
        store
            .read_blocking(|r| require_cover(r, &caller, target, policy, "test it"))
            .map_err(|e| {
                assert_eq!(e.code, LdapResultCode::InsufficentAccessRights);
                e.message
            })
    }

    #[test]
    fn cover_follows_roles_groups_and_management() {
        let (store, policy) = directory();
        let [dana, pam, pat, plain, owner] =
            ["dana", "pam", "pat", "plain", "owner"].map(|u| add_person(&store, &policy, u));
        grant(&store, &policy, "directory-admins", &dana);
        grant(&store, &policy, "people-admins", &pam);
        grant(&store, &policy, "people-admins", &pat);
        let owners = add_group(&store, &policy, "owners", &[&owner]);
        let svc = add_service(&store, &policy, "svc", Some(&owners));
        grant(&store, &policy, "directory-admins", &svc);
        let admins_group = add_group(&store, &policy, "admins", &[&plain]);
        grant(&store, &policy, "directory-admins", &admins_group);
        let empty = add_group(&store, &policy, "empty", &[&pat]);

        assert_eq!(covers(&store, &policy, &pam, &pat), Ok(()), "equal");
        assert_eq!(
            covers(&store, &policy, &pam, &empty),
            Ok(()),
            "confers nothing"
        );
        let why = covers(&store, &policy, &pam, &dana).unwrap_err();
        assert!(
            why.contains("holds directory-admins") && why.contains("test it"),
            "{why}"
        );
        let why = covers(&store, &policy, &pam, &owner).unwrap_err();
        assert!(why.contains(&format!("manages {svc}")), "{why}");
        let why = covers(&store, &policy, &pam, &owners).unwrap_err();
        assert!(why.contains("manages"), "a manager group: {why}");
        let why = covers(&store, &policy, &pam, &plain).unwrap_err();
        assert!(
            why.contains("directory-admins"),
            "an administrator through a group: {why}"
        );
        let why = covers(&store, &policy, &pam, &role("people-admins"));
        assert_eq!(why, Ok(()), "a role pam holds");
        let why = covers(&store, &policy, &pam, &role("directory-readers")).unwrap_err();
        assert!(why.contains("is the role directory-readers"), "{why}");
        // Administrators cover everyone.
        assert_eq!(covers(&store, &policy, &dana, &owner), Ok(()));
    }
}
