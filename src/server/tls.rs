//! TLS material and rustls configuration.
//!
//! The certificate files themselves (the generated CA, re-issue, expiry) are
//! `server::ca`'s. Only TLS 1.2 and 1.3. The pair in service can be replaced while the
//! server runs ([`Certificates`]); a key file other users can access is refused. With `tls.client_ca`, client certificates are
//! verified by rustls (webpki) here, and [`client_cert`] turns a verified leaf's subject
//! into a DN for SASL EXTERNAL; what that DN may do is decided in `ldap::bind`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use x509_parser::oid_registry::Oid;

use crate::config::ClientAuth;
use crate::directory::dn::{Ava, Dn, Rdn};
use crate::ldap::session::ClientCert;

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
    #[error("{path}: not a usable CA certificate file: {problem}")]
    ClientCa { path: String, problem: String },
    #[error("{path}: no usable PEM private key found")]
    NoKey { path: String },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration rejected: {0}")]
    Config(String),
    #[error("{path}: not a readable certificate: {problem}")]
    Inspect { path: String, problem: String },
    #[error(
        "{path} does not exist, so the certificate cannot be re-issued by the same CA (the data directory predates keeping it); run `tessera tls renew --new-ca` and give clients the new ca.pem"
    )]
    NoCaKey { path: String },
    #[error(
        "{path}: the private key is accessible to other users (mode {mode:o}); run chmod 600 {path} (or 640 with a group)"
    )]
    KeyExposed { path: String, mode: u32 },
}

/// A rustls server config serving whatever `certs` holds: TLS 1.2 and 1.3 only; client
/// certificates as `clients` verifies them, or none asked for.
pub fn server_config(
    certs: Arc<Certificates>,
    clients: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let config = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    }
    .with_cert_resolver(certs);
    Ok(Arc::new(config))
}

/// Verify client certificates against the CA certificates in the PEM file `ca`. Optional
/// means a client may send none; one that is sent must verify, or the handshake fails
/// (rustls cannot go on with a certificate it refused, and should not).
pub fn client_verifier(
    ca: &Path,
    auth: ClientAuth,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let problem = |problem: String| TlsError::ClientCa {
        path: ca.display().to_string(),
        problem,
    };
    let pem = read(ca)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| problem(e.to_string()))?;
        roots.add(cert).map_err(|e| problem(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(problem("no PEM certificate found".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if auth == ClientAuth::Optional {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map_err(|e| problem(e.to_string()))
}

/// The client certificate of an established connection. rustls only completes a handshake
/// whose certificate the verifier accepted, so a leaf here is a verified one.
pub fn client_cert(conn: &ServerConnection) -> ClientCert {
    let Some(leaf) = conn.peer_certificates().and_then(|chain| chain.first()) else {
        return ClientCert::Absent;
    };
    match subject_dn(leaf) {
        Some(dn) => {
            tracing::debug!(subject = %dn, "client certificate verified");
            ClientCert::Verified(dn)
        }
        None => {
            tracing::debug!("client certificate verified; its subject names no DN");
            ClientCert::Unnamed
        }
    }
}

/// The subject of a DER certificate as an LDAP DN: RFC 4514 order (X.509 lists the most
/// significant RDN first, an LDAP DN string the least), attribute types by their LDAP
/// names. None for an empty subject or a value that is not a string.
fn subject_dn(der: &[u8]) -> Option<Dn> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let x509_order: Vec<_> = cert.subject().iter().collect();
    let mut rdns = Vec::with_capacity(x509_order.len());
    for rdn in x509_order.into_iter().rev() {
        let avas = rdn
            .iter()
            .map(|ava| {
                Some(Ava {
                    attr: attr_name(ava.attr_type()),
                    value: ava.as_str().ok()?.to_string(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        if avas.is_empty() {
            return None;
        }
        rdns.push(Rdn { avas });
    }
    (!rdns.is_empty()).then(|| Dn::from_rdns(rdns))
}

/// RFC 4514 §3's names, and the usual others (as OpenLDAP prints them); any other type
/// as its dotted OID.
fn attr_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let name = match id.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.12" => "title",
        "2.5.4.42" => "givenName",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return id,
    };
    name.to_string()
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
pub(crate) fn check_key_mode(key: &Path) -> Result<(), TlsError> {
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

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use rcgen::string::BmpString;
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

    use super::*;

    const UID: [u64; 7] = [0, 9, 2342, 19200300, 100, 1, 1];
    const DC: [u64; 7] = [0, 9, 2342, 19200300, 100, 1, 25];
    /// rcgen keeps one value per type in a name, so a second DC goes in under this type
    /// (the same encoded length) and is patched into a DC afterwards; the signature breaks,
    /// which parsing the subject does not look at.
    const DC_STAND_IN: [u64; 7] = [0, 9, 2342, 19200300, 100, 1, 26];
    const STAND_IN_DER: [u8; 10] = [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x1a];

    /// A self-signed certificate whose subject has these RDNs, in X.509 order.
    fn cert(rdns: Vec<(DnType, DnValue)>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        for (ty, value) in rdns {
            params.distinguished_name.push(ty, value);
        }
        let key = KeyPair::generate().unwrap();
        let mut der = params.self_signed(&key).unwrap().der().to_vec();
        let mut patched = 0;
        while let Some(at) = der.windows(10).position(|w| w == STAND_IN_DER) {
            der[at + 9] = 0x19;
            patched += 1;
        }
        assert!(patched <= 2, "issuer and subject at most");
        der
    }

    fn utf8(s: &str) -> DnValue {
        DnValue::Utf8String(s.into())
    }

    #[test]
    fn the_subject_becomes_an_ldap_dn_least_significant_first() {
        let der = cert(vec![
            (DnType::CustomDnType(DC.to_vec()), utf8("com")),
            (DnType::CustomDnType(DC_STAND_IN.to_vec()), utf8("example")),
            (DnType::OrganizationalUnitName, utf8("services")),
            (DnType::CustomDnType(UID.to_vec()), utf8("nas01")),
        ]);
        let dn = subject_dn(&der).unwrap();
        assert_eq!(dn.to_string(), "UID=nas01,OU=services,DC=example,DC=com");
        let entry = Dn::parse("uid=NAS01,ou=services,dc=example,dc=com").unwrap();
        assert_eq!(dn, entry, "compared as DNs: case and spelling aside");
    }

    #[test]
    fn special_characters_and_unknown_types_survive() {
        let der = cert(vec![
            (DnType::OrganizationName, utf8("example")),
            (DnType::CommonName, utf8("Doe, Jane+1")),
            (
                DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 1]),
                utf8("x"),
            ),
        ]);
        let dn = subject_dn(&der).unwrap();
        let want = Dn::parse("1.3.6.1.4.1.99999.1=x,cn=Doe\\, Jane\\+1,o=example").unwrap();
        assert_eq!(dn, want, "{dn}");
        assert_eq!(dn.rdns().len(), 3);
    }

    #[test]
    fn subjects_with_no_ldap_string_form_name_nothing() {
        let bmp = DnValue::BmpString(BmpString::try_from("alice").unwrap());
        let der = cert(vec![
            (DnType::OrganizationName, utf8("example")),
            (DnType::CommonName, bmp),
        ]);
        assert!(subject_dn(&der).is_none(), "a BMPString value");
        assert!(subject_dn(&cert(Vec::new())).is_none(), "an empty subject");
        assert!(subject_dn(b"not a certificate").is_none());
    }
}
