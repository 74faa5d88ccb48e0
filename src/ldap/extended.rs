//! Extended operations: Who Am I (RFC 4532) and Password Modify (RFC 3062). StartTLS
//! changes the connection and is run by `server::conn`; any other OID is a protocolError.

use ldap3_proto::proto::{
    LdapExtendedRequest, LdapExtendedResponse, LdapOp, LdapPasswordModifyRequest, LdapResultCode,
    OID_PASSWORD_MODIFY, OID_WHOAMI,
};

use crate::directory::access::Rights;
use crate::directory::dn::Dn;
use crate::identity::password::{self, StoredPassword};
use crate::ldap::access::{self, Caller};
use crate::ldap::result::{LdapError, success};
use crate::ldap::{OpContext, reply};
use crate::ldap::{ber, token, write};
use crate::store::DirectoryRead;

pub const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    OID_WHOAMI,
    OID_PASSWORD_MODIFY,
    OID_STARTTLS,
    token::OID_GENERATE,
    token::OID_ROTATE,
    OID_THROTTLED,
    OID_BACKUP,
];

/// `TesseraRoot.4.4`: write a consistent copy of the store to a new file on the server's
/// machine. Local administrators on the LDAPI socket only (a network client may not make
/// the server write files). Request value: the absolute path; response value: the number
/// of entries copied, as text.
pub const OID_BACKUP: &str = "2.25.235497813471364094925541187040296631981.4.4";

/// `TesseraRoot.4.3`: what bind throttling is slowing down now (administrators only). No
/// request value; the response value is UTF-8 lines `account TAB source TAB failures TAB
/// held-until` (generalizedTime), an empty account standing for a whole source.
pub const OID_THROTTLED: &str = "2.25.235497813471364094925541187040296631981.4.3";

const GENERATED_PASSWORD_LEN: usize = 20;

