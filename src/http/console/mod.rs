//! The web console, under `/console` on the HTTPS listener: server-rendered HTML from
//! `askama` templates (compiled, type-checked, every value HTML-escaped), a vendored htmx
//! for partial updates (every page works without it) and a small script of its own, all
//! embedded in the binary. Each action runs the very function the JSON API's handler runs
//! (`http::api`), as the signed-in identity, so every right and refusal is LDAP's; the
//! console only decodes forms, words refusals for people, and renders.
//!
//! - `session`: sessions, the cookie, the request guards (signed in; form token checked).
//! - `sign_in`: signing in (a password, or a one-time link for local administrators),
//!   signing out, confirming a password before a secret is minted or a password set.
//! - `overview`, `accounts` (service accounts and tokens), `people` (people, app
//!   passwords, self-service), `groups`, `roles` (and "see as"), `audit`: the screens.
//!
//! Security: a strict Content-Security-Policy (scripts and styles from here only, no
//! inline script, no frames), `Origin` and `Sec-Fetch-Site` checked on every unsafe
//! method, a synchronizer token in every form, `Cache-Control: no-store` on every page,
//! secrets only in the body of the one response that shows them, never in a URL.

pub mod accounts;
pub mod audit;
pub mod groups;
pub mod overview;
pub mod people;
pub mod roles;
pub mod session;
pub mod sign_in;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::directory::dn::Dn;
use crate::dit::names;
use crate::http::Api;
use crate::http::problem::Problem;
use session::Signed;

/// Where the console's assets are served: the version in the path, so a new build's
/// files are never taken from a browser's cache of an old one.
pub const ASSETS: &str = concat!("/console/static/", env!("CARGO_PKG_VERSION"));

/// The console's Content-Security-Policy: scripts, styles and images from here only (no
/// inline script or style, no eval), forms posted here only, no frames, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, under `/console`.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route(
            "/console/sign-in",
            get(sign_in::form).post(sign_in::password),
        )
        .route(
            "/console/sign-in/link",
            get(sign_in::link_form).post(sign_in::link),
        )
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/static/{version}/{file}", get(asset))
        .route("/console/service-accounts", get(accounts::list))
        .route(
            "/console/service-accounts/new",
            get(accounts::new_form).post(accounts::create),
        )
        .route("/console/service-accounts/{name}", get(accounts::detail))
        .route(
            "/console/service-accounts/{name}/tokens",
            post(accounts::mint),
        )
        .route(
            "/console/service-accounts/{name}/tokens/{id}/revoke",
            get(accounts::revoke_form).post(accounts::revoke),
        )
        .route(
            "/console/service-accounts/{name}/tokens/{id}/rotate",
            post(accounts::rotate),
        )
        .route("/console/people", get(people::list))
        .route(
            "/console/people/new",
            get(people::new_form).post(people::create),
        )
        .route("/console/people/{uid}", get(people::detail))
        .route("/console/people/{uid}/password", post(people::reset))
        .route(
            "/console/people/{uid}/app-passwords",
            post(people::mint_app_password),
        )
        .route(
            "/console/people/{uid}/app-passwords/{id}/revoke",
            get(people::revoke_form).post(people::revoke),
        )
        .route("/console/me", get(people::me))
        .route("/console/me/password", post(people::change_own_password))
        .route("/console/groups", get(groups::list))
        .route(
            "/console/groups/new",
            get(groups::new_form).post(groups::create),
        )
        .route("/console/groups/{cn}", get(groups::detail))
        .route("/console/groups/{cn}/members", post(groups::members))
        .route("/console/pick", get(groups::pick))
        .route("/console/roles", get(roles::list))
        .route(
            "/console/roles/new",
            get(roles::new_form).post(roles::create),
        )
        .route(
            "/console/roles/{cn}",
            get(roles::detail).post(roles::redefine),
        )
        .route("/console/roles/{cn}/members", post(roles::members))
        .route("/console/see-as", get(roles::see_as))
        .route("/console/audit", get(audit::page))
        .layer(middleware::from_fn(cross_site))
        .layer(middleware::from_fn(headers))
}

