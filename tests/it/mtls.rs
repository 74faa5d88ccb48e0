//! Client certificates: SASL EXTERNAL over LDAPS and StartTLS binds as the entry named by
//! the certificate's subject, with that entry's rights; what it refuses (no certificate,
//! no such entry, not an account, an expired account, another authzid); certificates from
//! other CAs end the handshake; `client_auth = "required"`; the rootDSE advertising
//! EXTERNAL only where it can work; and the anonymous-bind switch (matrix row B2 is in
//! `matrix.rs`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope};
use ldap3_proto::proto::{LdapOp, LdapResultCode};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tempfile::TempDir;
use tokio::net::TcpStream;

use crate::raw::{Raw, message, tlv};
use crate::{Setup, TestServer, search, whoami};

const UID: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 1];
const DC: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 25];
/// rcgen keeps one value per attribute type in a subject, so no `DC=example, DC=com`:
/// these servers serve `o=example` (the interop suite covers repeated types with openssl).
const SUFFIX: &str = "o=example";
const PEOPLE: &str = "ou=people,o=example";

fn person_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

async fn add_person(ldap: &mut Ldap, uid: &str, password: &str) {
    let attrs = vec![
        ("objectClass", HashSet::from(["inetOrgPerson"])),
        ("uid", HashSet::from([uid])),
        ("cn", HashSet::from([uid])),
        ("sn", HashSet::from(["Example"])),
        ("userPassword", HashSet::from([password])),
    ];
    ldap.add(&person_dn(uid), attrs)
        .await
        .unwrap()
        .success()
        .unwrap();
}

async fn grant(ldap: &mut Ldap, role: &str, member: &str) {
    let role = format!("cn={role},ou=roles,{SUFFIX}");
    let add = ldap3::Mod::Add("member", HashSet::from([member]));
    ldap.modify(&role, vec![add])
        .await
        .unwrap()
        .success()
        .unwrap();
}