pub async fn extended(ctx: &OpContext, req: &LdapExtendedRequest) {
    let request = LdapOp::ExtendedRequest(req.clone());
    let result = match req.name.as_str() {
        OID_WHOAMI => whoami(ctx).await,
        OID_PASSWORD_MODIFY => password_modify(ctx, req).await,
        token::OID_GENERATE => {
            token::generate(&ctx.state, &ctx.session.principal, req.value.as_deref())
                .await
                .map(Some)
        }
        token::OID_ROTATE => {
            token::rotate(&ctx.state, &ctx.session.principal, req.value.as_deref())
                .await
                .map(Some)
        }
        OID_THROTTLED => throttled(ctx).await,
        OID_BACKUP => backup(ctx, req.value.as_deref()).await,
        OID_STARTTLS => Err(LdapError::new(
            LdapResultCode::OperationsError,
            "StartTLS cannot be processed now",
        )),
        other => Err(LdapError::protocol(format!(
            "unsupported extended operation {other}"
        ))),
    };
    match result {
        Ok(value) => {
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

async fn current_caller(ctx: &OpContext) -> Result<Caller, LdapError> {
    let principal = ctx.session.principal.clone();
    let policy = access::Policy::of(&ctx.state);
    ctx.state
        .store
        .read_blocking(move |r| Ok::<_, LdapError>(access::caller(r, &principal, &policy)?))
}

async fn backup(ctx: &OpContext, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, LdapError> {
    let local_admin = matches!(
        ctx.session.principal,
        crate::ldap::session::Principal::Local { admin: true, .. }
    );
    if !local_admin {
        return Err(LdapError::insufficient_access());
    }
    let path = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .ok_or_else(|| LdapError::protocol("a backup needs an absolute file path"))?;
    let store = ctx.state.store.clone();
    let target = path.clone();
    let copied = tokio::task::spawn_blocking(move || store.backup_to(&target))
        .await
        .map_err(|e| LdapError::other(e.to_string()))?
        .map_err(|e| LdapError::unwilling(e.to_string()))?;
    tracing::info!(event = "backup", path = %path.display(), entries = copied);
    Ok(Some(copied.to_string().into_bytes()))
}

async fn throttled(ctx: &OpContext) -> Result<Option<Vec<u8>>, LdapError> {
    let caller = current_caller(ctx).await?;
    caller.require_bound()?;
    if !caller.is_admin() {
        return Err(LdapError::insufficient_access());
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

async fn whoami(ctx: &OpContext) -> Result<Option<Vec<u8>>, LdapError> {
    let caller = current_caller(ctx).await?;
    Ok(Some(match caller.dn() {
        Some(dn) => format!("dn:{dn}").into_bytes(),
        None => Vec::new(),
    }))
}

async fn password_modify(
    ctx: &OpContext,
    req: &LdapExtendedRequest,
) -> Result<Option<Vec<u8>>, LdapError> {
    let state = &ctx.state;
    // `ldappasswd` with no arguments sends no request value at all.
    let parsed = match &req.value {
        None => LdapPasswordModifyRequest {
            user_identity: None,
            old_password: None,
            new_password: None,
        },
        Some(_) => LdapPasswordModifyRequest::try_from(req)
            .map_err(|_| LdapError::protocol("malformed password modify request"))?,
    };
    if state.config.security.require_tls_for_bind && !ctx.session.transport.is_protected() {
        return Err(LdapError::new(
            LdapResultCode::ConfidentialityRequired,
            "password changes require a TLS or LDAPI connection",
        ));
    }
    let caller = current_caller(ctx).await?;
    caller.require_not_read_only()?;
    let Some(caller_dn) = caller.dn().cloned() else {
        return Err(LdapError::unwilling(
            "only authenticated users may change passwords",
        ));
    };
    let target = match parsed.user_identity.as_deref() {
        Some(id) => Dn::parse(id.strip_prefix("dn:").unwrap_or(id))?,
        None => caller_dn.clone(),
    };
    // Checked before the old password is verified, so this is no oracle for others'.
    let allowed = {
        let (caller, target) = (caller.clone(), target.clone());
        state
            .store
            .read(move |r| Ok::<_, LdapError>(may_set_password(r, &caller, &target)?))
            .await?
    };
    if !allowed {
        return Err(LdapError::insufficient_access());
    }
    let (new_password, generated) = match parsed.new_password {
        Some(p) if !p.is_empty() => (p, false),
        _ => (password::generate(GENERATED_PASSWORD_LEN), true),
    };
    let old_password = parsed.old_password;
    let hashed = write::hash_one(state, new_password.as_bytes().to_vec()).await?;

    let principal = ctx.session.principal.clone();
    let policy = access::Policy::of(state);
    let hashers = state.hashers.clone();
    let schema = state.schema.clone();
    // Verify the old password (argon2) on the hashing pool, before the write.
    if let Some(old) = old_password {
        let stored = state
            .store
            .read({
                let target = target.clone();
                move |r| {
                    Ok::<_, LdapError>(
                        r.entry_by_dn(&target)?
                            .map(|(_, e)| e.values("userPassword").to_vec()),
                    )
                }
            })
            .await?
            .unwrap_or_default();
        let ok = hashers
            .run(move |memory| {
                stored
                    .iter()
                    .filter_map(|v| StoredPassword::parse(v))
                    .any(|p| p.verify_in(old.as_bytes(), memory))
            })
            .await
            .map_err(write::hashers_failed)?;
        if !ok {
            return Err(LdapError::invalid_credentials());
        }
    }
    state
        .store
        .write(move |w| {
            let caller = access::caller(w, &principal, &policy)?;
            if caller.is_read_only() || !may_set_password(w, &caller, &target)? {
                return Err(LdapError::insufficient_access());
            }
            let Some((id, old)) = w.entry_by_dn(&target)? else {
                return Err(LdapError::no_such_object(String::new()));
            };
            if !write::is_a(&schema, &old, "person")
                && !write::is_a(&schema, &old, "simpleSecurityObject")
            {
                return Err(LdapError::unwilling("this entry cannot have a password"));
            }
            let mut entry = old.clone();
            entry.set("userPassword", vec![hashed.into_bytes()]);
            let actor = caller.dn().map(ToString::to_string).unwrap_or_default();
            write::stamp_modified(&mut entry, &actor, &write::now_generalized());
            w.replace(id, &old, &entry)?;
            tracing::info!(dn = %entry.dn, actor = %actor, "password changed");
            Ok(())
        })
        .await?;
    Ok(generated.then(|| gen_passwd_value(&new_password)))
}

/// Everyone may set their own password; others' takes the reset-password right over them.
fn may_set_password(
    r: &impl DirectoryRead,
    caller: &Caller,
    target: &Dn,
) -> Result<bool, crate::store::StoreError> {
    if caller.dn() == Some(target) || caller.is_admin() {
        return Ok(true);
    }
    let Some((_, entry)) = access::visible(r, caller, target)? else {
        return Ok(false);
    };
    let entry = caller.decidable(r, &entry)?;
    Ok(caller.may(Rights::RESET_PASSWORD, &entry))
}

/// `PasswdModifyResponseValue ::= SEQUENCE { genPasswd [0] OCTET STRING OPTIONAL }`
fn gen_passwd_value(password: &str) -> Vec<u8> {
    ber::write(0x30, &ber::write(0x80, password.as_bytes()))
}
