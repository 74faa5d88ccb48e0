//! The admin commands: people, groups, service accounts and their tokens, managed through
//! the running server over LDAP.
//!
//! By default they connect to the LDAPI socket as the local administrator; with `-H
//! ldaps://…` they bind as `--name` (a person id or DN, password from `TESSERA_PASSWORD`
//! or a prompt) or with a token from `TESSERA_TOKEN`. Every rule is the server's: these
//! functions only build requests and shape answers, so an admin sees exactly what a
//! delegated manager with `ldapmodify` would.

pub mod client;
pub mod console;
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
    /// A refusal by the server: what was refused and why, then the LDAP code in brackets.
    #[error("{message} [{} ({})]", code_name(.code), .code.clone() as i64)]
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

impl AdminError {
    /// The LDAP result code, for a refusal by the server.
    pub fn code(&self) -> Option<LdapResultCode> {
        match self {
            AdminError::Ldap { code, .. } => Some(code.clone()),
            _ => None,
        }
    }

    /// Say in people's words what a refusal with `code` was about; other errors pass.
    pub fn explain(self, code: LdapResultCode, text: impl FnOnce() -> String) -> AdminError {
        match self {
            AdminError::Ldap { code: c, .. } if c == code => AdminError::Ldap {
                code: c,
                message: text(),
            },
            other => other,
        }
    }

    /// A missing entry, named: "no person 'bob' (uid=bob,ou=people,...)".
    pub fn missing(self, kind: &str, name: &str, dn: &Dn) -> AdminError {
        self.explain(LdapResultCode::NoSuchObject, || {
            format!("no {kind} '{name}' ({dn})")
        })
    }
}

/// A person id is a login name, by the server's own rule (`dit::entry::check_login_name`,
/// which it applies to every posixAccount): said here before anything is sent, with an
/// example and where the full name goes.
pub fn check_person_id(id: &str) -> Result<(), AdminError> {
    crate::dit::entry::check_login_name(id).map_err(|why| {
        AdminError::Usage(format!(
            "'{id}' is not a valid person id: {} (e.g. bob or bob.smith); the full name is \
             the next argument",
            why.split_once(": ").map_or(why.as_str(), |(_, rule)| rule)
        ))
    })
}

/// Check an expiry (an RFC 3339 time, a duration or `never`) before sending it, so a
/// mistake is explained here with an example that is in the future.
pub fn check_expiry(what: &str, text: &str, allow_never: bool) -> Result<(), AdminError> {
    use crate::directory::time::{Expiry, parse_expiry};
    use time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    if let Ok(t) = time::OffsetDateTime::parse(text.trim(), &Rfc3339)
        && t <= now
    {
        return Err(AdminError::Usage(format!(
            "{what} '{text}' is in the past: give a later time or a duration such as 90d"
        )));
    }
    let example = (now + time::Duration::days(90))
        .replace_time(time::Time::MIDNIGHT)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "2030-01-01T00:00:00Z".into());
    let never = if allow_never { " or never" } else { "" };
    match parse_expiry(text, now) {
        Ok(Expiry::Never) if !allow_never => Err(AdminError::Usage(format!(
            "{what} cannot be 'never' here; leave it unset instead"
        ))),
        Ok(_) => Ok(()),
        Err(_) => Err(AdminError::Usage(format!(
            "{what} '{text}' is not understood: use an RFC 3339 time (e.g. {example}), a duration (30m, 12h, 90d){never}"
        ))),
    }
}

/// A duration option (`--overlap 1h`), checked before it is sent.
pub fn check_duration(what: &str, text: &str) -> Result<(), AdminError> {
    match crate::directory::time::parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(()),
        _ => Err(AdminError::Usage(format!(
            "{what} '{text}' is not a duration: use e.g. 30m, 12h or 90d"
        ))),
    }
}

/// An LDAP generalizedTime as RFC 3339 (to the second), for people; text that is not one
/// is shown as it is.
pub fn time_text(generalized: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    match crate::directory::time::parse_generalized(generalized) {
        Some(t) => t
            .replace_nanosecond(0)
            .unwrap_or(t)
            .format(&Rfc3339)
            .unwrap_or_else(|_| generalized.to_string()),
        None => generalized.to_string(),
    }
}

/// Attributes holding generalizedTime that `render` shows as RFC 3339.
const TIME_ATTRIBUTES: &[&str] = &[
    "createTimestamp",
    "modifyTimestamp",
    "accountExpires",
    "tokenExpires",
    "tokenLastUsed",
    "tokenExposed",
    "pwdChangedTime",
];

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

/// Render entries as `dn:` then `attr: value` lines, LDIF-like; times as RFC 3339.
pub fn render(entries: &[ldap3_proto::proto::LdapSearchResultEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!("dn: {}\n", e.dn));
        for a in &e.attributes {
            let is_time = TIME_ATTRIBUTES
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&a.atype));
            for v in &a.vals {
                match std::str::from_utf8(v) {
                    Ok(text) if is_time => {
                        out.push_str(&format!("{}: {}\n", a.atype, time_text(text)))
                    }
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
    // The codec spells one variant its own way; people read RFC 4511's names.
    let debug = format!("{code:?}").replace("Insufficent", "Insufficient");
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
            "entry already exists [entryAlreadyExists (68)]"
        );
        let dn = Dn::parse("uid=bob,ou=people,dc=example,dc=com").unwrap();
        let missing = AdminError::Ldap {
            code: LdapResultCode::NoSuchObject,
            message: "no such object".into(),
        }
        .missing("person", "bob", &dn);
        assert_eq!(
            missing.to_string(),
            "no person 'bob' (uid=bob,ou=people,dc=example,dc=com) [noSuchObject (32)]"
        );
    }

    #[test]
    fn person_ids_are_login_names() {
        for good in [
            "alice",
            "bob.smith",
            "_svc",
            "a-1",
            "ws01$",
            &"x".repeat(32),
        ] {
            assert!(check_person_id(good).is_ok(), "{good}");
        }
        for bad in [
            "Bob Smith",
            "Bob",
            "1bob",
            "",
            "bob smith",
            "bob@x",
            "$",
            "bob$x",
            "-bob",
            &"x".repeat(33),
        ] {
            let err = check_person_id(bad).unwrap_err().to_string();
            assert!(
                err.contains("login name") && err.contains("lowercase"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn expiries_are_checked_with_a_future_example() {
        assert!(check_expiry("expiry", "90d", true).is_ok());
        assert!(check_expiry("expiry", "never", true).is_ok());
        assert!(check_expiry("--expires", "never", false).is_err());
        let err = check_expiry("expiry", "2001-01-01T00:00:00Z", true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("in the past"), "{err}");
        let err = check_expiry("expiry", "tomorrow", true)
            .unwrap_err()
            .to_string();
        let year: i32 = err
            .split("e.g. ")
            .nth(1)
            .and_then(|t| t.get(..4))
            .and_then(|y| y.parse().ok())
            .unwrap();
        assert!(year >= time::OffsetDateTime::now_utc().year(), "{err}");
        assert!(!err.contains("protocolError"), "{err}");
        assert_eq!(time_text("20271207112303.402978Z"), "2027-12-07T11:23:03Z");
        assert_eq!(time_text("never"), "never");
    }
}
