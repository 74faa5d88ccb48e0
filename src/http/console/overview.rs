//! The overview: how many entries of each kind the signed-in identity sees, its tokens
//! expiring within a week or marked exposed, service accounts with no token used lately,
//! what the bind throttle is slowing now (administrators, as over LDAP), and when the
//! certificate expires.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ldap3_proto::proto::LdapResultCode;
use time::OffsetDateTime;

use crate::directory::time::parse_generalized;
use crate::dit::DitError;
use crate::http::Api;
use crate::http::api::tokens::{TokenJson, all_visible};
use crate::http::api::{GROUPS, PEOPLE, ROLES, SERVICES, count_kind, list_kind, read};
use crate::http::console::session::Signed;
use crate::http::console::{Frame, first, render, say, short_name, status};

#[derive(Template)]
#[template(path = "overview.html", config = "src/http/console/askama.toml")]
struct Page {
    frame: Frame,
    counts: Vec<(&'static str, &'static str, usize)>,
    tokens: usize,
    expiring: Vec<TokenRow>,
    exposed: Vec<TokenRow>,
    unused: Vec<(String, String)>,
    unused_days: u64,
    throttled: Option<Vec<(String, String, u32, String)>>,
    certificate: Option<(String, i64)>,
}

/// A token in a table: its account's name and the token.
pub struct TokenRow {
    pub account: String,
    pub token: TokenJson,
}

/// What the overview reads, in one transaction.
struct Seen {
    counts: Vec<(&'static str, &'static str, usize)>,
    tokens: Vec<(String, TokenJson)>,
    unused: Vec<(String, String)>,
    admin: bool,
}

/// Rows shown per table; the rest are counted.
const SHOWN: usize = 20;

pub async fn page(State(api): State<Api>, signed: Signed) -> Response {
    let unused_after = api.state.config.console.unused_after;
    let seen = read(&api, &signed.who, move |r, caller, policy| {
        let counts = vec![
            (
                "People",
                "/console/people",
                count_kind(r, caller, policy, PEOPLE)?,
            ),
            (
                "Groups",
                "/console/groups",
                count_kind(r, caller, policy, GROUPS)?,
            ),
            (
                "Service accounts",
                "/console/service-accounts",
                count_kind(r, caller, policy, SERVICES)?,
            ),
            (
                "Roles",
                "/console/roles",
                count_kind(r, caller, policy, ROLES)?,
            ),
        ];
        let tokens = unseen_is_empty(all_visible(r, caller, policy))?;
        // Service accounts none of whose tokens was used within the window.
        let cutoff = policy.now - crate::dit::credentials::to_time(unused_after);
        let q = crate::http::api::ListQuery {
            limit: Some(100_000),
            ..Default::default()
        };
        let accounts =
            unseen_is_empty(list_kind(r, caller, policy, SERVICES, &q).map(|l| l.items))?;
        let mut unused = Vec::new();
        for account in &accounts {
            let last = tokens
                .iter()
                .filter(|(a, _)| a.eq_ignore_ascii_case(&account.dn))
                .filter_map(|(_, t)| t.last_used.as_deref())
                .filter_map(rfc3339)
                .max();
            match last {
                Some(t) if t >= cutoff => {}
                Some(t) => unused.push((first(account, "uid"), crate::directory::time::rfc3339(t))),
                None => unused.push((first(account, "uid"), "never".to_string())),
            }
        }
        Ok(Seen {
            counts,
            tokens,
            unused,
            admin: caller.is_admin(),
        })
    })
    .await;
    let seen = match seen {
        Ok(s) => s,
        Err(p) => {
            let frame = Frame::new("Overview", "overview", Some(&signed))
                .error(say(&p, "read the overview"));
            return render(status(&p), &empty(frame, &api));
        }
    };
    let now = api.state.clock.now();
    let soon = now + time::Duration::days(7);
    let total = seen.tokens.len();
    let mut expiring = Vec::new();
    let mut exposed = Vec::new();
    for (account, token) in seen.tokens {
        let row = TokenRow {
            account: short_name(&account),
            token,
        };
        if row.token.state == "exposed" {
            exposed.push(row);
        } else if row.token.state == "ok"
            && row
                .token
                .expires
                .as_deref()
                .and_then(rfc3339)
                .is_some_and(|t| t <= soon)
        {
            expiring.push(row);
        }
    }
    expiring.sort_by(|a, b| a.token.expires.cmp(&b.token.expires));
    let throttled = seen.admin.then(|| {
        api.state
            .throttle
            .throttled(now)
            .into_iter()
            .map(|t| {
                let account = if t.account.is_empty() {
                    "(any name)".to_string()
                } else {
                    t.account
                };
                (
                    account,
                    t.source.to_string(),
                    t.failures,
                    crate::directory::time::rfc3339(t.until),
                )
            })
            .collect()
    });
    let certificate = certificate(&api, now).await;
    let page = Page {
        frame: Frame::new("Overview", "overview", Some(&signed)),
        counts: seen.counts,
        tokens: total,
        expiring,
        exposed,
        unused: seen.unused,
        unused_days: unused_after.as_secs() / 86_400,
        throttled,
        certificate,
    };
    render(StatusCode::OK, &page)
}

/// A container the caller may not see holds nothing for it (the overview of a person
/// with no role shows what it can see, not a refusal).
fn unseen_is_empty<T>(found: Result<Vec<T>, DitError>) -> Result<Vec<T>, DitError> {
    match found {
        Err(e) if e.code == LdapResultCode::NoSuchObject => Ok(Vec::new()),
        other => other,
    }
}

fn empty(frame: Frame, api: &Api) -> Page {
    Page {
        frame,
        counts: Vec::new(),
        tokens: 0,
        expiring: Vec::new(),
        exposed: Vec::new(),
        unused: Vec::new(),
        unused_days: api.state.config.console.unused_after.as_secs() / 86_400,
        throttled: None,
        certificate: None,
    }
}

/// When the certificate in service expires, and the days left.
async fn certificate(api: &Api, now: OffsetDateTime) -> Option<(String, i64)> {
    let path = api.certificate.clone()?;
    let info = tokio::task::spawn_blocking(move || crate::server::ca::inspect(&path))
        .await
        .ok()?
        .ok()?;
    Some((
        crate::directory::time::rfc3339(info.not_after),
        (info.not_after - now).whole_days(),
    ))
}

fn rfc3339(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| parse_generalized(text))
}

impl Page {
    fn more(&self, n: usize) -> usize {
        n.saturating_sub(SHOWN)
    }

    fn shown(&self) -> usize {
        SHOWN
    }
}
