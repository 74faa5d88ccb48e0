//! `tessera console sign-in-link`: a one-time link into the web console for the local
//! administrator, who has no password, minted by the running server over LDAPI.

use crate::admin::AdminError;
use crate::admin::client::Client;
use crate::config::{Config, ListenAddr};
use crate::ldap::oid;

/// A sign-in link's secret, and when it lapses (RFC 3339).
pub struct SignInLink {
    pub secret: String,
    pub expires: String,
}

impl std::fmt::Debug for SignInLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLink")
            .field("secret", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// The page a sign-in link opens; the secret follows in the fragment.
pub const SIGN_IN_PATH: &str = "/console/sign-in/link";

pub async fn sign_in_link(client: &mut Client) -> Result<SignInLink, AdminError> {
    let value = client
        .extended(oid::CONSOLE_SIGN_IN, None)
        .await?
        .unwrap_or_default();
    let text = String::from_utf8(value)
        .map_err(|_| AdminError::Protocol("the sign-in link is not UTF-8".into()))?;
    let (secret, expires) = text
        .split_once('\t')
        .ok_or_else(|| AdminError::Protocol("malformed sign-in link answer".into()))?;
    Ok(SignInLink {
        secret: secret.to_string(),
        expires: expires.to_string(),
    })
}

/// Where browsers reach the console: `console.url`, else made from `listen.https`
/// (localhost for a loopback or wildcard address).
pub fn console_url(config: &Config) -> Result<String, AdminError> {
    if let Some(url) = &config.console.url {
        return Ok(url.clone());
    }
    let Some(listen) = &config.listen.https else {
        return Err(AdminError::Usage(
            "the console is served on listen.https, which is not set".into(),
        ));
    };
    Ok(match listen {
        ListenAddr::Ip(addr) if addr.ip().is_loopback() || addr.ip().is_unspecified() => {
            format!("https://localhost:{}", addr.port())
        }
        ListenAddr::Ip(addr) => format!("https://{addr}"),
        ListenAddr::Host { name, port } => format!("https://{name}:{port}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_comes_from_the_config() {
        let url = |toml: &str| console_url(&Config::parse(toml).unwrap()).unwrap();
        assert_eq!(url(""), "https://localhost:8443");
        assert_eq!(
            url("[listen]\nhttps = \"0.0.0.0:9443\""),
            "https://localhost:9443"
        );
        assert_eq!(
            url("[listen]\nhttps = \"192.0.2.7:8443\""),
            "https://192.0.2.7:8443"
        );
        assert_eq!(
            url("[console]\nurl = \"https://ldap.example.com:8443/\""),
            "https://ldap.example.com:8443"
        );
        assert!(Config::parse("[console]\nurl = \"http://x\"").is_err());
    }
}
