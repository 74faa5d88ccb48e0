//! The names the directory's rules rely on: Tessera's object classes and attributes, and
//! the DNs of the containers and built-in roles every directory has. Nothing else.

use crate::directory::dn::{Dn, Rdn};

/// An API token or app password entry: `tokenId=ID,<account DN>`.
pub const TOKEN_CLASS: &str = "tesseraApiToken";
/// A service account: binds with tokens only, never a password.
pub const SERVICE_CLASS: &str = "tesseraServiceAccount";
/// A role entry under `ou=roles`: a grant, held by its members.
pub const ROLE_CLASS: &str = "tesseraRole";
/// A token's SHA-256, which nobody reads through any front end.
pub const HASH_ATTR: &str = "tokenSecretHash";

/// The containers every directory has under its suffix.
pub const CONTAINERS: &[&str] = &["people", "groups", "services", "roles"];

/// The DN of the built-in administrators' role.
pub fn admin_role(suffix: &Dn) -> Dn {
    role(suffix, "directory-admins")
}

/// The DN of the role `cn` under `ou=roles`.
pub fn role(suffix: &Dn, cn: &str) -> Dn {
    roles_container(suffix).child(Rdn::single("cn", cn))
}

pub fn roles_container(suffix: &Dn) -> Dn {
    container(suffix, "roles")
}

pub fn people(suffix: &Dn) -> Dn {
    container(suffix, "people")
}

pub fn groups(suffix: &Dn) -> Dn {
    container(suffix, "groups")
}

pub fn services(suffix: &Dn) -> Dn {
    container(suffix, "services")
}

pub fn container(suffix: &Dn, ou: &str) -> Dn {
    suffix.child(Rdn::single("ou", ou))
}
