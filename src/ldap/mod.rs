//! The LDAP protocol: one module per operation, and `dispatch`, the one match on `LdapOp`.
//! Each operation decodes its request, calls the directory's rules in `dit`, and encodes
//! what they return; no rule is decided here.
//!
//! The connection task (`server::conn`) decodes messages, refuses every request whose
//! critical controls `unsupported_critical` rejects, and calls `dispatch` for the rest; it
//! runs binds, StartTLS, Abandon and Unbind itself in order, because they change the
//! connection, and spawns every other operation so several can be in flight. Operations
//! send their responses through `OpContext::out` with the request's msgid. No sockets
//! here and no redb: the store is reached through `crate::store`.

pub mod add;
pub mod ber;
pub mod bind;
pub mod compare;
pub mod delete;
pub mod extended;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod modify;
pub mod modify_dn;
pub mod oid;
pub mod proxied;
pub mod result;
pub mod root_dse;
pub mod search;
pub mod session;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::directory::dn::Dn;
use crate::dit::write::Attempt;
use crate::dit::{DitError, caller};
use crate::ldap::result::{failure, response_op, success};
use crate::ldap::session::Session;
use crate::state::State;

/// What a spawned operation needs: a snapshot of the session and where to reply.
pub struct OpContext {
    pub state: State,
    pub session: Session,
    pub msgid: i32,
    pub controls: Vec<LdapControl>,
    pub out: mpsc::Sender<Outgoing>,
    pub cancel: CancellationToken,
    /// When the request was read, for the latency metrics.
    pub started: std::time::Instant,
}

/// A response on its way to the connection: a message, or one already encoded (search
/// entries, encoded on the thread that found them).
pub enum Outgoing {
    Msg(LdapMsg),
    Encoded(Vec<u8>),
    /// The identity this connection bound as is no longer valid (see
    /// `DitError::lapsed`): the connection sends this Notice of Disconnection and ends, so
    /// the client reconnects, binds again, and is told plainly.
    Lapsed(LdapMsg),
}

impl From<LdapMsg> for Outgoing {
    fn from(msg: LdapMsg) -> Self {
        Outgoing::Msg(msg)
    }
}

impl OpContext {
    /// The rules' policy for this operation, as of now, naming where it came from.
    pub fn policy(&self) -> crate::dit::caller::Policy {
        self.state.policy().from(&self.session.origin)
    }

    /// A write as this operation's caller, from its connection's origin.
    pub fn command(&self, op: crate::dit::command::Op) -> crate::dit::command::Command {
        self.state
            .command(&self.session.principal, op)
            .from(&self.session.origin)
    }

    /// Send one message for this operation; false if the connection is gone.
    pub async fn send(&self, op: LdapOp, ctrl: Vec<LdapControl>) -> bool {
        self.out
            .send(Outgoing::Msg(LdapMsg {
                msgid: self.msgid,
                op,
                ctrl,
            }))
            .await
            .is_ok()
    }
}

/// Run one operation that does not change the connection, and send its response.
/// Critical controls were checked by the connection (`unsupported_critical`) before.
pub async fn dispatch(mut ctx: OpContext, op: LdapOp) {
    #[cfg(feature = "fault-injection")]
    if let Err(e) = fault::operation(&ctx, &op).await {
        reply(&ctx, &op, Err(e.into()), Vec::new()).await;
        return;
    }
    if let Err(e) = proxied::apply(&mut ctx).await {
        reply(&ctx, &op, Err(e), Vec::new()).await;
        return;
    }
    let result = match &op {
        LdapOp::SearchRequest(req) => return search::search(&ctx, req).await,
        LdapOp::AddRequest(req) => add::add(&ctx, req).await.map(|()| success()),
        LdapOp::ModifyRequest(req) => modify::modify(&ctx, req).await.map(|()| success()),
        LdapOp::DelRequest(dn) => delete::delete(&ctx, dn).await.map(|()| success()),
        LdapOp::ModifyDNRequest(req) => modify_dn::modify_dn(&ctx, req).await.map(|()| success()),
        LdapOp::CompareRequest(req) => compare::compare(&ctx, req).await,
        LdapOp::ExtendedRequest(req) => return extended::extended(&ctx, req).await,
        _ => Err(DitError::protocol("unexpected operation")),
    };
    if ctx.cancel.is_cancelled() {
        return;
    }
    reply(&ctx, &op, result, Vec::new()).await;
}

