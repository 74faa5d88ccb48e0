//! The certificate lifecycle through the real server: the generated CA's key is kept, the
//! server certificate is re-issued by the same CA when `tls.hostnames` changes (at start
//! and on SIGHUP's reload) and near expiry, an old data directory without the CA key keeps
//! serving until a new CA is asked for, and `tessera tls` shows, renews and exports; also
//! where listeners bind: host names, and a busy port that fails before anything is made.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustls_pki_types::ServerName;
use tessera::config::Config;
use tessera::server::{self, Running};
use tokio::net::TcpStream;

fn config(data: &Path, tls: &str) -> Config {
    let toml = format!(
        "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"\"\n[argon2]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n[tls]\n{tls}\n",
        data.display()
    );
    Config::parse(&toml).unwrap()
}

/// Does a handshake with the server at `running`, for `name`, verify against `ca`?
async fn verifies(running: &Running, name: &str, ca: &Path) -> bool {
    let stream = TcpStream::connect(running.ldaps.unwrap()).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(crate::client_tls(ca));
    let name = ServerName::try_from(name.to_string()).unwrap();
    connector.connect(name, stream).await.is_ok()
}

fn serial(cert: &Path) -> String {
    tessera::server::ca::inspect(cert).unwrap().serial
}

/// Run the real binary with `args` and the config at `config`.
fn tessera(args: &[&str], config: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn write_config(dir: &Path, data: &Path, tls: &str) -> PathBuf {
    let path = dir.join("tessera.toml");
    let toml = format!(
        "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"\"\n[tls]\n{tls}\n",
        data.display()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test]
async fn a_hostnames_change_is_served_under_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = server::start(config(&data, "")).await.unwrap();
    let ca = first.ca.clone().unwrap();
    let ca_pem = std::fs::read(&ca).unwrap();
    let ca_key = data.join("tls/ca.key");
    let mode = std::fs::metadata(&ca_key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the CA key is owner-only");
    assert!(!verifies(&first, "ldap.tessera.test", &ca).await);
    first.shutdown().await;

    // Restarted with a new name: re-issued by the same CA.
    let second = server::start(config(&data, "hostnames = [\"ldap.tessera.test\"]"))
        .await
        .unwrap();
    assert!(verifies(&second, "ldap.tessera.test", &ca).await);
    assert!(verifies(&second, "localhost", &ca).await);
    assert_eq!(
        std::fs::read(&ca).unwrap(),
        ca_pem,
        "clients keep the same ca.pem"
    );

    // SIGHUP's reload with the configuration read again.
    second
        .reload_tls_with(&["other.tessera.test".to_string()])
        .unwrap();
    assert!(verifies(&second, "other.tessera.test", &ca).await);
    assert!(!verifies(&second, "ldap.tessera.test", &ca).await);

    // The daily check: nothing to do today, a re-issue when expiry is near.
    let now = time::OffsetDateTime::now_utc();
    let cert = data.join("tls/server.pem");
    let before = serial(&cert);
    assert!(!second.check_certificates(now).unwrap());
    assert_eq!(serial(&cert), before);
    assert!(
        second
            .check_certificates(now + time::Duration::days(810))
            .unwrap()
    );
    assert_ne!(serial(&cert), before, "re-issued near expiry");
    assert!(verifies(&second, "other.tessera.test", &ca).await);
    assert_eq!(std::fs::read(&ca).unwrap(), ca_pem);
    second.shutdown().await;
}

#[tokio::test]
async fn a_data_directory_without_the_ca_key_serves_on_until_a_new_ca_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = server::start(config(&data, "")).await.unwrap();
    let ca = first.ca.clone().unwrap();
    first.shutdown().await;
    // As a data directory from before the CA key was kept.
    std::fs::remove_file(data.join("tls/ca.key")).unwrap();
    let old_ca = std::fs::read(&ca).unwrap();
    let names = "hostnames = [\"ldap.tessera.test\"]";
    let running = server::start(config(&data, names)).await.unwrap();
    assert!(verifies(&running, "localhost", &ca).await, "still serving");
    assert!(!verifies(&running, "ldap.tessera.test", &ca).await);
    running.shutdown().await;

    let config_file = write_config(dir.path(), &data, names);
    let shown = tessera(&["tls"], &config_file);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{shown:?}");
    assert!(
        text.contains("--new-ca") && text.contains("names to add: ldap.tessera.test"),
        "{text}"
    );
    let renew = tessera(&["tls", "renew"], &config_file);
    let err = String::from_utf8_lossy(&renew.stderr);
    assert_eq!(renew.status.code(), Some(1), "{err}");
    assert!(err.contains("tessera tls renew --new-ca"), "{err}");
    assert_eq!(std::fs::read(&ca).unwrap(), old_ca, "no new CA unasked");

    let renew = tessera(&["tls", "renew", "--new-ca"], &config_file);
    assert!(renew.status.success(), "{renew:?}");
    assert!(
        String::from_utf8_lossy(&renew.stderr).contains("give every client the new"),
        "{renew:?}"
    );
    assert_ne!(std::fs::read(&ca).unwrap(), old_ca);
    let running = server::start(config(&data, names)).await.unwrap();
    assert!(verifies(&running, "ldap.tessera.test", &ca).await);
    running.shutdown().await;

    let exported = tessera(&["tls", "export-ca"], &config_file);
    assert!(exported.status.success());
    assert_eq!(exported.stdout, std::fs::read(&ca).unwrap());
}

#[tokio::test]
async fn tls_shows_a_configured_certificate_and_warns_near_its_expiry() {
    use rcgen::{CertificateParams, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["ldap.tessera.test".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(10);
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("c.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let data = dir.path().join("data");
    let tls = format!(
        "cert = \"{}\"\nkey = \"{}\"",
        cert_path.display(),
        key_path.display()
    );
    let config_file = write_config(dir.path(), &data, &tls);

    let shown = tessera(&["tls", "show"], &config_file);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{shown:?}");
    for want in [
        "names        ldap.tessera.test",
        "issuer       CN=rcgen self signed cert",
        "configured (tls.cert)",
        "warning      it expires within 30 days",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    // TESSERA_CONFIG stands for --config.
    let by_env = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("tls")
        .env("TESSERA_CONFIG", &config_file)
        .output()
        .unwrap();
    assert_eq!(by_env.stdout, shown.stdout);
    let renew = tessera(&["tls", "renew"], &config_file);
    assert_eq!(renew.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&renew.stderr).contains("renew it with its CA"));

    // The server says so in its log at start.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--config"])
        .arg(&config_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = crate::cli::stop_when(&mut child, "Suffix");
    assert!(
        log.stderr.contains("tls-expiring") && log.stderr.contains("days"),
        "{}",
        log.stderr
    );
}

#[tokio::test]
async fn a_busy_port_fails_the_start_before_anything_is_created() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = config(&data, "");
    config.listen.ldaps = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let err = server::start(config).await.err().unwrap().to_string();
    assert!(
        err.contains(&format!("listen.ldaps = \"127.0.0.1:{port}\""))
            && err.contains("already in use"),
        "{err}"
    );
    assert!(!data.exists(), "no data directory, no CA");
}

#[tokio::test]
async fn listeners_may_be_named_by_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = config(&data, "");
    config.listen.ldaps = Some("localhost:0".parse().unwrap());
    let running = server::start(config).await.unwrap();
    let ca = running.ca.clone().unwrap();
    assert!(running.ldaps.unwrap().ip().is_loopback());
    assert!(verifies(&running, "localhost", &ca).await);
    running.shutdown().await;

    let mut config = crate::certs::config(&dir.path().join("other"), "");
    config.listen.ldaps = Some("nosuch.invalid:636".parse().unwrap());
    let err = server::start(config).await.err().unwrap().to_string();
    assert!(
        err.contains("listen.ldaps = \"nosuch.invalid:636\"") && err.contains("does not resolve"),
        "{err}"
    );
}
