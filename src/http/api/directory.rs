//! People, groups, service accounts and roles: list, get, create, update, delete, and the
//! members of groups and roles; who am I; and "search as" (what an identity would see).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ldap3_proto::proto::LdapSearchScope;
use serde::{Deserialize, Serialize};

use crate::directory::dn::Dn;
use crate::directory::time::{Expiry, generalized, parse_expiry};
use crate::dit::caller::{self, Principal};
use crate::dit::command::Op;
use crate::dit::search::Query as SearchQuery;
use crate::dit::write::{self, Attempt, Change, ChangeKind};
use crate::dit::{DitError, entry, proxy};
use crate::http::Api;
use crate::http::api::{
    EntryJson, GROUPS, Kind, ListQuery, Listing, PEOPLE, ROLES, SERVICES, get, get_kind, list,
    list_kind, parse_filter, read, reference,
};
use crate::http::auth::Authenticated;
use crate::http::problem::{Json, Path, Problem, Query};
use crate::store::DirectoryRead;

/// Who the caller is and what it holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The caller's DN.
    pub dn: String,
    /// `person`, `service-account` or `entry`.
    pub kind: String,
    /// The token the request authenticated with, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// A read-only token reads and changes nothing.
    pub read_only: bool,
    /// A directory administrator.
    pub admin: bool,
    /// The roles held, directly or through groups (DNs).
    pub roles: Vec<String>,
    /// The accounts managed (DNs).
    pub manages: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "identity",
    responses((status = 200, description = "The caller", body = WhoAmI)))]
pub async fn whoami(State(api): State<Api>, who: Authenticated) -> Result<Response, Problem> {
    Ok(axum::Json(whoami_of(&api, &who).await?).into_response())
}

/// Who `who` is and what it holds.
pub async fn whoami_of(api: &Api, who: &Authenticated) -> Result<WhoAmI, Problem> {
    let token_id = match &who.principal {
        Principal::Token { token_id, .. } => Some(token_id.clone()),
        _ => None,
    };
    read(api, who, move |r, caller, policy| {
        let Some(dn) = caller.dn().cloned() else {
            return Err(DitError::invalid_credentials());
        };
        let resolved = caller::resolve(r, &dn, policy)?;
        let kind = match r.entry_by_dn(&dn)? {
            Some((_, e)) if e.has_class(SERVICES.class) => "service-account",
            Some((_, e)) if e.has_class("person") => "person",
            _ => "entry",
        };
        let mut roles: Vec<String> = resolved.roles().map(ToString::to_string).collect();
        if resolved.is_admin() {
            roles.push(crate::dit::names::admin_role(&policy.suffix).to_string());
        }
        let mut manages: Vec<String> = resolved.managed().iter().cloned().collect();
        manages.sort();
        Ok(WhoAmI {
            dn: dn.to_string(),
            kind: kind.into(),
            token_id,
            read_only: caller.is_read_only(),
            admin: caller.is_admin(),
            roles,
            manages,
        })
    })
    .await
}

/// One change to an entry, as LDAP Modify makes it (RFC 4511 §4.6).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeJson {
    /// `add`, `delete` (no values: the whole attribute) or `replace` (no values: remove it).
    pub op: ChangeOp,
    pub attribute: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// Values may be passwords: only their number is shown.
impl std::fmt::Debug for ChangeJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeJson")
            .field("op", &self.op)
            .field("attribute", &self.attribute)
            .field("values", &self.values.len())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Add,
    Delete,
    Replace,
}

/// Changes applied together, in order, or not at all.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    pub changes: Vec<ChangeJson>,
}