/// Send the final response for `request`.
pub async fn reply(
    ctx: &OpContext,
    request: &LdapOp,
    result: Result<ldap3_proto::proto::LdapResult, DitError>,
    ctrl: Vec<LdapControl>,
) {
    let code = match &result {
        Ok(res) => res.code.clone(),
        Err(e) => e.code.clone(),
    };
    ctx.state
        .metrics
        .ldap_operation(operation_name(request), &code, ctx.started.elapsed());
    let res = match result {
        Ok(res) => res,
        Err(e) if e.is_lapsed() => {
            tracing::info!(
                event = "credentials-lapsed",
                dn = %ctx.session.principal.dn().map(ToString::to_string).unwrap_or_default(),
                "the connection's credentials are no longer valid; disconnecting it"
            );
            let notice = LdapMsg {
                msgid: 0,
                op: LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
                    res: ldap3_proto::proto::LdapResult {
                        code: ldap3_proto::proto::LdapResultCode::StrongerAuthRequired,
                        ..failure(e)
                    },
                    name: Some(oid::NOTICE_OF_DISCONNECTION.to_string()),
                    value: None,
                }),
                ctrl: Vec::new(),
            };
            let _ = ctx.out.send(Outgoing::Lapsed(notice)).await;
            return;
        }
        Err(e) => failure(e),
    };
    if let Some(op) = response_op(request, res) {
        ctx.send(op, ctrl).await;
    }
}

/// The operation's name, for the metrics.
pub fn operation_name(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindRequest(_) => "bind",
        LdapOp::SearchRequest(_) => "search",
        LdapOp::AddRequest(_) => "add",
        LdapOp::ModifyRequest(_) => "modify",
        LdapOp::DelRequest(_) => "delete",
        LdapOp::ModifyDNRequest(_) => "modify_dn",
        LdapOp::CompareRequest(_) => "compare",
        LdapOp::ExtendedRequest(_) => "extended",
        _ => "other",
    }
}

/// Refuse a write before its request is decoded further (see `dit::write::may_attempt`),
/// in a read transaction of its own.
pub async fn may_attempt(
    ctx: &OpContext,
    attempt: Attempt,
    target: Option<Dn>,
) -> Result<(), DitError> {
    let principal = ctx.session.principal.clone();
    let policy = ctx.state.policy();
    ctx.state.store.read_inline(move |r| {
        let caller = caller::caller(r, &principal, &policy)?;
        crate::dit::write::may_attempt(r, &caller, attempt, target.as_ref())
    })
}

/// RFC 4511 §4.1.11: the refusal (12 unavailableCriticalExtension) for a request carrying
/// a critical control this server does not implement for `op`, or None.
///
/// `critical` lists the OIDs of the request's controls marked critical, read from the raw
/// message: the codec forgets the criticality of some controls it knows (Server Side
/// Sort, DirSync), and we implement neither, so a critical Sort must not be ignored.
pub fn unsupported_critical(op: &LdapOp, critical: &[String]) -> Option<DitError> {
    let supported = |oid: &str| match oid {
        oid::PAGED_RESULTS => matches!(op, LdapOp::SearchRequest(_)),
        oid::MANAGE_DSA_IT => true,
        // RFC 4370 §3: for the operations a connection's identity does not change.
        oid::PROXIED_AUTHZ => {
            !matches!(
                op,
                LdapOp::BindRequest(_) | LdapOp::UnbindRequest | LdapOp::AbandonRequest(_)
            ) && !is_starttls(op)
        }
        _ => false,
    };
    let oid = critical.iter().find(|oid| !supported(oid))?;
    Some(DitError::new(
        ldap3_proto::proto::LdapResultCode::UnavailableCriticalExtension,
        format!("critical control {oid} is not supported for this operation"),
    ))
}

fn is_starttls(op: &LdapOp) -> bool {
    matches!(op, LdapOp::ExtendedRequest(r) if r.name == oid::STARTTLS)
}

#[cfg(test)]
mod tests {
    use ldap3_proto::proto::{LdapResultCode, LdapSearchRequest, LdapSearchScope};

    use super::*;

    fn search() -> LdapOp {
        LdapOp::SearchRequest(LdapSearchRequest {
            base: String::new(),
            scope: LdapSearchScope::Base,
            aliases: ldap3_proto::proto::LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter: ldap3_proto::proto::LdapFilter::Present("objectClass".into()),
            attrs: Vec::new(),
        })
    }

    #[test]
    fn critical_controls_by_operation() {
        let oids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(unsupported_critical(&search(), &[]).is_none());
        assert!(unsupported_critical(&search(), &oids(oid::SUPPORTED_CONTROLS)).is_none());
        let sort = oids(&["1.2.840.113556.1.4.473"]);
        let refusal = unsupported_critical(&search(), &sort).unwrap();
        assert_eq!(refusal.code, LdapResultCode::UnavailableCriticalExtension);
        assert!(refusal.message.contains("1.2.840.113556.1.4.473"));
        // Paged results only make sense on a search.
        let paged = oids(&[oid::PAGED_RESULTS]);
        assert!(unsupported_critical(&LdapOp::DelRequest("cn=x".into()), &paged).is_some());
        let proxy = oids(&[oid::PROXIED_AUTHZ]);
        assert!(unsupported_critical(&search(), &proxy).is_none());
        let bind = LdapOp::BindRequest(ldap3_proto::proto::LdapBindRequest {
            version: 3,
            dn: String::new(),
            cred: ldap3_proto::proto::LdapBindCred::Simple(String::new()),
        });
        assert!(unsupported_critical(&bind, &proxy).is_some());
        let dsa = oids(&[oid::MANAGE_DSA_IT]);
        assert!(unsupported_critical(&LdapOp::DelRequest("cn=x".into()), &dsa).is_none());
    }
}