/// Every console answer: the strict policy, no framing, no caching (the API's guard adds
/// `no-store` and the rest; assets say otherwise for themselves).
async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // No referrer leaves the console; within it, a form's `Origin` is its own (under
    // `no-referrer` a browser sends `Origin: null`, which the cross-site check refuses).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Unsafe methods from another site are refused before anything else: a browser says
/// where a request comes from in `Sec-Fetch-Site` and `Origin`, and either, when present,
/// must be this console. (The session cookie is SameSite=Strict too, and every form
/// carries the session's token: three defences, each enough on its own in a modern
/// browser.)
async fn cross_site(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let h = req.headers();
    let text = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let site_ok = text("sec-fetch-site").is_none_or(|s| s == "same-origin");
    let origin_ok = match (text("origin"), text("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin == format!("https://{host}"),
        (Some(_), None) => false,
    };
    if site_ok && origin_ok {
        return next.run(req).await;
    }
    (
        StatusCode::FORBIDDEN,
        Html(
            "<!doctype html><title>Refused</title><p>Refused: this request came from another \
             site. Use the console's own pages.</p>"
                .to_string(),
        ),
    )
        .into_response()
}

/// The embedded assets.
async fn asset(Path((_version, file)): Path<(String, String)>) -> Response {
    let (body, kind): (&'static str, &str) = match file.as_str() {
        "console.css" => (include_str!("static/console.css"), "text/css"),
        "console.js" => (include_str!("static/console.js"), "text/javascript"),
        "htmx.min.js" => (include_str!("static/htmx-2.0.11.min.js"), "text/javascript"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400, immutable"),
        ],
        body,
    )
        .into_response()
}

/// What every page shows around its content: its title, the section in the navigation,
/// who is signed in (and the form token for signing out), a message.
pub struct Frame {
    pub title: String,
    pub section: &'static str,
    pub user: Option<User>,
    pub message: Option<Message>,
    pub assets: &'static str,
}

/// The signed-in identity, as the frame shows it.
pub struct User {
    pub name: String,
    pub csrf: String,
    /// A person (with an entry of their own) rather than the local administrator.
    pub person: bool,
}

/// A message at the top of a page: `error` (role alert) or `ok`.
pub struct Message {
    pub kind: &'static str,
    pub text: String,
}

impl Frame {
    pub fn new(title: impl Into<String>, section: &'static str, signed: Option<&Signed>) -> Frame {
        Frame {
            title: title.into(),
            section,
            user: signed.map(|s| User {
                name: s.session.name.clone(),
                csrf: s.session.csrf.clone(),
                person: s.person().is_some(),
            }),
            message: None,
            assets: ASSETS,
        }
    }

    pub fn error(mut self, text: impl Into<String>) -> Frame {
        self.message = Some(Message {
            kind: "error",
            text: text.into(),
        });
        self
    }

    pub fn ok(mut self, text: impl Into<String>) -> Frame {
        self.message = Some(Message {
            kind: "ok",
            text: text.into(),
        });
        self
    }

    /// The `(section, path, label)` of each navigation link.
    pub fn nav(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        &[
            ("overview", "/console", "Overview"),
            ("accounts", "/console/service-accounts", "Service accounts"),
            ("people", "/console/people", "People"),
            ("groups", "/console/groups", "Groups"),
            ("roles", "/console/roles", "Roles"),
            ("audit", "/console/audit", "Audit"),
            ("me", "/console/me", "My account"),
        ]
    }
}

/// A rendered page with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page that shows a secret: never kept by a cache (every console page is `no-store`
/// already; this says so where it matters most), nor sent on as a referrer.
pub fn render_secret(page: &impl Template) -> Response {
    let mut response = render(StatusCode::OK, page);
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A page saying only why something was refused.
#[derive(Template)]
#[template(path = "refused.html", config = "src/http/console/askama.toml")]
pub struct Refused {
    pub frame: Frame,
}

pub fn refused_page(_api: &Api, signed: &Signed, status: StatusCode, text: &str) -> Response {
    let page = Refused {
        frame: Frame::new("Refused", "", Some(signed)).error(text),
    };
    render(status, &page)
}

/// A problem (a refusal by the directory, or a bad request) said for people: `action`
/// completes "You may not ..." / "Could not ...", e.g. "reset this person's password".
pub fn say(problem: &Problem, action: &str) -> String {
    let p = &problem.0;
    match p.status {
        403 => {
            if let Some(r) = &p.refusal {
                let person = r.target.parent().is_some_and(|parent| {
                    parent.rdn_value("ou") == Some("people")
                        || parent.norm().starts_with("ou=people,")
                });
                let (subject, why) = if person {
                    ("they", r.why.plural())
                } else {
                    ("it", r.why.third_person())
                };
                format!("You may not {action}: {subject} {why}.")
            } else if p.detail == "insufficient access rights" {
                format!("You may not {action}: none of your roles gives you that right here.")
            } else {
                format!("You may not {action}: {}.", p.detail.trim_end_matches('.'))
            }
        }
        404 => format!(
            "Could not {action}: no such entry, or none you may see{}.",
            if p.matched_dn.is_empty() {
                String::new()
            } else {
                format!(" (the closest that exists is {})", p.matched_dn)
            }
        ),
        401 => "Your sign-in is no longer valid (your account changed or expired); sign in again."
            .to_string(),
        _ => format!("Could not {action}: {}.", p.detail.trim_end_matches('.')),
    }
}

/// The status to answer a refused form with: the problem's (always 4xx or 5xx).
pub fn status(problem: &Problem) -> StatusCode {
    StatusCode::from_u16(problem.0.status).unwrap_or(StatusCode::BAD_REQUEST)
}

/// An RFC 4515 assertion value: `*`, `(`, `)`, `\` and NUL escaped.
pub fn filter_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// A search box's filter over `attrs`: entries where any contains `q`.
pub fn search_filter(q: &str, attrs: &[&str]) -> Option<String> {
    let q = q.trim();
    if q.is_empty() {
        return None;
    }
    let v = filter_value(q);
    let any: String = attrs.iter().map(|a| format!("({a}=*{v}*)")).collect();
    Some(format!("(|{any})"))
}

/// A time in a table: RFC 3339 text shortened to the minute (`2027-01-31 09:30 UTC`);
/// empty when there is none.
pub fn when(value: Option<&str>) -> When {
    let Some(text) = value.filter(|t| !t.is_empty()) else {
        return When(String::new());
    };
    let short = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            let format =
                time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
            t.format(&format).ok()
        });
    When(short.unwrap_or_else(|| text.to_string()))
}