/// Members to add and remove (names or DNs), together.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Members {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// List, get, update and delete handlers of one kind of entry.
macro_rules! entry_routes {
    ($kind:expr, $tag:literal, $list:ident, $get:ident, $update:ident, $delete:ident,
     $collection:literal, $item:literal, $param:literal) => {
        #[utoipa::path(get, path = $collection, tag = $tag, params(ListQuery),
            responses((status = 200, description = "A page of entries", body = Listing)))]
        pub async fn $list(
            State(api): State<Api>,
            who: Authenticated,
            Query(q): Query<ListQuery>,
        ) -> Result<Response, Problem> {
            let page = read(&api, &who, move |r, caller, policy| {
                list_kind(r, caller, policy, $kind, &q)
            })
            .await?;
            Ok(axum::Json(page).into_response())
        }

        #[utoipa::path(get, path = $item, tag = $tag,
            params(($param = String, Path, description = "Its name")),
            responses((status = 200, description = "The entry", body = EntryJson)))]
        pub async fn $get(
            State(api): State<Api>,
            who: Authenticated,
            Path(name): Path<String>,
        ) -> Result<Response, Problem> {
            let found = read(&api, &who, move |r, caller, policy| {
                get_kind(r, caller, policy, $kind, &name)
            })
            .await?;
            Ok(axum::Json(found).into_response())
        }

        #[utoipa::path(patch, path = $item, tag = $tag,
            params(($param = String, Path, description = "Its name")),
            request_body = Changes,
            responses((status = 200, description = "The entry as changed", body = EntryJson)))]
        pub async fn $update(
            State(api): State<Api>,
            who: Authenticated,
            Path(name): Path<String>,
            Json(body): Json<Changes>,
        ) -> Result<Response, Problem> {
            let dn = $kind.dn(&api.state.config.suffix, &name);
            let changed = modify(&api, &who, $kind, dn, body.changes).await?;
            Ok(axum::Json(changed).into_response())
        }

        #[utoipa::path(delete, path = $item, tag = $tag,
            params(($param = String, Path, description = "Its name")),
            responses((status = 204, description = "Deleted, with its tokens")))]
        pub async fn $delete(
            State(api): State<Api>,
            who: Authenticated,
            Path(name): Path<String>,
        ) -> Result<Response, Problem> {
            let dn = $kind.dn(&api.state.config.suffix, &name);
            delete(&api, &who, $kind, dn).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    };
}

entry_routes!(
    PEOPLE,
    "people",
    list_people,
    get_person,
    update_person,
    delete_person,
    "/api/v1/people",
    "/api/v1/people/{uid}",
    "uid"
);
entry_routes!(
    GROUPS,
    "groups",
    list_groups,
    get_group,
    update_group,
    delete_group,
    "/api/v1/groups",
    "/api/v1/groups/{cn}",
    "cn"
);
entry_routes!(
    SERVICES,
    "service-accounts",
    list_service_accounts,
    get_service_account,
    update_service_account,
    delete_service_account,
    "/api/v1/service-accounts",
    "/api/v1/service-accounts/{name}",
    "name"
);
entry_routes!(
    ROLES,
    "roles",
    list_roles,
    get_role,
    update_role,
    delete_role,
    "/api/v1/roles",
    "/api/v1/roles/{cn}",
    "cn"
);

/// A new person.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    /// The login name (`uid`).
    pub uid: String,
    /// The full name (`cn`); the uid when absent.
    pub display_name: Option<String>,
    /// The surname (`sn`); the last word of the full name when absent.
    pub surname: Option<String>,
    pub mail: Option<String>,
    /// The initial password (hashed with argon2id; never returned).
    pub password: Option<String>,
    /// Make it a POSIX account (uidNumber, gidNumber, homeDirectory allocated when absent).
    #[serde(default)]
    pub posix: bool,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub uid_number: Option<u32>,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub gid_number: Option<u32>,
    pub home_directory: Option<String>,
    pub login_shell: Option<String>,
    /// Any other attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// The password (and any other attribute, which may hold one) is never shown.
impl std::fmt::Debug for NewPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPerson")
            .field("uid", &self.uid)
            .field("display_name", &self.display_name)
            .field("posix", &self.posix)
            .finish_non_exhaustive()
    }
}

#[utoipa::path(post, path = "/api/v1/people", tag = "people", request_body = NewPerson,
    responses((status = 201, description = "Created", body = EntryJson)))]
pub async fn create_person(
    State(api): State<Api>,
    who: Authenticated,
    Json(new): Json<NewPerson>,
) -> Result<Response, Problem> {
    created(create_person_entry(&api, &who, new).await?)
}

