//! Roles: list, each role's definition (bases, level, filter, rights, attribute lists)
//! and holders (added and removed as `http::api` does, so only those covering a role may
//! hand it out), defining a new one (the rules' validation messages shown at the form),
//! and "see as": the entries and attributes an identity would see, through the API's
//! search-as (the impersonate right, as LDAP's proxied authorization).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::http::Api;
use crate::http::api::EntryJson;
use crate::http::api::ROLES;
use crate::http::api::directory::{
    ChangeJson, ChangeOp, Members, NewRole, SearchRequest, create_role_entry, modify, references,
    role_bases, search_entries,
};
use crate::http::console::accounts::{ListOf, ListParams, PAGE, describe_role, list_page};
use crate::http::console::session::{Posted, Signed};
use crate::http::console::{
    Frame, change_members_worded, detail_of, first, link_of, members_of, path_segment, render, say,
    short_name, status, values,
};

pub async fn list(State(api): State<Api>, signed: Signed, Query(p): Query<ListParams>) -> Response {
    let listed = ListOf {
        kind: ROLES,
        section: "roles",
        path: "/console/roles",
        heading: "Roles",
        new_label: "New role",
        searched: &["cn", "description"],
        placeholder: "name or description",
        columns: vec!["Reaches", "Holders"],
        cells: |e| vec![describe_role(e), values(e, "member").len().to_string()],
    };
    list_page(&api, &signed, p, listed).await
}

#[derive(Template)]
#[template(path = "role_new.html", config = "src/http/console/askama.toml")]
struct NewPage {
    frame: Frame,
    cn: String,
    bases: String,
    level: String,
    filter: String,
    rights: String,
    read_allow: String,
    read_deny: String,
    write_allow: String,
    write_deny: String,
    description: String,
}

pub async fn new_form(signed: Signed) -> Response {
    render(
        StatusCode::OK,
        &NewPage {
            frame: Frame::new("New role", "roles", Some(&signed)),
            cn: String::new(),
            bases: String::new(),
            level: "sub".into(),
            filter: String::new(),
            rights: "read".into(),
            read_allow: String::new(),
            read_deny: String::new(),
            write_allow: String::new(),
            write_deny: String::new(),
            description: String::new(),
        },
    )
}

pub async fn create(State(api): State<Api>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let cn = form.get("cn").to_string();
    let refuse = |text: String, code: StatusCode| {
        render(
            code,
            &NewPage {
                frame: Frame::new("New role", "roles", Some(&signed)).error(text),
                cn: cn.clone(),
                bases: form.get("bases").to_string(),
                level: form.get("level").to_string(),
                filter: form.get("filter").to_string(),
                rights: form.get("rights").to_string(),
                read_allow: form.get("read_allow").to_string(),
                read_deny: form.get("read_deny").to_string(),
                write_allow: form.get("write_allow").to_string(),
                write_deny: form.get("write_deny").to_string(),
                description: form.get("description").to_string(),
            },
        )
    };
    if cn.is_empty() {
        return refuse(
            "A role needs a name.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let new = NewRole {
        cn: cn.clone(),
        bases: form.lines("bases"),
        level: form.opt("level"),
        filter: form.opt("filter"),
        rights: form.lines("rights"),
        read_allow: form.lines("read_allow"),
        read_deny: form.lines("read_deny"),
        write_allow: form.lines("write_allow"),
        write_deny: form.lines("write_deny"),
        description: form.opt("description"),
        members: Vec::new(),
    };
    match create_role_entry(&api, &signed.who, new).await {
        Ok(_) => Redirect::to(&format!("/console/roles/{}", path_segment(&cn))).into_response(),
        Err(p) => refuse(say(&p, "define this role"), status(&p)),
    }
}

#[derive(Template)]
#[template(path = "role.html", config = "src/http/console/askama.toml")]
struct DetailPage {
    frame: Frame,
    cn: String,
    entry: EntryJson,
    holders: Vec<(String, String, Option<String>)>,
}

impl DetailPage {
    fn field(&self, attr: &str) -> String {
        first(&self.entry, attr)
    }

    fn all(&self, attr: &str) -> String {
        values(&self.entry, attr).join(", ")
    }

    /// Values one a line, for a form's text area.
    fn lines(&self, attr: &str) -> String {
        values(&self.entry, attr).join("\n")
    }
}

pub async fn detail(State(api): State<Api>, signed: Signed, Path(cn): Path<String>) -> Response {
    detail_page(&api, &signed, &cn, None, StatusCode::OK).await
}

async fn detail_page(
    api: &Api,
    signed: &Signed,
    cn: &str,
    message: Option<Result<String, String>>,
    code: StatusCode,
) -> Response {
    let (entry, frame) =
        match detail_of(api, signed, ROLES, cn, "Role", "roles", message, code).await {
            Ok(found) => found,
            Err(page) => return page,
        };
    let page = DetailPage {
        frame,
        cn: cn.to_string(),
        holders: members_of(&api.state.config.suffix, &entry),
        entry,
    };
    render(code, &page)
}

/// Redefine a role: its bases, level, filter, rights, attribute lists and description as
/// the form gives them (each replaced; an empty one removed), through the API's modify,
/// so the rules validate it (and only administrators may).
pub async fn redefine(State(api): State<Api>, Path(cn): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let suffix = api.state.config.suffix.clone();
    let replace = |attribute: &str, values: Vec<String>| ChangeJson {
        op: ChangeOp::Replace,
        attribute: attribute.to_string(),
        values,
    };
    let one = |name: &str| form.opt(name).into_iter().collect::<Vec<_>>();
    let changes = vec![
        replace("roleScopeBase", role_bases(&suffix, &form.lines("bases"))),
        replace("roleScopeLevel", one("level")),
        replace("roleScopeFilter", one("filter")),
        replace("roleRight", form.lines("rights")),
        replace("roleReadAllow", form.lines("read_allow")),
        replace("roleReadDeny", form.lines("read_deny")),
        replace("roleWriteAllow", form.lines("write_allow")),
        replace("roleWriteDeny", form.lines("write_deny")),
        replace("description", one("description")),
    ];
    let dn = ROLES.dn(&suffix, &cn);
    match modify(&api, &signed.who, ROLES, dn, changes).await {
        Ok(_) => {
            let text = "The role is redefined.".to_string();
            detail_page(&api, &signed, &cn, Some(Ok(text)), StatusCode::OK).await
        }
        Err(p) => {
            let text = say(&p, "redefine this role");
            detail_page(&api, &signed, &cn, Some(Err(text)), status(&p)).await
        }
    }
}

/// Add (`add`, names or DNs one a line) and remove (`remove`, DNs) holders.
pub async fn members(State(api): State<Api>, Path(cn): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let change = Members {
        add: form.lines("add"),
        remove: form.all("remove"),
    };
    let words = (
        "Name a holder to add, or choose one to remove.",
        "Holders changed.",
        "change who holds this role",
    );
    let (message, code) = change_members_worded(&api, &signed, ROLES, &cn, change, words).await;
    detail_page(&api, &signed, &cn, Some(message), code).await
}

#[derive(Deserialize, Default)]
pub struct SeeAsQuery {
    #[serde(default, rename = "as")]
    who: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    filter: String,
    cursor: Option<String>,
}

/// An entry as the identity sees it: its DN (linked when the console has a page for it)
/// and its attributes.
pub struct Seen {
    pub dn: String,
    pub href: Option<String>,
    pub attributes: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "see_as.html", config = "src/http/console/askama.toml")]
