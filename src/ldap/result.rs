//! LDAP results: a `DitError` becomes an `LdapResult`, and each request its response
//! operation. The codes themselves are decided below, in `dit::error`.

use ldap3_proto::proto::{LdapOp, LdapResult, LdapResultCode};

use crate::dit::DitError;

pub fn success() -> LdapResult {
    code_result(LdapResultCode::Success)
}

pub fn code_result(code: LdapResultCode) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: String::new(),
        referral: Vec::new(),
    }
}

/// The result that reports `e` to the client.
pub fn failure(e: DitError) -> LdapResult {
    LdapResult {
        code: e.code,
        matcheddn: e.matched_dn,
        message: e.message,
        referral: Vec::new(),
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
