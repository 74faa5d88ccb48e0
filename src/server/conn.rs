//! One client connection: framing, limits, StartTLS, and the Notice of Disconnection.
//!
//! Reads messages with the codec, runs connection-changing operations (Bind, StartTLS,
//! Abandon, Unbind) in order, and spawns every other operation so several can be in
//! flight; their responses come back through a channel and are written here under the
//! write timeout. Malformed input ends the connection with a Notice of Disconnection.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapExtendedResponse, LdapMsg, LdapOp, LdapResult, LdapResultCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ldap::extended::OID_STARTTLS;
use crate::ldap::result::{LdapError, response_op, success};
use crate::ldap::session::{Principal, Session, Transport};
use crate::ldap::{self, OpContext, State};

const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";
const MAX_BER_DEPTH: usize = 64;

/// Shared by every connection: the LDAP state, TLS, and the shutdown signal.
#[derive(Clone)]
pub struct ConnShared {
    pub state: State,
    pub tls: Option<TlsAcceptor>,
    pub shutdown: CancellationToken,
}

/// The span a connection's events are logged in: its peer, and the transport, recorded
/// once known (`ldap`, `ldaps`, `starttls`, `ldapi uid=U gid=G`).
pub fn span(peer: &str) -> tracing::Span {
    tracing::info_span!("conn", peer, transport = tracing::field::Empty)
}

/// Serve a plain LDAP connection, upgrading it when the client asks for StartTLS.
pub async fn serve_plain(shared: ConnShared, stream: TcpStream) {
    tracing::Span::current().record("transport", "ldap");
    let mut session = Session::new(Transport::Plain);
    if let Some(stream) = serve(&shared, stream, &mut session).await {
        // RFC 4513 §3.1.1: the identity does not carry over the upgrade.
        handshake(shared, stream, "starttls").await;
    }
}

/// Serve an LDAPS connection: the TLS handshake happens here, under its timeout.
pub async fn serve_tls(shared: ConnShared, stream: TcpStream) {
    handshake(shared, stream, "ldaps").await;
}

async fn handshake(shared: ConnShared, stream: TcpStream, transport: &'static str) {
    tracing::Span::current().record("transport", transport);
    let Some(acceptor) = shared.tls.clone() else {
        return;
    };
    let timeout = shared.state.config.limits.tls_handshake_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let mut session = Session::new(Transport::Tls);
            serve(&shared, tls, &mut session).await;
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

/// Serve a connection on the LDAPI socket with the peer's credentials.
pub async fn serve_local(shared: ConnShared, stream: tokio::net::UnixStream) {
    let Ok(cred) = stream.peer_cred() else {
        return;
    };
    let transport = Transport::Ldapi {
        uid: cred.uid(),
        gid: cred.gid(),
    };
    tracing::Span::current().record(
        "transport",
        format!("ldapi uid={} gid={}", cred.uid(), cred.gid()).as_str(),
    );
    let mut session = Session::new(transport);
    serve(&shared, stream, &mut session).await;
}

/// Run the message loop. Returns the stream when the client asked for StartTLS and the
/// request was accepted; None when the connection is finished.
async fn serve<S>(shared: &ConnShared, stream: S, session: &mut Session) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.state.config.limits;
    let (read_half, write_half) = tokio::io::split(stream);
    let mut reader = FramedRead::new(read_half, codec(limits.max_message_bytes_anonymous));
    let mut writer = FramedWrite::new(write_half, LdapCodec::new(None, None));
    let mut conn = Conn {
        shared: shared.clone(),
        ops: JoinSet::new(),
        cancels: HashMap::new(),
        channel: mpsc::channel(64),
    };
    let end = conn.run(&mut reader, &mut writer, session).await;
    conn.ops.abort_all();
    match end {
        End::StartTls => {
            let read_half = reader.into_inner();
            let write_half = writer.into_inner();
            Some(read_half.unsplit(write_half))
        }
        End::Closed => None,
    }
}

enum End {
    Closed,
    StartTls,
}

struct Conn {
    shared: ConnShared,
    ops: JoinSet<i32>,
    cancels: HashMap<i32, CancellationToken>,
    channel: (mpsc::Sender<LdapMsg>, mpsc::Receiver<LdapMsg>),
}

