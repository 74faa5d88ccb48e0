//! The console's sessions: server-side, in memory (one node; a restart ends them all),
//! found by a random id in a `__Host-` cookie (HttpOnly, Secure, SameSite=Strict, Path=/)
//! and kept only as the id's SHA-256. A session ends on sign-out, after
//! `console.idle_timeout` unused, after `console.session_lifetime` however busy, and
//! when the identity behind it stops being valid (deleted, expired). Each carries a
//! synchronizer token that every form posts back (CSRF), and when its holder last proved
//! who they are (re-authentication before minting a secret or setting a password).
//!
//! The request guards are here too: [`Signed`] (a live session, or off to sign-in) and
//! [`Posted`] (a live session and a form whose token matches it).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::audit::Origin;
use crate::dit::DitError;
use crate::dit::caller::{self, Principal};
use crate::dit::credentials::to_time;
use crate::http::Api;
use crate::http::auth::{Authenticated, Peer};
use crate::http::problem::Problem;
use crate::store::DirectoryRead;

/// The session cookie: `__Host-` makes the browser insist on Secure, Path=/ and no Domain.
pub const COOKIE: &str = "__Host-tessera-console";

/// Sessions held at once; past this the least recently used goes.
const MAX_SESSIONS: usize = 10_000;

/// Every live session, by the SHA-256 of its id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

/// One signed-in browser.
#[derive(Clone)]
pub struct Session {
    pub principal: Principal,
    /// What to call the holder: a person's id, or "local administrator".
    pub name: String,
    /// Posted back by every form of this session.
    pub csrf: String,
    pub started: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    /// When the holder last proved who they are (signing in, or confirming since).
    pub confirmed: OffsetDateTime,
    /// Signed in with a one-time link (a local administrator): confirming takes a new
    /// link's code, not a password.
    pub via_link: bool,
    /// The holder's credentials as they stood at sign-in ([`standing`]): when they change
    /// (a password reset over LDAP, the API or here), the session ends.
    pub mark: Mark,
}

/// A digest of a person's stored password hashes; None for an identity without one.
pub type Mark = Option<[u8; 32]>;

/// Where a session's holder stands in the directory now.
pub enum Standing {
    /// Gone, expired, or otherwise no longer an identity (`DitError::lapsed`).
    Lapsed,
    Live(Mark),
}

/// Where `principal` stands now, by the same check every operation makes first
/// (`dit::caller`), and its credentials' [`Mark`].
pub async fn standing(api: &Api, principal: &Principal) -> Result<Standing, DitError> {
    let principal = principal.clone();
    let policy = api.state.policy();
    api.state
        .store
        .read(move |r| {
            match caller::caller(r, &principal, &policy) {
                Err(e) if e.is_lapsed() => return Ok(Standing::Lapsed),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            let Principal::Entry(dn) = &principal else {
                return Ok(Standing::Live(None));
            };
            let Some((_, entry)) = r.entry_by_dn(dn)? else {
                return Ok(Standing::Lapsed);
            };
            let mut hash = Sha256::new();
            for v in entry.values("userPassword") {
                hash.update((v.len() as u64).to_be_bytes());
                hash.update(v);
            }
            Ok(Standing::Live(Some(hash.finalize().into())))
        })
        .await
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.principal)
            .field("csrf", &"<redacted>")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// Why a session is not there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// No cookie, or one no session has.
    None,
    Idle,
    Lifetime,
    /// The holder's credentials changed or lapsed since sign-in.
    Lapsed,
}

impl Sessions {
    /// A new session for `principal`: the cookie value (its id) and the session.
    pub fn start(
        &self,
        principal: Principal,
        name: String,
        via_link: bool,
        mark: Mark,
        now: OffsetDateTime,
    ) -> Option<(String, Session)> {
        let id = random()?;
        let session = Session {
            principal,
            name,
            csrf: random()?,
            started: now,
            last_seen: now,
            confirmed: now,
            via_link,
            mark,
        };
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(digest(&id), session.clone());
        Some((id, session))
    }

    /// The session `id` names, if it is live now (and then marked used).
    pub fn find(&self, id: &str, now: OffsetDateTime, limits: &Limits) -> Result<Session, Gone> {
        let key = digest(id);
        let mut map = self.lock();
        let Some(session) = map.get_mut(&key) else {
            return Err(Gone::None);
        };
        let gone = if now - session.started >= limits.lifetime {
            Some(Gone::Lifetime)
        } else if now - session.last_seen >= limits.idle {
            Some(Gone::Idle)
        } else {
            None
        };
        if let Some(gone) = gone {
            map.remove(&key);
            return Err(gone);
        }
        session.last_seen = now;
        Ok(session.clone())
    }

