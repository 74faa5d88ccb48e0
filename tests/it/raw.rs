//! Raw bytes a client library would not send: garbage, truncated and oversized BER,
//! message id 0, deep filters, pipelined StartTLS. The server answers or disconnects
//! cleanly, and keeps serving another client.

use std::time::Duration;

use futures_util::StreamExt;
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::FramedRead;

use crate::{TestServer, whoami};

pub const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";
pub const STARTTLS: &[u8] = b"1.3.6.1.4.1.1466.20037";

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

pub fn message(msgid: u8, op: Vec<u8>) -> Vec<u8> {
    message_with_controls(msgid, op, &[])
}

/// An LDAPMessage with `controls` (each from [`control`]) in its `[0]` field.
pub fn message_with_controls(msgid: u8, op: Vec<u8>, controls: &[Vec<u8>]) -> Vec<u8> {
    let mut body = tlv(0x02, &[msgid]);
    body.extend(op);
    if !controls.is_empty() {
        body.extend(tlv(0xa0, &controls.concat()));
    }
    tlv(0x30, &body)
}

/// `Control ::= SEQUENCE { controlType, criticality BOOLEAN DEFAULT FALSE, controlValue }`
pub fn control(oid: &str, critical: bool, value: Option<&[u8]>) -> Vec<u8> {
    let mut body = tlv(0x04, oid.as_bytes());
    if critical {
        body.extend(tlv(0x01, &[0xff]));
    }
    if let Some(value) = value {
        body.extend(tlv(0x04, value));
    }
    tlv(0x30, &body)
}

pub fn whoami_request(msgid: u8) -> Vec<u8> {
    message(msgid, tlv(0x77, &tlv(0x80, b"1.3.6.1.4.1.4203.1.11.3")))
}

pub fn starttls_op() -> Vec<u8> {
    tlv(0x77, &tlv(0x80, STARTTLS))
}

/// A simple bind op (version 3).
pub fn bind_op(dn: &str, password: &str) -> Vec<u8> {
    let mut bind = tlv(0x02, &[3]);
    bind.extend(tlv(0x04, dn.as_bytes()));
    bind.extend(tlv(0x80, password.as_bytes()));
    tlv(0x60, &bind)
}

/// A search op over `base` with `scope` (0 base, 2 subtree), a client time limit in
/// seconds, and a raw filter; attributes: all user attributes.
pub fn search_op(base: &[u8], scope: u8, timelimit: u8, filter: Vec<u8>) -> Vec<u8> {
    let mut body = tlv(0x04, base);
    body.extend(tlv(0x0a, &[scope]));
    body.extend(tlv(0x0a, &[0]));
    body.extend(tlv(0x02, &[0]));
    body.extend(tlv(0x02, &[timelimit]));
    body.extend(tlv(0x01, &[0]));
    body.extend(filter);
    body.extend(tlv(0x30, b""));
    tlv(0x63, &body)
}

fn search_request(msgid: u8, filter: Vec<u8>) -> Vec<u8> {
    message(msgid, search_op(b"", 0, 0, filter))
}

fn nested_not(depth: usize) -> Vec<u8> {
    let mut f = tlv(0x87, b"objectClass");
    for _ in 0..depth {
        f = tlv(0xa2, &f);
    }
    f
}

/// A client that writes raw bytes and reads decoded messages.
pub struct Raw<S = TcpStream> {
    pub write: WriteHalf<S>,
    read: FramedRead<ReadHalf<S>, LdapCodec>,
}

impl Raw {
    /// A plain LDAP connection.
    pub async fn connect(server: &TestServer) -> Raw {
        let stream = TcpStream::connect(server.running().ldap.unwrap())
            .await
            .unwrap();
        Raw::over(stream)
    }

    /// A plain LDAP connection with a tiny receive buffer, for clients that stop reading:
    /// the server's writes then block soon.
    pub async fn connect_small_window(server: &TestServer) -> Raw {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket
            .connect(server.running().ldap.unwrap())
            .await
            .unwrap();
        Raw::over(stream)
    }

