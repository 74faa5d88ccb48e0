//! Tokens (of service accounts) and app passwords (of people): list, create (the secret in
//! that one response, `Cache-Control: no-store`), rotate and revoke; and setting a
//! password. The rules are `dit::token`'s and `dit::password`'s, as over LDAP.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ldap3_proto::proto::LdapSearchScope;
use serde::{Deserialize, Serialize};

use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::directory::time::{parse_duration, parse_generalized, rfc3339};
use crate::dit::command::{Op, Outcome};
use crate::dit::credentials::{Intent, expired};
use crate::dit::names::TOKEN_CLASS;
use crate::dit::search::{self, Examiner, Query as SearchQuery};
use crate::dit::token::{Fresh, Minted};
use crate::dit::write::{self, Attempt};
use crate::dit::{DitError, password, token};
use crate::http::Api;
use crate::http::api::{Kind, PEOPLE, SERVICES, parse_filter, read, submit};
use crate::http::auth::Authenticated;
use crate::http::problem::{Json, Path, Problem};
use crate::store::DirectoryRead;

/// A token as listed: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenJson {
    pub id: String,
    pub label: String,
    /// `read-only` or `read-write`.
    pub scope: String,
    /// `api-token` (LDAP binds), `http-api` (this API) or `app-password`.
    pub intent: String,
    /// RFC 3339.
    pub created: Option<String>,
    /// Who minted it (a DN).
    pub creator: Option<String>,
    /// RFC 3339; absent: never.
    pub expires: Option<String>,
    /// Sliding expiry: each use moves the expiry this many seconds ahead.
    pub sliding: Option<u64>,
    /// RFC 3339, to the minute.
    pub last_used: Option<String>,
    /// When it was sent in a bind without TLS (rotate it), RFC 3339.
    pub exposed: Option<String>,
    /// `ok`, `expired` or `exposed`.
    pub state: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenJson>,
}

/// A token to mint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub label: String,
    /// `read-only` (default) or `read-write`.
    pub scope: Option<String>,
    /// RFC 3339 time, a duration (`90d`) or `never`; the server's default lifetime when
    /// absent.
    pub expires: Option<String>,
    /// For service accounts: `api-token` (LDAP binds, the default) or `http-api` (this
    /// API's Bearer tokens).
    pub intent: Option<String>,
    /// Sliding expiry: a duration each use pushes the expiry to (`30d`).
    pub extend_on_use: Option<String>,
}

/// A minted token: the secret, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MintedJson {
    pub id: String,
    /// The secret: store it now, it cannot be read again.
    pub token: String,
    pub expires: Option<String>,
    /// For a rotation: when the token it replaces now expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_expires: Option<String>,
}

impl std::fmt::Debug for MintedJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedJson")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the old token keeps working beside the new one (default `24h`).
    pub overlap: Option<String>,
}

/// A password to set; none to have one generated (and shown once).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: Option<String>,
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GeneratedPassword {
    /// The generated password, shown this once.
    pub password: String,
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{name}/tokens", tag = "tokens",
    params(("name" = String, Path, description = "The service account")),
    responses((status = 200, description = "Its tokens", body = TokenList)))]
pub async fn list_tokens(
    State(api): State<Api>,
    who: Authenticated,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    Ok(axum::Json(list(&api, &who, SERVICES, &name).await?).into_response())
}

#[utoipa::path(get, path = "/api/v1/people/{uid}/app-passwords", tag = "tokens",
    params(("uid" = String, Path, description = "The person")),
    responses((status = 200, description = "Their app passwords", body = TokenList)))]
pub async fn list_app_passwords(
    State(api): State<Api>,
    who: Authenticated,
    Path(uid): Path<String>,
) -> Result<Response, Problem> {
    Ok(axum::Json(list(&api, &who, PEOPLE, &uid).await?).into_response())
}

#[utoipa::path(post, path = "/api/v1/service-accounts/{name}/tokens", tag = "tokens",
    params(("name" = String, Path, description = "The service account")),
    request_body = NewToken,
    responses((status = 201, description = "Minted; the secret is in this response only", body = MintedJson)))]
