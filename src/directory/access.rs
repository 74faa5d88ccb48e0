//! Roles as access grants: what a role entry (class `tesseraRole`) allows, parsed once,
//! and the per-entry decisions made from it.
//!
//! A role grants its rights over the entries below each `roleScopeBase` (to
//! `roleScopeLevel`) that match `roleScopeFilter`, limited by its attribute lists. Pure:
//! who holds which role, and what the store holds, is the LDAP layer's business.

use std::fmt;

use ldap3_proto::proto::LdapSearchScope;

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::filter::{Filter, FilterLimits, Truth};
use crate::directory::schema::Schema;

/// A set of rights, as bits.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Rights(u16);

impl Rights {
    pub const NONE: Rights = Rights(0);
    /// Search for and read entries.
    pub const READ: Rights = Rights(1);
    pub const COMPARE: Rights = Rights(1 << 1);
    /// Modify existing entries.
    pub const WRITE: Rights = Rights(1 << 2);
    pub const ADD: Rights = Rights(1 << 3);
    pub const DELETE: Rights = Rights(1 << 4);
    pub const RENAME: Rights = Rights(1 << 5);
    /// Generate, rotate and revoke the tokens of accounts in scope.
    pub const MANAGE_TOKENS: Rights = Rights(1 << 6);
    /// Set the passwords of people in scope (Password Modify for others).
    pub const RESET_PASSWORD: Rights = Rights(1 << 7);
    /// Act as an identity in scope (proxied authorization, RFC 4370).
    pub const IMPERSONATE: Rights = Rights(1 << 8);
    pub const ALL: Rights = Rights((1 << 9) - 1);
    /// What a read-only token keeps.
    pub const READ_ONLY: Rights =
        Rights(Rights::READ.0 | Rights::COMPARE.0 | Rights::IMPERSONATE.0);

    /// The names roles use, in the order they are documented.
    pub const NAMES: &'static [(&'static str, Rights)] = &[
        ("read", Rights::READ),
        ("compare", Rights::COMPARE),
        ("write", Rights::WRITE),
        ("add", Rights::ADD),
        ("delete", Rights::DELETE),
        ("rename", Rights::RENAME),
        ("manage-tokens", Rights::MANAGE_TOKENS),
        ("reset-password", Rights::RESET_PASSWORD),
        ("impersonate", Rights::IMPERSONATE),
        ("all", Rights::ALL),
    ];

    pub fn parse(name: &str) -> Option<Rights> {
        let name = name.trim().to_ascii_lowercase();
        let name = match name.as_str() {
            "search" => "read",
            "modify" => "write",
            "modrdn" => "rename",
            other => other,
        };
        Rights::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
    }

    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    pub fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Rights::NAMES
            .iter()
            .filter(|(n, r)| *n != "all" && self.contains(*r))
            .map(|(n, _)| *n)
            .collect();
        write!(f, "Rights({})", names.join(" "))
    }
}

/// Attribute names a role lists: names, `*` (every user attribute) and `+` (every
/// operational one).
#[derive(Clone, Debug, Default)]
pub struct AttrList {
    user: bool,
    operational: bool,
    names: Vec<String>,
}

impl AttrList {
    fn parse(values: &[Vec<u8>], schema: &Schema) -> Result<AttrList, String> {
        let mut list = AttrList::default();
        for v in values {
            let v = String::from_utf8_lossy(v);
            match v.trim() {
                "*" => list.user = true,
                "+" => list.operational = true,
                name => {
                    let Some(attr) = schema.attribute(name) else {
                        return Err(format!("unknown attribute '{name}'"));
                    };
                    list.names.push(attr.name().to_ascii_lowercase());
                }
            }
        }
        Ok(list)
    }

    pub fn contains(&self, name: &str, operational: bool) -> bool {
        if operational && self.operational || !operational && self.user {
            return true;
        }
        let name = name.to_ascii_lowercase();
        self.names.contains(&name)
    }
}

/// One role's grant.
#[derive(Clone, Debug)]
pub struct Grant {
    pub role: Dn,
    pub bases: Vec<Dn>,
    pub level: LdapSearchScope,
    pub filter: Option<Filter>,
    /// Whether the filter needs the computed `memberOf`.
    pub needs_member_of: bool,
    pub rights: Rights,
    read_allow: Option<AttrList>,
    read_deny: AttrList,
    write_allow: Option<AttrList>,
    write_deny: AttrList,
}