    /// TLS over this connection after a successful StartTLS response, verifying the
    /// server certificate as `localhost` against the generated CA.
    pub async fn start_tls(self, server: &TestServer) -> Raw<TlsStream<TcpStream>> {
        assert!(
            self.read.read_buffer().is_empty(),
            "nothing may follow the StartTLS response in the clear"
        );
        let stream = self.read.into_inner().unsplit(self.write);
        let connector = tokio_rustls::TlsConnector::from(server.tls.clone());
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, stream).await.unwrap();
        Raw::over(tls)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    pub fn over(stream: S) -> Raw<S> {
        let (r, w) = tokio::io::split(stream);
        Raw {
            write: w,
            read: FramedRead::new(r, LdapCodec::new(Some(8 << 20), None)),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        // The server may already have closed; that is an allowed outcome too.
        let _ = self.write.write_all(bytes).await;
    }

    /// The next message, or None once the server has closed the connection.
    pub async fn next(&mut self) -> Option<LdapMsg> {
        match tokio::time::timeout(Duration::from_secs(10), self.read.next()).await {
            Ok(Some(Ok(msg))) => Some(msg),
            Ok(_) => None,
            Err(_) => panic!("server neither answered nor closed"),
        }
    }

    /// The next message, which must be the response to `msgid`.
    pub async fn reply(&mut self, msgid: i32) -> LdapOp {
        let msg = self.next().await.expect("a response, not a close");
        assert_eq!(msg.msgid, msgid, "{msg:?}");
        msg.op
    }

    /// The result code of the extended response to `msgid`.
    pub async fn extended_code(&mut self, msgid: i32) -> LdapResultCode {
        match self.reply(msgid).await {
            LdapOp::ExtendedResponse(resp) => resp.res.code,
            other => panic!("expected an extended response, got {other:?}"),
        }
    }

    /// The WhoAmI answer for `msgid` ("" for anonymous).
    pub async fn whoami(&mut self, msgid: u8) -> String {
        self.send(&whoami_request(msgid)).await;
        match self.reply(i32::from(msgid)).await {
            LdapOp::ExtendedResponse(resp) => {
                assert_eq!(resp.res.code, LdapResultCode::Success);
                String::from_utf8(resp.value.unwrap_or_default()).unwrap()
            }
            other => panic!("expected an extended response, got {other:?}"),
        }
    }

    /// Expect a Notice of Disconnection, then the end of the stream; returns its code.
    pub async fn expect_disconnect(&mut self) -> LdapResultCode {
        let msg = self
            .next()
            .await
            .expect("a notice of disconnection before the close");
        assert_eq!(msg.msgid, 0, "{msg:?}");
        let LdapOp::ExtendedResponse(resp) = msg.op else {
            panic!("expected a notice of disconnection, got {:?}", msg.op);
        };
        assert_eq!(resp.name.as_deref(), Some(NOTICE_OF_DISCONNECTION));
        assert!(
            self.next().await.is_none(),
            "connection closed after the notice"
        );
        resp.res.code
    }
}

pub async fn still_serving(server: &TestServer) {
    let mut ldap = server.ldaps().await;
    assert_eq!(whoami(&mut ldap).await, "");
}

#[tokio::test]
async fn garbage_truncated_and_oversized_ber() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    raw.send(&[0xff, 0xff, 0xff, 0xff, 0x00, 0x01]).await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);

    let mut raw = Raw::connect(&server).await;
    // Indefinite length is not allowed in LDAP.
    raw.send(&[0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00, 0x00, 0x00])
        .await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);

    let mut raw = Raw::connect(&server).await;
    // Declares 100 bytes, sends 10, then closes its side.
    raw.send(&[0x30, 0x64, 0x02, 0x01, 0x01, 0x63, 0x5f, 0x04, 0x00, 0x0a])
        .await;
    raw.write.shutdown().await.unwrap();
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);

    let mut raw = Raw::connect(&server).await;
    // 1 MiB declared before bind: over the anonymous message limit.
    let mut big = vec![
        0x30, 0x83, 0x10, 0x00, 0x00, 0x02, 0x01, 0x01, 0x63, 0x83, 0x0f, 0xff, 0xf8,
    ];
    big.extend(std::iter::repeat_n(0x04, 300 * 1024));
    raw.send(&big).await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn message_id_zero_and_response_ops_disconnect() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    raw.send(&whoami_request(0)).await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    let mut raw = Raw::connect(&server).await;
    // A BindResponse sent by a client.
    raw.send(&message(
        1,
        tlv(0x61, &[0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]),
    ))
    .await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn deep_filters_are_refused_cleanly() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    // Deeper than our filter limit (32) but within the codec's: an LDAP error.
    raw.send(&search_request(1, nested_not(40))).await;
    let msg = raw.next().await.unwrap();
    let LdapOp::SearchResultDone(res) = msg.op else {
        panic!("{:?}", msg.op);
    };
    assert_eq!(res.code, LdapResultCode::UnwillingToPerform);
    raw.send(&whoami_request(2)).await;
    assert_eq!(raw.next().await.unwrap().msgid, 2);
    // Far deeper than the codec allows: disconnect.
    raw.send(&search_request(3, nested_not(2000))).await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn pipelined_operations_answer_with_their_own_ids() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    let mut batch = Vec::new();
    for id in 1..=20 {
        batch.extend(whoami_request(id));
    }
    raw.send(&batch).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(raw.next().await.unwrap().msgid);
    }
    ids.sort();
    assert_eq!(ids, (1..=20).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test]