pub async fn create_token(
    State(api): State<Api>,
    who: Authenticated,
    Path(name): Path<String>,
    Json(new): Json<NewToken>,
) -> Result<Response, Problem> {
    let intent = match new.intent.as_deref() {
        None => Intent::ApiToken,
        Some(text) => match Intent::parse(text) {
            Some(i @ (Intent::ApiToken | Intent::HttpApi)) => i,
            _ => {
                return Err(Problem::bad_request(
                    "intent: a service account's tokens are api-token or http-api",
                ));
            }
        },
    };
    minted(mint(&api, &who, SERVICES, &name, new, intent).await?)
}

#[utoipa::path(post, path = "/api/v1/people/{uid}/app-passwords", tag = "tokens",
    params(("uid" = String, Path, description = "The person")),
    request_body = NewToken,
    responses((status = 201, description = "Minted; the secret is in this response only", body = MintedJson)))]
pub async fn create_app_password(
    State(api): State<Api>,
    who: Authenticated,
    Path(uid): Path<String>,
    Json(new): Json<NewToken>,
) -> Result<Response, Problem> {
    if new
        .intent
        .as_deref()
        .is_some_and(|i| Intent::parse(i) != Some(Intent::AppPassword))
    {
        return Err(Problem::bad_request(
            "intent: app passwords are app-password",
        ));
    }
    minted(mint(&api, &who, PEOPLE, &uid, new, Intent::AppPassword).await?)
}

#[utoipa::path(post, path = "/api/v1/service-accounts/{name}/tokens/{id}/rotate", tag = "tokens",
    params(("name" = String, Path, description = "The service account"),
        ("id" = String, Path, description = "The token")),
    request_body = Rotation,
    responses((status = 201, description = "The new token; the secret is in this response only", body = MintedJson)))]
pub async fn rotate_token(
    State(api): State<Api>,
    who: Authenticated,
    Path((name, id)): Path<(String, String)>,
    Json(rotation): Json<Rotation>,
) -> Result<Response, Problem> {
    minted(rotate(&api, &who, SERVICES, &name, id, rotation).await?)
}

#[utoipa::path(post, path = "/api/v1/people/{uid}/app-passwords/{id}/rotate", tag = "tokens",
    params(("uid" = String, Path, description = "The person"),
        ("id" = String, Path, description = "The app password")),
    request_body = Rotation,
    responses((status = 201, description = "The new app password; the secret is in this response only", body = MintedJson)))]
pub async fn rotate_app_password(
    State(api): State<Api>,
    who: Authenticated,
    Path((uid, id)): Path<(String, String)>,
    Json(rotation): Json<Rotation>,
) -> Result<Response, Problem> {
    minted(rotate(&api, &who, PEOPLE, &uid, id, rotation).await?)
}

#[utoipa::path(delete, path = "/api/v1/service-accounts/{name}/tokens/{id}", tag = "tokens",
    params(("name" = String, Path, description = "The service account"),
        ("id" = String, Path, description = "The token")),
    responses((status = 204, description = "Revoked: it fails from the next request or operation on")))]
