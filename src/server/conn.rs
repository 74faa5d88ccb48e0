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
use tokio_util::codec::{Encoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dit::DitError;
use crate::dit::caller::Principal;
use crate::ldap::oid::{NOTICE_OF_DISCONNECTION, STARTTLS as OID_STARTTLS};
use crate::ldap::result::{failure, response_op, success};
use crate::ldap::session::{Session, Transport};
use crate::ldap::{self, OpContext, Outgoing};
use crate::server::frame::{FrameCodec, Request, codec, foreign};
use crate::state::State;
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
            session.origin.transport = transport.to_string();
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
            Outgoing::Msg(msg) | Outgoing::Lapsed(msg) => self.0.encode(msg, dst),
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
                    match self.write_queued(writer, msg).await {
                        None => return End::Closed,
                        Some(Written::Lapsed) => {
                            self.ops.abort_all();
                            return End::Noticed;
                        }
                        Some(Written::Answers) => {}
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
        let Request {
            msg,
            critical,
            unreadable_password,
        } = request;
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
                let started = Instant::now();
                let bind = AssertUnwindSafe(async {
                    #[cfg(feature = "fault-injection")]
                    ldap::fault::bind(&req);
                    ldap::bind::bind(&self.shared.state, session, &req, !unreadable_password).await
                });
                let Ok(res) = bind.catch_unwind().await else {
                    return Step::End(self.panicked(writer).await);
                };
                self.shared
                    .state
                    .metrics
                    .ldap_operation("bind", &res.code, started.elapsed());
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
                    started: Instant::now(),
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
                    // Before a bind the identity that lapsed is being replaced: no notice.
                    if matches!(msg, Outgoing::Lapsed(_)) {
                        continue;
                    }
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
    async fn write_queued<S>(&mut self, writer: &mut Writer<S>, first: Outgoing) -> Option<Written>
    where
        S: AsyncWrite + Unpin,
    {
        let timeout: Duration = self.shared.state.config.limits.write_timeout;
        let receiver = &mut self.channel.1;
        let batch = async {
            let mut next = Some(first);
            let mut written = 0;
            while let Some(msg) = next.take() {
                // A lapsed identity's notice is the last thing the connection says.
                let lapsed = matches!(msg, Outgoing::Lapsed(_));
                writer.feed(msg).await?;
                written += 1;
                if lapsed {
                    writer.flush().await?;
                    return Ok(Written::Lapsed);
                }
                if written < MAX_BATCH {
                    next = receiver.try_recv().ok();
                }
            }
            writer.flush().await.map(|()| Written::Answers)
        };
        match tokio::time::timeout(timeout, batch).await {
            Ok(Ok(written)) => Some(written),
            _ => None,
        }
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

/// What a batch of queued messages was.
enum Written {
    Answers,
    /// It ended with a lapsed identity's notice.
    Lapsed,
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
