//! Who an API request comes from: `Authorization: Bearer <token>` (an `http-api` token of a
//! service account) or `Authorization: Basic` (a person's name or DN and password), checked
//! on every request by `authn`, exactly as an LDAP bind is checked and throttled. A revoked
//! or expired token fails its very next request. No sessions, no cookies.

use std::net::SocketAddr;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;

use crate::audit::Origin;
use crate::authn::{self, Front, Simple};
use crate::directory::dn::{Dn, Rdn};
use crate::dit::caller::Principal;
use crate::dit::names;
use crate::http::Api;
use crate::http::problem::Problem;

/// The peer of a connection, put in each of its requests by the listener.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// An authenticated request's identity and where it came from.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub principal: Principal,
    pub origin: Origin,
}

impl FromRequestParts<Api> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Problem> {
        let peer = parts.extensions.get::<Peer>().map(|p| p.0.ip());
        let origin = Origin::new(peer, "https");
        // A cluster member cut off from its cluster answers as its LDAP binds do (52 there,
        // 503 here), so a revoked token cannot keep working on it.
        if let Some(refusal) = api.state.cut_off() {
            return Err(Problem::from(refusal));
        }
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(Problem::unauthenticated(
                "authentication required: send Authorization: Bearer <token> (an http-api token) or Basic (a person's name and password)",
            ));
        };
        let malformed = || Problem::unauthenticated("malformed Authorization header");
        let text = header.to_str().map_err(|_| malformed())?;
        let (scheme, rest) = text.trim().split_once(' ').ok_or_else(malformed)?;
        let rest = rest.trim();
        let suffix = &api.state.config.suffix;
        let (dn, secret, front) = if scheme.eq_ignore_ascii_case("bearer") {
            ("dn=token".to_string(), rest.to_string(), Front::HttpBearer)
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| malformed())?;
            let text = String::from_utf8(decoded).map_err(|_| malformed())?;
            let (user, password) = text.split_once(':').ok_or_else(malformed)?;
            (
                person_dn(suffix, user),
                password.to_string(),
                Front::HttpBasic,
            )
        } else {
            return Err(Problem::unauthenticated(
                "unsupported authentication scheme: use Bearer or Basic",
            ));
        };
        let cred = Simple {
            dn: &dn,
            secret: &secret,
            readable: true,
            protected: true,
            front,
        };
        let principal = authn::simple(&api.state, &origin, peer, &cred).await?;
        Ok(Authenticated { principal, origin })
    }
}

/// A Basic user name: a DN as given, else a person's id.
pub fn person_dn(suffix: &Dn, user: &str) -> String {
    if user.contains('=') {
        return user.to_string();
    }
    names::people(suffix)
        .child(Rdn::single("uid", user))
        .to_string()
}
