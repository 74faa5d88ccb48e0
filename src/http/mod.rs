//! The HTTP front end: the JSON API (`/api/v1`), its OpenAPI document (generated from the
//! handlers by `utoipa`, so it cannot drift from them), `/healthz`, `/readyz` and
//! `/metrics`. Decodes requests, calls the same `dit` operations LDAP calls, and encodes
//! what they return; no rule is decided here, and no socket is touched (the listeners are
//! `server::https`'s).
//!
//! - `auth`: who a request comes from (Bearer token or Basic password, via `authn`).
//! - `problem`: errors as RFC 9457 problem details, the one LDAP-code-to-status map, and
//!   extractors whose rejections are problems too.
//! - `api`: the handlers.
//! - `console`: the web console (HTML), acting through `api`'s functions.

pub mod api;
pub mod auth;
pub mod console;
pub mod problem;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::directory::matching::normalize;
use crate::dit::names::TOKEN_CLASS;
use crate::http::api::{audit, directory, tokens};
use crate::http::problem::Problem;

use crate::metrics::{Format, Snapshot, TokenCounts};
use crate::state::State as Shared;
use crate::store::{DirectoryRead, StoreError};

/// What every handler reaches: the server's state, and whether it is ready.
#[derive(Clone)]
pub struct Api {
    pub state: Shared,
    /// Set once every listener is up.
    pub ready: Arc<AtomicBool>,
    /// The server certificate in service, for its expiry metric.
    pub certificate: Option<PathBuf>,
    /// The web console's sessions.
    pub sessions: Arc<console::session::Sessions>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "The HTTP API of the Tessera directory server: people, groups, service accounts, roles, tokens, passwords, search as an identity, and the audit trail. Every operation runs with the caller's exact rights, as over LDAP. Errors are RFC 9457 problem details.",
        version = "1"
    ),
    components(schemas(problem::ProblemBody)),
    tags(
        (name = "identity", description = "Who the caller is; what an identity sees"),
        (name = "people"), (name = "groups"), (name = "service-accounts"), (name = "roles"),
        (name = "tokens", description = "API tokens and app passwords; secrets shown once"),
        (name = "audit", description = "The audit trail"),
        (name = "health", description = "For load balancers and service managers")
    )
)]
struct Doc;

/// The HTTPS listener's application: the API, its document, health, and `/metrics` when
/// `metrics` (no listener of its own).
pub fn app(api: Api, metrics: bool) -> Router {
    let (router, doc) = api_routes();
    let doc = Arc::new(finish(doc));
    let limit = api.state.config.http.max_body_bytes;
    let mut router = router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route_layer(middleware::from_fn_with_state(api.clone(), observe));
    if metrics {
        router = router.route("/metrics", get(metrics_text));
    }
    if api.state.config.console.enabled {
        router = router.merge(
            console::routes().route_layer(middleware::from_fn_with_state(api.clone(), observe)),
        );
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(api.clone(), guard))
        .with_state(api)
}

/// The metrics listener's application: `/metrics` only.
pub fn metrics_app(api: Api) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .with_state(api)
}

/// The OpenAPI document as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    finish(api_routes().1)
}

fn api_routes() -> (Router<Api>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(directory::whoami))
        .routes(routes!(directory::search_as))
        .routes(routes!(directory::list_people, directory::create_person))
        .routes(routes!(
            directory::get_person,
            directory::update_person,
            directory::delete_person
        ))
        .routes(routes!(tokens::set_password))
        .routes(routes!(
            tokens::list_app_passwords,
            tokens::create_app_password
        ))
        .routes(routes!(tokens::revoke_app_password))
        .routes(routes!(tokens::rotate_app_password))
        .routes(routes!(directory::list_groups, directory::create_group))
        .routes(routes!(
            directory::get_group,
            directory::update_group,
            directory::delete_group
        ))
        .routes(routes!(directory::group_members))
        .routes(routes!(
            directory::list_service_accounts,
            directory::create_service_account
        ))
        .routes(routes!(
            directory::get_service_account,
            directory::update_service_account,
            directory::delete_service_account
        ))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(tokens::rotate_token))
        .routes(routes!(directory::list_roles, directory::create_role))
        .routes(routes!(
            directory::get_role,
            directory::update_role,
            directory::delete_role
        ))
        .routes(routes!(directory::role_members))
        .routes(routes!(audit::list))
        .split_for_parts()
}

