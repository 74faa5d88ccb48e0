//! One client connection: framing, limits, StartTLS, and the Notice of Disconnection.
//!
//! Reads messages with the codec, refuses unsupported critical controls for every
//! operation, runs connection-changing operations (Bind, StartTLS, Abandon, Unbind) in
//! order, and spawns every other operation so several can be in flight; their responses
//! come back through a channel and are written here under the write timeout. Malformed
//! input, an idle client and shutdown end the connection with a Notice of Disconnection,
//! followed by a short lingering close so the notice is not lost to a TCP reset.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapExtendedResponse, LdapMsg, LdapOp, LdapResult, LdapResultCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dit::DitError;
use crate::dit::caller::Principal;
use crate::ldap::oid::{NOTICE_OF_DISCONNECTION, STARTTLS as OID_STARTTLS};
use crate::ldap::result::{failure, response_op, success};
use crate::ldap::session::{Session, Transport};
use crate::ldap::{self, OpContext, Outgoing, ber};
use crate::state::State;
const MAX_BER_DEPTH: usize = 64;
/// After a notice: how long to keep reading (and discarding) what the client still sends,
/// at most, in total and without any data arriving, and how much of it.
const LINGER_TOTAL: Duration = Duration::from_secs(2);
const LINGER_QUIET: Duration = Duration::from_millis(250);
const LINGER_BYTES: usize = 1 << 20;
/// Queued responses written before one flush, at most.
const MAX_BATCH: usize = 64;

/// Shared by every connection: the LDAP state, TLS, and the shutdown signal.
#[derive(Clone)]
pub struct ConnShared {
    pub state: State,
    pub tls: Option<TlsAcceptor>,
    pub shutdown: CancellationToken,
    pub pollers: Pollers,
}

/// How many connections are in their busy-poll window (`limits.busy_poll`). Only a
/// connection that is alone in it polls: with several clients active at once requests
/// arrive often enough to keep the CPU awake, and the polling would only take CPU from
/// the clients and the other operations.
#[derive(Clone, Default)]
pub struct Pollers(Arc<AtomicUsize>);

impl Pollers {
    fn enter(&self) -> Window<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Window(&self.0)
    }
}

/// One connection's place in `Pollers`, given back when dropped.
struct Window<'a>(&'a AtomicUsize);

impl Window<'_> {
    fn alone(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 1
    }
}

impl Drop for Window<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The span a connection's events are logged in: its peer, and the transport, recorded
/// once known (`ldap`, `ldaps`, `starttls`, `ldapi uid=U gid=G`).
pub fn span(peer: &str) -> tracing::Span {
    tracing::info_span!("conn", peer, transport = tracing::field::Empty)
}

/// Serve a plain LDAP connection, upgrading it when the client asks for StartTLS.
pub async fn serve_plain(shared: ConnShared, stream: TcpStream) {
    tracing::Span::current().record("transport", "ldap");
    let peer = stream.peer_addr().ok().map(|a| a.ip());
    let mut session = Session::new(Transport::Plain, peer);
    if let Some(stream) = serve(&shared, stream, &mut session).await {
        // RFC 4513 §4 lets TLS establishment reset the authorization state: it does here.
        handshake(shared, stream, "starttls").await;
    }
}

/// Serve an LDAPS connection: the TLS handshake happens here, under its timeout.
pub async fn serve_tls(shared: ConnShared, stream: TcpStream) {
    handshake(shared, stream, "ldaps").await;
}

async fn handshake(shared: ConnShared, stream: TcpStream, transport: &'static str) {
    let peer = stream.peer_addr().ok().map(|a| a.ip());
    tracing::Span::current().record("transport", transport);
    let Some(acceptor) = shared.tls.clone() else {
        return;
    };
    let timeout = shared.state.config.limits.tls_handshake_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let mut session = Session::new(Transport::Tls, peer);
            session.client_cert = crate::server::tls::client_cert(tls.get_ref().1);
            serve(&shared, tls, &mut session).await;
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

/// Serve any byte stream as a connection over `transport` (no TLS upgrade): for driving the
/// session state machine directly, as the fuzzer does.
pub async fn serve_stream<S>(shared: &ConnShared, stream: S, transport: Transport)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut session = Session::new(transport, None);
    let _ = serve(shared, stream, &mut session).await;
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
    let mut session = Session::new(transport, None);
    serve(&shared, stream, &mut session).await;
}

