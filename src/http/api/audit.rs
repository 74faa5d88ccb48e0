//! The audit trail, listed with filters: what happened to or by an account, a token, an
//! actor, of which kinds, in a time range. Directory administrators see every record;
//! others see the records that name them, or the accounts they manage.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::{self, Event, Filter, Kind};
use crate::directory::dn::Dn;
use crate::dit::DitError;
use crate::http::Api;
use crate::http::api::{read, reference};
use crate::http::auth::Authenticated;
use crate::http::problem::{Problem, Query};

/// Which records to list. Every filter given must match.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Kinds, comma-separated: bind, bind-throttled, token-generated, token-rotated,
    /// token-revoked, token-exposed, password-changed, role-changed, membership-changed,
    /// manager-changed.
    pub kind: Option<String>,
    /// Records whose actor or target is this account (a name or DN).
    pub account: Option<String>,
    /// Records whose actor is this (a name or DN).
    pub actor: Option<String>,
    /// Records about this token id.
    pub token: Option<String>,
    /// From this time on (RFC 3339).
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    pub until: Option<String>,
    /// Records per page (1 to 1000, default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Where the page starts: the `next` of the previous page.
    pub cursor: Option<String>,
}

/// A page of records, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Audit records, newest first", body = AuditPage)))]
pub async fn list(
    State(api): State<Api>,
    who: Authenticated,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Problem> {
    Ok(axum::Json(page(&api, &who, q).await?).into_response())
}

/// The page of records `q` asks for that `who` may see.
pub async fn page(api: &Api, who: &Authenticated, q: AuditQuery) -> Result<AuditPage, Problem> {
    let time = |field: &str, text: Option<&str>| -> Result<Option<OffsetDateTime>, Problem> {
        text.map(|t| {
            OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|_| Problem::bad_request(format!("{field}: not an RFC 3339 time")))
        })
        .transpose()
    };
    let since = time("since", q.since.as_deref())?;
    let until = time("until", q.until.as_deref())?;
    let mut kinds = Vec::new();
    for k in q.kind.iter().flat_map(|k| k.split(',')).map(str::trim) {
        if k.is_empty() {
            continue;
        }
        kinds.push(
            Kind::parse(k).ok_or_else(|| Problem::bad_request(format!("kind: unknown '{k}'")))?,
        );
    }
    let limit = match q.limit {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(_) => return Err(Problem::bad_request("limit: from 1 to 1000")),
    };
    // Binds of the last second are still on their way to the store.
    api.state
        .audit
        .flush(&api.state.store)
        .await
        .map_err(Problem::from)?;
    let (account, actor) = (q.account, q.actor);
    let (filter, me, admin, managed) = read(api, who, move |r, caller, policy| {
        let name = |n: Option<String>| -> Result<Option<Dn>, DitError> {
            n.map(|n| reference(r, &policy.suffix, &n)).transpose()
        };
        let filter = Filter {
            kinds,
            account: name(account)?,
            actor: name(actor)?,
            token: q.token,
            since,
            until,
        };
        let me = caller.dn().cloned();
        let managed: Vec<Dn> = match &me {
            Some(dn) => crate::dit::caller::resolve(r, dn, policy)?
                .managed()
                .iter()
                .filter_map(|m| Dn::parse(m).ok())
                .collect(),
            None => Vec::new(),
        };
        Ok((filter, me, caller.is_admin(), managed))
    })
    .await?;
    let store = api.state.store.clone();
    let cursor = q.cursor;
    let page = tokio::task::spawn_blocking(move || {
        let names = |text: &str, dn: &Dn| Dn::parse(text).is_ok_and(|d| &d == dn);
        let may_see = |e: &Event| {
            admin
                || [&e.actor, &e.target].iter().any(|t| {
                    me.as_ref().is_some_and(|m| names(t, m)) || managed.iter().any(|m| names(t, m))
                })
        };
        audit::list(&store, &filter, cursor.as_deref(), limit, may_see)
    })
    .await
    .map_err(|e| Problem::from(crate::store::StoreError::Task(e.to_string())))??;
    Ok(AuditPage {
        items: page.events,
        next: page.next,
    })
}