/// A CA that issues client certificates.
struct Pki {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A client's certificate chain and key.
#[derive(Clone)]
struct Client {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Pki {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate whose subject is the LDAP DN `dn` (written as in LDAP, least
    /// significant RDN first; the certificate holds it the X.509 way round).
    fn client(&self, dn: &str) -> Client {
        let mut name = DistinguishedName::new();
        for rdn in dn.split(',').rev() {
            let (attr, value) = rdn.split_once('=').unwrap();
            let (ty, value) = match attr.to_ascii_lowercase().as_str() {
                "cn" => (DnType::CommonName, DnValue::Utf8String(value.into())),
                "ou" => (
                    DnType::OrganizationalUnitName,
                    DnValue::Utf8String(value.into()),
                ),
                "o" => (DnType::OrganizationName, DnValue::Utf8String(value.into())),
                "uid" => (
                    DnType::CustomDnType(UID.to_vec()),
                    DnValue::Utf8String(value.into()),
                ),
                "dc" => (
                    DnType::CustomDnType(DC.to_vec()),
                    DnValue::Ia5String(value.try_into().unwrap()),
                ),
                other => panic!("no test mapping for {other}"),
            };
            name.push(ty, value);
        }
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = name;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Client {
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
        }
    }
}

/// A server trusting `pki` for client certificates, `client_auth` as given; the CA file
/// lives in the returned directory.
async fn server(pki: &Pki, client_auth: &str) -> (TestServer, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("client-ca.pem");
    std::fs::write(&ca, &pki.pem).unwrap();
    let server = TestServer::start_setup(Setup {
        top: &format!("suffix = \"{SUFFIX}\""),
        extra: &tls_table(&ca, client_auth),
        ..Setup::default()
    })
    .await;
    (server, dir)
}

fn tls_table(ca: &Path, client_auth: &str) -> String {
    format!(
        "[tls]\nclient_ca = \"{}\"\nclient_auth = \"{client_auth}\"\n",
        ca.display()
    )
}

/// A client TLS config trusting the server's CA and presenting `client`, if any.
fn client_config(server: &TestServer, client: Option<&Client>) -> Arc<rustls::ClientConfig> {
    let ca: &PathBuf = server.running().ca.as_ref().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key.clone()));
            builder.with_client_auth_cert(c.chain.clone(), key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// An ldap3 connection over LDAPS (or StartTLS) presenting `client`; Err when the
/// handshake fails.
async fn connect(
    server: &TestServer,
    client: Option<&Client>,
    starttls: bool,
) -> Result<Ldap, ldap3::LdapError> {
    let settings = LdapConnSettings::new()
        .set_config(client_config(server, client))
        .set_starttls(starttls);
    let url = if starttls {
        server.ldap_url()
    } else {
        server.ldaps_url()
    };
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &url).await?;
    ldap3::drive!(conn);
    Ok(ldap)
}

/// The result code of a SASL EXTERNAL bind over LDAPS presenting `client`.
async fn external_rc(server: &TestServer, client: Option<&Client>) -> u32 {
    let mut ldap = connect(server, client, false).await.unwrap();
    ldap.sasl_external_bind().await.unwrap().rc
}

/// Does a connection presenting `client` get an operation answered? With TLS 1.3 the
/// client finishes its side of the handshake before the server has judged its
/// certificate, so a refusal may only show on the first operation.
async fn served(server: &TestServer, client: Option<&Client>, starttls: bool) -> bool {
    let Ok(mut ldap) = connect(server, client, starttls).await else {
        return false;
    };
    let answered =
        tokio::time::timeout(Duration::from_secs(10), ldap.extended(ldap3::exop::WhoAmI))
            .await
            .expect("answered or closed, not hung");
    answered.is_ok()
}

fn mechanisms(entries: &[ldap3::SearchEntry]) -> Vec<String> {
    entries[0]
        .attrs
        .get("supportedSASLMechanisms")
        .cloned()
        .unwrap_or_default()
}

async fn root_mechanisms(ldap: &mut Ldap) -> Vec<String> {
    let (e, rc) = search(ldap, "", Scope::Base, "(objectClass=*)", &["+"]).await;
    assert_eq!(rc, 0);
    mechanisms(&e)
}

fn dns(entries: &[ldap3::SearchEntry]) -> HashSet<String> {
    entries.iter().map(|e| e.dn.to_ascii_lowercase()).collect()
}

#[tokio::test]
async fn external_binds_as_the_entry_the_certificate_names_with_its_rights() {
    let pki = Pki::new("client CA");
    let (server, _ca) = server(&pki, "optional").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice").await;
    add_person(&mut admin, "bob", "pw-bob").await;
    let alice = pki.client(&person_dn("alice"));

    let mut ldap = connect(&server, Some(&alice), false).await.unwrap();
    assert_eq!(root_mechanisms(&mut ldap).await, ["EXTERNAL"]);
    ldap.sasl_external_bind().await.unwrap().success().unwrap();
    assert_eq!(
        whoami(&mut ldap).await,
        format!("dn:{}", person_dn("alice"))
    );
    // Her own rights: without a role, her own entry and no one else's ...
    let people = "(objectClass=person)";
    let (e, rc) = search(&mut ldap, SUFFIX, Scope::Subtree, people, &["1.1"]).await;
    let only_alice = HashSet::from([person_dn("alice").to_ascii_lowercase()]);
    assert_eq!((dns(&e), rc), (only_alice, 0));
    // ... and with directory-readers, everyone's, on the same connection.
    grant(&mut admin, "directory-readers", &person_dn("alice")).await;
    let (e, rc) = search(&mut ldap, PEOPLE, Scope::Subtree, people, &["1.1"]).await;
    let both = HashSet::from([
        person_dn("alice").to_ascii_lowercase(),
        person_dn("bob").to_ascii_lowercase(),
    ]);
    assert_eq!((dns(&e), rc), (both.clone(), 0));

    // The same over StartTLS.
    let mut upgraded = connect(&server, Some(&alice), true).await.unwrap();
    upgraded
        .sasl_external_bind()
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(
        whoami(&mut upgraded).await,
        format!("dn:{}", person_dn("alice"))
    );

    // A certificate reload (SIGHUP) leaves client authentication in place.
    server.running().reload_tls().unwrap();
    assert_eq!(external_rc(&server, Some(&alice)).await, 0);

    // Without a certificate (optional): served as before, EXTERNAL neither listed nor
    // accepted.
    let mut anon = connect(&server, None, false).await.unwrap();
    assert!(root_mechanisms(&mut anon).await.is_empty());
    let res = anon.sasl_external_bind().await.unwrap();
    assert_eq!((res.rc, res.text.as_str()), (49, "no client certificate"));
    anon.simple_bind(&person_dn("bob"), "pw-bob")
        .await
        .unwrap()
        .success()
        .unwrap();
    // The plain port has no certificate to offer: refused as before.
    let mut plain = server.plain().await;
    assert!(root_mechanisms(&mut plain).await.is_empty());
    assert_eq!(plain.sasl_external_bind().await.unwrap().rc, 48);
    server.stop().await;
}

#[tokio::test]
async fn external_refuses_certificates_that_name_no_usable_account() {
    let pki = Pki::new("client CA");
    let (server, _ca) = server(&pki, "optional").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice").await;
    let staff = format!("cn=staff,ou=groups,{SUFFIX}");
    let alice_dn = person_dn("alice");
    let group = vec![
        ("objectClass", HashSet::from(["groupOfNames"])),
        ("cn", HashSet::from(["staff"])),
        ("member", HashSet::from([alice_dn.as_str()])),
    ];
    admin.add(&staff, group).await.unwrap().success().unwrap();
    let services = format!("ou=services,{SUFFIX}");
    let expired = format!("uid=old,{services}");
    let soon = format!("uid=nas01,{services}");
    let clock = &server.running().state.clock;
    let in_an_hour = tessera::directory::time::generalized(clock.now() + time::Duration::hours(1));
    for (dn, expires) in [(&expired, "20200101000000Z"), (&soon, in_an_hour.as_str())] {
        let uid = dn.split([',', '=']).nth(1).unwrap();
        let attrs = vec![
            ("objectClass", HashSet::from(["tesseraServiceAccount"])),
            ("uid", HashSet::from([uid])),
            ("accountExpires", HashSet::from([expires])),
        ];
        admin.add(dn, attrs).await.unwrap().success().unwrap();
    }

    // No entry by that DN, a DN outside the suffix, a group, an expired account: all 49,
    // with the one message every failed credential gets.
    for dn in [
        person_dn("ghost"),
        "uid=alice,ou=people,o=elsewhere".to_string(),
        staff.clone(),
        expired.clone(),
    ] {
        let mut ldap = connect(&server, Some(&pki.client(&dn)), false)
            .await
            .unwrap();
        let res = ldap.sasl_external_bind().await.unwrap();
        assert_eq!(
            (res.rc, res.text.as_str()),
            (49, "invalid credentials"),
            "{dn}"
        );
        assert_eq!(whoami(&mut ldap).await, "", "{dn}: anonymous afterwards");
    }

    // A service account binds too; when it expires, its connection loses its rights.
    let nas = pki.client(&soon);
    let mut ldap = connect(&server, Some(&nas), false).await.unwrap();
    ldap.sasl_external_bind().await.unwrap().success().unwrap();
    assert_eq!(whoami(&mut ldap).await, format!("dn:{soon}"));
    clock.advance(Duration::from_secs(2 * 3600));
    // Expired while bound.
    crate::expect_lapsed(&mut ldap).await;
    assert_eq!(external_rc(&server, Some(&nas)).await, 49);

    // An authorization identity: its own DN is fine, any other is 50.
    let alice = pki.client(&person_dn("alice"));
    for (authzid, want) in [
        (
            format!("dn:{}", person_dn("alice")),
            LdapResultCode::Success,
        ),
        (
            format!("dn:{}", person_dn("ALICE")),
            LdapResultCode::Success,
        ),
        (
            format!("dn:{}", person_dn("bob")),
            LdapResultCode::InsufficentAccessRights,
        ),
        (
            "u:alice".to_string(),
            LdapResultCode::InsufficentAccessRights,
        ),
    ] {
        let mut raw = raw_tls(&server, &alice).await;
        raw.send(&message(1, external_op(authzid.as_bytes()))).await;
        let LdapOp::BindResponse(res) = raw.reply(1).await else {
            panic!("expected a bind response");
        };
        assert_eq!(res.res.code, want, "{authzid}");
        let me = raw.whoami(2).await;
        if want == LdapResultCode::Success {
            assert_eq!(me, format!("dn:{}", person_dn("alice")));
        } else {
            assert_eq!(me, "", "{authzid}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn certificates_from_other_cas_end_the_handshake() {
    let pki = Pki::new("client CA");
    let stranger = Pki::new("someone else's CA");
    let (server, _ca) = server(&pki, "optional").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice").await;
    let alice = pki.client(&person_dn("alice"));
    let forged = stranger.client(&person_dn("alice"));
    // Optional: no certificate is fine, a good one is fine, one that does not verify
    // ends the handshake (OpenLDAP's `TLSVerifyClient try`), on either port.
    assert!(served(&server, None, false).await);
    assert!(served(&server, Some(&alice), false).await);
    assert!(!served(&server, Some(&forged), false).await);
    assert!(!served(&server, Some(&forged), true).await);
    crate::raw::still_serving(&server).await;
    server.stop().await;

    let (server, _ca) = self::server(&pki, "required").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice").await;
    // Required: no certificate, or a stranger's, ends the handshake; LDAPS and StartTLS.
    for starttls in [false, true] {
        assert!(!served(&server, None, starttls).await, "{starttls}");
        assert!(
            !served(&server, Some(&forged), starttls).await,
            "{starttls}"
        );
        assert!(served(&server, Some(&alice), starttls).await, "{starttls}");
    }
    assert_eq!(external_rc(&server, Some(&alice)).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_client_ca_that_cannot_be_used_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "no certificate here\n").unwrap();
    for (ca, needle) in [
        (bad.clone(), "no PEM certificate found"),
        (dir.path().join("missing.pem"), "cannot read"),
    ] {
        let toml = format!(
            "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"\"\nldapi = \"\"\n{}",
            dir.path().join("data").display(),
            tls_table(&ca, "optional")
        );
        let config = tessera::config::Config::parse(&toml).unwrap();
        let err = tessera::server::start(config)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(&ca.display().to_string()) && err.contains(needle),
            "{err}"
        );
    }
}

/// A raw LDAP connection over LDAPS presenting `client`.
async fn raw_tls(
    server: &TestServer,
    client: &Client,
) -> Raw<tokio_rustls::client::TlsStream<TcpStream>> {
    let stream = TcpStream::connect(server.running().ldaps.unwrap())
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(server, Some(client)));
    let name = ServerName::try_from("localhost").unwrap();
    Raw::over(connector.connect(name, stream).await.unwrap())
}

/// A SASL EXTERNAL bind op carrying `authzid` as its credentials.
fn external_op(authzid: &[u8]) -> Vec<u8> {
    let mut sasl = tlv(0x04, b"EXTERNAL");
    sasl.extend(tlv(0x04, authzid));
    let mut bind = tlv(0x02, &[3]);
    bind.extend(tlv(0x04, b""));
    bind.extend(tlv(0xa3, &sasl));
    tlv(0x60, &bind)
}