async fn starttls_with_pipelined_plaintext_is_refused() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    let mut bytes = message(1, tlv(0x77, &tlv(0x80, b"1.3.6.1.4.1.1466.20037")));
    bytes.extend(whoami_request(2));
    raw.send(&bytes).await;
    let first = raw.next().await.unwrap();
    let LdapOp::ExtendedResponse(resp) = first.op else {
        panic!("{:?}", first.op);
    };
    assert_eq!(resp.res.code, LdapResultCode::OperationsError);
    // The pipelined request is never answered (nor processed): the connection ends.
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    server.stop().await;
}

#[tokio::test]
async fn ldapv2_bind_gets_protocol_error() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    let mut bind = tlv(0x02, &[2]);
    bind.extend(tlv(0x04, b""));
    bind.extend(tlv(0x80, b""));
    raw.send(&message(1, tlv(0x60, &bind))).await;
    let msg = raw.next().await.unwrap();
    let LdapOp::BindResponse(resp) = msg.op else {
        panic!("{:?}", msg.op);
    };
    assert_eq!(resp.res.code, LdapResultCode::ProtocolError);
    server.stop().await;
}

#[tokio::test]
async fn abandon_stops_a_search_without_a_response() {
    let server = TestServer::start_with_ldif(
        "[security]\nanonymous = \"read\"\n",
        Some(&crate::bulk_people(1500)),
    )
    .await;
    let mut raw = Raw::connect(&server).await;
    raw.send(&anonymous_read_bind()).await;
    let _ = raw.next().await;
    // Search everything (as anonymous with `anonymous = "read"`), abandon it at once,
    // then ask who we are: the search must stop with no SearchResultDone.
    let mut bytes = subtree_search(2, b"dc=example,dc=com");
    bytes.extend(message(3, tlv(0x50, &[2])));
    bytes.extend(whoami_request(4));
    raw.send(&bytes).await;
    let mut entries = 0;
    loop {
        let msg = raw.next().await.expect("connection stays open");
        match msg.op {
            LdapOp::SearchResultEntry(_) => entries += 1,
            LdapOp::SearchResultDone(_) => panic!("an abandoned search must not answer"),
            LdapOp::ExtendedResponse(_) if msg.msgid == 4 => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(
        entries < 1500,
        "the search stopped early ({entries} entries)"
    );
    // An Abandon carrying an unsupported critical control is not performed (RFC 4511
    // §4.1.11), and has no response to refuse it with: the search runs to its end (the
    // server's size limit of 1,000).
    let mut bytes = subtree_search(5, b"dc=example,dc=com");
    let critical = control("1.2.3.4.5.6", true, None);
    bytes.extend(message_with_controls(6, tlv(0x50, &[5]), &[critical]));
    bytes.extend(whoami_request(7));
    raw.send(&bytes).await;
    let (mut done, mut answered) = (None, false);
    while done.is_none() || !answered {
        let msg = raw.next().await.expect("connection stays open");
        match (msg.msgid, msg.op) {
            (5, LdapOp::SearchResultEntry(_)) => {}
            (5, LdapOp::SearchResultDone(res)) => done = Some(res.code),
            (7, LdapOp::ExtendedResponse(_)) => answered = true,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(done, Some(LdapResultCode::SizeLimitExceeded));
    server.stop().await;
}

fn anonymous_read_bind() -> Vec<u8> {
    message(1, bind_op("", ""))
}

/// `(objectClass=*)` over the subtree at `base`.
pub fn subtree_search(msgid: u8, base: &[u8]) -> Vec<u8> {
    message(msgid, search_op(base, 2, 0, tlv(0x87, b"objectClass")))
}

#[tokio::test]
async fn shutdown_sends_a_notice_of_disconnection() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    raw.send(&whoami_request(1)).await;
    assert_eq!(raw.next().await.unwrap().msgid, 1);
    let stopping = tokio::spawn(server.stop());
    let msg = raw.next().await.expect("a notice before the close");
    assert_eq!(msg.msgid, 0);
    let LdapOp::ExtendedResponse(resp) = msg.op else {
        panic!("{:?}", msg.op);
    };
    assert_eq!(resp.name.as_deref(), Some("1.3.6.1.4.1.1466.20036"));
    assert_eq!(resp.res.code, LdapResultCode::Unavailable);
    assert!(raw.next().await.is_none());
    stopping.await.unwrap();
}

#[tokio::test]
async fn shutdown_answers_the_operation_in_hand_before_the_notice() {
    let server = TestServer::start_with_ldif(
        "[security]\nanonymous = \"read\"\n",
        Some(&crate::big_people(BIG_ENTRIES, BIG_VALUE)),
    )
    .await;
    let mut raw = Raw::connect_small_window(&server).await;
    let filter = tlv(
        0xa3,
        &[tlv(0x04, b"objectClass"), tlv(0x04, b"person")].concat(),
    );
    raw.send(&message(
        1,
        search_op(crate::PEOPLE.as_bytes(), 1, 0, filter),
    ))
    .await;
    // One entry in: the search is running, and cannot finish before we read on, since
    // its results are far larger than the socket buffers.
    assert!(matches!(raw.reply(1).await, LdapOp::SearchResultEntry(_)));
    let stopping = tokio::spawn(server.stop());
    let mut entries = 1;
    let done = loop {
        match raw.reply(1).await {
            LdapOp::SearchResultEntry(_) => entries += 1,
            LdapOp::SearchResultDone(res) => break res,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(done.code, LdapResultCode::Success);
    assert_eq!(entries, BIG_ENTRIES, "the search ran to its end");
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::Unavailable);
    stopping.await.unwrap();
}

/// With [`Raw::connect_small_window`], results of this size cannot all be buffered
/// between the server and a client that stops reading.
pub const BIG_ENTRIES: usize = 384;
pub const BIG_VALUE: usize = 32 * 1024;

#[tokio::test]
async fn message_ids_out_of_range_disconnect() {
    let server = TestServer::start().await;
    // 2^32 + 1: a codec that truncates to 32 bits would read it as 1.
    let op = tlv(0x77, &tlv(0x80, b"1.3.6.1.4.1.4203.1.11.3"));
    let mut body = tlv(0x02, &[0x01, 0x00, 0x00, 0x00, 0x01]);
    body.extend(op.clone());
    let mut raw = Raw::connect(&server).await;
    raw.send(&tlv(0x30, &body)).await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    // 2^31 is one past maxInt; -1 is negative.
    for id in [&[0x00, 0x80, 0x00, 0x00, 0x00][..], &[0xff]] {
        let mut body = tlv(0x02, id);
        body.extend(op.clone());
        let mut raw = Raw::connect(&server).await;
        raw.send(&tlv(0x30, &body)).await;
        assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    }
    // maxInt itself is fine.
    let mut body = tlv(0x02, &[0x7f, 0xff, 0xff, 0xff]);
    body.extend(op);
    let mut raw = Raw::connect(&server).await;
    raw.send(&tlv(0x30, &body)).await;
    assert_eq!(raw.extended_code(i32::MAX).await, LdapResultCode::Success);
    server.stop().await;
}

#[tokio::test]
async fn unknown_sasl_mechanism_is_7() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    let mut bind = tlv(0x02, &[3]);
    bind.extend(tlv(0x04, b""));
    bind.extend(tlv(0xa3, &tlv(0x04, b"DIGEST-MD5")));
    raw.send(&message(1, tlv(0x60, &bind))).await;
    let msg = raw.next().await.unwrap();
    let LdapOp::BindResponse(resp) = msg.op else {
        panic!("{:?}", msg.op);
    };
    assert_eq!(resp.res.code, LdapResultCode::AuthMethodNotSupported);
    server.stop().await;
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_and_others_go_on() {
    let server = TestServer::start_with("[limits]\nmax_connections = 2\n").await;
    let mut first = Raw::connect(&server).await;
    let mut second = Raw::connect(&server).await;
    first.send(&whoami_request(1)).await;
    second.send(&whoami_request(1)).await;
    assert_eq!(first.next().await.unwrap().msgid, 1);
    assert_eq!(second.next().await.unwrap().msgid, 1);
    let mut third = Raw::connect(&server).await;
    let msg = third.next().await.expect("a notice, not silence");
    let LdapOp::ExtendedResponse(resp) = msg.op else {
        panic!("{:?}", msg.op);
    };
    assert_eq!(resp.res.code, LdapResultCode::Busy);
    assert!(third.next().await.is_none());
    // The local administrator always gets in: LDAPI is not counted against the network.
    let mut admin = server.admin().await;
    assert_eq!(
        admin.extended(ldap3::exop::WhoAmI).await.unwrap().1.rc,
        0,
        "LDAPI with the network listeners full"
    );
    drop(admin);
    first.send(&whoami_request(2)).await;
    assert_eq!(
        first.next().await.unwrap().msgid,
        2,
        "existing clients unaffected"
    );
    // Unbind, and wait for the server to close: the slot is freed as its task ends.
    second.send(&message(3, tlv(0x42, b""))).await;
    assert!(second.next().await.is_none());
    let mut again = None;
    for _ in 0..50 {
        let mut c = Raw::connect(&server).await;
        c.send(&whoami_request(1)).await;
        if let Some(m) = c.next().await.filter(|m| m.msgid == 1) {
            again = Some(m);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(again.is_some(), "a freed slot is usable again");
    server.stop().await;
}
