//! TLS material and rustls configuration.
//!
//! When no certificate is configured, a private CA and a server certificate (SANs
//! localhost, 127.0.0.1, ::1, the host name and any configured names) are generated once
//! into `<data_dir>/tls/`, so clients can verify with `ca.pem`. Only TLS 1.2 and 1.3. The
//! pair in service can be replaced while the server runs ([`Certificates`]); a key file
//! other users can access is refused.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: String },
    #[error("{path}: no usable PEM private key found")]
    NoKey { path: String },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration rejected: {0}")]
    Config(String),
    #[error(
        "{path}: the private key is accessible to other users (mode {mode:o}); run chmod 600 {path} (or 640 with a group)"
    )]
    KeyExposed { path: String, mode: u32 },
}

pub struct Material {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The generated CA, when Tessera made the certificate itself.
    pub ca: Option<PathBuf>,
}

/// Use the configured files, or generate (once) a CA and server certificate in `dir`.
pub fn ensure_material(
    configured: Option<(&Path, &Path)>,
    dir: &Path,
    hostnames: &[String],
) -> Result<Material, TlsError> {
    if let Some((cert, key)) = configured {
        return Ok(Material {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            ca: None,
        });
    }
    let material = Material {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca: Some(dir.join("ca.pem")),
    };
    if material.cert.exists() && material.key.exists() && dir.join("ca.pem").exists() {
        return Ok(material);
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let (ca_pem, cert_pem, key_pem) = generate(hostnames)?;
    write_file(&dir.join("ca.pem"), ca_pem.as_bytes(), 0o644)?;
    write_file(&material.cert, cert_pem.as_bytes(), 0o644)?;
    write_file(&material.key, key_pem.as_bytes(), 0o600)?;
    tracing::info!(dir = %dir.display(), "generated a private CA and server certificate");
    Ok(material)
}

/// A rustls server config serving whatever `certs` holds: TLS 1.2 and 1.3 only, no client
/// certificates.
pub fn server_config(certs: Arc<Certificates>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    Ok(Arc::new(config))
}

/// The server's certificate and key, replaceable while the server runs: handshakes use
/// the current pair, connections already open keep theirs.
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// Modification times of the files as last loaded (or tried).
    seen: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Load the pair; the key file must not be readable or writable by others.
    pub fn load(cert: &Path, key: &Path) -> Result<Certificates, TlsError> {
        let pair = load_pair(cert, key)?;
        Ok(Certificates {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(pair)),
            seen: Mutex::new((modified(cert), modified(key))),
        })
    }

    /// Load the files again. On any problem the current pair stays in service.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = (modified(&self.cert), modified(&self.key));
        }
        let pair = load_pair(&self.cert, &self.key)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(pair);
        }
        Ok(())
    }

    /// Reload if either file changed since it was last loaded; Some(outcome) when it did.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = (modified(&self.cert), modified(&self.key));
        let changed = self.seen.lock().is_ok_and(|seen| *seen != now);
        changed.then(|| self.reload())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    check_key_mode(key)?;
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.display().to_string(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: key.display().to_string(),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key_der, &provider).map_err(|e| TlsError::Config(e.to_string()))
}

/// A private key others can read is a key already lost: refuse it, saying how to fix it.
fn check_key_mode(key: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(key)
        .map_err(|source| TlsError::Read {
            path: key.display().to_string(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        return Err(TlsError::KeyExposed {
            path: key.display().to_string(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

fn generate(hostnames: &[String]) -> Result<(String, String, String), TlsError> {
    let err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let now = time::OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "Tessera private CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Some(host) = host_name() {
        names.push(host);
    }
    names.extend(hostnames.iter().cloned());
    names.dedup();
    let server_key = KeyPair::generate().map_err(err)?;
    let mut server = CertificateParams::default();
    server.distinguished_name = DistinguishedName::new();
    server
        .distinguished_name
        .push(DnType::CommonName, names[0].clone());
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
    server.not_after = now + time::Duration::days(825);
    let server_cert = server.signed_by(&server_key, &issuer).map_err(err)?;
    Ok((ca_cert.pem(), server_cert.pem(), server_key.serialize_pem()))
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty() && name != "localhost").then(|| name.to_string())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let io = |source| TlsError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}
