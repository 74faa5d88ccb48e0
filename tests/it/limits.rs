//! Limits through the real server, with small configured values: idle timeout, write
//! timeout, outstanding operations, filter width, message size before and after bind,
//! and the client's own search time limit.

use std::time::Duration;

use ldap3::Scope;
use ldap3_proto::proto::{LdapOp, LdapResultCode};

use crate::raw::{
    BIG_ENTRIES, BIG_VALUE, Raw, bind_op, message, search_op, still_serving, subtree_search, tlv,
    whoami_request,
};
use crate::{PEOPLE, SUFFIX, TestServer, add_person, person_dn, search};

#[tokio::test]
async fn idle_connections_get_a_notice_and_are_closed() {
    let server = TestServer::start_with("[limits]\nidle_timeout = \"200ms\"\n").await;
    let mut raw = Raw::connect(&server).await;
    assert_eq!(raw.whoami(1).await, "");
    // Then silence.
    assert_eq!(
        raw.expect_disconnect().await,
        LdapResultCode::AdminLimitExceeded
    );
    server.stop().await;
}

#[tokio::test]
async fn reading_stops_at_the_outstanding_cap_and_every_request_is_answered() {
    let server = TestServer::start_with_ldif(
        "[limits]\nmax_outstanding_ops = 1\n[security]\nanonymous = \"read\"\n",
        Some(&crate::bulk_people(300)),
    )
    .await;
    let mut raw = Raw::connect(&server).await;
    let mut batch = subtree_search(1, SUFFIX.as_bytes());
    for id in 2..=21 {
        batch.extend(whoami_request(id));
    }
    raw.send(&batch).await;
    // With one operation in flight at most, nothing after the search is even read
    // before the search is done; then each request is answered in turn.
    let mut entries = 0;
    loop {
        let msg = raw.next().await.expect("the search is answered");
        match (msg.msgid, msg.op) {
            (1, LdapOp::SearchResultEntry(_)) => entries += 1,
            (1, LdapOp::SearchResultDone(res)) => {
                assert_eq!(res.code, LdapResultCode::Success);
                break;
            }
            other => panic!("answered before the search was done: {other:?}"),
        }
    }
    assert!(entries > 300, "{entries}");
    for id in 2..=21 {
        assert_eq!(raw.extended_code(id).await, LdapResultCode::Success);
    }
    server.stop().await;
}

#[tokio::test]
async fn too_wide_a_filter_gets_53_and_the_connection_goes_on() {
    let server = TestServer::start_with("[limits]\nmax_filter_elements = 50\n").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    let wide = |n: usize| {
        let items: String = (0..n).map(|i| format!("(uid=alice{i})")).collect();
        format!("(|(uid=alice){items})")
    };
    // 1 OR + 1 + 48 items = 50 elements: allowed.
    let (entries, rc) = search(&mut admin, PEOPLE, Scope::OneLevel, &wide(48), &["uid"]).await;
    assert_eq!((entries.len(), rc), (1, 0));
    let res = admin
        .search(PEOPLE, Scope::OneLevel, &wide(5000), vec!["uid"])
        .await
        .unwrap();
    assert_eq!(res.1.rc, 53);
    assert!(res.1.text.contains("too many elements"), "{}", res.1.text);
    assert!(res.0.is_empty());
    let (entries, rc) = search(&mut admin, PEOPLE, Scope::OneLevel, "(uid=alice)", &["uid"]).await;
    assert_eq!((entries.len(), rc), (1, 0), "the connection goes on");
    server.stop().await;
}