/// Run the message loop. Returns the stream when the client asked for StartTLS and the
/// request was accepted; None when the connection is finished.
async fn serve<S>(shared: &ConnShared, stream: S, session: &mut Session) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.state.config.limits;
    session
        .paged
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .set_limit(limits.max_paged_searches_per_connection);
    let (read_half, write_half) = tokio::io::split(stream);
    let mut reader = FramedRead::new(read_half, codec(limits.max_message_bytes_anonymous));
    let mut writer = FramedWrite::new(write_half, ResponseCodec(LdapCodec::new(None, None)));
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
        End::Noticed => {
            linger(reader, writer).await;
            None
        }
    }
}

enum End {
    Closed,
    /// Closed after a Notice of Disconnection was written.
    Noticed,
    StartTls,
}

struct Conn {
    shared: ConnShared,
    ops: JoinSet<i32>,
    cancels: HashMap<i32, CancellationToken>,
    channel: (mpsc::Sender<Outgoing>, mpsc::Receiver<Outgoing>),
}

type Reader<S> = FramedRead<ReadHalf<S>, FrameCodec>;
type Writer<S> = FramedWrite<WriteHalf<S>, ResponseCodec>;

/// The codec for what the server writes: messages, and search entries encoded already.
pub struct ResponseCodec(LdapCodec);