/// Add the person `new` as `who`: the entry as the caller then sees it.
pub async fn create_person_entry(
    api: &Api,
    who: &Authenticated,
    new: NewPerson,
) -> Result<EntryJson, Problem> {
    let cn = new.display_name.clone().unwrap_or_else(|| new.uid.clone());
    let sn = new.surname.clone().unwrap_or_else(|| {
        cn.split_whitespace()
            .last()
            .unwrap_or(new.uid.as_str())
            .to_string()
    });
    let posix = new.posix
        || new.uid_number.is_some()
        || new.gid_number.is_some()
        || new.home_directory.is_some()
        || new.login_shell.is_some();
    let mut classes = vec!["inetOrgPerson".to_string()];
    if posix {
        classes.push("posixAccount".into());
    }
    let mut attrs = vec![
        ("objectClass".to_string(), classes),
        ("uid".to_string(), vec![new.uid.clone()]),
        ("cn".to_string(), vec![cn]),
        ("sn".to_string(), vec![sn]),
    ];
    let optional = [
        ("mail", new.mail),
        ("userPassword", new.password),
        ("uidNumber", new.uid_number.map(|n| n.to_string())),
        ("gidNumber", new.gid_number.map(|n| n.to_string())),
        ("homeDirectory", new.home_directory),
        ("loginShell", new.login_shell),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            attrs.push((name.to_string(), vec![v]));
        }
    }
    attrs.extend(new.attributes);
    let dn = PEOPLE.dn(&api.state.config.suffix, &new.uid);
    create(api, who, dn, attrs, Vec::new()).await
}

/// A new group.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub cn: String,
    /// Make it a POSIX group (a gidNumber allocated when absent).
    #[serde(default)]
    pub posix: bool,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub gid_number: Option<u32>,
    pub description: Option<String>,
    /// Members: names (a person, a group, a service account) or DNs.
    #[serde(default)]
    pub members: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = NewGroup,
    responses((status = 201, description = "Created", body = EntryJson)))]
pub async fn create_group(
    State(api): State<Api>,
    who: Authenticated,
    Json(new): Json<NewGroup>,
) -> Result<Response, Problem> {
    created(create_group_entry(&api, &who, new).await?)
}

/// Add the group `new` as `who`.
pub async fn create_group_entry(
    api: &Api,
    who: &Authenticated,
    new: NewGroup,
) -> Result<EntryJson, Problem> {
    let suffix = api.state.config.suffix.clone();
    let mut classes = vec!["groupOfNames".to_string()];
    if new.posix || new.gid_number.is_some() {
        classes.push("posixGroup".into());
    }
    let mut attrs = vec![
        ("objectClass".to_string(), classes),
        ("cn".to_string(), vec![new.cn.clone()]),
    ];
    if let Some(n) = new.gid_number {
        attrs.push(("gidNumber".into(), vec![n.to_string()]));
    }
    if let Some(d) = new.description {
        attrs.push(("description".into(), vec![d]));
    }
    let members = references(api, new.members).await?;
    if !members.is_empty() {
        attrs.push(("member".into(), members));
    }
    create(api, who, GROUPS.dn(&suffix, &new.cn), attrs, Vec::new()).await
}

/// A new service account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServiceAccount {
    /// 1 to 63 of a-z 0-9 - _, starting and ending with a letter or digit.
    pub name: String,
    pub display_name: String,
    /// Who manages it and its tokens: a group or a person (name or DN).
    pub managed_by: String,
    pub description: Option<String>,
    /// When the account expires: RFC 3339, or a duration from now (`90d`).
    pub expires: Option<String>,
    /// Groups to put it in.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/service-accounts", tag = "service-accounts",
    request_body = NewServiceAccount,
    responses((status = 201, description = "Created", body = EntryJson)))]
pub async fn create_service_account(
    State(api): State<Api>,
    who: Authenticated,
    Json(new): Json<NewServiceAccount>,
) -> Result<Response, Problem> {
    created(create_service_account_entry(&api, &who, new).await?)
}

