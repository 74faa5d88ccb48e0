//! Extended operations: Who Am I (RFC 4532), Password Modify (RFC 3062), and Tessera's
//! own (token generate and rotate, throttled binds, backup; see `oid`). Each decodes its
//! request value, calls the rules in `dit`, and encodes the response value. StartTLS
//! changes the connection and is run by `server::conn`; any other OID is a protocolError.

use ldap3_proto::proto::{
    LdapExtendedRequest, LdapExtendedResponse, LdapOp, LdapPasswordModifyRequest, LdapResultCode,
};

use crate::directory::dn::Dn;
use crate::directory::time::parse_duration;
use crate::dit::caller::{self, Caller, Principal};
use crate::dit::command::{Op, Outcome};
use crate::dit::credentials::Intent;
use crate::dit::token::{self, Fresh, Minted};
use crate::dit::{DitError, password};
use crate::identity::password::{self as hashing, StoredPassword};
use crate::ldap::result::success;
use crate::ldap::{OpContext, ber, oid, reply};
use crate::state::hashers_failed;
use crate::store::{DirectoryRead, StoreError};

const GENERATED_PASSWORD_LEN: usize = 20;

pub async fn extended(ctx: &OpContext, req: &LdapExtendedRequest) {
    let request = LdapOp::ExtendedRequest(req.clone());
    let value = req.value.as_deref();
    let result = match req.name.as_str() {
        oid::OID_WHOAMI => whoami(ctx).await,
        oid::OID_PASSWORD_MODIFY => password_modify(ctx, req).await,
        oid::TOKEN_GENERATE => generate(ctx, value).await.map(Some),
        oid::TOKEN_ROTATE => rotate(ctx, value).await.map(Some),
        oid::THROTTLED => throttled(ctx).await,
        oid::BACKUP => backup(ctx, value).await,
        oid::CLUSTER => cluster(ctx, value).await,
        oid::CONSOLE_SIGN_IN => sign_in_link(ctx),
        oid::STARTTLS => Err(DitError::new(
            LdapResultCode::OperationsError,
            "StartTLS cannot be processed now",
        )),
        other => Err(DitError::protocol(format!(
            "unsupported extended operation {other}"
        ))),
    };
    match result {
        Ok(value) => {
            ctx.state.metrics.ldap_operation(
                "extended",
                &LdapResultCode::Success,
                ctx.started.elapsed(),
            );
            let op = LdapOp::ExtendedResponse(LdapExtendedResponse {
                res: success(),
                name: None,
                value,
            });
            ctx.send(op, Vec::new()).await;
        }
        Err(e) => reply(ctx, &request, Err(e), Vec::new()).await,
    }
}

async fn current_caller(ctx: &OpContext) -> Result<Caller, DitError> {
    let principal = ctx.session.principal.clone();
    let policy = ctx.policy();
    ctx.state
        .store
        .read_inline(move |r| caller::caller(r, &principal, &policy))
}

/// What a cluster request asks for (see `oid::CLUSTER`).
#[derive(serde::Deserialize)]
struct ClusterRequest {
    op: String,
    id: Option<u64>,
    address: Option<String>,
}