impl Encoder<Outgoing> for ResponseCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        match item {
            Outgoing::Msg(msg) => self.0.encode(msg, dst),
            Outgoing::Encoded(bytes) => {
                dst.extend_from_slice(&bytes);
                Ok(())
            }
        }
    }
}

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
        // When the connection last read a request or wrote an answer.
        let mut active = Instant::now();
        let pollers = self.shared.pollers.clone();
        loop {
            let can_read = self.ops.len() < limits.max_outstanding_ops;
            // Answered, nothing else in flight: the client's next request is likely close.
            // Polling for it a moment beats letting the thread sleep, as waking a sleeping
            // CPU takes about as long as a search (tens of µs on a VM).
            let polling = (can_read && self.ops.is_empty() && !limits.busy_poll.is_zero())
                .then(|| active + limits.busy_poll)
                .filter(|until| *until > Instant::now())
                .map(|until| (until, pollers.enter()));
            // Unauthenticated sockets are cheap to open: they get the shorter wait.
            let idle = if session.principal == Principal::Anonymous {
                limits.idle_timeout_anonymous
            } else {
                limits.idle_timeout
            };
            // Reads come before queued responses, so an Abandon or Unbind is seen while a
            // large search is still streaming; reading stops at the outstanding-op cap.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    // The operations in hand finish and are answered before the notice.
                    self.drain(writer).await;
                    return self
                        .disconnect(writer, LdapResultCode::Unavailable, "server is shutting down")
                        .await;
                }
                read = tokio::time::timeout(idle, reader.next()), if can_read => {
                    // Out of the window before the operation runs (a bind may wait long).
                    drop(polling);
                    let request = match read {
                        Err(_) if self.ops.is_empty() => {
                            return self
                                .disconnect(writer, LdapResultCode::AdminLimitExceeded, "idle timeout")
                                .await;
                        }
                        Err(_) => continue,
                        Ok(None) => return End::Closed,
                        Ok(Some(Err(e))) => {
                            if let Some(other) = foreign(&e) {
                                // Not an LDAP client at all: a notice would mean nothing to
                                // it, so just close, and tell the operator what happened.
                                tracing::warn!(event = "foreign-protocol", "{other}");
                                return End::Closed;
                            }
                            tracing::debug!(error = %e, "undecodable message, disconnecting");
                            return self
                                .disconnect(
                                    writer,
                                    LdapResultCode::ProtocolError,
                                    "malformed or oversized message",
                                )
                                .await;
                        }
                        Ok(Some(Ok(request))) => request,
                    };
                    match self.handle(request, reader, writer, session).await {
                        Step::Continue => active = Instant::now(),
                        Step::End(end) => return end,
                    }
                }
                Some(msg) = self.channel.1.recv() => {
                    if !self.write_queued(writer, msg).await {
                        return End::Closed;
                    }
                    active = Instant::now();
                }
                Some(done) = self.ops.join_next(), if !self.ops.is_empty() => {
                    if !self.joined(done) {
                        return self.panicked(writer).await;
                    }
                    active = Instant::now();
                }
                () = busy_poll(polling.as_ref()), if polling.is_some() => {}
            }
        }
    }

    async fn handle<S>(
        &mut self,
        request: Request,
        reader: &mut Reader<S>,
        writer: &mut Writer<S>,
        session: &mut Session,
    ) -> Step
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Request { msg, critical } = request;
        if msg.msgid <= 0 {
            let end = self
                .disconnect(
                    writer,
                    LdapResultCode::ProtocolError,
                    "message id must be positive",
                )
                .await;
            return Step::End(end);
        }
        // RFC 4511 §4.1.11: the operation is not performed. Abandon has no response, so it
        // is just dropped; Unbind and response messages sent by a client go on below.
        if let Some(refusal) = ldap::unsupported_critical(&msg.op, &critical) {
            if let LdapOp::AbandonRequest(_) = msg.op {
                return Step::Continue;
            }
            if let Some(op) = response_op(&msg.op, failure(refusal)) {
                return self.reply(writer, msg.msgid, op).await;
            }
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
                // RFC 4511 §4.2.1: finish outstanding operations before a bind; they were
                // given the old identity when they started, so no answer mixes the two.
                if !self.drain(writer).await {
                    return Step::End(self.panicked(writer).await);
                }
                let before = session.principal.clone();
                let bind = AssertUnwindSafe(async {
                    #[cfg(feature = "fault-injection")]
                    ldap::fault::bind(&req);
                    ldap::bind::bind(&self.shared.state, session, &req).await
                });
                let Ok(res) = bind.catch_unwind().await else {
                    return Step::End(self.panicked(writer).await);
                };
                if session.principal != before {
                    // Cookies are bound to the identity: the old ones can never be used.
                    session
                        .paged
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear();
                }
                let limits = &self.shared.state.config.limits;
                let max = if session.principal == Principal::Anonymous {
                    limits.max_message_bytes_anonymous
                } else {
                    limits.max_message_bytes
                };
                reader.decoder_mut().set_max_bytes(max);
                let op = LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse {
                    res,
                    saslcreds: None,
                });
                self.reply(writer, msg.msgid, op).await
            }
            LdapOp::ExtendedRequest(req) if req.name == OID_STARTTLS => {
                let mut injected = false;
                let refusal = if session.transport != Transport::Plain {
                    Some(DitError::new(
                        LdapResultCode::OperationsError,
                        "TLS is already in effect or not applicable",
                    ))
                } else if self.shared.tls.is_none() {
                    Some(DitError::new(
                        LdapResultCode::Unavailable,
                        "TLS is not configured",
                    ))
                } else if !reader.read_buffer().is_empty() {
                    // CVE-2011-0411 class: a client MUST NOT send anything before the
                    // response (RFC 4511 §4.14.1), so bytes already here were injected
                    // by someone in the path. Nothing of them is processed: the
                    // connection ends below.
                    tracing::warn!(
                        event = "starttls-injection",
                        bytes = reader.read_buffer().len(),
                        "data followed the StartTLS request in the clear; closing"
                    );
                    injected = true;
                    Some(DitError::new(
                        LdapResultCode::OperationsError,
                        "data was sent after the StartTLS request",
                    ))
                } else if !self.ops.is_empty() {
                    Some(DitError::new(
                        LdapResultCode::OperationsError,
                        "operations are outstanding",
                    ))
                } else {
                    None
                };
                let res = match &refusal {
                    Some(e) => failure(e.clone()),
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
                if injected {
                    let end = self
                        .disconnect(
                            writer,
                            LdapResultCode::ProtocolError,
                            "data was sent after the StartTLS request",
                        )
                        .await;
                    return Step::End(end);
                }
                if refusal.is_some() {
                    return Step::Continue;
                }
                Step::End(End::StartTls)
            }
            op if response_op(&op, success()).is_none() => {
                let end = self
                    .disconnect(
                        writer,
                        LdapResultCode::ProtocolError,
                        "unexpected message type",
                    )
                    .await;
                Step::End(end)
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

    /// Write a Notice of Disconnection; the connection then closes.
    async fn disconnect<S>(&self, writer: &mut Writer<S>, code: LdapResultCode, why: &str) -> End
    where
        S: AsyncWrite + Unpin,
    {
        if self.write(writer, notice(code, why)).await {
            End::Noticed
        } else {
            End::Closed
        }
    }

    /// Let in-flight operations finish, writing their responses; false if one panicked.
    async fn drain<S>(&mut self, writer: &mut Writer<S>) -> bool
    where
        S: AsyncWrite + Unpin,
    {
        let mut healthy = true;
        while !self.ops.is_empty() {
            tokio::select! {
                Some(msg) = self.channel.1.recv() => {
                    if !self.write(writer, msg).await {
                        self.ops.abort_all();
                    }
                }
                Some(done) = self.ops.join_next() => {
                    healthy &= self.joined(done);
                }
            }
        }
        while let Ok(msg) = self.channel.1.try_recv() {
            if !self.write(writer, msg).await {
                break;
            }
        }
        healthy
    }

    /// Book-keeping for a finished operation task; false if it panicked.
    fn joined(&mut self, done: Result<i32, tokio::task::JoinError>) -> bool {
        match done {
            Ok(msgid) => {
                self.cancels.remove(&msgid);
                true
            }
            // Aborted by us (the connection is ending anyway).
            Err(e) => !e.is_panic(),
        }
    }

    /// A request handler panicked: the tokio runtime caught it, and this connection ends
    /// (its state may be half-updated), with a notice; other connections go on.
    async fn panicked<S>(&mut self, writer: &mut Writer<S>) -> End
    where
        S: AsyncWrite + Unpin,
    {
        tracing::error!(
            event = "panic",
            "a request handler panicked; closing this connection"
        );
        self.ops.abort_all();
        self.disconnect(writer, LdapResultCode::Other, "internal server error")
            .await
    }

    /// Write `first` and whatever else is queued already, flushed once, under the write
    /// timeout: a search's entries and its result then share TLS records and system calls.
    async fn write_queued<S>(&mut self, writer: &mut Writer<S>, first: Outgoing) -> bool
    where
        S: AsyncWrite + Unpin,
    {
        let timeout: Duration = self.shared.state.config.limits.write_timeout;
        let receiver = &mut self.channel.1;
        let batch = async {
            writer.feed(first).await?;
            for _ in 1..MAX_BATCH {
                let Ok(msg) = receiver.try_recv() else {
                    break;
                };
                writer.feed(msg).await?;
            }
            writer.flush().await
        };
        matches!(tokio::time::timeout(timeout, batch).await, Ok(Ok(())))
    }

    /// Write one message under the write timeout; false if the client is gone or stalled.
    async fn write<S>(&self, writer: &mut Writer<S>, msg: impl Into<Outgoing>) -> bool
    where
        S: AsyncWrite + Unpin,
    {
        let timeout: Duration = self.shared.state.config.limits.write_timeout;
        matches!(
            tokio::time::timeout(timeout, writer.send(msg.into())).await,
            Ok(Ok(()))
        )
    }
}

enum Step {
    Continue,
    End(End),
}

/// Until `until`, hand the thread back to the runtime over and over instead of letting
/// it sleep: the CPU stays awake, so a request arriving meanwhile is read by the select
/// this runs in without first waking a sleeping CPU. When other connections are in their
/// window too, it only waits. (Yielding the CPU to other threads each round as well,
/// `sched_yield`, was measured and dropped: it cost more than it gave.)
async fn busy_poll(polling: Option<&(Instant, Window<'_>)>) {
    let Some((until, window)) = polling else {
        return;
    };
    while Instant::now() < *until {
        if !window.alone() {
            tokio::time::sleep_until((*until).into()).await;
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// The frame decoder as connections use it, capped at `max_bytes` a message.
pub fn codec(max_bytes: usize) -> FrameCodec {
    FrameCodec {
        inner: LdapCodec::new(Some(max_bytes), Some(MAX_BER_DEPTH)),
        max_bytes,
        first: true,
    }
}

/// One decoded request, with what the codec does not keep.
pub struct Request {
    pub msg: LdapMsg,
    /// OIDs of the controls marked critical, read from the raw bytes: the codec drops the
    /// criticality of some controls it decodes (Server Side Sort, DirSync).
    pub critical: Vec<String>,
}

/// The codec with the checks it lacks up front: every LDAPMessage is a SEQUENCE with a
/// definite length of at most four length bytes. Anything else can never become a valid
/// message, so it is refused at once instead of waiting for more bytes (slapd does the same).
/// A declared length over the limit is refused before the body arrives. Once a whole
/// message is buffered, its message id range and control criticality are read from the
/// raw bytes before the codec decodes it.
pub struct FrameCodec {
    inner: LdapCodec,
    max_bytes: usize,
    /// Nothing decoded yet: the bytes are the first the client sent, where another
    /// protocol (TLS, HTTP) is recognised.
    first: bool,
}

impl FrameCodec {
    /// A new message size cap (after a bind), for the messages still to come.
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.inner = LdapCodec::new(Some(max_bytes), Some(MAX_BER_DEPTH));
        self.max_bytes = max_bytes;
    }
}

impl Decoder for FrameCodec {
    type Item = Request;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, std::io::Error> {
        if buf.first().is_some_and(|&tag| tag != 0x30) {
            if let Some(other) = Foreign::detect(buf).filter(|_| self.first) {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, other));
            }
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
        let Some((frame, _)) = ber::read(buf) else {
            // Not all there yet; the codec may still refuse what it has.
            return match self.inner.decode(buf)? {
                None => Ok(None),
                Some(_) => Err(bad("inconsistent message framing")),
            };
        };
        let critical = scan(frame.content).ok_or_else(|| bad("malformed message envelope"))?;
        match self.inner.decode(buf)? {
            Some(msg) => {
                self.first = false;
                Ok(Some(Request { msg, critical }))
            }
            None => Err(bad("inconsistent message framing")),
        }
    }
}

/// Another protocol spoken at the LDAP port, recognised from its first bytes (389-ds logs
/// the same hint): a TLS client that should have used ldaps:// or StartTLS, or a web client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    TlsClientHello,
    Http,
}

/// Request methods of HTTP/1.x, as the first bytes of a request.
const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
    b"PRI * HTTP/2",
];

impl Foreign {
    /// What `buf` (not an LDAPMessage) starts like, if it is one of the usual mistakes.
    /// A prefix too short to tell is taken as what it could still become.
    pub fn detect(buf: &[u8]) -> Option<Foreign> {
        // A TLS record: handshake (22), then the version's major byte 3.
        if buf.first() == Some(&0x16) && buf.get(1).is_none_or(|b| *b == 0x03) {
            return Some(Foreign::TlsClientHello);
        }
        let http = HTTP_METHODS.iter().any(|m| {
            let n = m.len().min(buf.len());
            n > 0 && buf[..n] == m[..n]
        });
        http.then_some(Foreign::Http)
    }

    pub fn hint(self) -> &'static str {
        match self {
            Foreign::TlsClientHello => {
                "TLS ClientHello on the plaintext LDAP port; use ldaps:// on the LDAPS port, or StartTLS"
            }
            Foreign::Http => "HTTP request on the LDAP port; this is not a web server",
        }
    }
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.hint())
    }
}