/// Add the service account `new` as `who`, and put it in its groups, in one transaction.
pub async fn create_service_account_entry(
    api: &Api,
    who: &Authenticated,
    new: NewServiceAccount,
) -> Result<EntryJson, Problem> {
    let suffix = api.state.config.suffix.clone();
    let manager = references(api, vec![new.managed_by]).await?;
    let mut attrs = vec![
        ("objectClass".to_string(), vec![SERVICES.class.to_string()]),
        ("uid".to_string(), vec![new.name.clone()]),
        ("cn".to_string(), vec![new.name.clone()]),
        ("displayName".to_string(), vec![new.display_name]),
        ("entryManagedBy".to_string(), manager),
    ];
    if let Some(d) = new.description {
        attrs.push(("description".into(), vec![d]));
    }
    if let Some(e) = new.expires {
        let now = api.state.clock.now();
        match parse_expiry(&e, now).map_err(|e| Problem::bad_request(format!("expires: {e}")))? {
            Expiry::At(t) => attrs.push(("accountExpires".into(), vec![generalized(t)])),
            Expiry::Never => {
                return Err(Problem::bad_request(
                    "expires: an account expiry cannot be 'never'; leave it out",
                ));
            }
        }
    }
    let groups = new
        .groups
        .iter()
        .map(|g| {
            if g.contains('=') {
                Dn::parse(g).map_err(|e| Problem::from(DitError::from(e)))
            } else {
                Ok(GROUPS.dn(&suffix, g))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    create(api, who, SERVICES.dn(&suffix, &new.name), attrs, groups).await
}

/// A new role (only directory administrators define roles).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub cn: String,
    /// The subtrees it reaches: container names (`people`) or DNs.
    pub bases: Vec<String>,
    /// `base`, `one`, `sub` (default) or `children`.
    pub level: Option<String>,
    /// Only entries matching this LDAP filter.
    pub filter: Option<String>,
    /// `read`, `compare`, `write`, `add`, `delete`, `rename`, `manage-tokens`,
    /// `reset-password`, `impersonate`, `all`.
    pub rights: Vec<String>,
    #[serde(default)]
    pub read_allow: Vec<String>,
    #[serde(default)]
    pub read_deny: Vec<String>,
    #[serde(default)]
    pub write_allow: Vec<String>,
    #[serde(default)]
    pub write_deny: Vec<String>,
    pub description: Option<String>,
    /// Holders: names or DNs.
    #[serde(default)]
    pub members: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = NewRole,
    responses((status = 201, description = "Created", body = EntryJson)))]
pub async fn create_role(
    State(api): State<Api>,
    who: Authenticated,
    Json(new): Json<NewRole>,
) -> Result<Response, Problem> {
    created(create_role_entry(&api, &who, new).await?)
}

/// Add the role `new` as `who` (directory administrators only, by the rules).
pub async fn create_role_entry(
    api: &Api,
    who: &Authenticated,
    new: NewRole,
) -> Result<EntryJson, Problem> {
    let suffix = api.state.config.suffix.clone();
    let bases = role_bases(&suffix, &new.bases);
    let mut attrs = vec![
        ("objectClass".to_string(), vec![ROLES.class.to_string()]),
        ("cn".to_string(), vec![new.cn.clone()]),
        ("roleScopeBase".to_string(), bases),
        ("roleRight".to_string(), new.rights),
    ];
    let lists = [
        ("roleReadAllow", new.read_allow),
        ("roleReadDeny", new.read_deny),
        ("roleWriteAllow", new.write_allow),
        ("roleWriteDeny", new.write_deny),
    ];
    attrs.extend(
        lists
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (n.to_string(), v)),
    );
    for (name, value) in [
        ("roleScopeLevel", new.level),
        ("roleScopeFilter", new.filter),
        ("description", new.description),
    ] {
        if let Some(v) = value {
            attrs.push((name.to_string(), vec![v]));
        }
    }
    let members = references(api, new.members).await?;
    if !members.is_empty() {
        attrs.push(("member".into(), members));
    }
    create(api, who, ROLES.dn(&suffix, &new.cn), attrs, Vec::new()).await
}

