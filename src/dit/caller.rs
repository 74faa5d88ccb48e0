//! Who the caller of an operation is right now, and what its roles allow.
//!
//! The authenticated `Principal` is re-resolved against the directory inside each
//! operation's own transaction: a deleted entry, or a revoked or expired token, acts as
//! anonymous, and a change to a role or to a group that holds one takes effect on the next
//! operation. The roles an identity holds (directly, or through groups, nested) are found
//! once per operation from the `member` index; each entry is then decided against those
//! grants.
//!
//! - Directory administrators (local LDAPI administrators, holders of `directory-admins`)
//!   may do everything.
//! - Everyone bound sees the rootDSE, the subschema, the suffix entry itself and their own
//!   entry; anonymous callers the rootDSE, the subschema and the suffix entry unless
//!   `security.anonymous = "none"` (Synology DSM reads the base entry before it binds).
//! - Other entries are visible through a role with the read right that covers them (and
//!   the entries on the path down to its bases); an invisible entry behaves as if it did
//!   not exist, and references to it (`member`, `memberOf`, `memberUid`) are dropped.
//! - A read-only token keeps only the reading rights of its account.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use ldap3_proto::proto::{LdapResultCode, LdapSearchScope};
use time::OffsetDateTime;

use crate::config::{AnonymousAccess, Config};
use crate::directory::access::{Grant, Rights};
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::schema::Schema;
use crate::dit::error::DitError;
use crate::dit::names::{self, HASH_ATTR, ROLE_CLASS};
use crate::dit::{computed, credentials, entry};
use crate::store::{DirectoryRead, StoreError};

/// Who a connection or request authenticated as. Re-checked against the directory on
/// every operation (see [`caller`]), so a deleted entry loses its rights at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// A local process on the LDAPI socket, by SO_PEERCRED.
    Local {
        dn: Dn,
        admin: bool,
    },
    /// A directory entry that bound with its password.
    Entry(Dn),
    /// An account bound with one of its tokens (API token or app password); the token is
    /// re-checked on every operation.
    Token {
        account: Dn,
        token_id: String,
    },
    /// For one operation, another identity (proxied authorization, RFC 4370) with exactly
    /// its rights; the root DN stands for anonymous. A read-only token stays read-only.
    Proxied {
        target: Dn,
        read_only: bool,
    },
}

impl Principal {
    pub fn dn(&self) -> Option<&Dn> {
        match self {
            Principal::Anonymous => None,
            Principal::Local { dn, .. } | Principal::Entry(dn) => Some(dn),
            Principal::Token { account, .. } => Some(account),
            Principal::Proxied { target, .. } => (!target.is_root()).then_some(target),
        }
    }
}

/// What the rules need besides the store: the configuration, the schema, the rights
/// cache, and the time the operation runs at. Taken once per operation.
#[derive(Clone)]
pub struct Policy {
    pub config: Arc<Config>,
    pub suffix: Dn,
    /// Policy time: token and account expiry, and the timestamps a write sets.
    pub now: OffsetDateTime,
    pub schema: Arc<Schema>,
    pub anonymous: AnonymousAccess,
    pub cache: RightsCache,
    /// Where the operation came from, for the audit records it makes.
    pub origin: crate::audit::Origin,
}

impl Policy {
    pub fn new(
        config: Arc<Config>,
        schema: Arc<Schema>,
        cache: RightsCache,
        now: OffsetDateTime,
    ) -> Policy {
        Policy {
            suffix: config.suffix.clone(),
            anonymous: config.security.anonymous,
            config,
            now,
            schema,
            cache,
            origin: crate::audit::Origin::internal(),
        }
    }

    /// The same policy for an operation that came from `origin`.
    pub fn from(mut self, origin: &crate::audit::Origin) -> Policy {
        self.origin = origin.clone();
        self
    }
}

/// What an identity's roles and groups give it, as derived at one store generation.
#[derive(Debug, Default)]
pub struct Resolved {
    admin: bool,
    grants: Arc<Vec<Grant>>,
    groups: Arc<HashSet<String>>,
    managed: Arc<HashSet<String>>,
}

/// Each identity's rights, computed once per change of the directory rather than per
/// operation: keyed by normalised DN, valid for the generation they were derived at.
/// Token checks are remembered the same way, for the second they were made in, since
/// expiry depends on the clock too.
#[derive(Clone, Default)]
pub struct RightsCache {
    rights: Arc<Mutex<HashMap<String, Cached>>>,
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
}

