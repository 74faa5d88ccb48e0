//! Service accounts: list and search, create (the name rule said inline, manager, roles,
//! description, expiry), and each account's page: its entry, the roles it holds and what
//! they reach, its tokens (label, scope, intent, created, creator, expires, sliding, last
//! used, exposed), generating one (the secret shown once), rotating one with an overlap,
//! revoking one after a confirmation. Every action is `http::api`'s, as the signed-in
//! identity.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::directory::dn::Dn;
use crate::dit::caller;
use crate::dit::credentials::Intent;
use crate::http::Api;
use crate::http::api::directory::{
    Members, NewServiceAccount, change_members, create_service_account_entry,
};
use crate::http::api::tokens::{self, MintedJson, NewToken, Rotation, TokenJson};
use crate::http::api::{
    EntryJson, Kind, ListQuery, ROLES, SERVICES, get, get_kind, list_kind, read,
};
use crate::http::console::session::{Posted, Signed};
use crate::http::console::sign_in::{confirm, confirm_prompt};
use crate::http::console::{
    Frame, first, link_of, path_segment, render, render_secret, say, search_filter, short_name,
    status, values,
};

/// Entries per page of a list.
pub const PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    pub q: String,
    pub cursor: Option<String>,
}

/// A row of a list: the name (linked), then the columns.
pub struct Row {
    pub name: String,
    pub href: String,
    pub cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "list.html", config = "src/http/console/askama.toml")]
pub struct ListPage {
    pub frame: Frame,
    pub heading: &'static str,
    pub path: &'static str,
    pub new_label: &'static str,
    pub placeholder: &'static str,
    pub q: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Row>,
    pub next: Option<String>,
}

impl ListPage {
    /// The next page's address.
    pub fn next_href(&self) -> Option<String> {
        self.next.as_ref().map(|c| {
            format!(
                "{}?q={}&cursor={}",
                self.path,
                crate::http::console::query_value(&self.q),
                crate::http::console::query_value(c)
            )
        })
    }
}

pub async fn list(State(api): State<Api>, signed: Signed, Query(p): Query<ListParams>) -> Response {
    let listed = ListOf {
        kind: SERVICES,
        section: "accounts",
        path: "/console/service-accounts",
        heading: "Service accounts",
        new_label: "New service account",
        searched: &["uid", "cn", "displayName", "description"],
        placeholder: "name, display name or description",
        columns: vec!["Display name", "Managed by", "Expires", "Description"],
        cells: |e| {
            vec![
                first(e, "displayName"),
                values(e, "entryManagedBy")
                    .iter()
                    .map(|m| short_name(m))
                    .collect::<Vec<_>>()
                    .join(", "),
                time_of(&first(e, "accountExpires")),
                first(e, "description"),
            ]
        },
    };
    list_page(&api, &signed, p, listed).await
}

/// What one kind's list page shows: its words, the attributes its search box looks in, and
/// the columns after each entry's name.
pub struct ListOf {
    pub kind: Kind,
    /// The navigation section it belongs to.
    pub section: &'static str,
    pub path: &'static str,
    pub heading: &'static str,
    pub new_label: &'static str,
    pub searched: &'static [&'static str],
    pub placeholder: &'static str,
    pub columns: Vec<&'static str>,
    pub cells: fn(&EntryJson) -> Vec<String>,
}