/// A role's bases as given: container names (`people`) or DNs, as DNs.
pub fn role_bases(suffix: &Dn, bases: &[String]) -> Vec<String> {
    bases
        .iter()
        .map(|b| {
            if b.contains('=') {
                b.clone()
            } else {
                crate::dit::names::container(suffix, b).to_string()
            }
        })
        .collect()
}

#[utoipa::path(patch, path = "/api/v1/groups/{cn}/members", tag = "groups",
    params(("cn" = String, Path, description = "The group")),
    request_body = Members,
    responses((status = 200, description = "The group as changed", body = EntryJson)))]
pub async fn group_members(
    State(api): State<Api>,
    who: Authenticated,
    Path(cn): Path<String>,
    Json(body): Json<Members>,
) -> Result<Response, Problem> {
    let changed = change_members(&api, &who, GROUPS, &cn, body).await?;
    Ok(axum::Json(changed).into_response())
}

#[utoipa::path(patch, path = "/api/v1/roles/{cn}/members", tag = "roles",
    params(("cn" = String, Path, description = "The role")),
    request_body = Members,
    responses((status = 200, description = "The role as changed", body = EntryJson)))]
pub async fn role_members(
    State(api): State<Api>,
    who: Authenticated,
    Path(cn): Path<String>,
    Json(body): Json<Members>,
) -> Result<Response, Problem> {
    let changed = change_members(&api, &who, ROLES, &cn, body).await?;
    Ok(axum::Json(changed).into_response())
}

/// Add and remove members of the group or role `name` (names or DNs), together.
pub async fn change_members(
    api: &Api,
    who: &Authenticated,
    kind: Kind,
    name: &str,
    body: Members,
) -> Result<EntryJson, Problem> {
    if body.add.is_empty() && body.remove.is_empty() {
        return Err(Problem::bad_request("nothing to add or remove"));
    }
    let add = references(api, body.add).await?;
    let remove = references(api, body.remove).await?;
    let mut changes = Vec::new();
    if !add.is_empty() {
        changes.push(ChangeJson {
            op: ChangeOp::Add,
            attribute: "member".into(),
            values: add,
        });
    }
    if !remove.is_empty() {
        changes.push(ChangeJson {
            op: ChangeOp::Delete,
            attribute: "member".into(),
            values: remove,
        });
    }
    let dn = kind.dn(&api.state.config.suffix, name);
    modify(api, who, kind, dn, changes).await
}

/// What to search for, and as whom.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Where to start (default: the suffix).
    pub base: Option<String>,
    /// `base`, `one` or `sub` (default).
    pub scope: Option<String>,
    /// An LDAP filter (default `(objectClass=*)`).
    pub filter: Option<String>,
    /// Attributes to show (default: all the identity may read).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Search as this identity (a name or DN; `dn:DN`, `u:NAME`): what it would see.
    /// Needs the impersonate right over it, as LDAP's proxied authorization does.
    #[serde(rename = "as")]
    pub as_identity: Option<String>,
    /// Entries per page (1 to 100000; default 100).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/search", tag = "identity", request_body = SearchRequest,
    responses((status = 200, description = "The entries the identity sees", body = Listing)))]
pub async fn search_as(
    State(api): State<Api>,
    who: Authenticated,
    Json(req): Json<SearchRequest>,
) -> Result<Response, Problem> {
    Ok(axum::Json(search_entries(&api, &who, req).await?).into_response())
}

