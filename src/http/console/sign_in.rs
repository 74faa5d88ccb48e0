//! Signing in and out, and confirming who one is before a secret is minted or a password
//! set.
//!
//! A person signs in with their id (or DN) and password, checked by `authn` exactly as an
//! LDAP bind is: argon2 on the hashing pool, a decoy for an unknown name, the one bind
//! throttle, an audit record; tokens and app passwords are refused. The local
//! administrator, who has no password, signs in with a one-time link from `tessera
//! console sign-in-link` (minted over LDAPI, see `ldap::extended`): its secret rides in
//! the link's fragment, which browsers never send to a server, so it reaches no log,
//! proxy or `Referer`; the page's script takes it from there, removes it from the address
//! bar (and so from history) and posts it. Without the script the code is typed in.

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::audit::{Event, Kind};
use crate::authn::{self, Front, Simple};
use crate::dit::DitError;
use crate::dit::caller::Principal;
use crate::http::Api;
use crate::http::auth::{Peer, person_dn};
use crate::http::console::session::{self, Fields, Posted, Signed};
use crate::http::console::{Frame, render};
use crate::http::problem::Problem;

#[derive(Template)]
#[template(path = "sign_in.html", config = "src/http/console/askama.toml")]
struct SignInPage {
    frame: Frame,
    name: String,
}

#[derive(Template)]
#[template(path = "link.html", config = "src/http/console/askama.toml")]
struct LinkPage {
    frame: Frame,
}

#[derive(Deserialize, Default)]
pub struct Ended {
    ended: Option<String>,
}

pub async fn form(
    State(api): State<Api>,
    signed: Option<Signed>,
    Query(q): Query<Ended>,
) -> Response {
    if signed.is_some() {
        return Redirect::to("/console").into_response();
    }
    let frame = Frame::new("Sign in", "", None);
    let frame = match q.ended.as_deref() {
        Some("idle") => frame.ok("Your session ended after a while unused; sign in again."),
        Some("lifetime") => frame.ok("Your session reached its time limit; sign in again."),
        Some("signed-out") => frame.ok("You are signed out."),
        Some("lapsed") => frame.ok(
            "Your session ended: your password was changed, or your account expired or was removed; sign in again.",
        ),
        _ => frame,
    };
    let _ = api;
    render(
        StatusCode::OK,
        &SignInPage {
            frame,
            name: String::new(),
        },
    )
}

/// A person's password.
pub async fn password(State(api): State<Api>, req: Request) -> Response {
    if let Some(refused) = session::cut_off(&api) {
        return refused;
    }
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    let origin = crate::audit::Origin::new(peer, "https");
    let form = match session::fields(req, &api).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let name = form.get("name").to_string();
    let refuse = |text: &str| {
        render(
            StatusCode::UNAUTHORIZED,
            &SignInPage {
                frame: Frame::new("Sign in", "", None).error(text),
                name: name.clone(),
            },
        )
    };
    if name.is_empty() || form.raw("password").is_empty() {
        return refuse("Enter your id (or DN) and your password.");
    }
    let dn = person_dn(&api.state.config.suffix, &name);
    let cred = Simple {
        dn: &dn,
        secret: form.raw("password"),
        readable: true,
        protected: true,
        front: Front::Console,
    };
    let principal = match authn::simple(&api.state, &origin, peer, &cred).await {
        Ok(p @ Principal::Entry(_)) => p,
        Ok(_) | Err(_) => {
            return refuse(
                "Wrong id or password (or the account has expired). After a few failures each try waits longer.",
            );
        }
    };
    let shown = match &principal {
        Principal::Entry(dn) => dn.rdn_value("uid").map_or(dn.to_string(), str::to_string),
        _ => name.clone(),
    };
    start(&api, principal, shown, false).await
}

/// The page a sign-in link opens: a form for the code, which its script fills from the
/// link's fragment.
pub async fn link_form(State(api): State<Api>) -> Response {
    let _ = api;
    render(
        StatusCode::OK,
        &LinkPage {
            frame: Frame::new("Sign in with a one-time link", "", None),
        },
    )
}