/// A page of `listed`'s entries as the signed-in identity sees them, those matching `p.q`,
/// each linked to its own page; or the refusal, worded.
pub async fn list_page(api: &Api, signed: &Signed, p: ListParams, listed: ListOf) -> Response {
    let q = ListQuery {
        limit: Some(PAGE),
        cursor: p.cursor.clone(),
        filter: search_filter(&p.q, listed.searched),
    };
    let kind = listed.kind;
    let found = read(api, &signed.who, move |r, caller, policy| {
        list_kind(r, caller, policy, kind, &q)
    })
    .await;
    let mut page = ListPage {
        frame: Frame::new(listed.heading, listed.section, Some(signed)),
        heading: listed.heading,
        path: listed.path,
        new_label: listed.new_label,
        placeholder: listed.placeholder,
        q: p.q,
        columns: listed.columns,
        rows: Vec::new(),
        next: None,
    };
    match found {
        Ok(listing) => {
            page.rows = listing
                .items
                .iter()
                .map(|e| {
                    let name = first(e, kind.naming);
                    Row {
                        href: format!("{}/{}", listed.path, path_segment(&name)),
                        cells: (listed.cells)(e),
                        name,
                    }
                })
                .collect();
            page.next = listing.next;
            render(StatusCode::OK, &page)
        }
        Err(p) => {
            let action = format!("list {}", listed.heading.to_lowercase());
            page.frame = page.frame.error(say(&p, &action));
            render(status(&p), &page)
        }
    }
}

#[derive(Template)]
#[template(path = "account_new.html", config = "src/http/console/askama.toml")]
struct NewPage {
    frame: Frame,
    name: String,
    display_name: String,
    managed_by: String,
    description: String,
    expires: String,
    roles: Vec<(String, bool)>,
}

pub async fn new_form(State(api): State<Api>, signed: Signed) -> Response {
    let roles = role_names(&api, &signed).await;
    let page = NewPage {
        frame: Frame::new("New service account", "accounts", Some(&signed)),
        name: String::new(),
        display_name: String::new(),
        managed_by: String::new(),
        description: String::new(),
        expires: String::new(),
        roles: roles.into_iter().map(|r| (r, false)).collect(),
    };
    render(StatusCode::OK, &page)
}

/// The names of the roles the caller sees.
pub async fn role_names(api: &Api, signed: &Signed) -> Vec<String> {
    let q = ListQuery {
        limit: Some(1000),
        ..Default::default()
    };
    read(api, &signed.who, move |r, caller, policy| {
        list_kind(r, caller, policy, ROLES, &q)
    })
    .await
    .map(|l| l.items.iter().map(|e| first(e, "cn")).collect())
    .unwrap_or_default()
}

pub async fn create(State(api): State<Api>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let name = form.get("name").to_string();
    let chosen = form.all("role");
    let new = NewServiceAccount {
        name: name.clone(),
        display_name: form.opt("display_name").unwrap_or_else(|| name.clone()),
        managed_by: form.get("managed_by").to_string(),
        description: form.opt("description"),
        expires: form.opt("expires"),
        groups: Vec::new(),
    };
    let refuse = |text: String, code: StatusCode, roles: Vec<String>| {
        let page = NewPage {
            frame: Frame::new("New service account", "accounts", Some(&signed)).error(text),
            name: name.clone(),
            display_name: form.get("display_name").to_string(),
            managed_by: form.get("managed_by").to_string(),
            description: form.get("description").to_string(),
            expires: form.get("expires").to_string(),
            roles: roles
                .into_iter()
                .map(|r| {
                    let on = chosen.contains(&r);
                    (r, on)
                })
                .collect(),
        };
        render(code, &page)
    };
    if name.is_empty() || new.managed_by.is_empty() {
        let roles = role_names(&api, &signed).await;
        return refuse(
            "A service account needs a name and a manager (a group or a person whose members may manage its tokens).".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            roles,
        );
    }
    if let Err(p) = create_service_account_entry(&api, &signed.who, new).await {
        let roles = role_names(&api, &signed).await;
        return refuse(say(&p, "create this service account"), status(&p), roles);
    }
    let dn = SERVICES.dn(&api.state.config.suffix, &name).to_string();
    let mut failed = Vec::new();
    for role in &chosen {
        let members = Members {
            add: vec![dn.clone()],
            remove: Vec::new(),
        };
        if let Err(p) = change_members(&api, &signed.who, ROLES, role, members).await {
            failed.push(say(&p, &format!("give it the role {role}")));
        }
    }
    if failed.is_empty() {
        return Redirect::to(&format!("/console/service-accounts/{name}?done=created"))
            .into_response();
    }
    let text = format!("Created {name}, but: {}", failed.join(" "));
    detail_page(&api, &signed, &name, Some(Err(text)), StatusCode::OK).await
}

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    token: Option<String>,
    /// The first token shown (the table is paged).
    from: Option<usize>,
}