/// What `req` finds, as `who` or as the identity it names (which takes the impersonate
/// right over it, as LDAP's proxied authorization does).
pub async fn search_entries(
    api: &Api,
    who: &Authenticated,
    req: SearchRequest,
) -> Result<Listing, Problem> {
    let scope = match req.scope.as_deref().unwrap_or("sub") {
        "base" => LdapSearchScope::Base,
        "one" => LdapSearchScope::OneLevel,
        "sub" => LdapSearchScope::Subtree,
        other => {
            return Err(Problem::bad_request(format!(
                "scope: '{other}' is not base, one or sub"
            )));
        }
    };
    let principal = who.principal.clone();
    read(api, who, move |r, caller, policy| {
        let base = match req.base.as_deref() {
            Some(b) if !b.is_empty() => Dn::parse(b)?,
            _ => policy.suffix.clone(),
        };
        let filter = parse_filter(policy, req.filter.as_deref().unwrap_or("(objectClass=*)"))?;
        let query = SearchQuery {
            base,
            scope,
            filter,
        };
        let q = ListQuery {
            limit: req.limit,
            cursor: req.cursor,
            filter: None,
        };
        let mut page = match req.as_identity.as_deref() {
            None => list(r, caller, policy, &query, &q)?,
            Some(identity) => {
                let authz = if identity.starts_with("dn:") || identity.starts_with("u:") {
                    identity.to_string()
                } else if identity.contains('=') {
                    format!("dn:{identity}")
                } else {
                    format!("u:{identity}")
                };
                let Some((target, read_only)) = proxy::authorize(r, policy, &principal, &authz)?
                else {
                    return Err(DitError::new(
                        ldap3_proto::proto::LdapResultCode::AuthorizationError,
                        "you may not act as that identity (it needs the impersonate right over it, and rights that cover its own)",
                    ));
                };
                let proxied = Principal::Proxied { target, read_only };
                let as_them = caller::caller(r, &proxied, policy)?;
                list(r, &as_them, policy, &query, &q)?
            }
        };
        if !req.attributes.is_empty() {
            for item in &mut page.items {
                item.attributes
                    .retain(|n, _| req.attributes.iter().any(|a| a.eq_ignore_ascii_case(n)));
            }
        }
        Ok(page)
    })
    .await
}

/// Names or DNs, as DNs (a name is looked up as a person, group, then service account).
pub async fn references(api: &Api, names: Vec<String>) -> Result<Vec<String>, Problem> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let suffix = api.state.config.suffix.clone();
    api.state
        .store
        .read(move |r| {
            names
                .iter()
                .map(|n| reference(r, &suffix, n).map(|dn| dn.to_string()))
                .collect::<Result<Vec<_>, DitError>>()
        })
        .await
        .map_err(Problem::from)
}

/// Refuse a write before anything is hashed, as LDAP does (`dit::write::may_attempt`).
async fn may_attempt(
    api: &Api,
    who: &Authenticated,
    attempt: Attempt,
    target: Option<Dn>,
) -> Result<(), Problem> {
    read(api, who, move |r, caller, _| {
        write::may_attempt(r, caller, attempt, target.as_ref())
    })
    .await
}

/// Add the entry `dn` with `attrs` (passwords hashed first), and put it in `groups`, in one
/// transaction; 201 with the entry as the caller sees it.
async fn create(
    api: &Api,
    who: &Authenticated,
    dn: Dn,
    attrs: Vec<(String, Vec<String>)>,
    groups: Vec<Dn>,
) -> Result<EntryJson, Problem> {
    may_attempt(api, who, Attempt::Add, None).await?;
    let state = &api.state;
    let raw: Vec<(String, Vec<Vec<u8>>)> = attrs
        .into_iter()
        .map(|(n, v)| (n, v.into_iter().map(String::into_bytes).collect()))
        .collect();
    let request = entry::request_attrs(
        &state.schema,
        raw.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
    )?;
    let mut new = write::new_entry(&state.schema, &state.config.suffix, dn, request)?;
    if let Some(attr) = new.get_mut("userPassword") {
        let values = std::mem::take(&mut attr.values);
        attr.values = state.hash_passwords(values).await?;
    }
    let added = new.dn.clone();
    let mut ops = vec![Op::add(&new)];
    for group in &groups {
        let change = Change {
            kind: ChangeKind::Add,
            name: "member".into(),
            values: vec![added.to_string().into_bytes()],
        };
        ops.push(Op::modify(group, vec![change]));
    }
    super::submit(api, who, Op::Batch { ops }).await?;
    read(api, who, move |r, caller, policy| {
        shown(r, caller, policy, &added)
    })
    .await
}