    /// The holder of `id` changed their own credentials here: the session goes on.
    pub fn remark(&self, id: &str, mark: Mark) {
        if let Some(s) = self.lock().get_mut(&digest(id)) {
            s.mark = mark;
        }
    }

    /// The holder of `id` proved who they are again, now.
    pub fn confirm(&self, id: &str, now: OffsetDateTime) {
        if let Some(s) = self.lock().get_mut(&digest(id)) {
            s.confirmed = now;
        }
    }

    /// End the session `id` (sign-out, or its identity gone).
    pub fn end(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    /// End every session of `principal` (its password changed, say) but `keep`.
    pub fn end_all_of(&self, principal: &Principal, keep: &str) {
        let keep = digest(keep);
        self.lock()
            .retain(|k, s| *k == keep || &s.principal != principal);
    }

    /// How many sessions are held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A map of sessions stays usable after a panic elsewhere poisoned the lock.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's time limits, from `[console]`.
pub struct Limits {
    pub idle: time::Duration,
    pub lifetime: time::Duration,
}

impl Limits {
    pub fn of(api: &Api) -> Limits {
        let c = &api.state.config.console;
        Limits {
            idle: to_time(c.idle_timeout),
            lifetime: to_time(c.session_lifetime),
        }
    }
}

/// 32 random bytes, base64url: a session id or a CSRF token.
fn random() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The cookie that holds session `id`.
pub fn set_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| clear_cookie())
}

/// The cookie's removal.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-tessera-console=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// The session id a request's cookie carries.
pub fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

/// Where a request came from, for the audit trail.
pub fn origin(parts: &Parts) -> Origin {
    Origin::new(parts.extensions.get::<Peer>().map(|p| p.0.ip()), "https")
}

/// A request with a live session: who, as the API's handlers take it, and the session.
pub struct Signed {
    pub who: Authenticated,
    pub session: Session,
    /// The cookie's value (the session's id).
    pub id: String,
}

impl Signed {
    /// Within the re-authentication window?
    pub fn confirmed_recently(&self, api: &Api) -> bool {
        let window = to_time(api.state.config.console.reauth_window);
        api.state.clock.now() - self.session.confirmed < window
    }

    /// A person's id (their `uid`), when a person holds the session.
    pub fn person(&self) -> Option<&str> {
        match &self.session.principal {
            Principal::Entry(dn) => dn.rdn_value("uid"),
            _ => None,
        }
    }
}

/// No live session: a page goes to sign-in (saying why), an htmx fragment tells the page
/// to go there.
pub struct SignInFirst(Gone, bool);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let to = match self.0 {
            Gone::None => "/console/sign-in",
            Gone::Idle => "/console/sign-in?ended=idle",
            Gone::Lifetime => "/console/sign-in?ended=lifetime",
            Gone::Lapsed => "/console/sign-in?ended=lapsed",
        };
        let mut response = if self.1 {
            let mut r = StatusCode::UNAUTHORIZED.into_response();
            r.headers_mut()
                .insert("hx-redirect", HeaderValue::from_static(to));
            r
        } else {
            Redirect::to(to).into_response()
        };
        if self.0 != Gone::None {
            response
                .headers_mut()
                .insert(header::SET_COOKIE, clear_cookie());
        }
        response
    }
}

/// A cluster member cut off from its cluster serves no console (503, as the API's
/// authentication and LDAP's binds refuse): its copy may be stale, a revocation missed.
pub fn cut_off(api: &Api) -> Option<Response> {
    let refusal = api.state.cut_off()?;
    tracing::debug!(reason = %refusal.message, "console refused: cut off from the cluster");
    Some(
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::response::Html(
                "<!doctype html><title>Unavailable</title><p>This server is cut off from its \
                 cluster and serves no console until it is back in touch. Use another member."
                    .to_string(),
            ),
        )
            .into_response(),
    )
}