pub async fn detail(
    State(api): State<Api>,
    signed: Signed,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let token = done.token.unwrap_or_default();
    let message = match done.done.as_deref() {
        Some("created") => Some(Ok(format!("Created the service account {name}."))),
        Some("revoked") => Some(Ok(format!(
            "Revoked the token {token}: it fails from its next use."
        ))),
        _ => None,
    };
    let from = done.from.unwrap_or(0);
    detail_page_from(&api, &signed, &name, message, StatusCode::OK, from).await
}

/// Tokens per page of an account's table.
pub const TOKENS_PAGE: usize = 50;

/// A role held and what it reaches, as the caller may read its definition.
pub struct Held {
    pub name: String,
    pub href: String,
    pub reach: String,
}

#[derive(Template)]
#[template(path = "account.html", config = "src/http/console/askama.toml")]
struct DetailPage {
    frame: Frame,
    name: String,
    entry: EntryJson,
    managers: Vec<(String, Option<String>)>,
    groups: Vec<(String, Option<String>)>,
    roles: Vec<Held>,
    tokens: Vec<TokenJson>,
    /// Tokens in all, and the first shown.
    total: usize,
    from: usize,
    /// Why the caller may not mint or rotate this account's tokens, when it may not.
    mint_refused: Option<String>,
    confirm: Option<&'static str>,
}

impl DetailPage {
    /// The address of the tokens from `from` on, when there are any there.
    fn tokens_at(&self, from: Option<usize>) -> Option<String> {
        let from = from.filter(|f| *f < self.total && *f != self.from)?;
        Some(format!(
            "/console/service-accounts/{}?from={from}#tokens",
            crate::http::console::path_segment(&self.name)
        ))
    }

    fn previous_tokens(&self) -> Option<String> {
        self.tokens_at(self.from.checked_sub(TOKENS_PAGE))
    }

    fn next_tokens(&self) -> Option<String> {
        self.tokens_at(Some(self.from + TOKENS_PAGE))
    }

    fn field(&self, attr: &str) -> String {
        first(&self.entry, attr)
    }

    fn time(&self, attr: &str) -> String {
        time_of(&first(&self.entry, attr))
    }

    /// Where the tokens' actions are.
    fn base_path(&self) -> String {
        format!(
            "/console/service-accounts/{}/tokens",
            crate::http::console::path_segment(&self.name)
        )
    }

    fn rotatable(&self) -> bool {
        self.mint_refused.is_none()
    }
}

/// The account's page, with `message` (Ok: done, Err: refused) and `code`.
pub async fn detail_page(
    api: &Api,
    signed: &Signed,
    name: &str,
    message: Option<Result<String, String>>,
    code: StatusCode,
) -> Response {
    detail_page_from(api, signed, name, message, code, 0).await
}