type Reader<S> = FramedRead<ReadHalf<S>, FrameCodec>;
type Writer<S> = FramedWrite<WriteHalf<S>, LdapCodec>;

impl Conn {
    async fn run<S>(
        &mut self,
        reader: &mut Reader<S>,
        writer: &mut Writer<S>,
        session: &mut Session,
    ) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.shared.state.config.limits.clone();
        let shutdown = self.shared.shutdown.clone();
        loop {
            let can_read = self.ops.len() < limits.max_outstanding_ops;
            // Reads come before queued responses, so an Abandon or Unbind is seen while a
            // large search is still streaming; reading stops at the outstanding-op cap.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.drain(writer).await;
                    let notice = notice(LdapResultCode::Unavailable, "server is shutting down");
                    let _ = self.write(writer, notice).await;
                    return End::Closed;
                }
                read = tokio::time::timeout(limits.idle_timeout, reader.next()), if can_read => {
                    let msg = match read {
                        Err(_) if self.ops.is_empty() => return End::Closed,
                        Err(_) => continue,
                        Ok(None) => return End::Closed,
                        Ok(Some(Err(e))) => {
                            tracing::debug!(error = %e, "undecodable message, disconnecting");
                            let n = notice(LdapResultCode::ProtocolError, "malformed or oversized message");
                            let _ = self.write(writer, n).await;
                            return End::Closed;
                        }
                        Ok(Some(Ok(msg))) => msg,
                    };
                    match self.handle(msg, reader, writer, session).await {
                        Step::Continue => {}
                        Step::End(end) => return end,
                    }
                }
                Some(msg) = self.channel.1.recv() => {
                    if !self.write(writer, msg).await {
                        return End::Closed;
                    }
                }
                Some(done) = self.ops.join_next(), if !self.ops.is_empty() => {
                    if let Ok(msgid) = done {
                        self.cancels.remove(&msgid);
                    }
                }
            }
        }
    }

    async fn handle<S>(
        &mut self,
        msg: LdapMsg,
        reader: &mut Reader<S>,
        writer: &mut Writer<S>,
        session: &mut Session,
    ) -> Step
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if msg.msgid <= 0 {
            let n = notice(LdapResultCode::ProtocolError, "message id must be positive");
            let _ = self.write(writer, n).await;
            return Step::End(End::Closed);
        }
        match msg.op {
            LdapOp::UnbindRequest => Step::End(End::Closed),
            LdapOp::AbandonRequest(id) => {
                if let Some(token) = self.cancels.remove(&id) {
                    token.cancel();
                }
                Step::Continue
            }
            LdapOp::BindRequest(req) => {
                // RFC 4511 §4.2.1: finish outstanding operations before a bind.
                self.drain(writer).await;
                let res = ldap::bind::bind(&self.shared.state, session, &req).await;
                let limits = &self.shared.state.config.limits;
                let max = if session.principal == Principal::Anonymous {
                    limits.max_message_bytes_anonymous
                } else {
                    limits.max_message_bytes
                };
                *reader.decoder_mut() = codec(max);
                let op = LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse {
                    res,
                    saslcreds: None,
                });
                self.reply(writer, msg.msgid, op).await
            }
            LdapOp::ExtendedRequest(req) if req.name == OID_STARTTLS => {
                let refusal = if session.transport != Transport::Plain {
                    Some(LdapError::new(
                        LdapResultCode::OperationsError,
                        "TLS is already in effect or not applicable",
                    ))
                } else if self.shared.tls.is_none() {
                    Some(LdapError::new(
                        LdapResultCode::Unavailable,
                        "TLS is not configured",
                    ))
                } else if !self.ops.is_empty() {
                    Some(LdapError::new(
                        LdapResultCode::OperationsError,
                        "operations are outstanding",
                    ))
                } else if !reader.read_buffer().is_empty() {
                    // CVE-2011-0411 class: never carry plaintext into the TLS session.
                    Some(LdapError::new(
                        LdapResultCode::OperationsError,
                        "data was sent after the StartTLS request",
                    ))
                } else {
                    None
                };
                let res = match &refusal {
                    Some(e) => e.clone().into_result(),
                    None => success(),
                };
                let op = LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res,
                    name: Some(OID_STARTTLS.to_string()),
                    value: None,
                });
                if let Step::End(end) = self.reply(writer, msg.msgid, op).await {
                    return Step::End(end);
                }
                if refusal.is_some() {
                    return Step::Continue;
                }
                Step::End(End::StartTls)
            }
            op if response_op(&op, success()).is_none() => {
                let n = notice(LdapResultCode::ProtocolError, "unexpected message type");
                let _ = self.write(writer, n).await;
                Step::End(End::Closed)
            }
            op => {
                let token = CancellationToken::new();
                self.cancels.insert(msg.msgid, token.clone());
                let ctx = OpContext {
                    state: self.shared.state.clone(),
                    session: session.clone(),
                    msgid: msg.msgid,
                    controls: msg.ctrl,
                    out: self.channel.0.clone(),
                    cancel: token,
                };
                let msgid = msg.msgid;
                let op = async move {
                    ldap::dispatch(ctx, op).await;
                    msgid
                };
                self.ops.spawn(op.in_current_span());
                Step::Continue
            }
        }
    }

    async fn reply<S>(&mut self, writer: &mut Writer<S>, msgid: i32, op: LdapOp) -> Step
    where
        S: AsyncWrite + Unpin,
    {
        let msg = LdapMsg {
            msgid,
            op,
            ctrl: Vec::new(),
        };
        if self.write(writer, msg).await {
            Step::Continue
        } else {
            Step::End(End::Closed)
        }
    }

    /// Let in-flight operations finish, writing their responses.
    async fn drain<S>(&mut self, writer: &mut Writer<S>)
    where
        S: AsyncWrite + Unpin,
    {
        while !self.ops.is_empty() {
            tokio::select! {
                Some(msg) = self.channel.1.recv() => {
                    if !self.write(writer, msg).await {
                        self.ops.abort_all();
                    }
                }
                Some(done) = self.ops.join_next() => {
                    if let Ok(msgid) = done {
                        self.cancels.remove(&msgid);
                    }
                }
            }
        }
        while let Ok(msg) = self.channel.1.try_recv() {
            if !self.write(writer, msg).await {
                return;
            }
        }
    }

    /// Write one message under the write timeout; false if the client is gone or stalled.
    async fn write<S>(&self, writer: &mut Writer<S>, msg: LdapMsg) -> bool
    where
        S: AsyncWrite + Unpin,
    {
        let timeout: Duration = self.shared.state.config.limits.write_timeout;
        matches!(
            tokio::time::timeout(timeout, writer.send(msg)).await,
            Ok(Ok(()))
        )
    }
}

