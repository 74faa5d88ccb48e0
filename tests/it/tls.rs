//! TLS: the generated certificate verifies for its IP SANs, a silent TLS client is cut off
//! at the handshake timeout, and StartTLS: anonymous after the upgrade, and refused with
//! 12 when it carries an unsupported critical control.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings};
use ldap3_proto::proto::LdapResultCode;
use rustls_pki_types::ServerName;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::raw::{Raw, bind_op, control, message, message_with_controls, starttls_op};
use crate::{Setup, TestServer, add_person, person_dn, whoami};

#[tokio::test]
async fn ldaps_verifies_for_the_ipv4_loopback_san() {
    let server = TestServer::start().await;
    let port = server.running().ldaps.unwrap().port();
    // The real client, full verification against the generated CA, by IP address.
    let settings = LdapConnSettings::new().set_config(server.tls.clone());
    let (conn, mut ldap) =
        LdapConnAsync::with_settings(settings, &format!("ldaps://127.0.0.1:{port}"))
            .await
            .unwrap();
    ldap3::drive!(conn);
    assert_eq!(whoami(&mut ldap).await, "");
    // Verification is real: a name the certificate does not carry is refused.
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(server.tls.clone());
    let wrong = ServerName::try_from("not-this-server.example").unwrap();
    assert!(connector.connect(wrong, stream).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn ldaps_verifies_for_the_ipv6_loopback_san() {
    // Never skipped: a host without an IPv6 loopback fails here, saying how to give it one
    // (`.ci/run` does so before the tests).
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        panic!(
            "this test needs the IPv6 loopback and cannot bind [::1]: {e}; as root: \
             sysctl -w net.ipv6.conf.lo.disable_ipv6=0 && ip -6 addr add ::1/128 dev lo"
        );
    }
    let server = TestServer::start_setup(Setup {
        ldaps: "[::1]:0",
        ..Setup::default()
    })
    .await;
    let addr = server.running().ldaps.unwrap();
    assert_eq!(addr.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    // ldap3 hands "[::1]" with its brackets to rustls as the name, so connect directly.
    let stream = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(server.tls.clone());
    let name = ServerName::IpAddress(Ipv6Addr::LOCALHOST.into());
    let tls = connector.connect(name, stream).await.unwrap();
    let mut raw = Raw::over(tls);
    assert_eq!(raw.whoami(1).await, "");
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_cut_off_at_the_handshake_timeout() {
    let server = TestServer::start_with("[limits]\ntls_handshake_timeout = \"200ms\"\n").await;
    let mut silent = TcpStream::connect(server.running().ldaps.unwrap())
        .await
        .unwrap();
    // No ClientHello: the server closes, well before the default timeout (10 s) and the
    // idle timeout (15 minutes) would.
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("the server closed the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    crate::raw::still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn starttls_drops_the_plaintext_identity() {
    let server = TestServer::start_with("[security]\nrequire_tls_for_bind = false\n").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", false).await;
    let mut raw = Raw::connect(&server).await;
    raw.send(&message(1, bind_op(&person_dn("alice"), "pw-alice")))
        .await;
    let ldap3_proto::proto::LdapOp::BindResponse(bound) = raw.reply(1).await else {
        panic!("expected a bind response");
    };
    assert_eq!(bound.res.code, LdapResultCode::Success);
    assert_eq!(raw.whoami(2).await, format!("dn:{}", person_dn("alice")));
    raw.send(&message(3, starttls_op())).await;
    assert_eq!(raw.extended_code(3).await, LdapResultCode::Success);
    let mut tls = raw.start_tls(&server).await;
    assert_eq!(tls.whoami(4).await, "", "anonymous after the upgrade");
    server.stop().await;
}

#[tokio::test]
async fn starttls_refuses_unsupported_critical_controls() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    // Server Side Sort sent critical, then an unknown critical control: not performed.
    let sort = control("1.2.840.113556.1.4.473", true, Some(&SORT_BY_CN));
    let unknown = control("1.2.3.4.5.6", true, None);
    for (id, ctrl) in [(1, sort), (2, unknown)] {
        raw.send(&message_with_controls(id, starttls_op(), &[ctrl]))
            .await;
        assert_eq!(
            raw.extended_code(i32::from(id)).await,
            LdapResultCode::UnavailableCriticalExtension
        );
    }
    // Still plaintext: answered in the clear.
    assert_eq!(raw.whoami(3).await, "");
    // The same controls, not critical, are ignored: TLS starts.
    let sort = control("1.2.840.113556.1.4.473", false, Some(&SORT_BY_CN));
    let unknown = control("1.2.3.4.5.6", false, None);
    raw.send(&message_with_controls(4, starttls_op(), &[sort, unknown]))
        .await;
    assert_eq!(raw.extended_code(4).await, LdapResultCode::Success);
    let mut tls = raw.start_tls(&server).await;
    assert_eq!(tls.whoami(5).await, "");
    server.stop().await;
}

/// RFC 2891 `SortKeyList` for `cn`: SEQUENCE { SEQUENCE { attributeType "cn" } }.
pub const SORT_BY_CN: [u8; 8] = [0x30, 0x06, 0x30, 0x04, 0x04, 0x02, b'c', b'n'];

/// A CA and a server certificate for localhost signed by it: (ca, cert, key) PEM.
fn issue(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn write_private(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Does an LDAPS handshake to `port` verify against `ca`?
async fn verifies(port: u16, ca: &std::path::Path) -> bool {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(crate::client_tls(ca));
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, stream).await.is_ok()
}

#[tokio::test]
async fn certificates_reload_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let (ca1, ca2) = (dir.path().join("ca1.pem"), dir.path().join("ca2.pem"));
    let first = issue("first CA");
    std::fs::write(&ca1, &first.0).unwrap();
    write_private(&cert, &first.1, 0o644);
    write_private(&key, &first.2, 0o600);
    let toml = format!(
        "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nwatch_interval = \"50ms\"\n",
        dir.path().join("data").display(),
        cert.display(),
        key.display()
    );
    let running = tessera::server::start(tessera::config::Config::parse(&toml).unwrap())
        .await
        .unwrap();
    let port = running.ldaps.unwrap().port();
    assert!(verifies(port, &ca1).await);
    let settings = LdapConnSettings::new().set_config(crate::client_tls(&ca1));
    let (conn, mut open) =
        LdapConnAsync::with_settings(settings, &format!("ldaps://localhost:{port}"))
            .await
            .unwrap();
    ldap3::drive!(conn);

    // A broken certificate is refused and the old pair keeps serving.
    write_private(&cert, "not a certificate", 0o644);
    assert!(running.reload_tls().is_err());
    assert!(verifies(port, &ca1).await);

    // A renewed pair dropped in place is picked up by the watcher.
    let second = issue("second CA");
    std::fs::write(&ca2, &second.0).unwrap();
    write_private(&key, &second.2, 0o600);
    write_private(&cert, &second.1, 0o644);
    let mut switched = false;
    for _ in 0..200 {
        if verifies(port, &ca2).await {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(switched, "the new certificate is served");
    assert!(!verifies(port, &ca1).await);
    assert_eq!(
        whoami(&mut open).await,
        "",
        "the connection opened before goes on"
    );

    // A key others can read is refused, on reload and at start, saying how to fix it.
    write_private(&key, &second.2, 0o644);
    let err = running.reload_tls().unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
    assert!(verifies(port, &ca2).await);
    running.shutdown().await;
    let err = tessera::server::start(tessera::config::Config::parse(&toml).unwrap())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("accessible to other users") && err.contains("chmod 600"),
        "{err}"
    );
}
