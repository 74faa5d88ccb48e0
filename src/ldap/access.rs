//! Who the caller of an operation is right now, and what that allows.
//!
//! The bound principal is re-resolved against the directory inside each operation's own
//! transaction: a deleted entry acts as anonymous, and a change to the administrators'
//! role takes effect on the next operation. Until roles arrive, directory administrators
//! (local LDAPI administrators and members of the `directory-admins` role) may do
//! everything; other bound identities may read; anonymous access follows the config.

use crate::config::AnonymousAccess;
use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::ldap::result::LdapError;
use crate::ldap::session::Principal;
use crate::store::{DirectoryRead, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    User(Dn),
    Admin(Dn),
}

impl Caller {
    pub fn dn(&self) -> Option<&Dn> {
        match self {
            Caller::Anonymous => None,
            Caller::User(dn) | Caller::Admin(dn) => Some(dn),
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin(_))
    }

    /// May this caller see entries of the directory tree (not just the rootDSE)?
    pub fn can_read_tree(&self, anonymous: AnonymousAccess) -> bool {
        match self {
            Caller::Anonymous => anonymous == AnonymousAccess::Read,
            _ => true,
        }
    }

    /// Writes need an administrator; anonymous callers are told to authenticate (8).
    pub fn require_write(&self) -> Result<(), LdapError> {
        match self {
            Caller::Admin(_) => Ok(()),
            Caller::Anonymous => Err(LdapError::new(
                ldap3_proto::proto::LdapResultCode::StrongerAuthRequired,
                "modifications require authentication",
            )),
            Caller::User(_) => Err(LdapError::insufficient_access()),
        }
    }

    /// May this caller read `attr` of `entry`? Hashes go to administrators only.
    pub fn can_read_attr(&self, attr: &str) -> bool {
        !attr.eq_ignore_ascii_case("userPassword") || self.is_admin()
    }
}

/// The DN of the built-in administrators' role.
pub fn admin_role(suffix: &Dn) -> Dn {
    suffix
        .child(Rdn::single("ou", "roles"))
        .child(Rdn::single("cn", "directory-admins"))
}

/// Resolve `principal` as of this transaction.
pub fn caller(
    r: &impl DirectoryRead,
    principal: &Principal,
    suffix: &Dn,
) -> Result<Caller, StoreError> {
    match principal {
        Principal::Anonymous => Ok(Caller::Anonymous),
        Principal::Local { dn, admin: true } => Ok(Caller::Admin(dn.clone())),
        Principal::Local { dn, admin: false } => Ok(Caller::User(dn.clone())),
        Principal::Entry(dn) => {
            if r.id_of(dn)?.is_none() {
                return Ok(Caller::Anonymous);
            }
            let role = r.entry_by_dn(&admin_role(suffix))?;
            if role.is_some_and(|(_, e)| is_member(&e, dn)) {
                Ok(Caller::Admin(dn.clone()))
            } else {
                Ok(Caller::User(dn.clone()))
            }
        }
    }
}

fn is_member(group: &Entry, dn: &Dn) -> bool {
    group
        .values("member")
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter_map(|v| Dn::parse(v).ok())
        .any(|m| &m == dn)
}