/// The generation a resolution was derived at, and the resolution.
type Cached = (u64, Arc<Resolved>);

/// A token check: the generation it was made at, and its outcome if the token was live:
/// the account, whether the token is read-only, and the expiry times to hold it to.
type CachedToken = (u64, Option<(Dn, bool, Vec<OffsetDateTime>)>);

/// Identities (and tokens) remembered at once; past this the cache starts afresh.
const MAX_CACHED: usize = 10_000;

impl RightsCache {
    fn get(&self, dn: &Dn, generation: u64) -> Option<Arc<Resolved>> {
        let map = self.rights.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(dn.norm()) {
            Some((g, resolved)) if *g == generation => Some(resolved.clone()),
            _ => None,
        }
    }

    fn put(&self, dn: &Dn, generation: u64, resolved: Arc<Resolved>) {
        // A cache: after a panic elsewhere poisoned the lock, its contents are still good.
        let mut map = self.rights.lock().unwrap_or_else(PoisonError::into_inner);
        bound(&mut map, |(g, _)| *g == generation);
        map.insert(dn.norm().to_string(), (generation, resolved));
    }

    /// Is token `id` live now: its account and read-only flag.
    fn token(
        &self,
        r: &impl DirectoryRead,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Dn, bool)>, StoreError> {
        let generation = r.generation();
        let cached = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .filter(|(g, _)| *g == generation)
            .cloned();
        let live = match cached {
            Some((_, live)) => live,
            None => {
                let live = credentials::find_valid(r, id, now)?
                    .map(|(v, _)| (v.account, v.read_only, v.expiries));
                let mut map = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
                bound(&mut map, |(g, _)| *g == generation);
                map.insert(id.to_string(), (generation, live.clone()));
                live
            }
        };
        // Expiry moves with the clock, not the directory: checked on every use.
        Ok(live
            .filter(|(_, _, expiries)| expiries.iter().all(|e| *e > now))
            .map(|(account, read_only, _)| (account, read_only)))
    }
}

impl Resolved {
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// The roles held, directly or through groups (directory-admins aside: see `is_admin`).
    pub fn roles(&self) -> impl Iterator<Item = &Dn> {
        self.grants.iter().map(|g| &g.role)
    }

    /// Normalised DNs of the accounts managed (`entryManagedBy`).
    pub fn managed(&self) -> &HashSet<String> {
        &self.managed
    }
}

