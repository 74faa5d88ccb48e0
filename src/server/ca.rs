//! The server certificate's lifecycle: the private CA Tessera generates when no certificate
//! is configured, re-issuing its server certificate, and expiry warnings.
//!
//! `<data_dir>/tls/` holds `ca.pem` (what clients trust), `ca.key` (owner-only, so the
//! server can sign again), `server.pem` and `server.key`. The server certificate is
//! re-issued by the same CA when the names it should carry (`tls.hostnames`, the host name,
//! the loopback names) differ from the names it carries, and when it is within
//! [`RENEW_BEFORE`] of expiry: at start, on SIGHUP and once a day. Clients keep trusting the
//! same `ca.pem`. A data directory made before the CA key was kept cannot re-issue: that is
//! logged with the way out (`tessera tls renew --new-ca`); a new CA is only ever made when
//! the admin asks. A configured certificate (`tls.cert`) is only inspected: a warning when
//! it nears expiry. Knows files and X.509, not sockets: `server` reloads what changed.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

use crate::server::tls::TlsError;

/// How long before expiry a generated certificate is re-issued, and a configured one is
/// warned about.
pub const RENEW_BEFORE: time::Duration = time::Duration::days(30);
/// Lifetime of a generated server certificate (Apple's and the CA/B Forum's old maximum).
const SERVER_DAYS: i64 = 825;
/// Lifetime of a generated CA.
const CA_DAYS: i64 = 3650;
const CA_NAME: &str = "Tessera private CA";

/// The files in service.
pub struct Material {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The generated CA, when Tessera made the certificate itself.
    pub ca: Option<PathBuf>,
}

/// The generated material's paths in `dir` (`<data_dir>/tls`).
pub struct Generated {
    pub dir: PathBuf,
}

impl Generated {
    pub fn new(dir: &Path) -> Generated {
        Generated {
            dir: dir.to_path_buf(),
        }
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    fn complete(&self) -> bool {
        self.ca().exists() && self.cert().exists() && self.key().exists()
    }
}

/// Use the configured files (warning when they near expiry), or the generated ones:
/// made on first start, re-issued when due.
pub fn ensure_material(
    configured: Option<(&Path, &Path)>,
    dir: &Path,
    hostnames: &[String],
    now: OffsetDateTime,
) -> Result<Material, TlsError> {
    if let Some((cert, key)) = configured {
        warn_if_expiring(cert, now);
        return Ok(Material {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            ca: None,
        });
    }
    let generated = Generated::new(dir);
    if generated.complete() {
        renew_if_due(&generated, hostnames, now)?;
    } else if generated.ca().exists() && generated.ca_key().exists() {
        // A CA and its key and no server certificate: a node that joined a cluster
        // (`tessera cluster join`) serves one from the cluster's CA.
        reissue(&generated, hostnames, now)?;
        tracing::info!(
            event = "tls-generated",
            dir = %dir.display(),
            "issued a server certificate from the CA in {}",
            generated.ca().display()
        );
    } else {
        create_ca(&generated, hostnames, now)?;
        tracing::info!(
            event = "tls-generated",
            dir = %dir.display(),
            "generated a private CA and server certificate; clients trust {}",
            generated.ca().display()
        );
    }
    Ok(Material {
        cert: generated.cert(),
        key: generated.key(),
        ca: Some(generated.ca()),
    })
}

/// What the server checks at start, on SIGHUP and daily.
pub struct Lifecycle {
    source: Source,
    hostnames: Mutex<Vec<String>>,
}

enum Source {
    Generated(Generated),
    Configured(PathBuf),
}

impl Lifecycle {
    pub fn new(material: &Material, hostnames: &[String]) -> Lifecycle {
        let source = match &material.ca {
            Some(ca) => Source::Generated(Generated::new(
                ca.parent().unwrap_or_else(|| Path::new(".")),
            )),
            None => Source::Configured(material.cert.clone()),
        };
        Lifecycle {
            source,
            hostnames: Mutex::new(hostnames.to_vec()),
        }
    }