pub async fn revoke_token(
    State(api): State<Api>,
    who: Authenticated,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    revoke(&api, &who, SERVICES, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(delete, path = "/api/v1/people/{uid}/app-passwords/{id}", tag = "tokens",
    params(("uid" = String, Path, description = "The person"),
        ("id" = String, Path, description = "The app password")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_app_password(
    State(api): State<Api>,
    who: Authenticated,
    Path((uid, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    revoke(&api, &who, PEOPLE, &uid, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(put, path = "/api/v1/people/{uid}/password", tag = "people",
    params(("uid" = String, Path, description = "The person")),
    request_body = NewPassword,
    responses((status = 204, description = "Set"),
        (status = 200, description = "Set to a generated password, shown this once", body = GeneratedPassword)))]
pub async fn set_password(
    State(api): State<Api>,
    who: Authenticated,
    Path(uid): Path<String>,
    Json(new): Json<NewPassword>,
) -> Result<Response, Problem> {
    match set_person_password(&api, &who, &uid, new.password).await? {
        Some(password) => Ok(no_store(
            StatusCode::OK,
            axum::Json(GeneratedPassword { password }),
        )),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Set the password of the person `uid` as `who`: to `password`, or when none is given
/// to a generated one, which is returned (shown once).
pub async fn set_person_password(
    api: &Api,
    who: &Authenticated,
    uid: &str,
    password: Option<String>,
) -> Result<Option<String>, Problem> {
    let state = &api.state;
    let target = PEOPLE.dn(&state.config.suffix, uid);
    // Checked before anything is hashed, so this costs nothing to those who may not.
    {
        let target = target.clone();
        read(api, who, move |r, caller, policy| {
            password::require_may_set(r, policy, caller, &target)
        })
        .await?;
    }
    let (cleartext, generated) = match password {
        Some(p) if !p.is_empty() => (p, false),
        _ => (
            crate::identity::password::generate(GENERATED_PASSWORD_LEN),
            true,
        ),
    };
    let hashed = state.hash_password(cleartext.as_bytes().to_vec()).await?;
    let op = Op::SetPassword {
        dn: target.to_string(),
        hashed,
    };
    submit(api, who, op).await?;
    Ok(generated.then_some(cleartext))
}

const GENERATED_PASSWORD_LEN: usize = 20;

/// 201 with a minted secret, which no cache may keep.
fn minted(minted: MintedJson) -> Result<Response, Problem> {
    Ok(no_store(StatusCode::CREATED, axum::Json(minted)))
}

/// A response that no cache may keep (it carries a secret).
fn no_store(status: StatusCode, body: impl IntoResponse) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The tokens (or app passwords) of the account `name` of `kind` the caller sees.
pub async fn list(
    api: &Api,
    who: &Authenticated,
    kind: Kind,
    name: &str,
) -> Result<TokenList, Problem> {
    let account = kind.dn(&api.state.config.suffix, name);
    read(api, who, move |r, caller, policy| {
        let base = search::base(r, caller, &policy.suffix, &account)?;
        require_account(r, kind, &account)?;
        let query = SearchQuery {
            base: account,
            scope: LdapSearchScope::OneLevel,
            filter: parse_filter(policy, &format!("(objectClass={TOKEN_CLASS})"))?,
        };
        let examiner = Examiner::new(&query, caller, None);
        let wants = |n: &str| n.eq_ignore_ascii_case("createTimestamp");
        let mut items = Vec::new();
        for id in search::candidates(r, &query.filter, &query.scope, base)? {
            if let Some(e) = examiner.examine(r, caller, &policy.schema, id, &wants)? {
                items.push(token_json(&e, policy.now));
            }
        }
        Ok(TokenList { items })
    })
    .await
}

/// Mint a token (or app password) for the account `name` of `kind` as `who`: the secret,
/// to be shown once.
pub async fn mint(
    api: &Api,
    who: &Authenticated,
    kind: Kind,
    name: &str,
    new: NewToken,
    intent: Intent,
) -> Result<MintedJson, Problem> {
    let account = kind.dn(&api.state.config.suffix, name);
    let read_write = match new.scope.as_deref() {
        None | Some("read-only") => false,
        Some("read-write") => true,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "scope: '{other}' is not read-only or read-write"
            )));
        }
    };
    let extend_on_use = match new.extend_on_use.as_deref() {
        None => None,
        Some(text) => Some(
            parse_duration(text)
                .ok_or_else(|| Problem::bad_request("extend_on_use: not a duration (e.g. 30d)"))?
                .as_secs(),
        ),
    };
    let req = token::Request {
        account: account.clone(),
        label: new.label,
        read_write,
        expires: new.expires,
        intent,
        extend_on_use,
    };
    read(api, who, move |r, _, _| require_account(r, kind, &account)).await?;
    let (fresh, secret) = Fresh::generate()?;
    let Outcome::Issued(issued) = submit(api, who, Op::generate_token(&req, fresh)).await? else {
        return Err(Problem::from(DitError::other(
            "token generation gave no token",
        )));
    };
    let minted = Minted::new(issued, secret);
    Ok(MintedJson {
        id: minted.id.clone(),
        token: minted.token.clone(),
        expires: minted.expires.as_deref().map(time_text),
        old_expires: None,
    })
}

/// Rotate token `id` of the account `name` of `kind`: the new secret, to be shown once.
pub async fn rotate(
    api: &Api,
    who: &Authenticated,
    kind: Kind,
    name: &str,
    id: String,
    rotation: Rotation,
) -> Result<MintedJson, Problem> {
    let account = kind.dn(&api.state.config.suffix, name);
    let overlap = match rotation.overlap.as_deref() {
        None => token::DEFAULT_OVERLAP,
        Some(text) => parse_duration(text)
            .ok_or_else(|| Problem::bad_request("overlap: not a duration (e.g. 1h)"))?,
    };
    {
        let account = account.clone();
        read(api, who, move |r, _, _| require_account(r, kind, &account)).await?;
    }
    let (fresh, secret) = Fresh::generate()?;
    let op = Op::RotateToken {
        account: account.to_string(),
        token_id: id,
        overlap_secs: overlap.as_secs(),
        fresh,
    };
    let Outcome::Rotated(rotated) = submit(api, who, op).await? else {
        return Err(Problem::from(DitError::other(
            "token rotation gave no token",
        )));
    };
    let minted = Minted::new(rotated.issued, secret);
    Ok(MintedJson {
        id: minted.id.clone(),
        token: minted.token.clone(),
        expires: minted.expires.as_deref().map(time_text),
        old_expires: rotated.old_expires.as_deref().map(time_text),
    })
}

/// Revoke (delete) token `id` of the account `name` of `kind`.
pub async fn revoke(
    api: &Api,
    who: &Authenticated,
    kind: Kind,
    name: &str,
    id: &str,
) -> Result<(), Problem> {
    let account = kind.dn(&api.state.config.suffix, name);
    let token = account.child(Rdn::single("tokenId", id));
    let target = token.clone();
    read(api, who, move |r, caller, _| {
        write::may_attempt(r, caller, Attempt::Delete, Some(&target))?;
        require_account(r, kind, &account)?;
        match r.entry_by_dn(&target)? {
            Some((_, e)) if e.has_class(TOKEN_CLASS) => Ok(()),
            _ => Err(DitError::no_such_object(account.to_string())),
        }
    })
    .await?;
    let op = Op::Delete {
        dn: token.to_string(),
    };
    submit(api, who, op).await?;
    Ok(())
}

/// Every token and app password the caller sees, with the DN of the account it belongs
/// to, in id order.
pub fn all_visible(
    r: &impl DirectoryRead,
    caller: &crate::dit::caller::Caller,
    policy: &crate::dit::caller::Policy,
) -> Result<Vec<(String, TokenJson)>, DitError> {
    let query = SearchQuery {
        base: policy.suffix.clone(),
        scope: LdapSearchScope::Subtree,
        filter: parse_filter(policy, &format!("(objectClass={TOKEN_CLASS})"))?,
    };
    let base = search::base(r, caller, &policy.suffix, &query.base)?;
    let examiner = Examiner::new(&query, caller, None);
    let wants = |n: &str| n.eq_ignore_ascii_case("createTimestamp");
    let mut out = Vec::new();
    for id in search::candidates(r, &query.filter, &query.scope, base)? {
        if let Some(e) = examiner.examine(r, caller, &policy.schema, id, &wants)? {
            let account = e.dn.parent().map(|p| p.to_string()).unwrap_or_default();
            out.push((account, token_json(&e, policy.now)));
        }
    }
    Ok(out)
}

/// 404 when `dn` is an entry of another kind than `kind`. A missing account is left to
/// the rules, which answer as for one the caller may not manage (so the answer tells
/// nothing of what exists).
fn require_account(r: &impl DirectoryRead, kind: Kind, dn: &Dn) -> Result<(), DitError> {
    match r.entry_by_dn(dn)? {
        Some((_, e)) if !e.has_class(kind.class) => Err(DitError::no_such_object(String::new())),
        _ => Ok(()),
    }
}

fn token_json(e: &Entry, now: time::OffsetDateTime) -> TokenJson {
    let get = |a: &str| e.first_str(a).map(str::to_string);
    let expires = get("tokenExpires");
    let exposed = get("tokenExposed");
    let state = if expires.is_some() && expired(expires.as_deref(), now) {
        "expired"
    } else if exposed.is_some() {
        "exposed"
    } else {
        "ok"
    };
    TokenJson {
        id: get("tokenId").unwrap_or_default(),
        label: get("tokenLabel").unwrap_or_default(),
        scope: get("tokenScope").unwrap_or_else(|| "read-only".into()),
        intent: get("tokenIntent").unwrap_or_default(),
        created: get("createTimestamp").as_deref().map(time_text),
        creator: get("tokenCreatedBy"),
        expires: expires.as_deref().map(time_text),
        sliding: get("tokenExtendOnUse").and_then(|s| s.parse().ok()),
        last_used: get("tokenLastUsed").as_deref().map(time_text),
        exposed: exposed.as_deref().map(time_text),
        state: state.into(),
    }
}

/// A generalizedTime as RFC 3339 (text that is not one, as it is).
pub fn time_text(generalized: &str) -> String {
    parse_generalized(generalized).map_or_else(|| generalized.to_string(), rfc3339)
}