/// Keep a cache map under [`MAX_CACHED`]: drop what is stale, or everything.
fn bound<V>(map: &mut HashMap<String, V>, fresh: impl Fn(&V) -> bool) {
    if map.len() >= MAX_CACHED {
        map.retain(|_, v| fresh(v));
        if map.len() >= MAX_CACHED {
            map.clear();
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Caller {
    dn: Option<Dn>,
    admin: bool,
    read_only: bool,
    /// The token this caller bound with, if any.
    pub token_id: Option<String>,
    grants: Arc<Vec<Grant>>,
    /// Normalised DNs of the groups the caller is in, nested.
    groups: Arc<HashSet<String>>,
    /// Normalised DNs of the accounts the caller manages (`entryManagedBy`).
    managed: Arc<HashSet<String>>,
    /// The suffix, when the caller may read the suffix entry itself (not what is below it).
    naming_context: Option<Dn>,
}

/// Attributes nobody reads through LDAP, administrators included.
const NEVER_READABLE: &[&str] = &[HASH_ATTR];

/// How far group nesting is followed when finding the roles an identity holds.
const MAX_NESTING: usize = 8;

/// How the caller may see one entry.
#[derive(Debug)]
pub enum View<'a> {
    /// Administrators: everything.
    All,
    /// The caller's own entry, or one on the path to what a role sees.
    Own,
    /// Through these grants (each covers the entry and has the read right).
    Grants(Vec<&'a Grant>),
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller::default()
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

    /// The stored attributes that deciding how this caller sees an entry, and pruning it,
    /// reads (besides its DN): those its grants' filters name, and `member`, which
    /// [`Caller::prune`] derives a returned `memberUid` from. `*` stands for every one.
    pub fn decision_attributes(&self, out: &mut Vec<String>) {
        if self.admin {
            return;
        }
        for filter in self.grants.iter().filter_map(|g| g.filter.as_ref()) {
            filter.attributes(out);
        }
        if out.iter().any(|n| n.eq_ignore_ascii_case("memberUid")) {
            out.push("member".to_string());
        }
    }

    /// Does deciding on entries need their computed `memberOf`?
    pub fn needs_member_of(&self) -> bool {
        !self.admin && self.grants.iter().any(|g| g.needs_member_of)
    }

    /// The rights of `grant` for this caller: a read-only token keeps only reading.
    fn effective(&self, rights: Rights) -> Rights {
        if self.read_only {
            rights.intersect(Rights::READ_ONLY)
        } else {
            rights
        }
    }

    /// How the caller sees `entry`, or None when it is invisible. The entry must carry
    /// `memberOf` when [`Caller::needs_member_of`].
    pub fn view(&self, entry: &Entry) -> Option<View<'_>> {
        if self.admin {
            return Some(View::All);
        }
        if self.dn.as_ref() == Some(&entry.dn) || self.owns(&entry.dn) {
            return Some(View::Own);
        }
        let grants: Vec<&Grant> = self
            .grants
            .iter()
            .filter(|g| g.rights.contains(Rights::READ) && g.covers(entry))
            .collect();
        if !grants.is_empty() {
            return Some(View::Grants(grants));
        }
        if self.grants.iter().any(|g| g.on_path(&entry.dn))
            || self.naming_context.as_ref() == Some(&entry.dn)
        {
            return Some(View::Own);
        }
        None
    }

    /// Entries the caller answers for: accounts it manages, and the tokens below them or
    /// below its own entry (app passwords).
    fn owns(&self, dn: &Dn) -> bool {
        if self.managed.contains(dn.norm()) {
            return true;
        }
        // Only tokens are owned through their parent; building the parent DN is not free.
        let token = dn.rdn().is_some_and(|r| {
            r.avas
                .iter()
                .any(|a| a.attr.eq_ignore_ascii_case("tokenId"))
        });
        if !token {
            return false;
        }
        let Some(parent) = dn.parent() else {
            return false;
        };
        self.dn.as_ref() == Some(&parent) || self.managed.contains(parent.norm())
    }

    /// Does the caller manage `account` through `entryManagedBy` (itself or a group it is
    /// in, nested)?
    pub fn manages(&self, account: &Dn) -> bool {
        self.managed.contains(account.norm())
    }

    /// Does the caller hold the role `role` (directly or through groups)?
    pub fn holds(&self, role: &Dn) -> bool {
        self.grants.iter().any(|g| &g.role == role)
    }

    /// Is the caller in the group `dn` (nested)?
    pub fn in_group(&self, dn: &Dn) -> bool {
        self.groups.contains(dn.norm())
    }

    /// Could any write of this caller succeed: an administrator, a holder of a writing
    /// right, or a manager of some account? Read-only tokens never write.
    pub fn may_write_somewhere(&self) -> bool {
        let writes = Rights::WRITE
            .union(Rights::ADD)
            .union(Rights::DELETE)
            .union(Rights::RENAME)
            .union(Rights::MANAGE_TOKENS)
            .union(Rights::RESET_PASSWORD);
        if self.read_only || self.dn.is_none() {
            return false;
        }
        self.admin
            || !self.managed.is_empty()
            || self
                .grants
                .iter()
                .any(|g| !g.rights.intersect(writes).is_empty())
    }

    /// Does any of the caller's grants carry `right`?
    pub fn has_right_anywhere(&self, right: Rights) -> bool {
        self.admin
            || self
                .grants
                .iter()
                .any(|g| self.effective(g.rights).contains(right))
    }

    /// May `right` be exercised on `entry`? (Visibility is checked separately.)
    pub fn may(&self, right: Rights, entry: &Entry) -> bool {
        if self.admin {
            return !self.effective(right).is_empty() || right.is_empty();
        }
        self.grants
            .iter()
            .any(|g| self.effective(g.rights).contains(right) && g.covers(entry))
    }

    /// May `right` be exercised with every one of `attrs` on `entry` (writes)?
    pub fn may_attrs(&self, right: Rights, entry: &Entry, attrs: &[&str], schema: &Schema) -> bool {
        if self.admin {
            return self.may(right, entry);
        }
        attrs.iter().all(|name| {
            let operational = schema.attribute(name).is_some_and(|a| a.is_operational());
            self.grants.iter().any(|g| {
                self.effective(g.rights).contains(right)
                    && g.covers(entry)
                    && g.may_write_attr(name, operational)
            })
        })
    }

    /// Writes need authentication (8) and then the right (50).
    pub fn require(&self, right: Rights, entry: &Entry) -> Result<(), DitError> {
        self.require_bound()?;
        if self.may(right, entry) {
            Ok(())
        } else {
            Err(DitError::insufficient_access())
        }
    }

    /// Anonymous callers are told to authenticate (8) before any write.
    pub fn require_bound(&self) -> Result<(), DitError> {
        if self.dn.is_none() {
            return Err(DitError::new(
                LdapResultCode::StrongerAuthRequired,
                "modifications require authentication",
            ));
        }
        Ok(())
    }

    /// Any write at all (own password, own tokens) is refused to read-only tokens.
    pub fn require_not_read_only(&self) -> Result<(), DitError> {
        if self.read_only {
            Err(DitError::insufficient_access())
        } else {
            Ok(())
        }
    }

    /// Remove the attributes `view` may not read, before filters see the entry, so hidden
    /// values cannot be probed by filtering.
    pub fn redact(&self, view: &View<'_>, entry: &mut Entry, schema: &Schema) {
        entry.attrs.retain(|a| {
            if NEVER_READABLE
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&a.name))
            {
                return false;
            }
            let password = a.name.eq_ignore_ascii_case("userPassword");
            match view {
                View::All => true,
                View::Own => !password,
                View::Grants(grants) => {
                    let operational = schema
                        .attribute(&a.name)
                        .is_some_and(|t| t.is_operational());
                    !password && grants.iter().any(|g| g.may_read_attr(&a.name, operational))
                }
            }
        });
    }

    /// Is the entry named by the stored DN `text` visible through a grant without a filter
    /// over a whole subtree, judged from the text alone? A stored DN value is valid (its
    /// syntax is checked on write), and without escapes or quotes its RDNs are split at its
    /// commas, so text ending in `,` and a grant's base (in any case of letters, which the
    /// normal form folds) names an entry under that base. Groups list many members: this is
    /// one comparison of the tail. False sends the caller on to the checks that parse.
    fn sees_written(&self, text: &str) -> bool {
        if text.bytes().any(|b| b == b'\\' || b == b'"') {
            return false;
        }
        self.grants.iter().any(|g| {
            g.filter.is_none()
                && g.rights.contains(Rights::READ)
                && g.level == LdapSearchScope::Subtree
                && g.bases.iter().any(|base| {
                    let (text, base) = (text.as_bytes(), base.norm().as_bytes());
                    // The root base is left to the parsing checks: any text ends in it.
                    !base.is_empty()
                        && text.len() >= base.len()
                        && text[text.len() - base.len()..].eq_ignore_ascii_case(base)
                        && (text.len() == base.len() || text[text.len() - base.len() - 1] == b',')
                })
        })
    }

    /// Is the entry whose normal-form DN is `norm`, written plainly (see
    /// [`crate::directory::dn::plain_norm`]: no escapes), visible through a grant without a
    /// filter over a whole subtree? Groups list many members, and this needs no parsing.
    fn sees_plain(&self, norm: &str) -> bool {
        self.grants.iter().any(|g| {
            g.filter.is_none()
                && g.rights.contains(Rights::READ)
                && g.level == LdapSearchScope::Subtree
                && g.bases.iter().any(|base| {
                    let base = base.norm();
                    base.is_empty()
                        || norm == base
                        || norm
                            .strip_suffix(base)
                            .is_some_and(|head| head.ends_with(','))
                })
        })
    }

    /// Is the entry named `dn` visible? Decided from the DN alone where a grant without a
    /// filter reaches it; otherwise the entry is read.
    pub fn sees_dn(&self, r: &impl DirectoryRead, dn: &Dn) -> Result<bool, StoreError> {
        if self.admin || self.dn.as_ref() == Some(dn) || self.owns(dn) {
            return Ok(true);
        }
        let reading = || {
            self.grants
                .iter()
                .filter(|g| g.rights.contains(Rights::READ))
        };
        if reading().any(|g| g.filter.is_none() && g.reaches(dn))
            || reading().any(|g| g.on_path(dn))
            || self.naming_context.as_ref() == Some(dn)
        {
            return Ok(true);
        }
        if !reading().any(|g| g.reaches(dn)) {
            return Ok(false);
        }
        let Some((_, mut entry)) = r.entry_by_dn(dn)? else {
            return Ok(false);
        };
        self.with_member_of(r, &mut entry)?;
        Ok(self.view(&entry).is_some())
    }

    /// The entry as decisions on it need it: with `memberOf` when a grant's filter asks.
    pub fn decidable<'e>(
        &self,
        r: &impl DirectoryRead,
        entry: &'e Entry,
    ) -> Result<Cow<'e, Entry>, StoreError> {
        if !self.needs_member_of() || entry.get("memberOf").is_some() {
            return Ok(Cow::Borrowed(entry));
        }
        let mut copy = entry.clone();
        self.with_member_of(r, &mut copy)?;
        Ok(Cow::Owned(copy))
    }

    /// [`Caller::require`] on a stored entry.
    pub fn require_on(
        &self,
        r: &impl DirectoryRead,
        right: Rights,
        entry: &Entry,
    ) -> Result<(), DitError> {
        let entry = self.decidable(r, entry)?;
        self.require(right, &entry)
    }

    /// Attach `memberOf` when deciding on the entry needs it.
    pub fn with_member_of(
        &self,
        r: &impl DirectoryRead,
        entry: &mut Entry,
    ) -> Result<(), StoreError> {
        if self.needs_member_of() && entry.get("memberOf").is_none() {
            let groups = computed::member_of(r, &entry.dn)?;
            entry.set(
                "memberOf",
                groups.into_iter().map(String::into_bytes).collect(),
            );
        }
        Ok(())
    }

    /// Drop references to entries the caller cannot see: `member` and `memberOf` values,
    /// and the `memberUid` derived from `member`; `hasSubordinates` counts visible
    /// children only.
    pub fn prune(
        &self,
        r: &impl DirectoryRead,
        id: u64,
        entry: &mut Entry,
    ) -> Result<(), StoreError> {
        if self.admin {
            return Ok(());
        }
        let mut members_intact = false;
        for attr in ["member", "memberOf"] {
            let Some(values) = entry.get_mut(attr).map(|a| std::mem::take(&mut a.values)) else {
                continue;
            };
            let total = values.len();
            let mut kept = Vec::with_capacity(total);
            for v in values {
                let text = std::str::from_utf8(&v).ok();
                if text.is_some_and(|t| self.sees_written(t))
                    || text
                        .and_then(crate::directory::dn::plain_norm)
                        .is_some_and(|norm| self.sees_plain(&norm))
                {
                    kept.push(v);
                    continue;
                }
                let dn = text.and_then(|s| Dn::parse(s).ok());
                if let Some(dn) = dn
                    && self.sees_dn(r, &dn)?
                {
                    kept.push(v);
                }
            }
            if attr == "member" {
                members_intact = kept.len() == total;
            }
            entry.set(attr, kept);
        }
        // Every write stores memberUid as derived from member, so it needs deriving again
        // only when member values went (or member itself did).
        if entry.get("memberUid").is_some() && !members_intact {
            entry::derive_member_uid(entry);
        }
        if entry.get("hasSubordinates").is_some() {
            let mut any = false;
            for child in r.children(id)? {
                if let Some(dn) = r.dn_of(child)?
                    && self.sees_dn(r, &dn)?
                {
                    any = true;
                    break;
                }
            }
            entry.set_str("hasSubordinates", if any { "TRUE" } else { "FALSE" });
        }
        Ok(())
    }
}