    /// The names the configuration now asks for (`tls.hostnames`, re-read on SIGHUP).
    pub fn set_hostnames(&self, hostnames: &[String]) {
        if let Ok(mut names) = self.hostnames.lock() {
            *names = hostnames.to_vec();
        }
    }

    /// Re-issue a generated certificate that is due, or warn about a configured one near
    /// expiry. True when new files were written.
    pub fn check(&self, now: OffsetDateTime) -> Result<bool, TlsError> {
        match &self.source {
            Source::Configured(cert) => {
                warn_if_expiring(cert, now);
                Ok(false)
            }
            Source::Generated(generated) => {
                let hostnames = self.hostnames.lock().map(|n| n.clone()).unwrap_or_default();
                renew_if_due(generated, &hostnames, now)
            }
        }
    }
}

/// Why a generated certificate should be re-issued.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    Names {
        missing: Vec<String>,
        extra: Vec<String>,
    },
    Expiring(OffsetDateTime),
}

impl std::fmt::Display for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Due::Names { missing, extra } => {
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!("names to add: {}", missing.join(", ")));
                }
                if !extra.is_empty() {
                    parts.push(format!("names to drop: {}", extra.join(", ")));
                }
                write!(f, "{}", parts.join("; "))
            }
            Due::Expiring(at) => write!(f, "it expires {}", rfc3339(*at)),
        }
    }
}

/// Is the generated certificate in `generated` due for re-issue?
pub fn due(
    generated: &Generated,
    hostnames: &[String],
    now: OffsetDateTime,
) -> Result<Option<Due>, TlsError> {
    let info = inspect(&generated.cert())?;
    let wanted = wanted_names(hostnames);
    let missing: Vec<String> = wanted
        .iter()
        .filter(|w| !info.names.contains(w))
        .cloned()
        .collect();
    let extra: Vec<String> = info
        .names
        .iter()
        .filter(|n| !wanted.contains(n))
        .cloned()
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Ok(Some(Due::Names { missing, extra }));
    }
    if info.not_after - now < RENEW_BEFORE {
        return Ok(Some(Due::Expiring(info.not_after)));
    }
    Ok(None)
}

/// Re-issue when due, with a log line either way it goes. True when files were written.
fn renew_if_due(
    generated: &Generated,
    hostnames: &[String],
    now: OffsetDateTime,
) -> Result<bool, TlsError> {
    let Some(why) = due(generated, hostnames, now)? else {
        return Ok(false);
    };
    if !generated.ca_key().exists() {
        tracing::warn!(
            event = "tls-reissue-needs-new-ca",
            cert = %generated.cert().display(),
            reason = %why,
            "the server certificate should be re-issued ({why}) but cannot be: its CA's key was not kept \
             (the data directory predates it). Run `tessera tls renew --new-ca` to make a new CA and \
             certificate, then give clients the new {}; or configure tls.cert and tls.key. \
             The current certificate stays in service",
            generated.ca().display()
        );
        return Ok(false);
    }
    // Issued as of the real clock: `now` may be a test's look ahead.
    let info = reissue(generated, hostnames, OffsetDateTime::now_utc())?;
    tracing::info!(
        event = "tls-reissued",
        reason = %why,
        names = %info.names.join(", "),
        not_after = %rfc3339(info.not_after),
        "re-issued the server certificate ({why}), signed by the same CA: clients keep trusting {}",
        generated.ca().display()
    );
    warn_if_ca_expiring(generated, now);
    Ok(true)
}