impl std::error::Error for Foreign {}

/// The foreign protocol a decode error reports, if that is what it is.
fn foreign(e: &std::io::Error) -> Option<Foreign> {
    e.get_ref()?.downcast_ref::<Foreign>().copied()
}

fn bad(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}

/// Check the envelope of one LDAPMessage (its content, after the SEQUENCE header) and
/// return the OIDs of its critical controls; None if it is not shaped like a message:
///
/// ```text
/// LDAPMessage ::= SEQUENCE { messageID INTEGER (0..maxInt), protocolOp, controls [0] OPTIONAL }
/// Control ::= SEQUENCE { controlType OCTET STRING, criticality BOOLEAN DEFAULT FALSE,
///                        controlValue OCTET STRING OPTIONAL }
/// ```
///
/// The codec silently truncates message ids to 32 bits, so the range is checked here.
fn scan(message: &[u8]) -> Option<Vec<String>> {
    let (msgid, rest) = ber::read(message)?;
    if msgid.tag != 0x02 || !(1..=8).contains(&msgid.content.len()) {
        return None;
    }
    // Two's complement, big-endian.
    let sign = if msgid.content.first().is_some_and(|b| b & 0x80 != 0) {
        -1i64
    } else {
        0
    };
    let value = msgid
        .content
        .iter()
        .fold(sign, |acc, b| (acc << 8) | i64::from(*b));
    if !(0..=i64::from(i32::MAX)).contains(&value) {
        return None;
    }
    let (_op, rest) = ber::read(rest)?;
    let mut critical = Vec::new();
    let Some((controls, _)) = ber::read(rest).filter(|(c, _)| c.tag == 0xa0) else {
        // No controls (anything else after the operation is ignored, as the codec does).
        return Some(critical);
    };
    let mut body = controls.content;
    while !body.is_empty() {
        let (control, next) = ber::read(body)?;
        body = next;
        let (oid, after) = ber::read(control.content).filter(|_| control.tag == 0x30)?;
        if oid.tag != 0x04 {
            return None;
        }
        // BER: any non-zero octet is TRUE.
        let is_critical = ber::read(after)
            .is_some_and(|(flag, _)| flag.tag == 0x01 && flag.content.iter().any(|b| *b != 0));
        if is_critical {
            critical.push(String::from_utf8_lossy(oid.content).into_owned());
        }
    }
    Some(critical)
}