/// The entry `dn` as stored, if it exists and the caller can see it.
pub fn visible(
    r: &impl DirectoryRead,
    caller: &Caller,
    dn: &Dn,
) -> Result<Option<(u64, Entry)>, StoreError> {
    let Some((id, entry)) = r.entry_by_dn(dn)? else {
        return Ok(None);
    };
    let decided = caller.decidable(r, &entry)?;
    let seen = caller.view(&decided).is_some();
    drop(decided);
    Ok(seen.then_some((id, entry)))
}

/// Resolve `principal` as of this transaction.
///
/// Credentials that were good at bind time and are not now (a revoked or expired token, an
/// expired or deleted account) are refused with [`DitError::lapsed`], never taken as
/// anonymous: a front end tells its client to authenticate again.
pub fn caller(
    r: &impl DirectoryRead,
    principal: &Principal,
    policy: &Policy,
) -> Result<Caller, DitError> {
    let mut caller = principal_caller(r, principal, policy)?;
    if !caller.admin && (caller.dn.is_some() || policy.anonymous != AnonymousAccess::None) {
        caller.naming_context = Some(policy.suffix.clone());
    }
    Ok(caller)
}

/// [`caller`] before the suffix entry is made visible.
fn principal_caller(
    r: &impl DirectoryRead,
    principal: &Principal,
    policy: &Policy,
) -> Result<Caller, DitError> {
    let (dn, read_only, token_id) = match principal {
        Principal::Anonymous => return Ok(anonymous(r, policy)?),
        Principal::Local { dn, admin: true } => {
            return Ok(Caller {
                dn: Some(dn.clone()),
                admin: true,
                ..Caller::default()
            });
        }
        Principal::Local { dn, admin: false } => (dn.clone(), false, None),
        Principal::Entry(dn) => {
            // An account that expires while bound (certificate binds) loses its rights, as
            // a token's account does.
            let Some((_, entry)) = r.entry_by_dn(dn)? else {
                return Err(DitError::lapsed());
            };
            if credentials::expired(entry.first_str("accountExpires"), policy.now) {
                return Err(DitError::lapsed());
            }
            (dn.clone(), false, None)
        }
        Principal::Proxied { target, read_only } => {
            if !target.is_root() && r.id_of(target)?.is_none() {
                return Ok(Caller::anonymous());
            }
            if target.is_root() {
                return Ok(anonymous(r, policy)?);
            }
            (target.clone(), *read_only, None)
        }
        Principal::Token { account, token_id } => {
            let Some((owner, read_only)) = policy.cache.token(r, token_id, policy.now)? else {
                return Err(DitError::lapsed());
            };
            if &owner != account {
                return Err(DitError::lapsed());
            }
            (account.clone(), read_only, Some(token_id.clone()))
        }
    };
    let resolved = resolve(r, &dn, policy)?;
    Ok(Caller {
        dn: Some(dn),
        admin: resolved.admin,
        read_only,
        token_id,
        grants: resolved.grants.clone(),
        groups: resolved.groups.clone(),
        managed: resolved.managed.clone(),
        naming_context: None,
    })
}