/// A one-time link's code.
pub async fn link(State(api): State<Api>, req: Request) -> Response {
    if let Some(refused) = session::cut_off(&api) {
        return refused;
    }
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    let origin = crate::audit::Origin::new(peer, "https");
    let form = match session::fields(req, &api).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let now = api.state.clock.now();
    let redeemed = api.state.sign_in_links.redeem(form.get("code"), now);
    let mut event = Event::new(Kind::Bind).detail("console sign-in link");
    let Some(principal) = redeemed else {
        event.outcome = "failure".into();
        event.reason = "unknown, used or lapsed sign-in link".into();
        api.state.audit.push(now, &origin, event);
        return render(
            StatusCode::UNAUTHORIZED,
            &LinkPage {
                frame: Frame::new("Sign in with a one-time link", "", None).error(
                    "This sign-in link is not valid: each works once, for a few minutes. Run `tessera console sign-in-link` on the server for a new one.",
                ),
            },
        );
    };
    event.outcome = "success".into();
    event = event.actor(principal.dn().map(ToString::to_string).unwrap_or_default());
    api.state.audit.push(now, &origin, event);
    start(&api, principal, "local administrator".into(), true).await
}

/// A new session for `principal`, its cookie set, and on to the overview.
async fn start(api: &Api, principal: Principal, name: String, via_link: bool) -> Response {
    let mark = match session::standing(api, &principal).await {
        Ok(session::Standing::Live(mark)) => mark,
        Ok(session::Standing::Lapsed) => return Problem::from(DitError::lapsed()).into_response(),
        Err(e) => return Problem::from(e).into_response(),
    };
    let now = api.state.clock.now();
    let Some((id, _)) = api.sessions.start(principal, name, via_link, mark, now) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no session could be made (the system's random number generator failed)",
        )
            .into_response();
    };
    let mut response = Redirect::to("/console").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(&id));
    response
}

pub async fn sign_out(State(api): State<Api>, posted: Posted) -> Response {
    api.sessions.end(&posted.signed.id);
    let mut response = Redirect::to("/console/sign-in?ended=signed-out").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    response
        .headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    response
}

/// What confirming takes, for a form to ask: None within the re-authentication window.
pub fn confirm_prompt(api: &Api, signed: &Signed) -> Option<&'static str> {
    if signed.confirmed_recently(api) {
        None
    } else if signed.session.via_link {
        Some("A new one-time code (from tessera console sign-in-link)")
    } else {
        Some("Your password, to confirm it is you")
    }
}

/// Make sure the holder of `signed` proved who they are within the re-authentication
/// window, or does now with the form's `confirm` field (their password, checked and
/// throttled as a sign-in is; or, for a local administrator, a new sign-in code). The
/// error is the message to show.
pub async fn confirm(api: &Api, signed: &Signed, form: &Fields) -> Result<(), String> {
    if signed.confirmed_recently(api) {
        return Ok(());
    }
    let given = form.raw("confirm");
    let now = api.state.clock.now();
    if given.is_empty() {
        return Err(if signed.session.via_link {
            "Confirm it is you first: run `tessera console sign-in-link` on the server and enter the new code in the form, then submit again.".into()
        } else {
            "Confirm it is you first: enter your password in the form and submit again.".into()
        });
    }
    if signed.session.via_link {
        return match api.state.sign_in_links.redeem(given, now) {
            Some(p) if p == signed.session.principal => {
                api.sessions.confirm(&signed.id, now);
                Ok(())
            }
            _ => Err("That code is not a valid one-time code (each works once, for a few minutes): run `tessera console sign-in-link` for a new one.".into()),
        };
    }
    let Some(dn) = signed.session.principal.dn().map(ToString::to_string) else {
        return Err("This session cannot confirm; sign in again.".into());
    };
    let peer = signed.who.origin.peer.parse().ok();
    let cred = Simple {
        dn: &dn,
        secret: given,
        readable: true,
        protected: true,
        front: Front::Console,
    };
    match authn::simple(&api.state, &signed.who.origin, peer, &cred).await {
        Ok(p) if p == signed.session.principal => {
            api.sessions.confirm(&signed.id, now);
            Ok(())
        }
        _ => Err("That is not your password; nothing was done.".into()),
    }
}
