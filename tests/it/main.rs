//! Integration tests: a real Tessera server started in-process on 127.0.0.1:0 with its own
//! temporary data directory, driven by the `ldap3` client crate over LDAPS, StartTLS and
//! LDAPI, and by raw bytes where a client library would refuse to send them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod bind;
mod certs;
mod cli;
mod cluster;
mod console;
mod console_escalation;
mod db;
mod escalation;
mod extended;
mod http;
mod http_escalation;
mod limits;
mod matrix;
mod mtls;
mod raw;
mod roles;
mod search;
mod throttle;
mod tls;
mod tokens;
mod write;

use std::collections::HashSet;
use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use tempfile::TempDir;
use tessera::config::Config;
use tessera::server::{self, Running};

pub const SUFFIX: &str = "dc=example,dc=com";
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";

pub struct TestServer {
    pub running: Option<Running>,
    pub dir: TempDir,
    /// Trusts only the server's generated CA: full verification.
    pub tls: Arc<rustls::ClientConfig>,
}

/// How to start a test server, beyond the test defaults.
pub struct Setup<'a> {
    /// Top-level keys (`schema_dir = ...`), placed before any table.
    pub top: &'a str,
    /// The LDAPS listener address.
    pub ldaps: &'a str,
    /// Tables appended to the test defaults (`[limits]` ...).
    pub extra: &'a str,
    /// LDIF bulk-loaded with the offline importer before the server starts.
    pub ldif: Option<&'a str>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            top: "",
            ldaps: "127.0.0.1:0",
            extra: "",
            ldif: None,
        }
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with("").await
    }

    /// Start with extra TOML appended to the test defaults.
    pub async fn start_with(extra: &str) -> TestServer {
        TestServer::start_with_ldif(extra, None).await
    }

    /// Start after bulk-loading `ldif` with the offline importer (fast, for big trees).
    pub async fn start_with_ldif(extra: &str, ldif: Option<&str>) -> TestServer {
        TestServer::start_setup(Setup {
            extra,
            ldif,
            ..Setup::default()
        })
        .await
    }

    pub async fn start_setup(setup: Setup<'_>) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            r#"
data_dir = "{data}"
{top}
[listen]
ldaps = "{ldaps}"
ldap = "127.0.0.1:0"
https = "127.0.0.1:0"
[argon2]
memory_kib = 64
iterations = 1
parallelism = 1
{extra}
"#,
            data = dir.path().join("data").display(),
            top = setup.top,
            ldaps = setup.ldaps,
            extra = setup.extra,
        );
        let config = Config::parse(&toml).unwrap();
        if let Some(ldif) = setup.ldif {
            let file = dir.path().join("seed.ldif");
            std::fs::write(&file, ldif).unwrap();
            tessera::db::import(&config, &file, &Default::default()).unwrap();
        }
        let running = server::start(config).await.unwrap();
        let tls = client_tls(running.ca.as_ref().unwrap());
        TestServer {
            running: Some(running),
            dir,
            tls,
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://localhost:{}", self.running().ldaps.unwrap().port())
    }

    pub fn ldap_url(&self) -> String {
        format!("ldap://localhost:{}", self.running().ldap.unwrap().port())
    }

    /// An HTTPS client of the API listener, verifying the server against its CA.
    pub fn http(&self) -> http::Client {
        http::Client::new(self.running().https.unwrap(), self.tls.clone())
    }

    pub fn ldapi_url(&self) -> String {
        let path = self.running().ldapi.as_ref().unwrap().display().to_string();
        format!("ldapi://{}", path.replace('/', "%2F"))
    }

    fn settings(&self) -> LdapConnSettings {
        LdapConnSettings::new().set_config(self.tls.clone())
    }

    async fn connect_url(&self, url: &str, settings: LdapConnSettings) -> Ldap {
        let (conn, ldap) = LdapConnAsync::with_settings(settings, url).await.unwrap();
        ldap3::drive!(conn);
        ldap
    }

    /// An anonymous LDAPS connection with full certificate verification.
    pub async fn ldaps(&self) -> Ldap {
        self.connect_url(&self.ldaps_url(), self.settings()).await
    }

    /// A plain LDAP connection (no TLS).
    pub async fn plain(&self) -> Ldap {
        self.connect_url(&self.ldap_url(), self.settings()).await
    }

    /// An LDAP connection upgraded with StartTLS.
    pub async fn starttls(&self) -> Ldap {
        self.connect_url(&self.ldap_url(), self.settings().set_starttls(true))
            .await
    }

    /// The local administrator: SASL EXTERNAL on the LDAPI socket.
    pub async fn admin(&self) -> Ldap {
        let mut ldap = self
            .connect_url(&self.ldapi_url(), LdapConnSettings::new())
            .await;
        ldap.sasl_external_bind().await.unwrap().success().unwrap();
        ldap
    }

    /// An LDAPS connection bound as `dn`.
    pub async fn bound(&self, dn: &str, password: &str) -> Ldap {
        let mut ldap = self.ldaps().await;
        ldap.simple_bind(dn, password)
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap
    }

    /// Shut down gracefully; the data directory lives on in the returned handle.
    pub async fn stop(mut self) -> TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.dir
    }
}