impl FromRequestParts<Api> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Response> {
        if let Some(refused) = cut_off(api) {
            return Err(refused);
        }
        let htmx = parts.headers.contains_key("hx-request");
        let Some(id) = cookie_id(&parts.headers) else {
            return Err(SignInFirst(Gone::None, htmx).into_response());
        };
        let now = api.state.clock.now();
        let session = api
            .sessions
            .find(&id, now, &Limits::of(api))
            .map_err(|gone| SignInFirst(gone, htmx).into_response())?;
        match standing(api, &session.principal).await {
            Ok(Standing::Live(mark)) if mark == session.mark => {}
            Ok(_) => {
                api.sessions.end(&id);
                return Err(SignInFirst(Gone::Lapsed, htmx).into_response());
            }
            Err(e) => return Err(Problem::from(e).into_response()),
        }
        let who = Authenticated {
            principal: session.principal.clone(),
            origin: origin(parts),
        };
        Ok(Signed { who, session, id })
    }
}

impl axum::extract::OptionalFromRequestParts<Api> for Signed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &Api,
    ) -> Result<Option<Self>, std::convert::Infallible> {
        Ok(
            <Signed as FromRequestParts<Api>>::from_request_parts(parts, api)
                .await
                .ok(),
        )
    }
}

/// A form's fields, as posted (`application/x-www-form-urlencoded`), in order.
#[derive(Default)]
pub struct Fields(Vec<(String, String)>);

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Fields may be passwords: only their names.
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Fields {
    /// The field `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.raw(name).trim()
    }

    /// The field `name` as posted (passwords keep their spaces).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The field `name`, or None when absent or blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).to_string()).filter(|v| !v.is_empty())
    }

    /// Every non-blank value of `name` (checkboxes, repeated fields).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// Values of `name` given one a line (or comma-separated).
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .split(['\n', ','])
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Read a form body; one that is not a form is a 400.
pub async fn fields(req: Request, api: &Api) -> Result<Fields, Response> {
    match axum::Form::<Vec<(String, String)>>::from_request(req, api).await {
        Ok(axum::Form(pairs)) => Ok(Fields(pairs)),
        Err(rejection) => Err((
            rejection.status(),
            "this needs a form posted by the console",
        )
            .into_response()),
    }
}

/// A state-changing request: a live session, and a form whose synchronizer token is the
/// session's (the cross-site checks of `Origin` and `Sec-Fetch-Site` ran before, on every
/// unsafe method; see `console::cross_site`).
pub struct Posted {
    pub signed: Signed,
    pub form: Fields,
}

impl FromRequest<Api> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, api: &Api) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, api).await?;
        let form = fields(Request::from_parts(parts, body), api).await?;
        let posted = form.raw("csrf").as_bytes();
        if !bool::from(posted.ct_eq(signed.session.csrf.as_bytes())) {
            return Err(super::refused_page(
                api,
                &signed,
                StatusCode::FORBIDDEN,
                "This form is out of date or did not come from this console (its security token does not match your session). Go back, reload the page and try again.",
            ));
        }
        Ok(Posted { signed, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_or_old() {
        let sessions = Sessions::default();
        let now = OffsetDateTime::now_utc();
        let limits = Limits {
            idle: time::Duration::minutes(15),
            lifetime: time::Duration::hours(8),
        };
        let (id, s) = sessions
            .start(Principal::Anonymous, "x".into(), false, None, now)
            .unwrap();
        assert!(!format!("{s:?}").contains(&s.csrf));
        assert_eq!(id.len(), 43);
        let mut t = now;
        for _ in 0..40 {
            t += time::Duration::minutes(14);
            if t - now >= limits.lifetime {
                break;
            }
            assert!(sessions.find(&id, t, &limits).is_ok());
        }
        assert_eq!(
            sessions.find(&id, now + limits.lifetime, &limits).err(),
            Some(Gone::Lifetime)
        );
        let (id, _) = sessions
            .start(Principal::Anonymous, "x".into(), false, None, now)
            .unwrap();
        let later = now + time::Duration::minutes(15);
        assert_eq!(sessions.find(&id, later, &limits).err(), Some(Gone::Idle));
        assert_eq!(sessions.find(&id, now, &limits).err(), Some(Gone::None));
        let (id, _) = sessions
            .start(Principal::Anonymous, "x".into(), false, None, now)
            .unwrap();
        sessions.end(&id);
        assert_eq!(sessions.find(&id, now, &limits).err(), Some(Gone::None));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-tessera-console=abc; b=2"),
        );
        assert_eq!(cookie_id(&headers).as_deref(), Some("abc"));
        let cookie = set_cookie("abc");
        let text = cookie.to_str().unwrap();
        for part in ["__Host-", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(text.contains(part), "{text}");
        }
    }
}