/// The account's page with its tokens from the `from`th on.
async fn detail_page_from(
    api: &Api,
    signed: &Signed,
    name: &str,
    message: Option<Result<String, String>>,
    code: StatusCode,
    from: usize,
) -> Response {
    let account = name.to_string();
    let found = read(api, &signed.who, move |r, caller, policy| {
        let entry = get_kind(r, caller, policy, SERVICES, &account)?;
        let dn = Dn::parse(&entry.dn)?;
        let roles = held_roles(r, caller, policy, &dn)?;
        // The rule minting applies says whether the token forms are worth showing.
        let mint = crate::dit::token::require_manageable(r, policy, caller, &dn).err();
        Ok((entry, roles, mint))
    })
    .await;
    let (entry, roles, mint) = match found {
        Ok(found) => found,
        Err(p) => {
            // A refusal to act is the news; the page it would have been shown on may be out of
            // sight too.
            let (text, code) = match message {
                Some(Err(text)) => (text, code),
                _ => (say(&p, "show this service account"), status(&p)),
            };
            let frame = Frame::new("Service account", "accounts", Some(signed)).error(text);
            return render(code, &crate::http::console::Refused { frame });
        }
    };
    let tokens = tokens::list(api, &signed.who, SERVICES, name)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let total = tokens.len();
    let from = from.min(total.saturating_sub(1) / TOKENS_PAGE * TOKENS_PAGE);
    let tokens = tokens.into_iter().skip(from).take(TOKENS_PAGE).collect();
    let suffix = &api.state.config.suffix;
    let linked = |dns: Vec<String>| {
        dns.iter()
            .map(|d| (short_name(d), link_of(suffix, d)))
            .collect()
    };
    let mut frame = Frame::new(name.to_string(), "accounts", Some(signed));
    frame = match message {
        Some(Ok(text)) => frame.ok(text),
        Some(Err(text)) => frame.error(text),
        None => frame,
    };
    let page = DetailPage {
        frame,
        name: name.to_string(),
        managers: linked(values(&entry, "entryManagedBy")),
        groups: linked(values(&entry, "memberOf")),
        entry,
        roles,
        tokens,
        total,
        from,
        mint_refused: mint.map(|e| {
            say(
                &crate::http::problem::Problem::from(e),
                "generate a token for this service account",
            )
        }),
        confirm: confirm_prompt(api, signed),
    };
    render(code, &page)
}

/// The roles `dn` holds (directly or through groups), each with what it reaches when the
/// caller may read the role.
pub fn held_roles(
    r: &impl crate::store::DirectoryRead,
    caller: &caller::Caller,
    policy: &caller::Policy,
    dn: &Dn,
) -> Result<Vec<Held>, crate::dit::DitError> {
    let resolved = caller::resolve(r, dn, policy)?;
    let mut roles: Vec<Dn> = resolved.roles().cloned().collect();
    if resolved.is_admin() {
        roles.insert(0, crate::dit::names::admin_role(&policy.suffix));
    }
    let mut out = Vec::new();
    for role in roles {
        let name = role.rdn_value("cn").unwrap_or_default().to_string();
        // Linked only when the caller may read it: its page would answer 404.
        let (reach, href) = match get(r, caller, policy, &role) {
            Ok(e) => (
                describe_role(&e),
                link_of(&policy.suffix, role.as_str()).unwrap_or_default(),
            ),
            Err(_) => ("(a role you may not read)".to_string(), String::new()),
        };
        out.push(Held { href, name, reach });
    }
    Ok(out)
}

/// What a role reaches and allows, in one line.
pub fn describe_role(e: &EntryJson) -> String {
    let bases = values(e, "roleScopeBase");
    if first(e, "cn") == "directory-admins" && bases.is_empty() {
        return "everything: directory administrators".into();
    }
    let level = first(e, "roleScopeLevel");
    let filter = first(e, "roleScopeFilter");
    let mut text = format!(
        "{} on {} ({})",
        values(e, "roleRight").join(", "),
        bases.join("; "),
        if level.is_empty() { "sub" } else { &level }
    );
    if !filter.is_empty() {
        text.push_str(&format!(" where {filter}"));
    }
    text
}

#[derive(Template)]
#[template(path = "secret.html", config = "src/http/console/askama.toml")]
pub struct SecretPage {
    pub frame: Frame,
    pub what: &'static str,
    pub account: String,
    pub back: String,
    pub minted: MintedJson,
    pub bind_dn: String,
}

