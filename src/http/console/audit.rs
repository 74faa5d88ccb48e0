//! The audit trail, as the API lists it (`http::api::audit::page`: the caller sees its
//! own records and those of the accounts it manages; administrators see all), filtered by
//! account, token, actor, kind and time.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::audit::{Event, Kind};
use crate::http::Api;
use crate::http::api::audit::{AuditQuery, page as audit_page};
use crate::http::console::session::Signed;
use crate::http::console::{Frame, query_value, render, say, status};

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    account: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html", config = "src/http/console/askama.toml")]
struct Page {
    frame: Frame,
    f: Filters,
    kinds: Vec<&'static str>,
    events: Vec<Event>,
    next: Option<String>,
}

impl Page {
    fn next_href(&self) -> Option<String> {
        let f = &self.f;
        self.next.as_ref().map(|c| {
            format!(
                "/console/audit?account={}&token={}&actor={}&kind={}&since={}&until={}&cursor={}",
                query_value(&f.account),
                query_value(&f.token),
                query_value(&f.actor),
                query_value(&f.kind),
                query_value(&f.since),
                query_value(&f.until),
                query_value(c)
            )
        })
    }
}

pub async fn page(State(api): State<Api>, signed: Signed, Query(f): Query<Filters>) -> Response {
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let q = AuditQuery {
        kind: opt(&f.kind),
        account: opt(&f.account),
        actor: opt(&f.actor),
        token: opt(&f.token),
        since: opt(&f.since),
        until: opt(&f.until),
        limit: Some(100),
        cursor: f.cursor.clone(),
    };
    let found = audit_page(&api, &signed.who, q).await;
    let mut page = Page {
        frame: Frame::new("Audit", "audit", Some(&signed)),
        f,
        kinds: Kind::ALL.iter().map(|k| k.as_str()).collect(),
        events: Vec::new(),
        next: None,
    };
    match found {
        Ok(p) => {
            page.events = p.items;
            page.next = p.next;
            render(StatusCode::OK, &page)
        }
        Err(p) => {
            page.frame = page.frame.error(say(&p, "read the audit trail"));
            render(status(&p), &page)
        }
    }
}
