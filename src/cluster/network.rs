//! Node-to-node traffic: mutual TLS over TCP, both ends presenting a certificate from the
//! cluster's CA (`server::ca::node_certificate`), and one request and its answer at a
//! time on a connection, each a length-prefixed JSON frame. Carries Raft's messages
//! (append, vote, snapshot chunks), writes forwarded to the leader, and membership
//! requests. Knows frames and peers, not what the messages mean (`cluster` handles them).

// openraft's error types are large, and its traits' signatures impose them.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::RemoteError;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::cluster::TypeConfig;
use crate::dit::command::{Applied, Command};

/// The largest frame a node reads: a snapshot chunk or a batch of log entries, in JSON.
const MAX_FRAME: usize = 64 * 1024 * 1024;
/// How long a TLS handshake between nodes may take.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// Connections still in their TLS handshake that one source address may hold, and that all
/// sources together may hold. The port is reachable before anyone is authenticated: these
/// bound what a stranger opening connections and never finishing them can take, while a
/// node connecting from its own address still gets through.
pub const HANDSHAKES_PER_PEER: usize = 16;
const HANDSHAKES_TOTAL: usize = 256;

/// A request from one node to another.
#[derive(Serialize, Deserialize)]
pub enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A write a follower received, for the leader to commit.
    Write(Command),
    /// A membership change a node was asked for, for the leader to make.
    Manage(Manage),
    /// Has the node applied the log up to this index? Answered once it has, or after a
    /// second with false.
    Applied(u64),
    /// The fingerprint of the node's rules settings, asked before it is added.
    Rules,
}

/// The answer to a [`Request`].
#[derive(Serialize, Deserialize)]
pub enum Response {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Write(Forwarded),
    Manage(Result<String, String>),
    Applied(bool),
    Rules(String),
}

/// What became of a forwarded write.
#[derive(Serialize, Deserialize)]
pub enum Forwarded {
    /// Committed at log index `index`, with this outcome.
    Applied { index: u64, applied: Applied },
    /// The node asked is not the leader (any more): ask this one, if known. Not written.
    NotLeader { leader: Option<(u64, String)> },
    /// Not written, for this reason.
    Refused(String),
}

/// A membership change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Manage {
    /// Add node `id` at `addr` as a replica (a learner: it gets every write, votes on none).
    AddReplica { id: u64, addr: String },
    /// Make node `id` a voter.
    Promote { id: u64 },
    /// Take node `id` out of the cluster.
    Remove { id: u64 },
}

/// The TLS settings of both ends, from this node's certificate and the cluster's CA.
pub struct Tls {
    client: TlsConnector,
    server: TlsAcceptor,
    /// The address connections to other nodes leave from: the node's own cluster
    /// address, when it listens on one (not on all addresses).
    source: Option<std::net::IpAddr>,
}

