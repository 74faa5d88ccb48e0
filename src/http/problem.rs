//! Errors as RFC 9457 problem details (`application/problem+json`), and the one place a
//! directory refusal (`DitError`, an LDAP result code) becomes an HTTP status. Also the
//! request extractors whose rejections (malformed JSON, wrong types, unknown fields, huge
//! bodies, bad query strings) become 4xx problems in the same shape, never a 5xx.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ldap3_proto::proto::LdapResultCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::dit::DitError;
use crate::metrics::result_name;

/// An error answer (boxed: it travels in every handler's `Err`).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Problem(pub Box<ProblemBody>);

/// An error answer: a stable `code` to branch on, and a message for people.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// A URI naming the kind of problem: `urn:tessera:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem (the HTTP status's phrase).
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for people; stable across versions, but not to be parsed.
    pub detail: String,
    /// A stable name: the LDAP result's name (`insufficient_access_rights`, ...) for a
    /// refusal by the directory, else `invalid_json`, `invalid_request`, `not_found`,
    /// `unauthenticated`, `body_too_large`, `timeout` ...
    pub code: String,
    /// The LDAP result code of a refusal by the directory, as LDAP would answer it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap_result: Option<u32>,
    /// For a missing entry: the closest entry above it that exists.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub matched_dn: String,
    /// For a refusal by the control rule: its reason, structured (the console words it).
    #[serde(skip)]
    pub refusal: Option<Box<crate::dit::error::Refusal>>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem(Box::new(ProblemBody {
            kind: format!("urn:tessera:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            ldap_result: None,
            matched_dn: String::new(),
            refusal: None,
        }))
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }
}

/// The HTTP status for each LDAP result: the one map.
pub fn status_of(code: &LdapResultCode) -> StatusCode {
    use LdapResultCode as C;
    match code {
        C::Success => StatusCode::OK,
        C::NoSuchObject => StatusCode::NOT_FOUND,
        C::InsufficentAccessRights | C::AuthorizationError | C::ConfidentialityRequired => {
            StatusCode::FORBIDDEN
        }
        C::InvalidCredentials | C::StrongerAuthRequired | C::InappropriateAuthentication => {
            StatusCode::UNAUTHORIZED
        }
        C::EntryAlreadyExists | C::NotAllowedOnNonLeaf | C::AttributeOrValueExists => {
            StatusCode::CONFLICT
        }
        C::Unavailable | C::Busy => StatusCode::SERVICE_UNAVAILABLE,
        C::ProtocolError | C::InvalidDNSyntax | C::AuthMethodNotSupported => {
            StatusCode::BAD_REQUEST
        }
        C::Other | C::OperationsError => StatusCode::INTERNAL_SERVER_ERROR,
        // Schema and constraint refusals, limits, unwillingness: the request is understood
        // but cannot be carried out as it stands.
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<DitError> for Problem {
    fn from(e: DitError) -> Problem {
        let status = status_of(&e.code);
        let mut p = Problem::new(status, result_name(&e.code), e.message);
        p.0.ldap_result = Some(e.code as u32);
        p.0.matched_dn = e.matched_dn;
        p.0.refusal = e.refusal;
        p
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        DitError::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\", Basic realm=\"tessera\""),
            );
        }
        response
    }
}

/// A JSON request body; a body that is not JSON, not of the documented shape (wrong types,
/// unknown fields) or too large is a 4xx problem.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    let status = rejection.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        _ => "invalid_json",
    };
    Problem::new(status, code, rejection.body_text())
}

/// Query parameters; ones that do not parse are a 400 problem.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_problem(&rejection)),
        }
    }
}

fn query_problem(rejection: &QueryRejection) -> Problem {
    Problem::bad_request(rejection.body_text())
}

/// Path parameters; ones that do not parse are a 400 problem.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_problem(&rejection)),
        }
    }
}

fn path_problem(rejection: &PathRejection) -> Problem {
    Problem::bad_request(rejection.body_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_statuses_once() {
        let cases = [
            (LdapResultCode::NoSuchObject, 404),
            (LdapResultCode::InsufficentAccessRights, 403),
            (LdapResultCode::InvalidCredentials, 401),
            (LdapResultCode::StrongerAuthRequired, 401),
            (LdapResultCode::ConstraintViolation, 422),
            (LdapResultCode::ObjectClassViolation, 422),
            (LdapResultCode::UnwillingToPerform, 422),
            (LdapResultCode::EntryAlreadyExists, 409),
            (LdapResultCode::NotAllowedOnNonLeaf, 409),
            (LdapResultCode::Unavailable, 503),
            (LdapResultCode::InvalidDNSyntax, 400),
            (LdapResultCode::ProtocolError, 400),
        ];
        for (code, status) in cases {
            let p = Problem::from(DitError::new(code.clone(), "x"));
            assert_eq!(p.0.status, status, "{code:?}");
            assert_eq!(p.0.ldap_result, Some(code.clone() as u32));
            assert_eq!(p.0.code, result_name(&code));
        }
    }
}