/// A new server certificate for the names the configuration asks for, signed by the kept
/// CA key. Fails with [`TlsError::NoCaKey`] when there is none.
pub fn reissue(
    generated: &Generated,
    hostnames: &[String],
    now: OffsetDateTime,
) -> Result<CertInfo, TlsError> {
    let key_path = generated.ca_key();
    if !key_path.exists() {
        return Err(TlsError::NoCaKey {
            path: key_path.display().to_string(),
        });
    }
    crate::server::tls::check_key_mode(&key_path)?;
    let ca_key_pem = String::from_utf8(read(&key_path)?).map_err(|_| TlsError::NoKey {
        path: key_path.display().to_string(),
    })?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|_| TlsError::NoKey {
        path: key_path.display().to_string(),
    })?;
    let ca_info = inspect(&generated.ca())?;
    // The issuer is rebuilt from the parameters the CA was made with: the same subject
    // and key, so the same issuer name and key identifier in the new certificate.
    let issuer = Issuer::new(ca_params(now), ca_key);
    let not_after = (now + time::Duration::days(SERVER_DAYS)).min(ca_info.not_after);
    let (cert_pem, key_pem) = server_cert(&issuer, hostnames, now, not_after)?;
    let owner = owner_of(&generated.dir)?;
    write_file(&generated.key(), key_pem.as_bytes(), 0o600, owner)?;
    write_file(&generated.cert(), cert_pem.as_bytes(), 0o644, owner)?;
    inspect(&generated.cert())
}

/// The name every cluster node's certificate carries, and the name a node checks the
/// node it connects to for: membership of the cluster is a certificate from its CA.
pub const NODE_NAME: &str = "tessera-cluster-node";

/// A certificate for cluster node `node_id`, signed by the CA in `generated` (which must
/// keep its key): for both ends of node-to-node mutual TLS. Held in memory only, made
/// again at every start. The certificate (DER) and its key (PEM).
pub fn node_certificate(
    generated: &Generated,
    node_id: u64,
    now: OffsetDateTime,
) -> Result<(Vec<u8>, String, Vec<u8>), TlsError> {
    let err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key_path = generated.ca_key();
    if !key_path.exists() {
        return Err(TlsError::NoCaKey {
            path: key_path.display().to_string(),
        });
    }
    crate::server::tls::check_key_mode(&key_path)?;
    let no_key = || TlsError::NoKey {
        path: key_path.display().to_string(),
    };
    let ca_key_pem = String::from_utf8(read(&key_path)?).map_err(|_| no_key())?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|_| no_key())?;
    let ca_info = inspect(&generated.ca())?;
    let ca_der = CertificateDer::from_pem_slice(&read(&generated.ca())?)
        .map_err(|e| TlsError::Generate(format!("{}: {e}", generated.ca().display())))?;
    let issuer = Issuer::new(ca_params(now), ca_key);
    let node_key = KeyPair::generate().map_err(err)?;
    let mut node = CertificateParams::default();
    node.distinguished_name = DistinguishedName::new();
    node.distinguished_name
        .push(DnType::CommonName, format!("tessera node {node_id}"));
    node.subject_alt_names = vec![SanType::DnsName(NODE_NAME.try_into().map_err(err)?)];
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    node.not_before = now - time::Duration::days(1);
    node.not_after = (now + time::Duration::days(SERVER_DAYS)).min(ca_info.not_after);
    let cert = node.signed_by(&node_key, &issuer).map_err(err)?;
    Ok((
        cert.der().to_vec(),
        node_key.serialize_pem(),
        ca_der.to_vec(),
    ))
}

/// Make sure `generated` holds a CA with its key, for a cluster: made (with a server
/// certificate) when the directory has none yet. A CA without its key is refused.
pub fn ensure_ca(
    generated: &Generated,
    hostnames: &[String],
    now: OffsetDateTime,
) -> Result<(), TlsError> {
    if !generated.ca().exists() {
        create_ca(generated, hostnames, now)?;
        return Ok(());
    }
    if !generated.ca_key().exists() {
        return Err(TlsError::NoCaKey {
            path: generated.ca_key().display().to_string(),
        });
    }
    Ok(())
}