struct SeeAsPage {
    frame: Frame,
    who: String,
    base: String,
    filter: String,
    entries: Option<Vec<Seen>>,
    next: Option<String>,
}

impl SeeAsPage {
    fn next_href(&self) -> Option<String> {
        let q = crate::http::console::query_value;
        self.next.as_ref().map(|c| {
            format!(
                "/console/see-as?as={}&base={}&filter={}&cursor={}",
                q(&self.who),
                q(&self.base),
                q(&self.filter),
                q(c)
            )
        })
    }
}

/// "See as": what `as` would find under `base` with `filter`.
pub async fn see_as(
    State(api): State<Api>,
    signed: Signed,
    Query(q): Query<SeeAsQuery>,
) -> Response {
    let mut page = SeeAsPage {
        frame: Frame::new("See as", "roles", Some(&signed)),
        who: q.who.trim().to_string(),
        base: q.base.trim().to_string(),
        filter: q.filter.trim().to_string(),
        entries: None,
        next: None,
    };
    if page.who.is_empty() {
        return render(StatusCode::OK, &page);
    }
    // A bare name is a person, group or service account, as the API's references are.
    let identity = if page.who.contains(':') || page.who.contains('=') {
        page.who.clone()
    } else {
        match references(&api, vec![page.who.clone()]).await {
            Ok(dns) => dns
                .into_iter()
                .next()
                .map_or_else(|| page.who.clone(), |dn| format!("dn:{dn}")),
            Err(p) => {
                let action = format!("see the directory as {}", page.who);
                page.frame = page.frame.error(say(&p, &action));
                return render(status(&p), &page);
            }
        }
    };
    let req = SearchRequest {
        base: Some(page.base.clone()).filter(|b| !b.is_empty()),
        scope: None,
        filter: Some(page.filter.clone()).filter(|f| !f.is_empty()),
        attributes: Vec::new(),
        as_identity: Some(identity),
        limit: Some(PAGE),
        cursor: q.cursor,
    };
    match search_entries(&api, &signed.who, req).await {
        Ok(listing) => {
            let suffix = &api.state.config.suffix;
            page.entries = Some(
                listing
                    .items
                    .into_iter()
                    .map(|e| Seen {
                        href: link_of(suffix, &e.dn),
                        attributes: e
                            .attributes
                            .into_iter()
                            .map(|(n, v)| (n, v.join(", ")))
                            .collect(),
                        dn: e.dn,
                    })
                    .collect(),
            );
            page.next = listing.next;
            render(StatusCode::OK, &page)
        }
        Err(p) => {
            let action = format!("see the directory as {}", short_name(&page.who));
            page.frame = page.frame.error(say(&p, &action));
            render(status(&p), &page)
        }
    }
}