#[tokio::test]
async fn messages_may_be_larger_after_bind_than_before() {
    let server = TestServer::start_with(
        "[limits]\nmax_message_bytes_anonymous = 4096\nmax_message_bytes = 65536\n\
         [security]\nrequire_tls_for_bind = false\n",
    )
    .await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", false).await;
    // A rootDSE search whose filter value makes the message just over 4 KiB.
    let sized = |msgid: u8, len: usize| {
        let value = vec![b'x'; len];
        let filter = tlv(0xa3, &[tlv(0x04, b"cn"), tlv(0x04, &value)].concat());
        message(msgid, search_op(b"", 0, 0, filter))
    };
    let over_anonymous = sized(1, 4096);
    assert!((4097..4200).contains(&over_anonymous.len()));

    let mut anonymous = Raw::connect(&server).await;
    anonymous.send(&over_anonymous).await;
    assert_eq!(
        anonymous.expect_disconnect().await,
        LdapResultCode::ProtocolError
    );

    let mut bound = Raw::connect(&server).await;
    bound
        .send(&message(1, bind_op(&person_dn("alice"), "pw-alice")))
        .await;
    assert!(
        matches!(bound.reply(1).await, LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success)
    );
    bound.send(&sized(2, 4096)).await;
    assert!(
        matches!(bound.reply(2).await, LdapOp::SearchResultDone(r) if r.code == LdapResultCode::Success)
    );
    // The bound limit holds too.
    bound.send(&sized(3, 65536)).await;
    assert_eq!(
        bound.expect_disconnect().await,
        LdapResultCode::ProtocolError
    );
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_others_are_served() {
    let server = TestServer::start_with_ldif(
        "[limits]\nwrite_timeout = \"300ms\"\nmax_connections = 2\n\
         [security]\nanonymous = \"read\"\n",
        Some(&crate::big_people(BIG_ENTRIES, BIG_VALUE)),
    )
    .await;
    let mut other = Raw::connect(&server).await;
    let mut stalled = Raw::connect_small_window(&server).await;
    stalled.send(&subtree_search(1, PEOPLE.as_bytes())).await;
    // Never reading, the stalled client fills the buffers; the other one is served.
    assert_eq!(other.whoami(1).await, "");
    // Both slots are taken until the server gives up on the stalled client; then a new
    // connection is served: well before the default write timeout (30 s) would do it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled client was never dropped"
        );
        let mut probe = Raw::connect(&server).await;
        probe.send(&whoami_request(1)).await;
        match probe.next().await {
            Some(msg) if msg.msgid == 1 => break,
            // Busy: the stalled client still holds its slot.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(other.whoami(2).await, "");
    // What was buffered arrives, then the close: the search never completed.
    let mut entries = 0;
    while let Some(msg) = stalled.next().await {
        match msg.op {
            LdapOp::SearchResultEntry(_) => entries += 1,
            other => panic!("only entries, then the close: {other:?}"),
        }
    }
    assert!(entries < BIG_ENTRIES, "{entries}");
    server.stop().await;
}

#[tokio::test]
async fn the_clients_own_time_limit_ends_a_search_with_3() {
    // The server allows 60 s; the client asks for 1 s.
    let server = TestServer::start_with_ldif(
        "[security]\nanonymous = \"read\"\n",
        Some(&crate::big_people(BIG_ENTRIES, BIG_VALUE)),
    )
    .await;
    let mut raw = Raw::connect_small_window(&server).await;
    let filter = tlv(0x87, b"objectClass");
    raw.send(&message(1, search_op(PEOPLE.as_bytes(), 1, 1, filter)))
        .await;
    assert!(matches!(raw.reply(1).await, LdapOp::SearchResultEntry(_)));
    // The search is under way and stuck on the unread results; let well over its second
    // pass before reading on.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut entries = 1;
    let done = loop {
        match raw.reply(1).await {
            LdapOp::SearchResultEntry(_) => entries += 1,
            LdapOp::SearchResultDone(res) => break res,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(done.code, LdapResultCode::TimeLimitExceeded);
    assert!(entries < BIG_ENTRIES, "{entries}");
    // Without a client limit the same search completes.
    let mut raw = Raw::connect(&server).await;
    raw.send(&message(
        2,
        search_op(PEOPLE.as_bytes(), 1, 0, tlv(0x87, b"objectClass")),
    ))
    .await;
    let mut entries = 0;
    let done = loop {
        match raw.reply(2).await {
            LdapOp::SearchResultEntry(_) => entries += 1,
            LdapOp::SearchResultDone(res) => break res,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((done.code, entries), (LdapResultCode::Success, BIG_ENTRIES));
    server.stop().await;
}

/// `busy_poll` at its widest: requests sent while a connection polls for the next one are
/// answered in order, a close during the window ends the connection, and once the window
/// is over an idle connection costs no CPU. The server runs on this test's thread, so the
/// thread's CPU time is the server's: were the polling unbounded, the quiet spell below
/// would be spent on the CPU instead of asleep.
#[tokio::test]
async fn busy_polling_answers_in_order_and_then_sleeps() {
    let server = TestServer::start_with("[limits]\nbusy_poll = \"1ms\"\n").await;
    let mut a = Raw::connect(&server).await;
    let mut b = Raw::connect(&server).await;
    for id in 1..=50 {
        assert_eq!(a.whoami(id).await, "");
        assert_eq!(b.whoami(id).await, "");
    }
    let mut batch = Vec::new();
    for id in 51..=60 {
        batch.extend(whoami_request(id));
    }
    a.send(&batch).await;
    for id in 51..=60 {
        assert_eq!(a.extended_code(id).await, LdapResultCode::Success);
    }
    // An Unbind right after an answer, inside the window, closes the connection.
    b.send(&message(61, tlv(0x42, &[]))).await;
    assert!(b.next().await.is_none(), "closed after the unbind");

    // Now the only connection, `a` polls after this answer; then it must sleep.
    assert_eq!(a.whoami(62).await, "");
    let before = thread_cpu();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spent = thread_cpu() - before;
    assert!(
        spent < Duration::from_millis(200),
        "an idle connection kept the thread busy for {spent:?} of 500ms"
    );
    assert_eq!(a.whoami(63).await, "");
    server.stop().await;
}

/// User and system time of the calling thread, from /proc: fields 14 and 15 of its stat
/// line, in clock ticks of 10 ms.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // After the command name, which is in parentheses and may hold spaces.
    let after_name = stat.rsplit_once(')').unwrap().1;
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|t| t.parse::<u64>().unwrap())
        .sum();
    Duration::from_millis(ticks * 10)
}