async fn cluster(ctx: &OpContext, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, DitError> {
    use crate::cluster::network::Manage;
    let local_admin = matches!(ctx.session.principal, Principal::Local { admin: true, .. });
    if !local_admin {
        return Err(DitError::insufficient_access());
    }
    let Some(cluster) = &ctx.state.cluster else {
        return Err(DitError::unwilling(
            "this server is not a cluster member: configure [cluster] and restart it",
        ));
    };
    let req: ClusterRequest = serde_json::from_slice(value.unwrap_or_default())
        .map_err(|e| DitError::protocol(format!("malformed cluster request: {e}")))?;
    let id = || {
        req.id
            .filter(|id| *id > 0)
            .ok_or_else(|| DitError::protocol("the request needs a node id (1 or more)"))
    };
    let answer = match req.op.as_str() {
        "status" => Ok(cluster.status().to_string()),
        "init" => cluster.init().await,
        "compact" => cluster.compact().await.map(|()| "snapshot taken".into()),
        "add-replica" => {
            let addr = req
                .address
                .clone()
                .filter(|a| a.contains(':'))
                .ok_or_else(|| DitError::protocol("the request needs the node's host:port"))?;
            cluster.manage(Manage::AddReplica { id: id()?, addr }).await
        }
        "promote" => cluster.manage(Manage::Promote { id: id()? }).await,
        "remove" => cluster.manage(Manage::Remove { id: id()? }).await,
        other => {
            return Err(DitError::protocol(format!(
                "unknown cluster operation '{other}'"
            )));
        }
    };
    match answer {
        Ok(text) => {
            if req.op != "status" {
                tracing::info!(event = "cluster-change", op = %req.op, outcome = %text);
            }
            Ok(Some(text.into_bytes()))
        }
        Err(why) => Err(DitError::unwilling(why)),
    }
}

async fn backup(ctx: &OpContext, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, DitError> {
    let local_admin = matches!(ctx.session.principal, Principal::Local { admin: true, .. });
    if !local_admin {
        return Err(DitError::insufficient_access());
    }
    let path = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .ok_or_else(|| DitError::protocol("a backup needs an absolute file path"))?;
    let store = ctx.state.store.clone();
    let target = path.clone();
    let (written, copied) = tokio::task::spawn_blocking(move || store.backup_to(&target))
        .await
        .map_err(|e| {
            tracing::error!(event = "panic", error = %e, "a backup task failed");
            DitError::other("internal server error")
        })?
        .map_err(|e| match e {
            // Only a local administrator gets here: the file's own problem is theirs to see.
            StoreError::Refused(_) | StoreError::File { .. } => DitError::unwilling(e.to_string()),
            other => other.into(),
        })?;
    tracing::info!(event = "backup", path = %written.display(), entries = copied);
    Ok(Some(
        format!("{copied}\t{}", written.display()).into_bytes(),
    ))
}

/// A one-time sign-in link for the web console (`oid::CONSOLE_SIGN_IN`): local
/// administrators only, since only they have no password to sign in with. The secret is
/// kept as a hash, in memory, and never logged.
fn sign_in_link(ctx: &OpContext) -> Result<Option<Vec<u8>>, DitError> {
    let principal = &ctx.session.principal;
    if !matches!(principal, Principal::Local { admin: true, .. }) {
        return Err(DitError::insufficient_access());
    }
    let state = &ctx.state;
    if !state.config.console.enabled {
        return Err(DitError::unwilling(
            "the web console is turned off (console.enabled = false)",
        ));
    }
    let now = state.clock.now();
    let lifetime = crate::dit::credentials::to_time(state.config.console.sign_in_link_lifetime);
    let issued = state
        .sign_in_links
        .issue(principal.clone(), now, lifetime)
        .map_err(|e| {
            tracing::error!(error = %e, "issuing a sign-in link failed");
            DitError::other("the sign-in link could not be made")
        })?;
    tracing::info!(
        event = "console-sign-in-link",
        actor = %principal.dn().map(ToString::to_string).unwrap_or_default(),
        "a one-time console sign-in link was issued"
    );
    let expires = crate::directory::time::rfc3339(issued.expires);
    Ok(Some(format!("{}\t{expires}", issued.secret).into_bytes()))
}

async fn throttled(ctx: &OpContext) -> Result<Option<Vec<u8>>, DitError> {
    let caller = current_caller(ctx).await?;
    caller.require_bound()?;
    if !caller.is_admin() {
        return Err(DitError::insufficient_access());
    }
    let now = ctx.state.clock.now();
    let text: String = ctx
        .state
        .throttle
        .throttled(now)
        .iter()
        .map(|t| {
            let until = crate::directory::time::generalized(t.until);
            format!("{}\t{}\t{}\t{until}\n", t.account, t.source, t.failures)
        })
        .collect();
    Ok(Some(text.into_bytes()))
}

async fn whoami(ctx: &OpContext) -> Result<Option<Vec<u8>>, DitError> {
    let caller = current_caller(ctx).await?;
    Ok(Some(match caller.dn() {
        Some(dn) => format!("dn:{dn}").into_bytes(),
        None => Vec::new(),
    }))
}

async fn password_modify(
    ctx: &OpContext,
    req: &LdapExtendedRequest,
) -> Result<Option<Vec<u8>>, DitError> {
    let state = &ctx.state;
    // `ldappasswd` with no arguments sends no request value at all.
    let parsed = match &req.value {
        None => LdapPasswordModifyRequest {
            user_identity: None,
            old_password: None,
            new_password: None,
        },
        Some(_) => LdapPasswordModifyRequest::try_from(req)
            .map_err(|_| DitError::protocol("malformed password modify request"))?,
    };
    if state.config.security.require_tls_for_bind && !ctx.session.transport.is_protected() {
        return Err(DitError::new(
            LdapResultCode::ConfidentialityRequired,
            "password changes require a TLS or LDAPI connection",
        ));
    }
    let caller = current_caller(ctx).await?;
    caller.require_not_read_only()?;
    let Some(caller_dn) = caller.dn().cloned() else {
        return Err(DitError::unwilling(
            "only authenticated users may change passwords",
        ));
    };
    let target = match parsed.user_identity.as_deref() {
        Some(id) => Dn::parse(id.strip_prefix("dn:").unwrap_or(id))?,
        None => caller_dn.clone(),
    };
    // Checked before the old password is verified, so this is no oracle for others'.
    {
        let (caller, target, policy) = (caller.clone(), target.clone(), ctx.policy());
        state
            .store
            .read(move |r| password::require_may_set(r, &policy, &caller, &target))
            .await?;
    }
    let (new_password, generated) = match parsed.new_password {
        Some(p) if !p.is_empty() => (p, false),
        _ => (hashing::generate(GENERATED_PASSWORD_LEN), true),
    };
    let hashed = state
        .hash_password(new_password.as_bytes().to_vec())
        .await?;
    // Verify the old password (argon2) on the hashing pool, before the write.
    if let Some(old) = parsed.old_password {
        let stored = state
            .store
            .read({
                let target = target.clone();
                move |r| {
                    Ok::<_, DitError>(
                        r.entry_by_dn(&target)?
                            .map(|(_, e)| e.values("userPassword").to_vec()),
                    )
                }
            })
            .await?
            .unwrap_or_default();
        let ok = state
            .hashers
            .run(move |memory| {
                stored
                    .iter()
                    .filter_map(|v| StoredPassword::parse(v))
                    .any(|p| p.verify_in(old.as_bytes(), memory))
            })
            .await
            .map_err(hashers_failed)?;
        if !ok {
            return Err(DitError::invalid_credentials());
        }
    }
    let op = Op::SetPassword {
        dn: target.to_string(),
        hashed,
    };
    state.submit(ctx.command(op)).await?;
    Ok(generated.then(|| gen_passwd_value(&new_password)))
}

/// `PasswdModifyResponseValue ::= SEQUENCE { genPasswd [0] OCTET STRING OPTIONAL }`
fn gen_passwd_value(password: &str) -> Vec<u8> {
    ber::write(0x30, &ber::write(0x80, password.as_bytes()))
}

/// Token generation (`oid::TOKEN_GENERATE`): the response value.
async fn generate(ctx: &OpContext, value: Option<&[u8]>) -> Result<Vec<u8>, DitError> {
    let req = parse_generate(value.unwrap_or_default())
        .map_err(|why| DitError::protocol(format!("malformed token generation request: {why}")))?;
    let (fresh, secret) = Fresh::generate()?;
    // Recorded (never with the secret) by the rules, once committed.
    let command = ctx.command(Op::generate_token(&req, fresh));
    let Outcome::Issued(issued) = ctx.state.submit(command).await? else {
        return Err(DitError::other("token generation gave no token"));
    };
    let minted = Minted::new(issued, secret);
    Ok(minted_value(&minted))
}

/// Token rotation (`oid::TOKEN_ROTATE`): the response value.
async fn rotate(ctx: &OpContext, value: Option<&[u8]>) -> Result<Vec<u8>, DitError> {
    let malformed =
        |why: String| DitError::protocol(format!("malformed token rotation request: {why}"));
    let known = [(0x80, "account"), (0x81, "tokenId"), (0x82, "overlap")];
    let items = fields(value.unwrap_or_default(), &known).map_err(malformed)?;
    let field = |tag: u8| items.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
    let account = field(0x80).ok_or_else(|| malformed("the account [0] is missing".into()))?;
    let account = Dn::parse(account).map_err(|e| malformed(format!("account: {e}")))?;
    let token_id = field(0x81)
        .ok_or_else(|| malformed("the tokenId [1] is missing".into()))?
        .to_string();
    let overlap = match field(0x82) {
        Some(d) => parse_duration(d)
            .ok_or_else(|| malformed(format!("overlap '{d}' is not a duration (e.g. 24h)")))?,
        None => token::DEFAULT_OVERLAP,
    };
    let (fresh, secret) = Fresh::generate()?;
    let op = Op::RotateToken {
        account: account.to_string(),
        token_id: token_id.clone(),
        overlap_secs: overlap.as_secs(),
        fresh,
    };
    let Outcome::Rotated(rotated) = ctx.state.submit(ctx.command(op)).await? else {
        return Err(DitError::other("token rotation gave no token"));
    };
    let minted = Minted::new(rotated.issued, secret);
    Ok(minted_value(&minted))
}

/// The fields of a request value `SEQUENCE { [0] ..., [1] ..., ... }` of OCTET STRINGs, by
/// tag: each of `known` at most once, nothing else, every value UTF-8. The error says
/// what is wrong, for the client.
fn fields<'v>(value: &'v [u8], known: &[(u8, &str)]) -> Result<Vec<(u8, &'v str)>, String> {
    let items = ber::sequence(value).ok_or("the request value is not a BER SEQUENCE")?;
    let mut out: Vec<(u8, &str)> = Vec::with_capacity(items.len());
    for item in items {
        let Some((_, name)) = known.iter().find(|(tag, _)| *tag == item.tag) else {
            return Err(format!("unknown field [{}]", item.tag & 0x1f));
        };
        if out.iter().any(|(tag, _)| *tag == item.tag) {
            return Err(format!("field {name} is given more than once"));
        }
        let text =
            std::str::from_utf8(item.content).map_err(|_| format!("field {name} is not UTF-8"))?;
        out.push((item.tag, text));
    }
    Ok(out)
}

const GENERATE_FIELDS: &[(u8, &str)] = &[
    (0x80, "account"),
    (0x81, "label"),
    (0x82, "scope"),
    (0x83, "expires"),
    (0x84, "intent"),
    (0x85, "extendOnUse"),
];

/// The generate request's value, or what is wrong with it.
pub fn parse_generate(value: &[u8]) -> Result<token::Request, String> {
    let items = fields(value, GENERATE_FIELDS)?;
    let field = |tag: u8| items.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
    let account = field(0x80).ok_or("the account [0] is missing")?;
    let account = Dn::parse(account).map_err(|e| format!("account: {e}"))?;
    let label = field(0x81).ok_or("the label [1] is missing")?.to_string();
    let read_write = match field(0x82) {
        None => false,
        Some(s) if s.eq_ignore_ascii_case("read-only") => false,
        Some(s) if s.eq_ignore_ascii_case("read-write") => true,
        Some(s) => return Err(format!("scope '{s}' is not read-only or read-write")),
    };
    let intent = match field(0x84) {
        None => Intent::ApiToken,
        Some(s) => Intent::parse(s)
            .ok_or_else(|| format!("intent '{s}' is not api-token or app-password"))?,
    };
    let extend_on_use = match field(0x85) {
        None => None,
        Some(s) => Some(
            parse_duration(s)
                .ok_or_else(|| format!("extendOnUse '{s}' is not a duration (e.g. 30d)"))?
                .as_secs(),
        ),
    };
    Ok(token::Request {
        account,
        label,
        read_write,
        expires: field(0x83).map(str::to_string),
        intent,
        extend_on_use,
    })
}

/// `SEQUENCE { tokenId [0], token [1], expires [2] OPTIONAL }`
fn minted_value(minted: &Minted) -> Vec<u8> {
    let mut body = ber::write(0x80, minted.id.as_bytes());
    body.extend(ber::write(0x81, minted.token.as_bytes()));
    if let Some(e) = &minted.expires {
        body.extend(ber::write(0x82, e.as_bytes()));
    }
    ber::write(0x30, &body)
}