/// Filters in role definitions are small: keep their limits tight.
const ROLE_FILTER_LIMITS: FilterLimits = FilterLimits {
    max_depth: 16,
    max_elements: 256,
};

impl Grant {
    /// Parse a role entry; the error says what is wrong with its definition. Bases must
    /// lie within `suffix`.
    pub fn from_entry(role: &Entry, schema: &Schema, suffix: &Dn) -> Result<Grant, String> {
        let mut bases = Vec::new();
        for b in role.values("roleScopeBase") {
            let text = String::from_utf8_lossy(b);
            let dn = Dn::parse(&text).map_err(|_| format!("roleScopeBase '{text}' is not a DN"))?;
            if !dn.is_within(suffix) {
                return Err(format!(
                    "roleScopeBase '{text}' is outside the directory ({suffix})"
                ));
            }
            bases.push(dn);
        }
        let level = match role
            .first_str("roleScopeLevel")
            .map(str::to_ascii_lowercase)
        {
            None => LdapSearchScope::Subtree,
            Some(l) => match l.as_str() {
                "base" => LdapSearchScope::Base,
                "one" | "onelevel" => LdapSearchScope::OneLevel,
                "sub" | "subtree" => LdapSearchScope::Subtree,
                "children" => LdapSearchScope::Children,
                _ => {
                    return Err(format!(
                        "roleScopeLevel '{l}' is not base, one, sub or children"
                    ));
                }
            },
        };
        let filter = match role.first_str("roleScopeFilter") {
            None => None,
            Some(text) => {
                let parsed = crate::directory::filter_string::parse(text)
                    .map_err(|e| format!("roleScopeFilter '{text}' is not an LDAP filter: {e}"))?;
                let filter = Filter::from_ldap(&parsed, schema, ROLE_FILTER_LIMITS)
                    .map_err(|e| format!("roleScopeFilter: {e}"))?;
                Some(filter)
            }
        };
        let mut needs = Vec::new();
        if let Some(f) = &filter {
            f.attributes(&mut needs);
        }
        let mut rights = Rights::NONE;
        for r in role.values("roleRight") {
            let name = String::from_utf8_lossy(r);
            let right = Rights::parse(&name).ok_or_else(|| {
                let known: Vec<&str> = Rights::NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown right '{name}' (rights: {})", known.join(", "))
            })?;
            rights = rights.union(right);
        }
        let list = |attr: &str| {
            AttrList::parse(role.values(attr), schema).map_err(|e| format!("{attr}: {e}"))
        };
        let optional = |attr: &str| -> Result<Option<AttrList>, String> {
            if role.values(attr).is_empty() {
                Ok(None)
            } else {
                list(attr).map(Some)
            }
        };
        Ok(Grant {
            role: role.dn.clone(),
            bases,
            level,
            needs_member_of: needs.iter().any(|n| n.eq_ignore_ascii_case("memberOf")),
            filter,
            rights,
            read_allow: optional("roleReadAllow")?,
            read_deny: list("roleReadDeny")?,
            write_allow: optional("roleWriteAllow")?,
            write_deny: list("roleWriteDeny")?,
        })
    }

    /// Is `dn` below one of the bases, at the role's level?
    pub fn reaches(&self, dn: &Dn) -> bool {
        self.bases.iter().any(|base| {
            dn.is_within(base)
                && match self.level {
                    LdapSearchScope::Base => dn == base,
                    LdapSearchScope::OneLevel => dn.depth() == base.depth() + 1,
                    LdapSearchScope::Subtree => true,
                    LdapSearchScope::Children => dn != base,
                }
        })
    }

