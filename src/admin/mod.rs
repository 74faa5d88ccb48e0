//! The admin commands: people, groups, service accounts and their tokens, managed through
//! the running server over LDAP.
//!
//! By default they connect to the LDAPI socket as the local administrator; with `-H
//! ldaps://…` they bind as `--name` (a person id or DN, password from `TESSERA_PASSWORD`
//! or a prompt) or with a token from `TESSERA_TOKEN`. Every rule is the server's: these
//! functions only build requests and shape answers, so an admin sees exactly what a
//! delegated manager with `ldapmodify` would.

pub mod client;
pub mod group;
pub mod person;
pub mod role;
pub mod service_account;
pub mod throttle;

use std::path::PathBuf;

use ldap3_proto::proto::LdapResultCode;
use thiserror::Error;

use crate::admin::client::{Secret, Target};
use crate::config::Config;
use crate::directory::dn::{Dn, Rdn};

#[derive(Debug, Error)]
pub enum AdminError {
    #[error("cannot connect to {what}: {problem} (is `tessera serve` running?)")]
    Connect { what: String, problem: String },
    #[error("error: {} ({}): {message}", code_name(.code), .code.clone() as i64)]
    Ldap {
        code: LdapResultCode,
        message: String,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Usage(String),
    #[error("reading a password: {0}")]
    Prompt(std::io::Error),
}

/// How to reach the server and as whom, from the command line.
#[derive(Debug, Clone, Default)]
pub struct ConnectArgs {
    /// `ldapi://%2Fpath%2Fto.sock` or `ldaps://host:port`; default: the configured socket.
    pub url: Option<String>,
    /// Who to act as over LDAPS: a person id or a DN.
    pub name: Option<String>,
    /// CA to verify the server with; default `<data_dir>/tls/ca.pem`.
    pub ca: Option<PathBuf>,
}

/// Resolve the command-line connection options against the config.
pub fn target(config: &Config, args: &ConnectArgs) -> Result<Target, AdminError> {
    let Some(url) = args.url.as_deref() else {
        let socket = config.ldapi_path().ok_or_else(|| {
            AdminError::Usage("the LDAPI socket is disabled; use -H ldaps://…".into())
        })?;
        return Ok(Target::Local { socket });
    };
    if let Some(path) = url.strip_prefix("ldapi://") {
        return Ok(Target::Local {
            socket: PathBuf::from(percent_decode(path)),
        });
    }
    let Some(hostport) = url.strip_prefix("ldaps://") else {
        return Err(AdminError::Usage(format!(
            "{url}: use ldapi://… or ldaps://host:port"
        )));
    };
    let hostport = hostport.trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .map_err(|_| AdminError::Usage(format!("{url}: bad port")))?,
        ),
        None => (hostport.to_string(), 636),
    };
    let ca = args
        .ca
        .clone()
        .unwrap_or_else(|| config.data_dir.join("tls").join("ca.pem"));
    let (bind_dn, secret) = match std::env::var("TESSERA_TOKEN") {
        Ok(token) if !token.is_empty() => {
            // A token binds as a service account: a bare name is one of those.
            let dn = match &args.name {
                Some(n) if n.contains('=') => n.clone(),
                Some(n) => service_account::dn(&config.suffix, n).to_string(),
                None => "dn=token".to_string(),
            };
            (dn, token)
        }
        _ => {
            let name = args.name.as_deref().ok_or_else(|| {
                AdminError::Usage(
                    "over ldaps:// say who you are with --name (or set TESSERA_TOKEN)".into(),
                )
            })?;
            let password = match std::env::var("TESSERA_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => rpassword::prompt_password(format!("Password for {name}: "))
                    .map_err(AdminError::Prompt)?,
            };
            (member_dn(&config.suffix, name), password)
        }
    };
    Ok(Target::Remote {
        host,
        port,
        ca,
        bind_dn,
        secret: Secret(secret),
    })
}

/// A member argument: a person id or a DN.
pub fn member_dn(suffix: &Dn, member: &str) -> String {
    if member.contains('=') {
        member.to_string()
    } else {
        person::dn(suffix, member).to_string()
    }
}

pub(crate) fn container(suffix: &Dn, ou: &str) -> Dn {
    suffix.child(Rdn::single("ou", ou))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Render entries as `dn:` then `attr: value` lines, the way LDIF readers expect.
pub fn render(entries: &[ldap3_proto::proto::LdapSearchResultEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!("dn: {}\n", e.dn));
        for a in &e.attributes {
            for v in &a.vals {
                match std::str::from_utf8(v) {
                    Ok(text) => out.push_str(&format!("{}: {text}\n", a.atype)),
                    Err(_) => out.push_str(&format!("{}: <{} bytes>\n", a.atype, v.len())),
                }
            }
        }
        out.push('\n');
    }
    out
}

fn code_name(code: &LdapResultCode) -> String {
    let debug = format!("{code:?}");
    let mut chars = debug.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => debug,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldapi_urls_decode() {
        assert_eq!(percent_decode("%2Ftmp%2Fx%20y.sock"), "/tmp/x y.sock");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn error_names_the_code() {
        let e = AdminError::Ldap {
            code: LdapResultCode::EntryAlreadyExists,
            message: "entry already exists".into(),
        };
        assert_eq!(
            e.to_string(),
            "error: entryAlreadyExists (68): entry already exists"
        );
    }
}