impl Tls {
    pub fn new(
        cert: Vec<u8>,
        key_pem: &str,
        ca: Vec<u8>,
        source: Option<std::net::IpAddr>,
    ) -> Result<Tls, String> {
        use rustls_pki_types::pem::PemObject;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca))
            .map_err(|e| format!("the cluster CA: {e}"))?;
        let roots = Arc::new(roots);
        let chain = vec![CertificateDer::from(cert)];
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("the node key: {e}"))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| e.to_string())?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| e.to_string())?;
        Ok(Tls {
            client: TlsConnector::from(Arc::new(client)),
            server: TlsAcceptor::from(Arc::new(server)),
            source: source.filter(|ip| !ip.is_unspecified()),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.server.clone()
    }

    /// A connection to the node at `addr`, its certificate checked against the CA.
    pub async fn connect(&self, addr: &str, within: Duration) -> io::Result<Conn> {
        let name = ServerName::try_from(crate::server::ca::NODE_NAME)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let connecting = async {
            let tcp = match self.source {
                None => TcpStream::connect(addr).await?,
                Some(source) => {
                    let target = tokio::net::lookup_host(addr)
                        .await?
                        .find(|a| a.is_ipv4() == source.is_ipv4())
                        .ok_or_else(|| io::Error::other("no address of the node's family"))?;
                    let socket = if source.is_ipv4() {
                        tokio::net::TcpSocket::new_v4()?
                    } else {
                        tokio::net::TcpSocket::new_v6()?
                    };
                    socket.bind(std::net::SocketAddr::new(source, 0))?;
                    socket.connect(target).await?
                }
            };
            let _ = tcp.set_nodelay(true);
            self.client.connect(name, tcp).await
        };
        match tokio::time::timeout(within.min(HANDSHAKE), connecting).await {
            Ok(conn) => conn.map(Conn),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    }
}

/// A connection to another node.
pub struct Conn(tokio_rustls::client::TlsStream<TcpStream>);

impl Conn {
    /// Is the connection still open, with nothing unasked for waiting on it? One the other
    /// end closed (it restarted, or shut down) is not: a request sent on it would be lost
    /// without telling whether it arrived.
    pub fn is_open(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.0.get_ref().0.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Send `req` and read the answer, within `within`.
    pub async fn call(&mut self, req: &Request, within: Duration) -> io::Result<Response> {
        let bytes = serde_json::to_vec(req).map_err(io::Error::other)?;
        let exchange = async {
            write_frame(&mut self.0, &bytes).await?;
            let answer = read_frame(&mut self.0).await?;
            serde_json::from_slice(&answer).map_err(io::Error::other)
        };
        match tokio::time::timeout(within, exchange).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time")),
        }
    }
}

/// The connections in their TLS handshake, counted by source address.
#[derive(Clone, Default)]
pub struct Handshakes(Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>);

/// A connection's place among [`Handshakes`], given back when dropped.
pub struct HandshakeSlot {
    of: Handshakes,
    peer: IpAddr,
}

impl Handshakes {
    /// A place for a connection from `peer`, or `None` when that address or all of them
    /// together hold as many as they may: the connection is then closed unread.
    pub fn take(&self, peer: IpAddr) -> Option<HandshakeSlot> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let total: usize = held.values().sum();
        let mine = held.entry(peer).or_default();
        if *mine >= HANDSHAKES_PER_PEER || total >= HANDSHAKES_TOTAL {
            if *mine == 0 {
                held.remove(&peer);
            }
            return None;
        }
        *mine += 1;
        Some(HandshakeSlot {
            of: self.clone(),
            peer,
        })
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut held = self.of.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

/// One length-prefixed frame from `r`; an error past [`MAX_FRAME`].
pub async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let len = r.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut buf = vec![0; len];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

pub async fn write_frame(w: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    w.write_u32(len).await?;
    w.write_all(bytes).await?;
    w.flush().await
}

/// When each other node last answered an append (a heartbeat or entries) from this one.
pub type Contacts = Arc<std::sync::Mutex<std::collections::HashMap<u64, std::time::Instant>>>;

/// Makes Raft's connection to each other node.
#[derive(Clone)]
pub struct Network {
    pub tls: Arc<Tls>,
    pub contacts: Contacts,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            tls: self.tls.clone(),
            conn: None,
            contacts: self.contacts.clone(),
        }
    }
}

/// Raft's connection to one other node, opened again whenever it fails.
pub struct Peer {
    target: u64,
    addr: String,
    tls: Arc<Tls>,
    conn: Option<Conn>,
    contacts: Contacts,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl Peer {
    async fn call<E: std::error::Error>(
        &mut self,
        req: Request,
        within: Duration,
    ) -> Result<Response, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        let mut conn = match self.conn.take().filter(Conn::is_open) {
            Some(c) => c,
            None => self
                .tls
                .connect(&self.addr, within)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?,
        };
        match conn.call(&req, within).await {
            Ok(answer) => {
                self.conn = Some(conn);
                Ok(answer)
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    fn remote<T, E: std::error::Error>(
        &self,
        answer: Result<T, RaftError<u64, E>>,
    ) -> Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    RPCError::Network(NetworkError::new(&io::Error::other(
        "the node answered another request",
    )))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        match self.call(Request::Append(rpc), option.hard_ttl()).await? {
            Response::Append(answer) => {
                if answer.is_ok() {
                    self.contacts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(self.target, std::time::Instant::now());
                }
                self.remote(answer)
            }
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        match self.call(Request::Snapshot(rpc), option.hard_ttl()).await? {
            Response::Snapshot(answer) => self.remote(answer),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        match self.call(Request::Vote(rpc), option.hard_ttl()).await? {
            Response::Vote(answer) => self.remote(answer),
            _ => Err(unexpected()),
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_its_share_of_handshakes_and_all_together_the_total() {
        let handshakes = Handshakes::default();
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        let node: IpAddr = "192.0.2.2".parse().unwrap();
        let mut held: Vec<_> = (0..HANDSHAKES_PER_PEER)
            .map(|_| handshakes.take(stranger).unwrap())
            .collect();
        assert!(handshakes.take(stranger).is_none());
        let from_node = handshakes
            .take(node)
            .expect("another address still gets through");
        held.pop();
        assert!(
            handshakes.take(stranger).is_some(),
            "a finished handshake gives its place back"
        );
        drop((held, from_node));
        assert!(
            handshakes.0.lock().unwrap().is_empty(),
            "nothing kept once all are given back"
        );

        let many: Vec<_> = (0..HANDSHAKES_TOTAL)
            .map(|i| {
                let ip = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
                handshakes.take(ip).unwrap()
            })
            .collect();
        assert!(handshakes.take(node).is_none(), "no more than the total");
        assert!(!handshakes.0.lock().unwrap().contains_key(&node));
        drop(many);
        assert!(handshakes.take(node).is_some());
    }
}