/// A new CA and server certificate, replacing whatever `generated` held. Clients must be
/// given the new `ca.pem`.
pub fn create_ca(
    generated: &Generated,
    hostnames: &[String],
    now: OffsetDateTime,
) -> Result<CertInfo, TlsError> {
    let err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    create_dir(&generated.dir)?;
    let owner = owner_of(&generated.dir)?;
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca_params(now).self_signed(&ca_key).map_err(err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params(now), ca_key);
    let not_after = now + time::Duration::days(SERVER_DAYS);
    let (cert_pem, key_pem) = server_cert(&issuer, hostnames, now, not_after)?;
    write_file(&generated.ca_key(), ca_key_pem.as_bytes(), 0o600, owner)?;
    write_file(&generated.ca(), ca_cert.pem().as_bytes(), 0o644, owner)?;
    write_file(&generated.key(), key_pem.as_bytes(), 0o600, owner)?;
    write_file(&generated.cert(), cert_pem.as_bytes(), 0o644, owner)?;
    inspect(&generated.cert())
}

/// The CA's parameters; its validity is only used when it is first self-signed.
fn ca_params(now: OffsetDateTime) -> CertificateParams {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, CA_NAME);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(CA_DAYS);
    ca
}

/// A server certificate (PEM) and its new key (PEM).
fn server_cert(
    issuer: &Issuer<'_, KeyPair>,
    hostnames: &[String],
    now: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(String, String), TlsError> {
    let err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let names = wanted_names(hostnames);
    let server_key = KeyPair::generate().map_err(err)?;
    let mut server = CertificateParams::default();
    server.distinguished_name = DistinguishedName::new();
    let common = names.first().cloned().unwrap_or_else(|| "localhost".into());
    server.distinguished_name.push(DnType::CommonName, common);
    server.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName).map_err(err),
        })
        .collect::<Result<_, _>>()?;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.not_before = now - time::Duration::days(1);
    server.not_after = not_after;
    let cert = server.signed_by(&server_key, issuer).map_err(err)?;
    Ok((cert.pem(), server_key.serialize_pem()))
}

/// The names a generated certificate carries: localhost, the loopback addresses, the
/// host name, then `tls.hostnames`; lower case, IP addresses in their canonical form,
/// each once.
pub fn wanted_names(hostnames: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let host = host_name();
    let all = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(str::to_string)
        .chain(host)
        .chain(hostnames.iter().cloned());
    for name in all {
        let name = canonical(&name);
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn canonical(name: &str) -> String {
    let name = name.trim();
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.trim_end_matches('.').to_ascii_lowercase(),
    }
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty() && name != "localhost").then(|| name.to_string())
}

/// What a certificate says about itself.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Subject alternative names: DNS names and IP addresses, canonical.
    pub names: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: String,
}

/// Read the first certificate of a PEM file.
pub fn inspect(path: &Path) -> Result<CertInfo, TlsError> {
    let bad = |problem: String| TlsError::Inspect {
        path: path.display().to_string(),
        problem,
    };
    let pem = read(path)?;
    let der = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| TlsError::NoCertificate {
            path: path.display().to_string(),
        })?
        .map_err(|e| bad(e.to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push(canonical(dns)),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let time = |t: x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| bad(e.to_string()))
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: time(cert.validity().not_before)?,
        not_after: time(cert.validity().not_after)?,
        serial: cert.raw_serial_as_string(),
    })
}

