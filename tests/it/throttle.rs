//! Brute-force protection through the real server: failed binds slowed per account and
//! source after the free allowance, the same 49 throughout, right credentials never held,
//! an audit event, the admin view, and records that are forgotten.

use std::time::{Duration, Instant};

use tessera::admin::client::{Client, Target};
use tessera::admin::throttle;

use crate::tokens::capture_logs;
use crate::{TestServer, add_person, person_dn};

async fn local(server: &TestServer) -> Client {
    let socket = server.running().ldapi.clone().unwrap();
    Client::connect(&Target::Local { socket }).await.unwrap()
}

async fn bind_rc(server: &TestServer, dn: &str, pw: &str) -> u32 {
    let mut ldap = server.ldaps().await;
    ldap.simple_bind(dn, pw).await.unwrap().rc
}

#[tokio::test]
async fn failures_are_slowed_and_the_same_49() {
    let captured = capture_logs();
    let server = TestServer::start_with(
        "[throttle]\nfree_failures = 2\nbase_delay = \"300ms\"\nmax_delay = \"300ms\"\n",
    )
    .await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "right", false).await;
    add_person(&mut admin, "bob", "bobs", false).await;
    let alice = person_dn("alice");
    let mut view = local(&server).await;

    for _ in 0..2 {
        assert_eq!(bind_rc(&server, &alice, "wrong").await, 49);
    }
    assert!(
        throttle::status(&mut view).await.unwrap().is_empty(),
        "within the free allowance"
    );
    let started = Instant::now();
    assert_eq!(
        bind_rc(&server, &alice, "wrong").await,
        49,
        "the same answer, later"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let rows = throttle::status(&mut view).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].account.as_str(),
            rows[0].source.as_str(),
            rows[0].failures
        ),
        (alice.as_str(), "127.0.0.1", 3)
    );
    // An unknown DN is slowed the same way, under its own name.
    for _ in 0..3 {
        assert_eq!(bind_rc(&server, &person_dn("nobody"), "x").await, 49);
    }
    assert_eq!(throttle::status(&mut view).await.unwrap().len(), 2);

    // The right password goes through; others are untouched; success clears the record.
    assert_eq!(bind_rc(&server, &alice, "right").await, 0);
    assert_eq!(bind_rc(&server, &person_dn("bob"), "bobs").await, 0);
    let rows = throttle::status(&mut view).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].account, person_dn("nobody"));

    // Quiet keys are forgotten.
    server
        .running()
        .state
        .clock
        .advance(Duration::from_secs(16 * 60));
    assert!(throttle::status(&mut view).await.unwrap().is_empty());

    // The view is for administrators.
    let mut ldap = server.bound(&person_dn("bob"), "bobs").await;
    let res = ldap
        .extended(ldap3::exop::Exop {
            name: Some("2.25.235497813471364094925541187040296631981.4.3".into()),
            val: None,
        })
        .await
        .unwrap();
    assert_eq!(res.1.rc, 50);
    server.stop().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.lines().any(|l| l.contains("bind-throttled")
            && l.contains(&alice)
            && l.contains("source=127.0.0.1")),
        "an audit event when throttling starts"
    );
}

#[tokio::test]
async fn the_right_password_is_not_held_while_failures_are() {
    let server = TestServer::start_with(
        "[throttle]\nfree_failures = 1\nbase_delay = \"20s\"\nmax_delay = \"20s\"\n",
    )
    .await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "right", false).await;
    let alice = person_dn("alice");
    assert_eq!(bind_rc(&server, &alice, "wrong").await, 49);
    // A guess that will be held for 20 seconds...
    let mut guesser = server.ldaps().await;
    let dn = alice.clone();
    let held = tokio::spawn(async move { guesser.simple_bind(&dn, "guess").await.map(|r| r.rc) });
    let mut view = local(&server).await;
    for _ in 0..200 {
        if !throttle::status(&mut view).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!held.is_finished(), "the guess is being held");
    // ...while alice logs in at once (well under the hold).
    let started = Instant::now();
    assert_eq!(bind_rc(&server, &alice, "right").await, 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    held.abort();
    // Shutdown does not wait for held answers.
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(10));
}
