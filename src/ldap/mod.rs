//! LDAP semantics: one module per operation, and `dispatch`, the one match on `LdapOp`.
//!
//! The connection task (`server::conn`) decodes messages and calls `dispatch` for each; it
//! runs binds, StartTLS, Abandon and Unbind itself in order, because they change the
//! connection, and spawns every other operation so several can be in flight. Operations
//! send their responses through `OpContext::out` with the request's msgid. No sockets
//! here and no redb: the store is reached through `crate::store`.

pub mod access;
pub mod add;
pub mod ber;
pub mod bind;
pub mod bootstrap;
pub mod compare;
pub mod delete;
pub mod extended;
pub mod modify;
pub mod modify_dn;
pub mod proxied;
pub mod result;
pub mod root_dse;
pub mod search;
pub mod session;
pub mod token;
pub mod write;

use std::sync::Arc;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::directory::schema::Schema;
use crate::directory::time::{Clock, generalized};
use crate::ldap::result::{LdapError, response_op, success};
use crate::ldap::session::Session;
use crate::store::Store;

/// Shared server state: cheap to clone, passed in, never global.
#[derive(Clone)]
pub struct State {
    pub config: Arc<Config>,
    pub schema: Arc<Schema>,
    pub store: Store,
    /// Caps concurrent argon2 work so a bind flood cannot starve other operations.
    pub hashers: Arc<Semaphore>,
    /// Key for paged-results cookie MACs; random per process.
    pub cookie_key: Arc<[u8; 32]>,
    /// A valid hash to verify against when a bind names no password-bearing entry, so
    /// that failures take the same time whatever the cause.
    pub decoy_hash: Arc<String>,
    /// The server's own process uid: always a local administrator on LDAPI.
    pub own_uid: u32,
    /// Policy time (token and account expiry); tests move it forward.
    pub clock: Clock,
    /// When each token's last use was written, to write it at most once a minute.
    pub token_uses: TokenUses,
}

pub type TokenUses = Arc<std::sync::Mutex<std::collections::HashMap<String, time::OffsetDateTime>>>;

impl State {
    /// Now, as generalizedTime, by the policy clock.
    pub fn now(&self) -> String {
        generalized(self.clock.now())
    }
}

/// What a spawned operation needs: a snapshot of the session and where to reply.
pub struct OpContext {
    pub state: State,
    pub session: Session,
    pub msgid: i32,
    pub controls: Vec<LdapControl>,
    pub out: mpsc::Sender<LdapMsg>,
    pub cancel: CancellationToken,
}

impl OpContext {
    /// Send one message for this operation; false if the connection is gone.
    pub async fn send(&self, op: LdapOp, ctrl: Vec<LdapControl>) -> bool {
        self.out
            .send(LdapMsg {
                msgid: self.msgid,
                op,
                ctrl,
            })
            .await
            .is_ok()
    }
}

/// Run one operation that does not change the connection, and send its response.
pub async fn dispatch(mut ctx: OpContext, op: LdapOp) {
    if let Err(e) = proxied::apply(&mut ctx).await {
        reply(&ctx, &op, Err(e), Vec::new()).await;
        return;
    }
    if let Some(oid) = unsupported_critical(&ctx.controls) {
        let err = LdapError::new(
            ldap3_proto::proto::LdapResultCode::UnavailableCriticalExtension,
            format!("critical control {oid} is not supported"),
        );
        reply(&ctx, &op, Err(err), Vec::new()).await;
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
        _ => Err(LdapError::protocol("unexpected operation")),
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
    result: Result<ldap3_proto::proto::LdapResult, LdapError>,
    ctrl: Vec<LdapControl>,
) {
    let res = result.unwrap_or_else(LdapError::into_result);
    if let Some(op) = response_op(request, res) {
        ctx.send(op, ctrl).await;
    }
}

/// Controls Tessera understands; any other one marked critical is refused with 12.
pub const SUPPORTED_CONTROLS: &[&str] = &[
    // RFC 2696 simple paged results
    "1.2.840.113556.1.4.319",
    // RFC 3296 ManageDsaIT: there are no referrals, so honouring it is a no-op
    "2.16.840.1.113730.3.4.2",
    // RFC 4370 proxied authorization
    proxied::OID_PROXIED_AUTHZ,
];

fn unsupported_critical(controls: &[LdapControl]) -> Option<String> {
    controls.iter().find_map(|c| match c {
        LdapControl::Unknown {
            oid,
            criticality: true,
            ..
        } => Some(oid.clone()),
        LdapControl::SyncRequest {
            criticality: true, ..
        } => Some("1.3.6.1.4.1.4203.1.9.1.1".into()),
        LdapControl::PasswordPolicyRequest { criticality: true } => {
            Some("1.3.6.1.4.1.42.2.27.8.5.1".into())
        }
        LdapControl::SearchOptions {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.1340".into()),
        LdapControl::ShowDeleted { criticality: true } => Some("1.2.840.113556.1.4.417".into()),
        LdapControl::SdFlags {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.801".into()),
        LdapControl::ExtendedDn {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.529".into()),
        // Sort and DirSync carry no criticality in the codec; we do not act on them.
        _ => None,
    })
}