/// 201 with the entry made.
fn created(entry: EntryJson) -> Result<Response, Problem> {
    Ok((StatusCode::CREATED, axum::Json(entry)).into_response())
}

/// The entry as the caller now sees it; just its DN when it cannot see it.
fn shown(
    r: &impl DirectoryRead,
    caller: &caller::Caller,
    policy: &caller::Policy,
    dn: &Dn,
) -> Result<EntryJson, DitError> {
    match get(r, caller, policy, dn) {
        Err(e) if e.code == ldap3_proto::proto::LdapResultCode::NoSuchObject => Ok(EntryJson {
            dn: dn.to_string(),
            attributes: BTreeMap::new(),
        }),
        other => other,
    }
}

/// Apply `changes` to the entry `dn` of `kind` (passwords hashed first).
pub async fn modify(
    api: &Api,
    who: &Authenticated,
    kind: Kind,
    dn: Dn,
    changes: Vec<ChangeJson>,
) -> Result<EntryJson, Problem> {
    if changes.is_empty() {
        return Err(Problem::bad_request("no changes given"));
    }
    may_attempt(api, who, Attempt::Modify, Some(dn.clone())).await?;
    let state = &api.state;
    let mut decoded = Vec::with_capacity(changes.len());
    for c in changes {
        let op = match c.op {
            ChangeOp::Add => ChangeKind::Add,
            ChangeOp::Delete => ChangeKind::Delete,
            ChangeOp::Replace => ChangeKind::Replace,
        };
        let values = c.values.into_iter().map(String::into_bytes).collect();
        let mut change = Change::from_request(
            &state.schema,
            &state.config.suffix,
            op,
            &c.attribute,
            values,
        )?;
        if change.sets_password() {
            change.values = state.hash_passwords(change.values).await?;
        }
        decoded.push(change);
    }
    {
        let dn = dn.clone();
        read(api, who, move |r, _, _| require_kind(r, kind, &dn)).await?;
    }
    super::submit(api, who, Op::modify(&dn, decoded)).await?;
    read(api, who, move |r, caller, policy| {
        shown(r, caller, policy, &dn)
    })
    .await
}

/// Delete the entry `dn` of `kind`, with its tokens or app passwords first, in one
/// transaction.
pub async fn delete(api: &Api, who: &Authenticated, kind: Kind, dn: Dn) -> Result<(), Problem> {
    may_attempt(api, who, Attempt::Delete, Some(dn.clone())).await?;
    // Its tokens or app passwords first: the rules refuse to delete an entry with
    // children. A token minted meanwhile makes the delete fail, and nothing is deleted.
    let children = {
        let dn = dn.clone();
        read(api, who, move |r, _, _| {
            require_kind(r, kind, &dn)?;
            let mut ops = Vec::new();
            if let Some(id) = r.id_of(&dn)? {
                for child in r.children(id)? {
                    if let Some(token) = r.dn_of(child)? {
                        ops.push(Op::Delete {
                            dn: token.to_string(),
                        });
                    }
                }
            }
            Ok(ops)
        })
        .await?
    };
    let mut ops = children;
    ops.push(Op::Delete { dn: dn.to_string() });
    super::submit(api, who, Op::Batch { ops }).await.map(drop)
}

/// 404 unless `dn` is an entry of `kind` (the caller's view is checked by the operation).
fn require_kind(r: &impl DirectoryRead, kind: Kind, dn: &Dn) -> Result<(), DitError> {
    match r.entry_by_dn(dn)? {
        Some((_, e)) if e.has_class(kind.class) => Ok(()),
        Some(_) | None => Err(DitError::no_such_object(String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_keep_passwords_out_of_debug() {
        let p: NewPerson = serde_json::from_str(r#"{"uid": "a", "password": "hunter2"}"#).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
        let c: Changes = serde_json::from_str(
            r#"{"changes": [{"op": "replace", "attribute": "userPassword", "values": ["hunter2"]}]}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let t: crate::http::api::tokens::NewPassword =
            serde_json::from_str(r#"{"password": "hunter2"}"#).unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