/// The roles, groups and managed accounts of `dn`, from the cache when nothing has been
/// written since they were derived.
pub fn resolve(
    r: &impl DirectoryRead,
    dn: &Dn,
    policy: &Policy,
) -> Result<Arc<Resolved>, StoreError> {
    let generation = r.generation();
    if let Some(hit) = policy.cache.get(dn, generation) {
        return Ok(hit);
    }
    let held = held_roles(r, dn, policy)?;
    let managed = managed_by(r, dn, &held.groups, policy)?;
    let resolved = Arc::new(Resolved {
        admin: held.admin,
        grants: Arc::new(held.grants),
        groups: Arc::new(held.groups),
        managed: Arc::new(managed),
    });
    policy.cache.put(dn, generation, resolved.clone());
    Ok(resolved)
}

/// The accounts whose `entryManagedBy` names `dn` or one of its groups.
fn managed_by(
    r: &impl DirectoryRead,
    dn: &Dn,
    groups: &HashSet<String>,
    policy: &Policy,
) -> Result<HashSet<String>, StoreError> {
    let mut managers: Vec<&str> = groups.iter().map(String::as_str).collect();
    managers.push(dn.norm());
    let mut out = HashSet::new();
    if r.is_indexed("entryManagedBy") {
        for m in managers {
            for id in r
                .lookup("entryManagedBy", m.as_bytes())?
                .unwrap_or_default()
            {
                if let Some(account) = r.dn_of(id)? {
                    out.insert(account.norm().to_string());
                }
            }
        }
        return Ok(out);
    }
    // Without the index: managed entries are service accounts, under ou=services.
    let services = names::services(&policy.suffix);
    let Some(base) = r.id_of(&services)? else {
        return Ok(out);
    };
    for id in r.children(base)? {
        let Some(e) = r.entry(id)? else {
            continue;
        };
        let listed = e.values("entryManagedBy").iter().any(|v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| Dn::parse(s).ok())
                .is_some_and(|m| managers.contains(&m.norm()))
        });
        if listed {
            out.insert(e.dn.norm().to_string());
        }
    }
    Ok(out)
}