/// A shortened time, shown as it is or as "never".
pub struct When(String);

impl When {
    pub fn or_never(&self) -> &str {
        if self.0.is_empty() { "never" } else { &self.0 }
    }
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who made something, for a table: "local administrator" for an LDAPI peer, else the
/// value of the DN's RDN.
pub fn who(dn: Option<&str>) -> String {
    match dn {
        None | Some("") => String::new(),
        Some(dn)
            if dn
                .to_ascii_lowercase()
                .ends_with("cn=peercred,cn=external,cn=auth") =>
        {
            "local administrator".into()
        }
        Some(dn) => short_name(dn),
    }
}

/// The entry `name` of `kind` as the signed-in identity sees it, for its detail page
/// (`title` and `section` its frame's), the frame carrying `message`; or, when it cannot
/// be shown, the page saying why (a refusal to act being the news when there is one).
#[allow(clippy::too_many_arguments)]
pub async fn detail_of(
    api: &Api,
    signed: &Signed,
    kind: crate::http::api::Kind,
    name: &str,
    title: &'static str,
    section: &'static str,
    message: Option<Result<String, String>>,
    code: StatusCode,
) -> Result<(crate::http::api::EntryJson, Frame), Response> {
    let wanted = name.to_string();
    let found = crate::http::api::read(api, &signed.who, move |r, caller, policy| {
        crate::http::api::get_kind(r, caller, policy, kind, &wanted)
    })
    .await;
    let entry = match found {
        Ok(e) => e,
        Err(p) => {
            // The page the refusal would have been shown on may be out of sight too.
            let (text, code) = match message {
                Some(Err(text)) => (text, code),
                _ => (
                    say(&p, &format!("show this {}", title.to_lowercase())),
                    status(&p),
                ),
            };
            let frame = Frame::new(title, section, Some(signed)).error(text);
            return Err(render(code, &Refused { frame }));
        }
    };
    let frame = Frame::new(name.to_string(), section, Some(signed));
    let frame = match message {
        Some(Ok(text)) => frame.ok(text),
        Some(Err(text)) => frame.error(text),
        None => frame,
    };
    Ok((entry, frame))
}

/// Apply `change` to the members of `cn` of `kind` through the API's operation; the message
/// for its page (`empty` when nothing was asked, `done` on success, else the refusal worded
/// for `action`) and the status to answer with.
pub async fn change_members_worded(
    api: &Api,
    signed: &Signed,
    kind: crate::http::api::Kind,
    cn: &str,
    change: crate::http::api::directory::Members,
    (empty, done, action): (&str, &str, &str),
) -> (Result<String, String>, StatusCode) {
    if change.add.is_empty() && change.remove.is_empty() {
        return (Err(empty.to_string()), StatusCode::UNPROCESSABLE_ENTITY);
    }
    match crate::http::api::directory::change_members(api, &signed.who, kind, cn, change).await {
        Ok(_) => (Ok(done.to_string()), StatusCode::OK),
        Err(p) => (Err(say(&p, action)), status(&p)),
    }
}

/// An entry's `member` values for a page: (shown name, DN, link when it has a page).
pub fn members_of(
    suffix: &Dn,
    entry: &crate::http::api::EntryJson,
) -> Vec<(String, String, Option<String>)> {
    values(entry, "member")
        .into_iter()
        .map(|d| (short_name(&d), link_of(suffix, &d), d))
        .map(|(n, l, d)| (n, d, l))
        .collect()
}

/// The name an entry is shown by: the value of its RDN.
pub fn short_name(dn: &str) -> String {
    Dn::parse(dn)
        .ok()
        .and_then(|d| {
            d.rdn()
                .and_then(|r| r.avas.first().map(|a| a.value.to_string()))
        })
        .unwrap_or_else(|| dn.to_string())
}

/// Where the console shows the entry `dn`: its page, when it is a person, group, service
/// account or role.
pub fn link_of(suffix: &Dn, dn: &str) -> Option<String> {
    let dn = Dn::parse(dn).ok()?;
    let parent = dn.parent()?;
    let value = dn.rdn()?.avas.first()?.value.to_string();
    let path = if parent == names::people(suffix) {
        "people"
    } else if parent == names::groups(suffix) {
        "groups"
    } else if parent == names::services(suffix) {
        "service-accounts"
    } else if parent == names::roles_container(suffix) {
        "roles"
    } else {
        return None;
    };
    Some(format!("/console/{path}/{}", path_segment(&value)))
}

/// A value as one URL path segment.
pub fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query-string value.
pub fn query_value(value: &str) -> String {
    path_segment(value)
}

/// The first value of `attr` in an entry as the API shows it.
pub fn first(entry: &crate::http::api::EntryJson, attr: &str) -> String {
    values(entry, attr).into_iter().next().unwrap_or_default()
}

/// Every value of `attr` in an entry as the API shows it.
pub fn values(entry: &crate::http::api::EntryJson, attr: &str) -> Vec<String> {
    entry
        .attributes
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_boxes_escape_their_text() {
        assert_eq!(filter_value("a*(b)\\"), "a\\2a\\28b\\29\\5c");
        assert_eq!(
            search_filter("x*", &["uid", "cn"]).unwrap(),
            "(|(uid=*x\\2a*)(cn=*x\\2a*))"
        );
        assert_eq!(search_filter("  ", &["uid"]), None);
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
