//! Compare (RFC 4511 §4.10): compareTrue (6) / compareFalse (5) under the attribute's
//! equality rule; entries the caller cannot see are noSuchObject (32).

use ldap3_proto::proto::{LdapCompareRequest, LdapResult, LdapResultCode};

use crate::directory::access::Rights;
use crate::directory::dn::Dn;
use crate::directory::matching::normalize;
use crate::dit::computed::add_computed;
use crate::dit::{DitError, caller, entry};
use crate::ldap::OpContext;
use crate::ldap::result::code_result;
use crate::store::DirectoryRead;

pub async fn compare(ctx: &OpContext, req: &LdapCompareRequest) -> Result<LdapResult, DitError> {
    let state = &ctx.state;
    let dn = Dn::parse(&req.dn)?;
    let name = entry::attr_name(&state.schema, &req.atype)?;
    let rule = state.schema.attribute(&name).and_then(|a| a.equality);
    let Some(assertion) = normalize(rule, &req.val) else {
        return Err(DitError::new(
            LdapResultCode::InvalidAttributeSyntax,
            format!("{name}: assertion value invalid per syntax"),
        ));
    };
    let policy = ctx.policy();
    let principal = ctx.session.principal.clone();
    state.store.read_inline(move |r| {
        let caller = caller::caller(r, &principal, &policy)?;
        let Some((id, mut found)) = r.entry_by_dn(&dn)? else {
            return Err(DitError::no_such_object(String::new()));
        };
        add_computed(r, id, &mut found, |n| n.eq_ignore_ascii_case(&name))?;
        caller.with_member_of(r, &mut found)?;
        // Invisible entries do not exist for the caller; an unreadable attribute is
        // absent, as it is from searches.
        let Some(view) = caller.view(&found) else {
            return Err(DitError::no_such_object(String::new()));
        };
        let own = caller.dn() == Some(&found.dn);
        if !own && !caller.may(Rights::COMPARE, &found) {
            return Err(DitError::insufficient_access());
        }
        caller.redact(&view, &mut found, &policy.schema);
        caller.prune(r, id, &mut found)?;
        let values = found.values(&name);
        if values.is_empty() {
            return Err(DitError::new(
                LdapResultCode::NoSuchAttribute,
                format!("{name}: no such attribute"),
            ));
        }
        let hit = values
            .iter()
            .any(|v| normalize(rule, v).as_deref() == Some(assertion.as_slice()));
        Ok(code_result(if hit {
            LdapResultCode::CompareTrue
        } else {
            LdapResultCode::CompareFalse
        }))
    })
}