    /// Does the grant cover `entry` (in reach and matching the filter)? The entry must
    /// carry `memberOf` when [`Grant::needs_member_of`].
    pub fn covers(&self, entry: &Entry) -> bool {
        self.reaches(&entry.dn)
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(entry) == Truth::True)
    }

    /// Is `dn` a base this grant reads below, or an ancestor of one? Such entries are
    /// the path to what the role sees, and visible to its holders whatever the filter.
    pub fn on_path(&self, dn: &Dn) -> bool {
        self.rights.contains(Rights::READ) && self.bases.iter().any(|base| base.is_within(dn))
    }

    pub fn may_read_attr(&self, name: &str, operational: bool) -> bool {
        self.read_allow
            .as_ref()
            .is_none_or(|l| l.contains(name, operational))
            && !self.read_deny.contains(name, operational)
    }

    pub fn may_write_attr(&self, name: &str, operational: bool) -> bool {
        self.write_allow
            .as_ref()
            .is_none_or(|l| l.contains(name, operational))
            && !self.write_deny.contains(name, operational)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::shipped().unwrap()
    }

    fn role(attrs: &[(&str, &[&str])]) -> Entry {
        let mut e = Entry::new(Dn::parse("cn=r,ou=roles,dc=example,dc=com").unwrap());
        for (name, values) in attrs {
            e.set(name, values.iter().map(|v| v.as_bytes().to_vec()).collect());
        }
        e
    }

    fn person(dn: &str, classes: &[&str]) -> Entry {
        let mut e = Entry::new(Dn::parse(dn).unwrap());
        e.set(
            "objectClass",
            classes.iter().map(|c| c.as_bytes().to_vec()).collect(),
        );
        e
    }

    #[test]
    fn rights_parse_and_combine() {
        assert_eq!(Rights::parse("Search"), Some(Rights::READ));
        assert_eq!(Rights::parse("manage-tokens"), Some(Rights::MANAGE_TOKENS));
        assert_eq!(Rights::parse("fly"), None);
        let r = Rights::READ.union(Rights::WRITE);
        assert!(r.contains(Rights::READ) && !r.contains(Rights::ADD));
        assert_eq!(r.intersect(Rights::READ_ONLY), Rights::READ);
        assert!(Rights::ALL.contains(Rights::IMPERSONATE));
    }

    #[test]
    fn a_role_parses_and_decides() {
        let suffix = Dn::parse("dc=example,dc=com").unwrap();
        let schema = schema();
        let r = role(&[
            ("roleScopeBase", &["ou=people,dc=example,dc=com"]),
            ("roleScopeFilter", &["(objectClass=posixAccount)"]),
            ("roleRight", &["read", "compare"]),
            ("roleReadDeny", &["mail"]),
        ]);
        let g = Grant::from_entry(&r, &schema, &suffix).unwrap();
        let posix = person(
            "uid=a,ou=people,dc=example,dc=com",
            &["inetOrgPerson", "posixAccount"],
        );
        let plain = person("uid=b,ou=people,dc=example,dc=com", &["inetOrgPerson"]);
        let elsewhere = person("uid=c,ou=services,dc=example,dc=com", &["posixAccount"]);
        assert!(g.covers(&posix));
        assert!(!g.covers(&plain));
        assert!(!g.covers(&elsewhere));
        assert!(g.on_path(&suffix));
        assert!(g.on_path(&Dn::parse("ou=people,dc=example,dc=com").unwrap()));
        assert!(!g.on_path(&Dn::parse("ou=groups,dc=example,dc=com").unwrap()));
        assert!(g.may_read_attr("cn", false));
        assert!(!g.may_read_attr("MAIL", false));
        assert!(g.may_read_attr("entryUUID", true));
    }

    #[test]
    fn bad_definitions_say_what_is_wrong() {
        let suffix = Dn::parse("dc=example,dc=com").unwrap();
        let schema = schema();
        type Attrs<'a> = &'a [(&'a str, &'a [&'a str])];
        let cases: &[(Attrs, &str)] = &[
            (&[("roleRight", &["fly"])], "unknown right 'fly'"),
            (&[("roleScopeBase", &["dc=other"])], "outside the directory"),
            (&[("roleScopeFilter", &["(uid=a"])], "not an LDAP filter"),
            (&[("roleScopeLevel", &["deep"])], "not base, one, sub"),
            (&[("roleReadAllow", &["nosuchattr"])], "unknown attribute"),
        ];
        for (attrs, want) in cases {
            let err = Grant::from_entry(&role(attrs), &schema, &suffix).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }
}