/// A lingering close after a Notice of Disconnection: close our side, then read and
/// discard what the client still sends, for a moment. Closing a socket with unread input
/// makes the kernel send a reset, which can destroy the notice before the client reads it.
async fn linger<S>(reader: Reader<S>, mut writer: Writer<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if tokio::time::timeout(LINGER_QUIET, writer.close())
        .await
        .is_err()
    {
        return;
    }
    let mut read_half = reader.into_inner();
    let discard = async {
        let mut sink = vec![0u8; 16 * 1024];
        let mut total = 0;
        while total < LINGER_BYTES {
            match tokio::time::timeout(LINGER_QUIET, read_half.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => total += n,
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TOTAL, discard).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(msgid: &[u8], controls: &[Vec<u8>]) -> Vec<u8> {
        let mut body = ber::write(0x02, msgid);
        body.extend(ber::write(0x42, b""));
        if !controls.is_empty() {
            body.extend(ber::write(0xa0, &controls.concat()));
        }
        ber::write(0x30, &body)
    }

    fn control(oid: &str, flag: Option<u8>, value: Option<&[u8]>) -> Vec<u8> {
        let mut body = ber::write(0x04, oid.as_bytes());
        if let Some(flag) = flag {
            body.extend(ber::write(0x01, &[flag]));
        }
        if let Some(value) = value {
            body.extend(ber::write(0x04, value));
        }
        ber::write(0x30, &body)
    }

    fn decode(bytes: &[u8]) -> Result<Option<Request>, std::io::Error> {
        let mut buf = BytesMut::from(bytes);
        codec(1 << 16).decode(&mut buf)
    }

    #[test]
    fn criticality_comes_from_the_raw_control() {
        let controls = [
            control(
                "1.2.840.113556.1.4.473",
                Some(0xff),
                Some(b"\x30\x04\x30\x02\x04\x00"),
            ),
            control("1.2.3.4", Some(0x00), None),
            control("1.2.3.5", None, Some(b"v")),
            // BER: any non-zero octet is TRUE.
            control("1.2.3.6", Some(0x01), None),
        ];
        let bytes = message(&[7], &controls);
        let request = decode(&bytes).unwrap().unwrap();
        assert_eq!(request.msg.msgid, 7);
        assert_eq!(request.critical, ["1.2.840.113556.1.4.473", "1.2.3.6"]);
        assert!(
            decode(&message(&[7], &[]))
                .unwrap()
                .unwrap()
                .critical
                .is_empty()
        );
    }

    #[test]
    fn message_ids_outside_the_ldap_range_are_refused() {
        for bad in [
            &[0x01, 0, 0, 0, 1][..],
            &[0x00, 0x80, 0, 0, 0],
            &[0xff],
            &[],
        ] {
            assert!(decode(&message(bad, &[])).is_err(), "{bad:?}");
        }
        // 0 is in range for the codec; the connection refuses it as reserved for notices.
        for good in [&[0x00][..], &[0x7f, 0xff, 0xff, 0xff], &[0x00, 0x00, 0x01]] {
            assert!(decode(&message(good, &[])).unwrap().is_some(), "{good:?}");
        }
    }

    #[test]
    fn other_protocols_are_recognised_in_the_first_bytes_only() {
        let kind = |bytes: &[u8]| {
            let mut buf = BytesMut::from(bytes);
            let err = codec(1 << 16).decode(&mut buf).err()?;
            foreign(&err)
        };
        assert_eq!(
            kind(&[0x16, 0x03, 0x01, 0x02, 0x00]),
            Some(Foreign::TlsClientHello)
        );
        assert_eq!(kind(&[0x16]), Some(Foreign::TlsClientHello));
        assert_eq!(kind(b"GET / HTTP/1.1\r\n"), Some(Foreign::Http));
        assert_eq!(kind(b"PO"), Some(Foreign::Http));
        assert_eq!(kind(b"OPTIONS * HTTP/1.1\r\n"), Some(Foreign::Http));
        assert_eq!(kind(&[0x16, 0x01]), None, "not a TLS record");
        assert_eq!(kind(b"GOT"), None);
        assert_eq!(kind(&[0xff, 0x00]), None);
        // After an LDAP message, the same bytes are just a malformed message.
        let mut codec = codec(1 << 16);
        let mut buf = BytesMut::from(&message(&[1], &[])[..]);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert!(codec.decode(&mut buf).unwrap().is_some());
        let Err(err) = codec.decode(&mut buf) else {
            panic!("an error");
        };
        assert!(foreign(&err).is_none());
    }

    #[test]
    fn partial_messages_wait_and_whole_ones_are_consumed() {
        let bytes = message(&[1], &[]);
        let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
        let mut codec = codec(1 << 16);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&bytes[bytes.len() - 1..]);
        buf.extend_from_slice(&bytes);
        assert!(codec.decode(&mut buf).unwrap().is_some());
        assert_eq!(buf.len(), bytes.len(), "exactly one message consumed");
        assert!(codec.decode(&mut buf).unwrap().is_some());
        assert!(buf.is_empty());
    }
}
