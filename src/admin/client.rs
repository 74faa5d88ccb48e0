//! A small LDAP client for the admin commands, on the same codec the server uses.
//!
//! Connects over the LDAPI socket (SASL EXTERNAL: the local administrator) or over LDAPS
//! (simple bind as a person, or with a token), sends one request at a time and collects
//! its responses. Knows nothing of people, groups or tokens: that is `admin::commands`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapAddRequest, LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapExtendedRequest,
    LdapFilter, LdapModify, LdapModifyRequest, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult,
    LdapResultCode, LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope, SaslCredentials,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::admin::AdminError;

/// Where to connect and as whom.
#[derive(Debug, Clone)]
pub enum Target {
    Local {
        socket: PathBuf,
    },
    Remote {
        host: String,
        port: u16,
        ca: PathBuf,
        bind_dn: String,
        /// Password or token; never printed.
        secret: Secret,
    },
}

#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct Client {
    framed: Framed<Box<dyn Stream>, LdapCodec>,
    next_id: i32,
}

impl Client {
    pub async fn connect(target: &Target) -> Result<Client, AdminError> {
        let codec = || LdapCodec::new(Some(64 << 20), None);
        let (stream, cred, dn): (Box<dyn Stream>, _, _) = match target {
            Target::Local { socket } => {
                let s = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
                    AdminError::Connect {
                        what: socket.display().to_string(),
                        problem: e.to_string(),
                    }
                })?;
                let cred = LdapBindCred::SASL(SaslCredentials {
                    mechanism: "EXTERNAL".into(),
                    credentials: Vec::new(),
                });
                (Box::new(s), cred, String::new())
            }
            Target::Remote {
                host,
                port,
                ca,
                bind_dn,
                secret,
            } => {
                let what = format!("ldaps://{host}:{port}");
                let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| AdminError::Connect {
                        what: what.clone(),
                        problem: e.to_string(),
                    })?;
                let connector = tokio_rustls::TlsConnector::from(tls_config(ca)?);
                let name = ServerName::try_from(host.clone()).map_err(|_| AdminError::Connect {
                    what: what.clone(),
                    problem: "not a valid host name".into(),
                })?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| AdminError::Connect {
                        what,
                        problem: format!("TLS: {e}"),
                    })?;
                (
                    Box::new(tls),
                    LdapBindCred::Simple(secret.0.clone()),
                    bind_dn.clone(),
                )
            }
        };
        let mut client = Client {
            framed: Framed::new(stream, codec()),
            next_id: 1,
        };
        let op = LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn,
            cred,
        });
        let (result, _) = client.request(op).await?;
        check(result)?;
        Ok(client)
    }

    pub async fn search(
        &mut self,
        base: &str,
        scope: LdapSearchScope,
        filter: LdapFilter,
        attrs: &[&str],
    ) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
        self.search_with(base, scope, filter, attrs, Vec::new())
            .await
    }

    /// A search carrying request controls.
    pub async fn search_with(
        &mut self,
        base: &str,
        scope: LdapSearchScope,
        filter: LdapFilter,
        attrs: &[&str],
        controls: Vec<LdapControl>,
    ) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
        let op = LdapOp::SearchRequest(LdapSearchRequest {
            base: base.to_string(),
            scope,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: attrs.iter().map(|a| a.to_string()).collect(),
        });
        let id = self.send_with(op, controls).await?;
        let mut entries = Vec::new();
        loop {
            let msg = self.receive(id).await?;
            match msg.op {
                LdapOp::SearchResultEntry(e) => entries.push(e),
                LdapOp::SearchResultDone(res) => {
                    check(res)?;
                    return Ok(entries);
                }
                _ => {}
            }
        }
    }

    /// A base read of one entry.
    pub async fn read(
        &mut self,
        dn: &str,
        attrs: &[&str],
    ) -> Result<Vec<LdapSearchResultEntry>, AdminError> {
        let filter = LdapFilter::Present("objectClass".into());
        self.search(dn, LdapSearchScope::Base, filter, attrs).await
    }

    /// The sorted `naming` values of the entries of `class` directly under `base`.
    pub async fn names(
        &mut self,
        base: &str,
        class: &str,
        naming: &str,
    ) -> Result<Vec<String>, AdminError> {
        let filter = LdapFilter::Equality("objectClass".into(), class.into());
        let entries = self
            .search(base, LdapSearchScope::OneLevel, filter, &[naming])
            .await?;
        let mut out: Vec<String> = entries
            .iter()
            .filter_map(|e| {
                e.attributes
                    .iter()
                    .find(|a| a.atype.eq_ignore_ascii_case(naming))
                    .and_then(|a| a.vals.first())
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
            .collect();
        out.sort();
        Ok(out)
    }

    pub async fn add(
        &mut self,
        dn: &str,
        attrs: Vec<(&str, Vec<String>)>,
    ) -> Result<(), AdminError> {
        let attributes = attrs
            .into_iter()
            .map(|(a, vals)| LdapPartialAttribute {
                atype: a.to_string(),
                vals: vals.into_iter().map(String::into_bytes).collect(),
            })
            .collect();
        let op = LdapOp::AddRequest(LdapAddRequest {
            dn: dn.to_string(),
            attributes,
        });
        check(self.request(op).await?.0)
    }

    pub async fn modify(&mut self, dn: &str, changes: Vec<LdapModify>) -> Result<(), AdminError> {
        let op = LdapOp::ModifyRequest(LdapModifyRequest {
            dn: dn.to_string(),
            changes,
        });
        check(self.request(op).await?.0)
    }

    pub async fn delete(&mut self, dn: &str) -> Result<(), AdminError> {
        check(self.request(LdapOp::DelRequest(dn.to_string())).await?.0)
    }

    /// An extended operation; returns the response value.
    pub async fn extended(
        &mut self,
        name: &str,
        value: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, AdminError> {
        let op = LdapOp::ExtendedRequest(LdapExtendedRequest {
            name: name.to_string(),
            value,
        });
        let (result, value) = self.request(op).await?;
        check(result)?;
        Ok(value)
    }

    /// Send `op` and wait for its final result (and an extended response's value).
    async fn request(&mut self, op: LdapOp) -> Result<(LdapResult, Option<Vec<u8>>), AdminError> {
        let id = self.send(op).await?;
        loop {
            let msg = self.receive(id).await?;
            match msg.op {
                LdapOp::BindResponse(r) => return Ok((r.res, None)),
                LdapOp::ExtendedResponse(r) => return Ok((r.res, r.value)),
                LdapOp::AddResponse(r)
                | LdapOp::ModifyResponse(r)
                | LdapOp::DelResponse(r)
                | LdapOp::ModifyDNResponse(r)
                | LdapOp::CompareResult(r)
                | LdapOp::SearchResultDone(r) => return Ok((r, None)),
                _ => {}
            }
        }
    }

    async fn send(&mut self, op: LdapOp) -> Result<i32, AdminError> {
        self.send_with(op, Vec::new()).await
    }

    async fn send_with(&mut self, op: LdapOp, ctrl: Vec<LdapControl>) -> Result<i32, AdminError> {
        let msgid = self.next_id;
        self.next_id += 1;
        self.framed
            .send(LdapMsg { msgid, op, ctrl })
            .await
            .map_err(|e| AdminError::Protocol(e.to_string()))?;
        Ok(msgid)
    }

    async fn receive(&mut self, msgid: i32) -> Result<LdapMsg, AdminError> {
        loop {
            match self.framed.next().await {
                Some(Ok(msg)) if msg.msgid == msgid => return Ok(msg),
                Some(Ok(msg)) if msg.msgid == 0 => {
                    let reason = match msg.op {
                        LdapOp::ExtendedResponse(r) => r.res.message,
                        _ => String::new(),
                    };
                    return Err(AdminError::Protocol(format!(
                        "server disconnected: {reason}"
                    )));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(AdminError::Protocol(e.to_string())),
                None => return Err(AdminError::Protocol("server closed the connection".into())),
            }
        }
    }
}

fn check(result: LdapResult) -> Result<(), AdminError> {
    if result.code == LdapResultCode::Success {
        Ok(())
    } else {
        Err(AdminError::Ldap {
            code: result.code,
            message: result.message,
        })
    }
}

fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, AdminError> {
    let bad = |problem: String| AdminError::Connect {
        what: ca.display().to_string(),
        problem,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
