//! Groups: list and search, create, and each group's members (people, service accounts,
//! nested groups), added and removed by name or DN, through `http::api`'s membership
//! change as the signed-in identity (so joining a group that confers rights one lacks is
//! refused by the same rule as over LDAP).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::http::Api;
use crate::http::api::directory::{Members, NewGroup, create_group_entry};
use crate::http::api::{EntryJson, GROUPS, ListQuery, list_kind, read};
use crate::http::console::accounts::{ListOf, ListParams, list_page};
use crate::http::console::session::{Posted, Signed};
use crate::http::console::{
    Frame, change_members_worded, detail_of, first, members_of, path_segment, render, say,
    search_filter, status, values,
};

pub async fn list(State(api): State<Api>, signed: Signed, Query(p): Query<ListParams>) -> Response {
    let listed = ListOf {
        kind: GROUPS,
        section: "groups",
        path: "/console/groups",
        heading: "Groups",
        new_label: "New group",
        searched: &["cn", "description"],
        placeholder: "name or description",
        columns: vec!["Members", "Description"],
        cells: |e| {
            vec![
                values(e, "member").len().to_string(),
                first(e, "description"),
            ]
        },
    };
    list_page(&api, &signed, p, listed).await
}

#[derive(Template)]
#[template(path = "group_new.html", config = "src/http/console/askama.toml")]
struct NewPage {
    frame: Frame,
    cn: String,
    description: String,
    members: String,
}

pub async fn new_form(signed: Signed) -> Response {
    render(
        StatusCode::OK,
        &NewPage {
            frame: Frame::new("New group", "groups", Some(&signed)),
            cn: String::new(),
            description: String::new(),
            members: String::new(),
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
                frame: Frame::new("New group", "groups", Some(&signed)).error(text),
                cn: cn.clone(),
                description: form.get("description").to_string(),
                members: form.get("members").to_string(),
            },
        )
    };
    if cn.is_empty() {
        return refuse(
            "A group needs a name.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let new = NewGroup {
        cn: cn.clone(),
        posix: form.get("posix") == "on",
        gid_number: None,
        description: form.opt("description"),
        members: form.lines("members"),
    };
    match create_group_entry(&api, &signed.who, new).await {
        Ok(_) => Redirect::to(&format!("/console/groups/{}", path_segment(&cn))).into_response(),
        Err(p) => refuse(say(&p, "add this group"), status(&p)),
    }
}

#[derive(Template)]
#[template(path = "group.html", config = "src/http/console/askama.toml")]
struct DetailPage {
    frame: Frame,
    cn: String,
    entry: EntryJson,
    members: Vec<(String, String, Option<String>)>,
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
        match detail_of(api, signed, GROUPS, cn, "Group", "groups", message, code).await {
            Ok(found) => found,
            Err(page) => return page,
        };
    let page = DetailPage {
        frame,
        cn: cn.to_string(),
        members: members_of(&api.state.config.suffix, &entry),
        entry,
    };
    render(code, &page)
}

impl DetailPage {
    fn field(&self, attr: &str) -> String {
        first(&self.entry, attr)
    }
}

/// Add (`add`, names or DNs one a line) and remove (`remove`, DNs) members.
pub async fn members(State(api): State<Api>, Path(cn): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let mut add = form.lines("add");
    add.extend(form.opt("pick"));
    let change = Members {
        add,
        remove: form.all("remove"),
    };
    let words = (
        "Name a member to add, or choose one to remove.",
        "Members changed.",
        "change this group's members",
    );
    let (message, code) = change_members_worded(&api, &signed, GROUPS, &cn, change, words).await;
    detail_page(&api, &signed, &cn, Some(message), code).await
}

#[derive(serde::Deserialize, Default)]
pub struct PickQuery {
    #[serde(default)]
    pick: String,
}

/// A choice in the member picker: the value to post (a DN) and what to show.
pub struct Choice {
    pub dn: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "pick.html", config = "src/http/console/askama.toml")]
struct Picks {
    choices: Vec<Choice>,
}

/// The member picker's choices for what was typed (an htmx fragment of `<option>`s): the
/// people, service accounts and groups the caller sees whose name contains it.
pub async fn pick(State(api): State<Api>, signed: Signed, Query(q): Query<PickQuery>) -> Response {
    use crate::http::api::{PEOPLE, SERVICES};
    let Some(filter) = search_filter(&q.pick, &["uid", "cn"]) else {
        return render(
            StatusCode::OK,
            &Picks {
                choices: Vec::new(),
            },
        );
    };
    let found = read(&api, &signed.who, move |r, caller, policy| {
        let mut choices = Vec::new();
        for (kind, noun) in [
            (PEOPLE, "person"),
            (SERVICES, "service account"),
            (GROUPS, "group"),
        ] {
            let q = ListQuery {
                limit: Some(10),
                cursor: None,
                filter: Some(filter.clone()),
            };
            // A container out of the caller's sight offers nothing.
            let Ok(listing) = list_kind(r, caller, policy, kind, &q) else {
                continue;
            };
            for e in listing.items {
                let name = first(&e, kind.naming);
                choices.push(Choice {
                    label: format!("{name} ({noun})"),
                    dn: e.dn,
                });
            }
        }
        Ok(choices)
    })
    .await;
    let choices = found.unwrap_or_default();
    render(StatusCode::OK, &Picks { choices })
}
