//! `LdapError` and the one place internal errors become LDAP result codes.
//!
//! Operation modules return `Result<_, LdapError>`; dispatch turns it into the response.
//! Clients get short, stable messages; internal detail goes to the log only.

use ldap3_proto::proto::{LdapOp, LdapResult, LdapResultCode};

use crate::directory::dn::DnError;
use crate::directory::filter::FilterError;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct LdapError {
    pub code: LdapResultCode,
    pub matched_dn: String,
    pub message: String,
}

impl LdapError {
    pub fn new(code: LdapResultCode, message: impl Into<String>) -> LdapError {
        LdapError {
            code,
            matched_dn: String::new(),
            message: message.into(),
        }
    }

    pub fn no_such_object(matched_dn: String) -> LdapError {
        LdapError {
            code: LdapResultCode::NoSuchObject,
            matched_dn,
            message: "no such object".into(),
        }
    }

    /// noSuchObject for a missing `dn`, naming its closest existing ancestor.
    pub fn missing(
        r: &impl crate::store::DirectoryRead,
        dn: &crate::directory::dn::Dn,
    ) -> LdapError {
        match r.closest_ancestor(dn) {
            Ok(matched) => LdapError::no_such_object(matched),
            Err(e) => e.into(),
        }
    }

    /// The one answer for every failed credential check, whatever the cause.
    pub fn invalid_credentials() -> LdapError {
        LdapError::new(LdapResultCode::InvalidCredentials, "invalid credentials")
    }

    pub fn insufficient_access() -> LdapError {
        LdapError::new(
            LdapResultCode::InsufficentAccessRights,
            "insufficient access rights",
        )
    }

    pub fn protocol(message: impl Into<String>) -> LdapError {
        LdapError::new(LdapResultCode::ProtocolError, message)
    }

    pub fn unwilling(message: impl Into<String>) -> LdapError {
        LdapError::new(LdapResultCode::UnwillingToPerform, message)
    }

    pub fn other(message: impl Into<String>) -> LdapError {
        LdapError::new(LdapResultCode::Other, message)
    }

    pub fn into_result(self) -> LdapResult {
        LdapResult {
            code: self.code,
            matcheddn: self.matched_dn,
            message: self.message,
            referral: Vec::new(),
        }
    }
}

pub fn success() -> LdapResult {
    LdapResult {
        code: LdapResultCode::Success,
        matcheddn: String::new(),
        message: String::new(),
        referral: Vec::new(),
    }
}

pub fn code_result(code: LdapResultCode) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: String::new(),
        referral: Vec::new(),
    }
}

impl From<StoreError> for LdapError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists => {
                LdapError::new(LdapResultCode::EntryAlreadyExists, "entry already exists")
            }
            StoreError::NoParent => LdapError::no_such_object(String::new()),
            // A panic on the blocking thread: a bug, not an outage, so not 52 (which
            // tells clients to try again elsewhere). The transaction died with it.
            StoreError::Task(why) => {
                tracing::error!(event = "panic", error = %why, "a store task failed");
                LdapError::new(LdapResultCode::Other, "internal server error")
            }
            other => {
                tracing::error!(error = %other, "store failure");
                LdapError::new(
                    LdapResultCode::Unavailable,
                    "the directory store is unavailable",
                )
            }
        }
    }
}

impl From<DnError> for LdapError {
    fn from(e: DnError) -> Self {
        LdapError::new(LdapResultCode::InvalidDNSyntax, e.to_string())
    }
}

impl From<FilterError> for LdapError {
    fn from(e: FilterError) -> Self {
        LdapError::unwilling(e.to_string())
    }
}

/// The response operation that answers `request` with `res`.
pub fn response_op(request: &LdapOp, res: LdapResult) -> Option<LdapOp> {
    Some(match request {
        LdapOp::BindRequest(_) => LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse {
            res,
            saslcreds: None,
        }),
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(res),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(res),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(res),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(res),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(res),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(res),
        LdapOp::ExtendedRequest(_) => {
            LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
                res,
                name: None,
                value: None,
            })
        }
        _ => return None,
    })
}