pub async fn mint(State(api): State<Api>, Path(name): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    if let Err(text) = confirm(&api, &signed, &form).await {
        return detail_page(&api, &signed, &name, Some(Err(text)), StatusCode::FORBIDDEN).await;
    }
    let intent = match form.get("intent") {
        "" | "api-token" => Intent::ApiToken,
        "http-api" => Intent::HttpApi,
        _ => {
            let text = "The intent is api-token (LDAP binds) or http-api (the HTTP API).";
            return detail_page(
                &api,
                &signed,
                &name,
                Some(Err(text.into())),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let new = NewToken {
        label: form.get("label").to_string(),
        scope: form.opt("scope"),
        expires: form.opt("expires"),
        intent: None,
        extend_on_use: form.opt("extend_on_use"),
    };
    match tokens::mint(&api, &signed.who, SERVICES, &name, new, intent).await {
        Ok(minted) => {
            let bind_dn = if intent == Intent::HttpApi {
                String::new()
            } else {
                SERVICES.dn(&api.state.config.suffix, &name).to_string()
            };
            render_secret(&SecretPage {
                frame: Frame::new("Token generated", "accounts", Some(&signed)),
                what: "token",
                back: format!("/console/service-accounts/{name}"),
                account: name,
                minted,
                bind_dn,
            })
        }
        Err(p) => {
            let text = say(&p, "generate a token for this service account");
            detail_page(&api, &signed, &name, Some(Err(text)), status(&p)).await
        }
    }
}

pub async fn rotate(
    State(api): State<Api>,
    Path((name, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let Posted { signed, form } = posted;
    if let Err(text) = confirm(&api, &signed, &form).await {
        return detail_page(&api, &signed, &name, Some(Err(text)), StatusCode::FORBIDDEN).await;
    }
    let rotation = Rotation {
        overlap: form.opt("overlap"),
    };
    match tokens::rotate(&api, &signed.who, SERVICES, &name, id, rotation).await {
        Ok(minted) => render_secret(&SecretPage {
            frame: Frame::new("Token rotated", "accounts", Some(&signed)),
            what: "token",
            back: format!("/console/service-accounts/{name}"),
            bind_dn: SERVICES.dn(&api.state.config.suffix, &name).to_string(),
            account: name,
            minted,
        }),
        Err(p) => {
            let text = say(&p, "rotate this token");
            detail_page(&api, &signed, &name, Some(Err(text)), status(&p)).await
        }
    }
}

#[derive(Template)]
#[template(path = "revoke.html", config = "src/http/console/askama.toml")]
pub struct RevokePage {
    pub frame: Frame,
    pub what: &'static str,
    pub id: String,
    pub label: String,
    pub account: String,
    pub action: String,
    pub back: String,
    pub csrf: String,
}

pub async fn revoke_form(
    State(api): State<Api>,
    signed: Signed,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    let label = tokens::list(&api, &signed.who, SERVICES, &name)
        .await
        .ok()
        .and_then(|l| l.items.into_iter().find(|t| t.id == id))
        .map(|t| t.label);
    let Some(label) = label else {
        let text = format!("No token {id} of {name} that you may see.");
        return detail_page(&api, &signed, &name, Some(Err(text)), StatusCode::NOT_FOUND).await;
    };
    render(
        StatusCode::OK,
        &RevokePage {
            frame: Frame::new("Revoke a token", "accounts", Some(&signed)),
            what: "token",
            action: format!("/console/service-accounts/{name}/tokens/{id}/revoke"),
            back: format!("/console/service-accounts/{name}"),
            csrf: signed.session.csrf.clone(),
            id,
            label,
            account: name,
        },
    )
}

pub async fn revoke(
    State(api): State<Api>,
    Path((name, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let signed = posted.signed;
    match tokens::revoke(&api, &signed.who, SERVICES, &name, &id).await {
        Ok(()) => Redirect::to(&format!(
            "/console/service-accounts/{name}?done=revoked&token={id}"
        ))
        .into_response(),
        Err(p) => {
            let text = say(&p, "revoke this token");
            detail_page(&api, &signed, &name, Some(Err(text)), status(&p)).await
        }
    }
}

/// A generalizedTime value as RFC 3339; empty stays empty.
pub fn time_of(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    tokens::time_text(value)
}