/// Authentication and the error answers every operation may give, added to the document:
/// each operation lists every status it can answer with.
fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, security::SecurityRequirement};
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An http-api token of a service account"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some("A person's id (or DN) and password"))
                .build(),
        ),
    );
    let problem = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    let errors = [
        ("400", "Malformed request (JSON, parameters, DN, filter)"),
        (
            "401",
            "Not authenticated, or the credentials are not valid (any more)",
        ),
        (
            "403",
            "Not allowed: the reason says which right stands in the way",
        ),
        ("404", "No such entry, or one the caller cannot see"),
        ("405", "Method not allowed"),
        (
            "409",
            "It exists already, or has children, or the value exists",
        ),
        ("413", "Request body too large"),
        ("415", "Not a JSON request body"),
        (
            "422",
            "Understood, but the directory's rules refuse it (schema, constraints)",
        ),
        (
            "503",
            "The store is unavailable, or the request took too long",
        ),
    ];
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = path == "/healthz" || path == "/readyz";
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            for (status, what) in errors {
                if public && !matches!(status, "405" | "503") {
                    continue;
                }
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| problem(what).into());
            }
            if !public {
                op.security = Some(vec![
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::new("basic", Vec::<String>::new()),
                ]);
            }
        }
    }
    doc
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `ready`.
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The server is alive", body = Health)))]
async fn healthz() -> Response {
    axum::Json(Health {
        status: "ok".into(),
    })
    .into_response()
}

#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "The store is open and every listener is up", body = Health)))]
async fn readyz(State(api): State<Api>) -> Result<Response, Problem> {
    if !api.ready.load(Ordering::Relaxed) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the listeners are not all up yet",
        ));
    }
    // A cluster member cut off from its cluster answers binds with 52: send no one here.
    if let Some(refusal) = api.state.cut_off() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cut_off",
            refusal.message,
        ));
    }
    api.state
        .store
        .read(|r| r.meta("next_id").map(drop))
        .await
        .map_err(|e: StoreError| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("the store is not readable: {e}"),
            )
        })?;
    Ok(axum::Json(Health {
        status: "ready".into(),
    })
    .into_response())
}

/// `/metrics`: OpenMetrics for scrapers that ask for it (Prometheus does), the Prometheus
/// text format for the rest, with what is read at scrape time read now.
async fn metrics_text(State(api): State<Api>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let format = Format::accepted(accept);
    let snapshot = snapshot(&api).await;
    let text = api.state.metrics.render(&snapshot, format);
    ([(header::CONTENT_TYPE, format.content_type())], text).into_response()
}

async fn snapshot(api: &Api) -> Snapshot {
    let state = &api.state;
    let now = state.clock.now();
    let schema = state.schema.clone();
    let tokens = state
        .store
        .read(move |r| token_counts(r, &schema, now))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "counting tokens for the metrics failed");
            TokenCounts::default()
        });
    let cert_expiry = match &api.certificate {
        Some(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || crate::server::ca::inspect(&path))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|info| info.not_after.unix_timestamp())
        }
        None => None,
    };
    Snapshot {
        file_bytes: state.store.file_size().unwrap_or(0),
        hash_queue: usize::try_from(state.hashers.queued()).unwrap_or(usize::MAX),
        hash_waits: state.hashers.waits(),
        tokens,
        cert_expiry,
        throttled_keys: state.throttle.throttled(now).len(),
        audit_dropped: state.audit.dropped(),
    }
}

/// Tokens live now, live and expiring within 7 days, and exposed (live).
fn token_counts(
    r: &impl DirectoryRead,
    schema: &crate::directory::schema::Schema,
    now: time::OffsetDateTime,
) -> Result<TokenCounts, StoreError> {
    use crate::directory::time::parse_generalized;
    let rule = schema.attribute("objectClass").and_then(|a| a.equality);
    let key = normalize(rule, TOKEN_CLASS.as_bytes()).unwrap_or_default();
    let mut counts = TokenCounts::default();
    let soon = now + time::Duration::days(7);
    for id in r.lookup("objectClass", &key)?.unwrap_or_default() {
        let Some(e) = r.entry_only(id, |n| {
            n.eq_ignore_ascii_case("tokenExpires") || n.eq_ignore_ascii_case("tokenExposed")
        })?
        else {
            continue;
        };
        let expires = e.first_str("tokenExpires").map(parse_generalized);
        let live = match expires {
            None => true,
            Some(Some(t)) => t > now,
            Some(None) => false,
        };
        if !live {
            continue;
        }
        counts.active += 1;
        if matches!(expires, Some(Some(t)) if t <= soon) {
            counts.expiring += 1;
        }
        if e.first_str("tokenExposed").is_some() {
            counts.exposed += 1;
        }
    }
    Ok(counts)
}

/// Count and time each request by its route template (never its path: no names in
/// labels).
async fn observe(State(api): State<Api>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    api.state.metrics.http_request(
        &format!("{method} {route}"),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Every request: a time limit, and headers that keep answers out of caches and frames.
async fn guard(State(api): State<Api>, req: Request, next: Next) -> Response {
    let limit = api.state.config.http.request_timeout;
    let mut response = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
        )
        .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The console sets its own policies (its pages load its script and style, its forms
    // must say their origin) and lets its versioned assets be cached; everything else gets
    // these.
    for (name, value) in [
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

async fn not_found() -> Problem {
    Problem::not_found("no such resource")
}

async fn not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed for this resource",
    )
}