/// A configured certificate near or past its expiry is logged (at start and daily).
fn warn_if_expiring(cert: &Path, now: OffsetDateTime) {
    let info = match inspect(cert) {
        Ok(info) => info,
        // Loading the pair reports a file that cannot be read.
        Err(_) => return,
    };
    let left = info.not_after - now;
    if left <= time::Duration::ZERO {
        tracing::error!(
            event = "tls-expired",
            cert = %cert.display(),
            not_after = %rfc3339(info.not_after),
            "the configured certificate {} expired {}: clients that verify refuse it. \
             Put a renewed certificate in place; the server loads it when the file changes",
            cert.display(),
            rfc3339(info.not_after)
        );
    } else if left < RENEW_BEFORE {
        tracing::warn!(
            event = "tls-expiring",
            cert = %cert.display(),
            not_after = %rfc3339(info.not_after),
            days_left = left.whole_days(),
            "the configured certificate {} expires {} (in {} days): renew it with its CA; \
             the server loads the new file when it changes",
            cert.display(),
            rfc3339(info.not_after),
            left.whole_days()
        );
    }
}

fn warn_if_ca_expiring(generated: &Generated, now: OffsetDateTime) {
    let Ok(ca) = inspect(&generated.ca()) else {
        return;
    };
    if ca.not_after - now < RENEW_BEFORE {
        tracing::warn!(
            event = "tls-ca-expiring",
            ca = %generated.ca().display(),
            not_after = %rfc3339(ca.not_after),
            "the generated CA expires {}: run `tessera tls renew --new-ca` and give clients the new ca.pem",
            rfc3339(ca.not_after)
        );
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TlsError::Write {
            path: dir.display().to_string(),
            source,
        })
}

/// The owner of `dir` when it is not this process's user (root renewing the service's
/// files): new files are given to it, so the server can still read its key.
fn owner_of(dir: &Path) -> Result<Option<(u32, u32)>, TlsError> {
    let meta = std::fs::metadata(dir).map_err(|source| TlsError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    Ok((me != Some(meta.uid())).then_some((meta.uid(), meta.gid())))
}

/// Write `bytes` beside `path`, then rename it into place: a reader sees the old file or
/// the new one, never half of one.
fn write_file(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), TlsError> {
    let io = |source| TlsError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&partial)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&partial, Some(uid), Some(gid)).map_err(io)?;
    }
    std::fs::rename(&partial, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_due_when_its_names_change_or_it_nears_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let generated = Generated::new(&dir.path().join("tls"));
        let now = OffsetDateTime::now_utc();
        let first = create_ca(&generated, &["ldap.example.com".into()], now).unwrap();
        assert!(first.names.contains(&"ldap.example.com".to_string()));
        assert!(first.names.contains(&"::1".to_string()));
        assert_eq!(first.issuer, format!("CN={CA_NAME}"));
        let names = ["LDAP.example.com.".to_string()];
        assert_eq!(due(&generated, &names, now).unwrap(), None);
        let other = ["ldap2.example.com".to_string()];
        assert_eq!(
            due(&generated, &other, now).unwrap(),
            Some(Due::Names {
                missing: vec!["ldap2.example.com".into()],
                extra: vec!["ldap.example.com".into()],
            })
        );
        let later = now + time::Duration::days(SERVER_DAYS - 10);
        assert!(matches!(
            due(&generated, &names, later).unwrap(),
            Some(Due::Expiring(_))
        ));

        let ca_before = std::fs::read(generated.ca()).unwrap();
        let second = reissue(&generated, &other, now).unwrap();
        assert_ne!(second.serial, first.serial);
        assert_eq!(due(&generated, &other, now).unwrap(), None);
        assert_eq!(std::fs::read(generated.ca()).unwrap(), ca_before);
        use std::os::unix::fs::PermissionsExt;
        for key in [generated.ca_key(), generated.key()] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }

        std::fs::remove_file(generated.ca_key()).unwrap();
        let err = reissue(&generated, &names, now).unwrap_err().to_string();
        assert!(err.contains("--new-ca"), "{err}");
        // Due, but no key: the old certificate stays, nothing is written.
        assert!(!renew_if_due(&generated, &names, now).unwrap());
        assert_eq!(inspect(&generated.cert()).unwrap().serial, second.serial);
    }

    #[test]
    fn inspect_refuses_what_is_not_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pem");
        std::fs::write(&path, "hello").unwrap();
        let err = inspect(&path).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
