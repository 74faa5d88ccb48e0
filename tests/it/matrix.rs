//! Rows of the fault and bad-input matrix not covered elsewhere, through the real server:
//! framing edge cases (F3, F5, F6, F10, F13), abandon of unknown ids (S9), a non-UTF-8
//! password (F12), `dn=token` with an empty password (B1), anonymous binds on and off
//! (B2), a drip-fed PDU (C1), many
//! requested attributes (S4), garbage paged cookies (S6), a token expiring on a bound
//! connection (T9), a second server on the same database (D4), a panicking handler (C7),
//! paged-search exhaustion (S7), the per-address connection cap (C5), a bind behind a
//! search (B10), plaintext injected behind StartTLS (L1), TLS or HTTP on the plain port
//! (F11), the shorter idle limit before bind (C2), a token sent in the clear (L4), and no
//! early data on resumed TLS sessions (L6).

use std::collections::HashSet;
use std::time::Duration;

use ldap3::Scope;
use ldap3::controls::{PagedResults, RawControl};
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode};

use crate::raw::{
    Raw, bind_op, message, starttls_op, still_serving, subtree_search, tlv, whoami_request,
};
use crate::{PEOPLE, TestServer, add_person, person_dn, search};

#[tokio::test]
async fn framing_edge_cases_disconnect_cleanly() {
    let server = TestServer::start().await;
    // F3: a length of length over 4 bytes.
    let mut raw = Raw::connect(&server).await;
    raw.send(&[
        0x30, 0x89, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00,
    ])
    .await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    // F5: an empty outer SEQUENCE.
    let mut raw = Raw::connect(&server).await;
    raw.send(&[0x30, 0x00]).await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    // F6: 200 nested SEQUENCEs as the operation.
    let mut nested = vec![0x04, 0x00];
    for _ in 0..200 {
        nested = tlv(0x30, &nested);
    }
    let mut raw = Raw::connect(&server).await;
    raw.send(&message(1, nested)).await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    // F10: an operation tag no LDAP version has.
    let mut raw = Raw::connect(&server).await;
    raw.send(&message(13, tlv(0x7e, b""))).await;
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_abandons_and_unknown_ids_are_absorbed() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server).await;
    // F13 and S9: 20,000 abandons of ids nobody used, in one write, then a WhoAmI.
    let mut burst = Vec::new();
    for i in 0..20_000u32 {
        let id = u8::try_from(i % 100 + 2).unwrap();
        burst.extend(message(id, tlv(0x50, &[99])));
    }
    raw.send(&burst).await;
    raw.send(&whoami_request(1)).await;
    let first = raw.next().await.expect("the WhoAmI is answered");
    assert_eq!(first.msgid, 1, "abandon has no response: {first:?}");
    assert!(matches!(first.op, LdapOp::ExtendedResponse(_)));
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn odd_binds_get_their_codes_and_keep_the_connection() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    let mut ldap = server.ldaps().await;
    // F12: a password that is not UTF-8 (ldap3 sends bytes as given).
    let dn = person_dn("alice");
    let raw_pw = String::from_utf8_lossy(&[0xff, 0xfe]).into_owned();
    assert_eq!(ldap.simple_bind(&dn, &raw_pw).await.unwrap().rc, 49);
    // B1: `dn=token` with an empty password is an unauthenticated bind.
    assert_eq!(ldap.simple_bind("dn=token", "").await.unwrap().rc, 53);
    assert_eq!(crate::whoami(&mut ldap).await, "", "anonymous afterwards");
    assert_eq!(
        ldap.simple_bind(&dn, "pw").await.unwrap().rc,
        0,
        "the connection goes on"
    );
    server.stop().await;
}