enum Step {
    Continue,
    End(End),
}

fn codec(max_bytes: usize) -> FrameCodec {
    FrameCodec {
        inner: LdapCodec::new(Some(max_bytes), Some(MAX_BER_DEPTH)),
        max_bytes,
    }
}

/// The codec with the checks it lacks up front: every LDAPMessage is a SEQUENCE with a
/// definite length of at most four length bytes. Anything else can never become a valid
/// message, so it is refused at once instead of waiting for more bytes (slapd does the same).
/// A declared length over the limit is refused before the body arrives.
pub struct FrameCodec {
    inner: LdapCodec,
    max_bytes: usize,
}

impl Decoder for FrameCodec {
    type Item = LdapMsg;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, std::io::Error> {
        let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
        if buf.first().is_some_and(|&tag| tag != 0x30) {
            return Err(bad("message is not a SEQUENCE"));
        }
        if let Some(&len) = buf.get(1) {
            if len == 0x80 {
                return Err(bad("indefinite length"));
            }
            if len & 0x80 != 0 {
                let n = usize::from(len & 0x7f);
                if n > 4 {
                    return Err(bad("length field too long"));
                }
                if let Some(bytes) = buf.get(2..2 + n) {
                    let declared = bytes
                        .iter()
                        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                    if declared > self.max_bytes {
                        return Err(bad("message too large"));
                    }
                }
            }
        }
        self.inner.decode(buf)
    }
}

/// RFC 4511 §4.4.1: unsolicited, msgid 0, then the server closes the connection.
pub fn notice(code: LdapResultCode, message: &str) -> LdapMsg {
    LdapMsg {
        msgid: 0,
        op: LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: LdapResult {
                code,
                matcheddn: String::new(),
                message: message.to_string(),
                referral: Vec::new(),
            },
            name: Some(NOTICE_OF_DISCONNECTION.to_string()),
            value: None,
        }),
        ctrl: Vec::new(),
    }
}