/// A temporary directory only its owner may enter, as data directories must be.
pub fn private_tempdir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    private_dir(dir.path());
    dir
}

/// Create `path` (if missing) with owner-only access.
pub fn private_dir(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

pub fn client_tls(ca: &std::path::Path) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// LDIF for `n` people `bulk0..` without passwords.
pub fn bulk_people(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "dn: uid=bulk{i},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: bulk{i}\ncn: Bulk {i}\nsn: {i}\n\n"
            )
        })
        .collect()
}

/// LDIF for `n` people `big0..`, each with a `description` of `value_len` bytes: result
/// sets far larger than socket buffers, for clients that stop reading.
pub fn big_people(n: usize, value_len: usize) -> String {
    let value = "x".repeat(value_len);
    (0..n)
        .map(|i| {
            format!(
                "dn: uid=big{i},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: big{i}\ncn: Big {i}\nsn: {i}\ndescription: {value}\n\n"
            )
        })
        .collect()
}

/// The cookie of a search result's paged-results response control, if it has one.
pub fn paged_cookie(res: &ldap3::SearchResult) -> Option<Vec<u8>> {
    res.1.ctrls.iter().find_map(|c| match c.0 {
        Some(ldap3::controls::ControlType::PagedResults) => {
            Some(c.1.parse::<ldap3::controls::PagedResults>().cookie)
        }
        _ => None,
    })
}

pub fn person_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},{GROUPS}")
}

/// Add a person with a password (and POSIX attributes when `posix`).
pub async fn add_person(ldap: &mut Ldap, uid: &str, password: &str, posix: bool) {
    let mut classes = vec!["inetOrgPerson"];
    if posix {
        classes.push("posixAccount");
    }
    let cn = format!("{uid} Example");
    let attrs = vec![
        ("objectClass", classes.into_iter().collect::<HashSet<_>>()),
        ("uid", HashSet::from([uid])),
        ("cn", HashSet::from([cn.as_str()])),
        ("sn", HashSet::from(["Example"])),
        ("userPassword", HashSet::from([password])),
    ];
    ldap.add(&person_dn(uid), attrs)
        .await
        .unwrap()
        .success()
        .unwrap();
}

pub async fn add_group(ldap: &mut Ldap, cn: &str, members: &[&str], posix: bool) {
    let mut classes = vec!["groupOfNames"];
    if posix {
        classes.push("posixGroup");
    }
    let member_dns: Vec<String> = members.iter().map(|m| person_dn(m)).collect();
    let mut attrs = vec![
        ("objectClass", classes.into_iter().collect::<HashSet<_>>()),
        ("cn", HashSet::from([cn])),
    ];
    if !member_dns.is_empty() {
        attrs.push(("member", member_dns.iter().map(String::as_str).collect()));
    }
    ldap.add(&group_dn(cn), attrs)
        .await
        .unwrap()
        .success()
        .unwrap();
}

/// Make `member` a holder of the role `cn` (under ou=roles).
pub async fn grant(ldap: &mut Ldap, cn: &str, member: &str) {
    let role = format!("cn={cn},ou=roles,{SUFFIX}");
    ldap.modify(&role, vec![Mod::Add("member", HashSet::from([member]))])
        .await
        .unwrap()
        .success()
        .unwrap();
}

/// Take the role `cn` away from `member`.
pub async fn revoke(ldap: &mut Ldap, cn: &str, member: &str) {
    let role = format!("cn={cn},ou=roles,{SUFFIX}");
    ldap.modify(&role, vec![Mod::Delete("member", HashSet::from([member]))])
        .await
        .unwrap()
        .success()
        .unwrap();
}

pub async fn replace(ldap: &mut Ldap, dn: &str, attr: &str, values: &[&str]) -> u32 {
    let set: HashSet<&str> = values.iter().copied().collect();
    ldap.modify(dn, vec![Mod::Replace(attr, set)])
        .await
        .unwrap()
        .rc
}

/// Entries found by a search and the result code (entries sent before an error included).
pub async fn search(
    ldap: &mut Ldap,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
) -> (Vec<SearchEntry>, u32) {
    let result = ldap
        .search(base, scope, filter, attrs.to_vec())
        .await
        .unwrap();
    let rc = result.1.rc;
    (
        result.0.into_iter().map(SearchEntry::construct).collect(),
        rc,
    )
}

/// The connection's credentials lapsed (revoked, expired, deleted): its next operation
/// gets no answer but a Notice of Disconnection, and the connection is gone.
pub async fn expect_lapsed(ldap: &mut Ldap) {
    let next = ldap.extended(ldap3::exop::WhoAmI).await;
    assert!(next.is_err(), "an answer on a lapsed connection: {next:?}");
    let after = ldap.extended(ldap3::exop::WhoAmI).await;
    assert!(after.is_err(), "the connection is closed: {after:?}");
}

pub async fn whoami(ldap: &mut Ldap) -> String {
    let (exop, res) = ldap
        .extended(ldap3::exop::WhoAmI)
        .await
        .unwrap()
        .success()
        .unwrap();
    let _ = res;
    String::from_utf8(exop.val.unwrap_or_default()).unwrap()
}