#[tokio::test]
async fn octets_that_are_not_utf8_fail_the_bind_or_the_filter_item_not_the_connection() {
    let server = TestServer::start_with("[security]\nrequire_tls_for_bind = false\n").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    crate::grant(&mut admin, "directory-readers", &person_dn("alice")).await;
    // Her password is the placeholder itself: the octets still never bind as her.
    add_person(&mut admin, "uffff", "\u{FFFF}", false).await;
    let hashers = server.running().state.hashers.clone();
    let mut raw = Raw::connect(&server).await;
    for (msgid, uid) in [(1u8, "alice"), (2, "uffff")] {
        let mut bind = tlv(0x02, &[3]);
        bind.extend(tlv(0x04, person_dn(uid).as_bytes()));
        bind.extend(tlv(0x80, &[0xff, 0xfe, b'p', b'w']));
        let before = hashers.argon2_runs();
        raw.send(&message(msgid, tlv(0x60, &bind))).await;
        let LdapOp::BindResponse(res) = raw.reply(i32::from(msgid)).await else {
            panic!("a bind response");
        };
        assert_eq!(res.res.code, LdapResultCode::InvalidCredentials, "{uid}");
        assert_eq!(
            hashers.argon2_runs() - before,
            1,
            "the cost of any failed bind"
        );
        assert_eq!(
            raw.whoami(10 + msgid).await,
            "",
            "still connected, anonymous"
        );
    }
    raw.send(&message(3, bind_op(&person_dn("alice"), "pw")))
        .await;
    let LdapOp::BindResponse(res) = raw.reply(3).await else {
        panic!("a bind response");
    };
    assert_eq!(
        res.res.code,
        LdapResultCode::Success,
        "the connection goes on"
    );
    // A filter value that is not UTF-8 is an Undefined item: alone it finds nothing, in an
    // OR beside a true item the entry is found, and the connection goes on.
    let bad = |attr: &str| {
        let mut ava = tlv(0x04, attr.as_bytes());
        ava.extend(tlv(0x04, &[0xc3, 0x28]));
        tlv(0xa3, &ava)
    };
    let uid_alice = {
        let mut ava = tlv(0x04, b"uid");
        ava.extend(tlv(0x04, b"alice"));
        tlv(0xa3, &ava)
    };
    let mut sub = tlv(0x04, b"cn");
    sub.extend(tlv(0x30, &tlv(0x80, &[0xff])));
    let cases = [
        (4u8, bad("cn"), 0usize),
        (5, tlv(0xa1, &[bad("cn"), uid_alice.clone()].concat()), 1),
        (6, tlv(0xa0, &[bad("sn"), uid_alice.clone()].concat()), 0),
        (7, tlv(0xa2, &bad("cn")), 0),
        (8, tlv(0xa1, &[tlv(0xa4, &sub), uid_alice].concat()), 1),
    ];
    for (msgid, filter, want) in cases {
        raw.send(&message(
            msgid,
            crate::raw::search_op(PEOPLE.as_bytes(), 2, 0, filter),
        ))
        .await;
        let mut found = 0;
        loop {
            let msg = raw.next().await.expect("an answer, not a disconnect");
            assert_eq!(msg.msgid, i32::from(msgid));
            match msg.op {
                LdapOp::SearchResultEntry(_) => found += 1,
                LdapOp::SearchResultDone(done) => {
                    assert_eq!(done.code, LdapResultCode::Success, "filter {msgid}");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(found, want, "filter {msgid}");
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn anonymous_binds_follow_the_anonymous_setting() {
    // B2: by default an anonymous bind succeeds ...
    let server = TestServer::start().await;
    let mut ldap = server.ldaps().await;
    assert_eq!(ldap.simple_bind("", "").await.unwrap().rc, 0);
    server.stop().await;
    // ... and with anonymous = "none" it is 48, as with slapd's `disallow bind_anon`;
    // other binds go on as before.
    let server = TestServer::start_with("[security]\nanonymous = \"none\"\n").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    for mut ldap in [server.ldaps().await, server.plain().await] {
        let res = ldap.simple_bind("", "").await.unwrap();
        assert_eq!(
            (res.rc, res.text.as_str()),
            (48, "anonymous bind disallowed")
        );
        assert_eq!(crate::whoami(&mut ldap).await, "");
    }
    let mut ldap = server.ldaps().await;
    assert_eq!(ldap.simple_bind("", "").await.unwrap().rc, 48);
    ldap.simple_bind(&person_dn("alice"), "pw")
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(
        crate::whoami(&mut ldap).await,
        format!("dn:{}", person_dn("alice"))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_drip_fed_message_is_cut_off() {
    // C1: the idle limit bounds the wait for each read, so a client that sends a PDU one
    // byte at a time, slower than that, is disconnected however long it keeps dripping.
    let server = TestServer::start_with("[limits]\nidle_timeout = \"300ms\"\n").await;
    let mut raw = Raw::connect(&server).await;
    let pdu = whoami_request(1);
    raw.send(&pdu[..2]).await;
    // Three bytes, each after a gap longer than the limit; the PDU stays incomplete.
    for b in &pdu[2..5] {
        tokio::time::sleep(Duration::from_millis(400)).await;
        raw.send(&[*b]).await;
    }
    // Closed (after a notice) rather than waiting on for the rest; a hang fails `next`.
    let msg = raw.next().await;
    assert!(
        msg.is_none_or(|m| m.msgid == 0),
        "only a notice, never an answer"
    );
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn many_requested_attributes_and_garbage_cookies() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    // S4: 200 attribute names, most unknown: ignored, the known ones returned.
    let mut names: Vec<String> = (0..200).map(|i| format!("noSuchAttr{i}")).collect();
    names.push("uid".into());
    let attrs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (e, rc) = search(
        &mut admin,
        &person_dn("alice"),
        Scope::Base,
        "(objectClass=*)",
        &attrs,
    )
    .await;
    assert_eq!((e.len(), rc), (1, 0));
    let got: HashSet<&str> = e[0].attrs.keys().map(String::as_str).collect();
    assert_eq!(
        got,
        HashSet::from(["uid"]),
        "only what was asked for: objectClass too comes when named"
    );
    // S6: cookies that were never issued, of any shape, get 2 and no entries.
    for cookie in [b"garbage!!".to_vec(), vec![0u8; 3], vec![0xffu8; 200]] {
        let ctrl: RawControl = PagedResults { size: 2, cookie }.into();
        let res = admin
            .with_controls(vec![ctrl])
            .search(PEOPLE, Scope::OneLevel, "(objectClass=*)", vec!["1.1"])
            .await
            .unwrap();
        assert_eq!((res.0.len(), res.1.rc), (0, 2));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_token_expiring_on_a_bound_connection() {
    // T9: the next operation after expiry is told plainly that the credentials lapsed (a
    // Notice of Disconnection, not a 32 that reads as a missing base), and a new bind gets
    // the usual 49.
    let server = TestServer::start_with("[security]\nrequire_tls_for_bind = false\n").await;
    let mut admin = server.admin().await;
    assert_eq!(
        crate::tokens::add_service(&mut admin, "nas01", None).await,
        0
    );
    let nas = crate::tokens::service_dn("nas01");
    let t = crate::tokens::generate(&mut admin, &nas, "short", None, Some("1h"), None)
        .await
        .unwrap();
    let mut raw = Raw::connect(&server).await;
    raw.send(&message(1, bind_op("dn=token", &t.token))).await;
    let LdapOp::BindResponse(res) = raw.reply(1).await else {
        panic!("a bind response");
    };
    assert_eq!(res.res.code, LdapResultCode::Success);
    assert_eq!(raw.whoami(2).await, format!("dn:{nas}"));
    server
        .running()
        .state
        .clock
        .advance(Duration::from_secs(2 * 3600));
    raw.send(&subtree_search(3, crate::SUFFIX.as_bytes())).await;
    let notice = raw.next().await.expect("a notice, not silence");
    assert_eq!(notice.msgid, 0, "unsolicited");
    let LdapOp::ExtendedResponse(resp) = notice.op else {
        panic!("{:?}", notice.op);
    };
    assert_eq!(resp.res.code, LdapResultCode::StrongerAuthRequired);
    assert!(
        resp.res.message.contains("no longer valid"),
        "{}",
        resp.res.message
    );
    assert!(raw.next().await.is_none(), "then the connection closes");
    let mut again = Raw::connect(&server).await;
    again.send(&message(1, bind_op("dn=token", &t.token))).await;
    let LdapOp::BindResponse(res) = again.reply(1).await else {
        panic!("a bind response");
    };
    assert_eq!(res.res.code, LdapResultCode::InvalidCredentials);
    server.stop().await;
}

#[tokio::test]
async fn a_second_server_on_the_same_database_is_refused() {
    // D4: the second start fails at once and says why.
    let server = TestServer::start().await;
    let toml = format!(
        "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"\"\nldapi = \"second.sock\"\n",
        server.dir.path().join("data").display()
    );
    let second = tessera::server::start(tessera::config::Config::parse(&toml).unwrap()).await;
    let err = second
        .err()
        .expect("the second server does not start")
        .to_string();
    assert!(err.contains("in use by another process"), "{err}");
    still_serving(&server).await;
    server.stop().await;
}

/// An extended request with `oid` and no value.
fn extended(msgid: u8, oid: &str) -> Vec<u8> {
    message(msgid, tlv(0x77, &tlv(0x80, oid.as_bytes())))
}

#[tokio::test]
async fn a_panicking_request_closes_only_its_connection() {
    // C7: a panic in a handler (here injected; in life a bug a fuzzer finds) is caught by
    // the runtime; its connection gets a notice and closes, nothing else notices.
    use tessera::ldap::fault;
    let server = TestServer::start_with("[security]\nrequire_tls_for_bind = false\n").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    let mut bystander = Raw::connect(&server).await;
    assert_eq!(bystander.whoami(1).await, "");

    // In a spawned operation task, with another operation in flight beside it.
    let mut victim = Raw::connect(&server).await;
    let mut bytes = whoami_request(1);
    bytes.extend(extended(2, fault::OID_PANIC));
    victim.send(&bytes).await;
    let mut notice = None;
    while notice.is_none() {
        let msg = victim.next().await.expect("a notice before the close");
        match msg.msgid {
            1 => {}
            0 => notice = Some(msg),
            _ => panic!("the panicking request has no answer: {msg:?}"),
        }
    }
    let Some(LdapMsg {
        op: LdapOp::ExtendedResponse(resp),
        ..
    }) = notice
    else {
        panic!("{notice:?}");
    };
    assert_eq!(resp.res.code, LdapResultCode::Other);
    assert!(victim.next().await.is_none(), "closed after the notice");

    // In a bind, which runs on the connection task itself.
    let mut victim = Raw::connect(&server).await;
    victim
        .send(&message(1, bind_op(fault::PANIC_BIND_DN, "pw")))
        .await;
    assert_eq!(victim.expect_disconnect().await, LdapResultCode::Other);

    // On the store's blocking thread, inside a read transaction: the operation fails
    // with 80, and the connection and the store go on.
    let mut raw = Raw::connect(&server).await;
    raw.send(&extended(1, fault::OID_PANIC_IN_STORE)).await;
    assert_eq!(raw.extended_code(1).await, LdapResultCode::Other);
    assert_eq!(raw.whoami(2).await, "");

    // Everyone else: the open connection, new ones, binds (the throttle and the rights
    // cache behind their locks), reads and writes.
    assert_eq!(bystander.whoami(2).await, "");
    bystander
        .send(&message(3, bind_op(&person_dn("alice"), "pw")))
        .await;
    assert!(
        matches!(bystander.reply(3).await, LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success)
    );
    assert_eq!(
        bystander.whoami(4).await,
        format!("dn:{}", person_dn("alice"))
    );
    add_person(&mut admin, "bob", "pw", false).await;
    still_serving(&server).await;
    server.stop().await;
}

/// One paged search request of `size` (0 with a cookie abandons it): the entries, the
/// result code, and the cookie for the next page (empty at the end).
async fn page(ldap: &mut ldap3::Ldap, size: i32, cookie: Vec<u8>) -> (usize, u32, Vec<u8>) {
    let ctrl: RawControl = PagedResults { size, cookie }.into();
    let res = ldap
        .with_controls(vec![ctrl])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["1.1"])
        .await
        .unwrap();
    let next = crate::paged_cookie(&res).unwrap_or_default();
    (res.0.len(), res.1.rc, next)
}

#[tokio::test]
async fn paged_searches_per_connection_are_capped() {
    // S7: past the cap a new paged search gets 53; finishing, abandoning (size 0) or
    // rebinding as someone else frees places; other connections have their own.
    let server = TestServer::start_setup(crate::Setup {
        extra: "[limits]\nmax_paged_searches_per_connection = 3\n[security]\nanonymous = \"read\"\nrequire_tls_for_bind = false\n",
        ldif: Some(&crate::bulk_people(10)),
        ..crate::Setup::default()
    })
    .await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    crate::grant(&mut admin, "directory-readers", &person_dn("alice")).await;

    let mut ldap = server.plain().await;
    let mut cookies = Vec::new();
    for _ in 0..3 {
        let (n, rc, cookie) = page(&mut ldap, 2, Vec::new()).await;
        assert_eq!((n, rc), (2, 0));
        assert!(!cookie.is_empty());
        cookies.push(cookie);
    }
    assert_eq!(page(&mut ldap, 2, Vec::new()).await, (0, 53, Vec::new()));
    // Continuing an open one is not a new one.
    let (n, rc, next) = page(&mut ldap, 2, cookies[0].clone()).await;
    assert_eq!((n, rc), (2, 0));
    cookies[0] = next;
    // Another connection has places of its own.
    let mut other = server.plain().await;
    assert_eq!(page(&mut other, 2, Vec::new()).await.1, 0);

    // Abandoned with size 0: its place is free, and its cookie is dead.
    let abandoned = cookies.remove(0);
    assert_eq!(page(&mut ldap, 0, abandoned.clone()).await.1, 0);
    assert_eq!(page(&mut ldap, 2, abandoned).await.1, 2, "used up");
    let (_, rc, cookie) = page(&mut ldap, 2, Vec::new()).await;
    assert_eq!(rc, 0);
    assert_eq!(page(&mut ldap, 2, Vec::new()).await.1, 53);
    // Run to its end: free again.
    let (n, rc, last) = page(&mut ldap, 100, cookie).await;
    assert!(n > 0 && rc == 0 && last.is_empty(), "{n} {rc} {last:?}");
    let (_, rc, _) = page(&mut ldap, 2, Vec::new()).await;
    assert_eq!(rc, 0);
    assert_eq!(page(&mut ldap, 2, Vec::new()).await.1, 53);

    // A bind as someone else: the old cookies (bound to the old identity) are gone.
    ldap.simple_bind(&person_dn("alice"), "pw")
        .await
        .unwrap()
        .success()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(page(&mut ldap, 2, Vec::new()).await.1, 0);
    }
    assert_eq!(page(&mut ldap, 2, Vec::new()).await.1, 53);
    server.stop().await;
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    // C5: a fourth connection from one address is refused with a busy notice; the three
    // go on, another address and the LDAPI socket are not affected, and a closed
    // connection's place can be taken again.
    let server = TestServer::start_with("[limits]\nmax_connections_per_ip = 3\n").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut raw = Raw::connect(&server).await;
        assert_eq!(raw.whoami(1).await, "");
        held.push(raw);
    }
    let mut extra = Raw::connect(&server).await;
    assert_eq!(extra.expect_disconnect().await, LdapResultCode::Busy);
    // LDAPS from the same address: closed before the handshake.
    let tcp = tokio::net::TcpStream::connect(server.running().ldaps.unwrap())
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(server.tls.clone());
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    assert!(connector.connect(name, tcp).await.is_err());
    for raw in &mut held {
        assert_eq!(raw.whoami(2).await, "", "existing clients unaffected");
    }
    // 127.0.0.2 is another loopback address, and another source.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = socket
        .connect(server.running().ldap.unwrap())
        .await
        .unwrap();
    let mut elsewhere = Raw::over(stream);
    assert_eq!(elsewhere.whoami(1).await, "");
    let mut admin = server.admin().await;
    assert!(crate::whoami(&mut admin).await.starts_with("dn:"));

    // Unbind one; once the server has closed it, its place is free again.
    let mut leaving = held.pop().unwrap();
    leaving.send(&message(3, tlv(0x42, b""))).await;
    assert!(leaving.next().await.is_none());
    let mut admitted = false;
    for _ in 0..50 {
        let mut c = Raw::connect(&server).await;
        c.send(&whoami_request(1)).await;
        if c.next().await.is_some_and(|m| m.msgid == 1) {
            admitted = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(admitted, "a freed place is usable again");
    server.stop().await;
}

#[tokio::test]
async fn a_bind_waits_for_the_searches_before_it() {
    // B10: search + bind + search in one segment. RFC 4511 §4.2.1: the search before the
    // bind is answered in full, as the old identity, before the bind; the one after it
    // runs as the new identity.
    let server = TestServer::start_setup(crate::Setup {
        extra: "[security]\nanonymous = \"read\"\nrequire_tls_for_bind = false\n",
        ldif: Some(&crate::bulk_people(300)),
        ..crate::Setup::default()
    })
    .await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    // What anonymous sees; alice, with no role, sees only herself (not even ou=people).
    let mut anonymous = server.plain().await;
    let (seen, rc) = search(
        &mut anonymous,
        PEOPLE,
        Scope::Subtree,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    assert_eq!(rc, 0);
    assert!(seen.len() > 300);

    let mut raw = Raw::connect(&server).await;
    let mut bytes = subtree_search(1, PEOPLE.as_bytes());
    bytes.extend(message(2, bind_op(&person_dn("alice"), "pw")));
    bytes.extend(subtree_search(3, PEOPLE.as_bytes()));
    raw.send(&bytes).await;
    let mut before = 0;
    loop {
        match raw.reply(1).await {
            LdapOp::SearchResultEntry(_) => before += 1,
            LdapOp::SearchResultDone(res) => {
                assert_eq!(res.code, LdapResultCode::Success);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(before, seen.len(), "all of it, with the anonymous view");
    let LdapOp::BindResponse(bind) = raw.reply(2).await else {
        panic!("the bind answers next");
    };
    assert_eq!(bind.res.code, LdapResultCode::Success);
    let mut after = 0;
    loop {
        match raw.reply(3).await {
            LdapOp::SearchResultEntry(_) => after += 1,
            LdapOp::SearchResultDone(_) => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(after <= 1, "alice's view, not anonymous's: {after}");
    server.stop().await;
}

#[tokio::test]
async fn a_bind_injected_after_starttls_is_never_processed() {
    // L1 (CVE-2011-0411 class): a bind pipelined behind StartTLS in the same segment is
    // not read: StartTLS is refused and the connection closed with a notice.
    let captured = crate::tokens::capture_logs();
    let server = TestServer::start_with("[security]\nrequire_tls_for_bind = false\n").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "l1victim", "pw", false).await;
    let victim = person_dn("l1victim");
    let mut raw = Raw::connect(&server).await;
    let mut bytes = message(1, starttls_op());
    bytes.extend(message(2, bind_op(&victim, "pw")));
    bytes.extend(whoami_request(3));
    raw.send(&bytes).await;
    assert_eq!(raw.extended_code(1).await, LdapResultCode::OperationsError);
    assert_eq!(raw.expect_disconnect().await, LdapResultCode::ProtocolError);
    // The same with a search still in flight (which alone would only refuse StartTLS).
    let mut raw = Raw::connect(&server).await;
    let mut bytes = subtree_search(1, crate::SUFFIX.as_bytes());
    bytes.extend(message(2, starttls_op()));
    bytes.extend(message(3, bind_op(&victim, "pw")));
    raw.send(&bytes).await;
    let mut seen = Vec::new();
    while let Some(msg) = raw.next().await {
        seen.push(msg.msgid);
        assert_ne!(msg.msgid, 3, "{msg:?}");
        if let (2, LdapOp::ExtendedResponse(resp)) = (msg.msgid, &msg.op) {
            assert_eq!(resp.res.code, LdapResultCode::OperationsError);
        }
    }
    assert!(seen.contains(&2) && seen.last() == Some(&0), "{seen:?}");
    // Plaintext sent right after a successful StartTLS response lands in the TLS
    // handshake, which fails: closed, not processed either.
    let mut raw = Raw::connect(&server).await;
    raw.send(&message(1, starttls_op())).await;
    assert_eq!(raw.extended_code(1).await, LdapResultCode::Success);
    raw.send(&message(2, bind_op(&victim, "pw"))).await;
    assert!(raw.next().await.is_none(), "no answer in the clear, closed");
    still_serving(&server).await;
    server.stop().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("starttls-injection"), "the attempt is logged");
    assert!(
        !log.lines()
            .any(|l| l.contains("event=\"bind\"") && l.contains("uid=l1victim")),
        "no bind of the victim was ever processed"
    );
}

#[tokio::test]
async fn tls_or_http_on_the_plain_port_is_closed_with_a_hint() {
    // F11: no LDAP response (the client would not understand one), a log line that says
    // what went wrong, and the server goes on.
    let captured = crate::tokens::capture_logs();
    let server = TestServer::start().await;
    let addr = server.running().ldap.unwrap();
    // A real TLS client on the plain port.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls_port = tcp.local_addr().unwrap().port();
    let connector = tokio_rustls::TlsConnector::from(server.tls.clone());
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    assert!(connector.connect(name, tcp).await.is_err());
    // A bare ClientHello record header, and a web request.
    for bytes in [
        &[
            0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
        ][..],
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let mut raw = Raw::connect(&server).await;
        raw.send(bytes).await;
        assert!(raw.next().await.is_none(), "closed, no LDAP message");
    }
    let mut raw = Raw::connect(&server).await;
    raw.send(b"POST /ldap HTTP/1.0\r\n\r\n").await;
    assert!(raw.next().await.is_none());
    still_serving(&server).await;
    server.stop().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{tls_port}\"")) && l.contains("ClientHello"))
        .unwrap_or_else(|| panic!("no hint for port {tls_port} in {log}"));
    assert!(
        line.contains("use ldaps://") && line.contains("StartTLS"),
        "{line}"
    );
    assert!(log.contains("HTTP request on the LDAP port"));
}

#[tokio::test]
async fn anonymous_connections_idle_out_sooner_than_bound_ones() {
    // C2: the same silence closes an unbound connection (with a notice, as before) and
    // leaves a bound one open.
    let server = TestServer::start_with(
        "[limits]\nidle_timeout = \"1h\"\nidle_timeout_anonymous = \"300ms\"\n[security]\nrequire_tls_for_bind = false\n",
    )
    .await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    let mut bound = Raw::connect(&server).await;
    bound
        .send(&message(1, bind_op(&person_dn("alice"), "pw")))
        .await;
    assert!(
        matches!(bound.reply(1).await, LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success)
    );
    // Two unbound connections opened after the bind idle out one after the other, so the
    // bound one has been silent for longer than twice the anonymous limit.
    for _ in 0..2 {
        let mut unbound = Raw::connect(&server).await;
        assert_eq!(
            unbound.expect_disconnect().await,
            LdapResultCode::AdminLimitExceeded
        );
    }
    assert_eq!(bound.whoami(2).await, format!("dn:{}", person_dn("alice")));
    server.stop().await;
}

/// The `tokenExposed` stamp on token `id` of `account`, or None; Err(rc) if the token
/// entry cannot be read (32 once revoked).
async fn exposed_stamp(
    admin: &mut ldap3::Ldap,
    account: &str,
    id: &str,
) -> Result<Option<String>, u32> {
    let (entries, rc) = search(
        admin,
        &format!("tokenId={id},{account}"),
        Scope::Base,
        "(objectClass=*)",
        &["tokenExposed"],
    )
    .await;
    if rc != 0 {
        return Err(rc);
    }
    Ok(entries[0]
        .attrs
        .get("tokenExposed")
        .and_then(|v| v.first().cloned()))
}

#[tokio::test]
async fn a_token_sent_in_the_clear_is_marked_exposed() {
    // L4: a StartTLS-stripped client sends its token in the clear: 13, and the token is
    // stamped exposed (a forged one with the same id is not); still usable over TLS.
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    assert_eq!(
        crate::tokens::add_service(&mut admin, "nas01", None).await,
        0
    );
    let nas = crate::tokens::service_dn("nas01");
    let t = crate::tokens::generate(&mut admin, &nas, "clear", None, None, None)
        .await
        .unwrap();
    let other = crate::tokens::generate(&mut admin, &nas, "other", None, None, None)
        .await
        .unwrap();
    assert_eq!(exposed_stamp(&mut admin, &nas, &t.id).await, Ok(None));
    let mut plain = server.plain().await;
    assert_eq!(
        plain.simple_bind("dn=token", &t.token).await.unwrap().rc,
        13
    );
    assert_eq!(plain.simple_bind(&nas, &t.token).await.unwrap().rc, 13);
    assert!(
        exposed_stamp(&mut admin, &nas, &t.id)
            .await
            .unwrap()
            .is_some(),
        "stamped"
    );
    // Someone who knows only the public id cannot get a token marked (or revoked).
    let forged = crate::tokens::wrong_secret(&other.token);
    assert_eq!(plain.simple_bind("dn=token", &forged).await.unwrap().rc, 13);
    assert_eq!(exposed_stamp(&mut admin, &nas, &other.id).await, Ok(None));
    let mut tls = server.bound("dn=token", &t.token).await;
    assert_eq!(crate::whoami(&mut tls).await, format!("dn:{nas}"));
    server.stop().await;
}

#[tokio::test]
async fn a_token_sent_in_the_clear_can_be_revoked_at_once() {
    // L4 with tokens.revoke_on_cleartext: the exposed token is deleted, so a later bind
    // with it over TLS fails with 49.
    let server = TestServer::start_with("[tokens]\nrevoke_on_cleartext = true\n").await;
    let mut admin = server.admin().await;
    assert_eq!(
        crate::tokens::add_service(&mut admin, "nas01", None).await,
        0
    );
    let nas = crate::tokens::service_dn("nas01");
    let t = crate::tokens::generate(&mut admin, &nas, "clear", None, None, None)
        .await
        .unwrap();
    let mut tls = server.ldaps().await;
    assert_eq!(tls.simple_bind("dn=token", &t.token).await.unwrap().rc, 0);
    let mut plain = server.plain().await;
    assert_eq!(
        plain.simple_bind("dn=token", &t.token).await.unwrap().rc,
        13
    );
    assert_eq!(exposed_stamp(&mut admin, &nas, &t.id).await, Err(32));
    let mut tls = server.ldaps().await;
    assert_eq!(tls.simple_bind("dn=token", &t.token).await.unwrap().rc, 49);
    server.stop().await;
}

#[tokio::test]
async fn resumed_tls_sessions_get_no_early_data() {
    // L6: TLS 1.3 resumption works, but 0-RTT data (replayable requests) is never
    // accepted from a client willing to send it: the tickets allow none. That, and
    // renegotiation (which rustls never does), are checked with openssl in the interop
    // suite (tests/interop/defaults.sh).
    let server = TestServer::start().await;
    let mut config = (*server.tls).clone();
    config.enable_early_data = true;
    let config = std::sync::Arc::new(config);
    let addr = server.running().ldaps.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(config.clone());
        let tls = connector.connect(name.clone(), tcp).await.unwrap();
        let (_, conn) = tls.get_ref();
        assert!(!conn.is_early_data_accepted());
        kinds.push(conn.handshake_kind());
        // Reading the answer also takes in the session tickets sent after the handshake.
        let mut raw = Raw::over(tls);
        assert_eq!(raw.whoami(1).await, "");
    }
    assert_eq!(
        kinds[1],
        Some(rustls::HandshakeKind::Resumed),
        "the second connection resumed, so early data was possible to offer: {kinds:?}"
    );
    server.stop().await;
}
