//! Who the caller of an operation is right now, and what that allows.
//!
//! The bound principal is re-resolved against the directory inside each operation's own
//! transaction: a deleted entry, or a revoked or expired token, acts as anonymous, and a
//! change to the administrators' role takes effect on the next operation. Until roles
//! arrive, directory administrators (local LDAPI administrators and members of the
//! `directory-admins` role) may do everything; other bound identities may read; a
//! read-only token drops every write; anonymous access follows the config.

use ldap3_proto::proto::LdapResultCode;

use crate::config::AnonymousAccess;
use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::ldap::result::LdapError;
use crate::ldap::session::Principal;
use crate::ldap::token;
use crate::store::{DirectoryRead, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Caller {
    dn: Option<Dn>,
    admin: bool,
    read_only: bool,
    /// The token this caller bound with, if any.
    pub token_id: Option<String>,
}

/// Attributes nobody reads through LDAP, administrators included.
const NEVER_READABLE: &[&str] = &[token::HASH_ATTR];

impl Caller {
    pub fn anonymous() -> Caller {
        Caller::default()
    }

    pub fn user(dn: Dn) -> Caller {
        Caller {
            dn: Some(dn),
            ..Caller::default()
        }
    }

    pub fn dn(&self) -> Option<&Dn> {
        self.dn.as_ref()
    }

    pub fn is_admin(&self) -> bool {
        self.admin
    }

    pub fn is_anonymous(&self) -> bool {
        self.dn.is_none()
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// May this caller see entries of the directory tree (not just the rootDSE)?
    pub fn can_read_tree(&self, anonymous: AnonymousAccess) -> bool {
        self.dn.is_some() || anonymous == AnonymousAccess::Read
    }

    /// Writes need an administrator; anonymous callers are told to authenticate (8).
    pub fn require_write(&self) -> Result<(), LdapError> {
        if self.dn.is_none() {
            return Err(LdapError::new(
                LdapResultCode::StrongerAuthRequired,
                "modifications require authentication",
            ));
        }
        if self.admin && !self.read_only {
            Ok(())
        } else {
            Err(LdapError::insufficient_access())
        }
    }

    /// Any write at all (own password, own tokens) is refused to read-only tokens.
    pub fn require_not_read_only(&self) -> Result<(), LdapError> {
        if self.read_only {
            Err(LdapError::insufficient_access())
        } else {
            Ok(())
        }
    }

    /// May this caller read `attr`? Password hashes go to administrators only; token
    /// hashes to nobody.
    pub fn can_read_attr(&self, attr: &str) -> bool {
        if NEVER_READABLE.iter().any(|a| a.eq_ignore_ascii_case(attr)) {
            return false;
        }
        !attr.eq_ignore_ascii_case("userPassword") || self.admin
    }

    /// Remove what this caller may not read, before filters see the entry, so hidden
    /// values cannot be probed by filtering.
    pub fn redact(&self, entry: &mut Entry) {
        entry.attrs.retain(|a| self.can_read_attr(&a.name));
    }
}

/// The DN of the built-in administrators' role.
pub fn admin_role(suffix: &Dn) -> Dn {
    role(suffix, "directory-admins")
}

/// The DN of the built-in role `cn` under `ou=roles`.
pub fn role(suffix: &Dn, cn: &str) -> Dn {
    suffix
        .child(Rdn::single("ou", "roles"))
        .child(Rdn::single("cn", cn))
}

/// Does `caller` hold the built-in role `cn` (directly, as a member)? Read-only tokens
/// hold no role that writes.
pub fn holds_role(
    r: &impl DirectoryRead,
    caller: &Caller,
    suffix: &Dn,
    cn: &str,
) -> Result<bool, StoreError> {
    let Some(dn) = caller.dn().filter(|_| !caller.read_only) else {
        return Ok(false);
    };
    let role = r.entry_by_dn(&role(suffix, cn))?;
    Ok(role.is_some_and(|(_, e)| is_member(&e, dn)))
}

/// Resolve `principal` as of this transaction; `now` is the policy time (generalizedTime).
pub fn caller(
    r: &impl DirectoryRead,
    principal: &Principal,
    suffix: &Dn,
    now: &str,
) -> Result<Caller, StoreError> {
    match principal {
        Principal::Anonymous => Ok(Caller::anonymous()),
        Principal::Local { dn, admin } => Ok(Caller {
            dn: Some(dn.clone()),
            admin: *admin,
            ..Caller::default()
        }),
        Principal::Entry(dn) => {
            if r.id_of(dn)?.is_none() {
                return Ok(Caller::anonymous());
            }
            Ok(Caller {
                dn: Some(dn.clone()),
                admin: is_admin(r, dn, suffix)?,
                ..Caller::default()
            })
        }
        Principal::Token { account, token_id } => {
            let Some((valid, _)) = token::find_valid(r, token_id, now)? else {
                return Ok(Caller::anonymous());
            };
            if &valid.account != account {
                return Ok(Caller::anonymous());
            }
            Ok(Caller {
                dn: Some(account.clone()),
                admin: is_admin(r, account, suffix)?,
                read_only: valid.read_only,
                token_id: Some(valid.id),
            })
        }
    }
}

fn is_admin(r: &impl DirectoryRead, dn: &Dn, suffix: &Dn) -> Result<bool, StoreError> {
    let role = r.entry_by_dn(&admin_role(suffix))?;
    Ok(role.is_some_and(|(_, e)| is_member(&e, dn)))
}

pub fn is_member(group: &Entry, dn: &Dn) -> bool {
    group
        .values("member")
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter_map(|v| Dn::parse(v).ok())
        .any(|m| &m == dn)
}