/// Anonymous callers read like `directory-readers` when the config says so.
fn anonymous(r: &impl DirectoryRead, policy: &Policy) -> Result<Caller, StoreError> {
    if policy.anonymous != AnonymousAccess::Read {
        return Ok(Caller::anonymous());
    }
    let readers = names::role(&policy.suffix, "directory-readers");
    let Some((_, entry)) = r.entry_by_dn(&readers)? else {
        return Ok(Caller::anonymous());
    };
    let grants = match Grant::from_entry(&entry, &policy.schema, &policy.suffix) {
        Ok(mut g) => {
            g.rights = g.rights.intersect(Rights::READ.union(Rights::COMPARE));
            vec![g]
        }
        Err(_) => Vec::new(),
    };
    Ok(Caller {
        grants: Arc::new(grants),
        ..Caller::anonymous()
    })
}

pub struct Held {
    pub admin: bool,
    pub grants: Vec<Grant>,
    /// Normalised DNs of the groups on the way, nested.
    pub groups: HashSet<String>,
}

/// The roles `dn` holds: listed as a `member` of the role, or of a group that is
/// (nested up to [`MAX_NESTING`]).
pub fn held_roles(r: &impl DirectoryRead, dn: &Dn, policy: &Policy) -> Result<Held, StoreError> {
    let roles_base = names::roles_container(&policy.suffix);
    let admins = names::admin_role(&policy.suffix);
    let mut held = Held {
        admin: false,
        grants: Vec::new(),
        groups: HashSet::new(),
    };
    let mut seen: HashSet<String> = HashSet::from([dn.norm().to_string()]);
    let mut frontier = vec![dn.clone()];
    for _ in 0..MAX_NESTING {
        let mut next = Vec::new();
        for member in &frontier {
            for id in containing(r, member)? {
                let Some(container) = r.dn_of(id)? else {
                    continue;
                };
                if !seen.insert(container.norm().to_string()) {
                    continue;
                }
                if container.parent().as_ref() != Some(&roles_base) {
                    held.groups.insert(container.norm().to_string());
                    next.push(container);
                    continue;
                }
                let Some(entry) = r.entry(id)? else {
                    continue;
                };
                if !entry.has_class(ROLE_CLASS) {
                    continue;
                }
                if container == admins {
                    held.admin = true;
                    continue;
                }
                match Grant::from_entry(&entry, &policy.schema, &policy.suffix) {
                    Ok(g) => held.grants.push(g),
                    // Refused on write; one stored before a schema change grants nothing.
                    Err(e) => {
                        tracing::warn!(role = %container, error = %e, "ignoring invalid role")
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(held)
}

/// Ids of the entries listing `dn` as a `member`: from the index, or by a scan when the
/// index is not configured.
fn containing(r: &impl DirectoryRead, dn: &Dn) -> Result<Vec<u64>, StoreError> {
    if let Some(ids) = r.lookup("member", dn.norm().as_bytes())? {
        return Ok(ids.into_iter().collect());
    }
    let mut out = Vec::new();
    r.for_each_entry(|id, e| {
        if is_member(&e, dn) {
            out.push(id);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Is `dn` a direct `member` of `group`?
pub fn is_member(group: &Entry, dn: &Dn) -> bool {
    group
        .values("member")
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter_map(|v| Dn::parse(v).ok())
        .any(|m| &m == dn)
}

/// Does `dn` hold the administrators' role (directly or through groups)?
pub fn is_admin(r: &impl DirectoryRead, dn: &Dn, policy: &Policy) -> Result<bool, StoreError> {
    Ok(held_roles(r, dn, policy)?.admin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::testing::*;

    #[test]
    fn credentials_that_died_are_lapsed_not_anonymous() {
        let (store, policy) = directory();
        let ann = add_person(&store, &policy, "ann");
        let bound = Principal::Entry(ann.clone());
        assert_eq!(caller_of(&store, &policy, &bound).unwrap().dn(), Some(&ann));
        store
            .write_blocking(|w| {
                let caller = caller(w, &admin(), &policy)?;
                crate::dit::write::delete(w, &policy, &caller, &ann)
            })
            .unwrap();
        let err = caller_of(&store, &policy, &bound).unwrap_err();
        assert!(err.is_lapsed(), "{err:?}");
        let token = Principal::Token {
            account: ann,
            token_id: "NoSuchToken0".into(),
        };
        assert!(caller_of(&store, &policy, &token).unwrap_err().is_lapsed());
        let anonymous = caller_of(&store, &policy, &Principal::Anonymous).unwrap();
        assert!(anonymous.is_anonymous());
    }
}
