//! The admin commands against a running server: over LDAPI as the local administrator,
//! over LDAPS as a person or with a token, and the real binary end to end.

use tessera::admin::client::{Client, Secret, Target};
use tessera::admin::{AdminError, group, person, service_account as sa};
use tessera::directory::dn::Dn;

use crate::{SUFFIX, TestServer, add_person, person_dn, whoami};

fn suffix() -> Dn {
    Dn::parse(SUFFIX).unwrap()
}

async fn local(server: &TestServer) -> Client {
    let socket = server.running().ldapi.clone().unwrap();
    Client::connect(&Target::Local { socket }).await.unwrap()
}

fn remote(server: &TestServer, dn: &str, secret: &str) -> Target {
    Target::Remote {
        host: "localhost".into(),
        port: server.running().ldaps.unwrap().port(),
        ca: server.running().ca.clone().unwrap(),
        bind_dn: dn.into(),
        secret: Secret(secret.into()),
    }
}

fn code(e: AdminError) -> i64 {
    match e {
        AdminError::Ldap { code, .. } => code as i64,
        other => panic!("not an LDAP error: {other}"),
    }
}

#[tokio::test]
async fn people_and_groups() {
    let server = TestServer::start().await;
    let s = suffix();
    let mut c = local(&server).await;
    person::create(
        &mut c,
        &s,
        "alice",
        "Alice Liddell",
        Some("alice@example.com"),
        true,
    )
    .await
    .unwrap();
    person::create(&mut c, &s, "bob", "Bob", None, false)
        .await
        .unwrap();
    let dup = person::create(&mut c, &s, "bob", "Bob", None, false)
        .await
        .unwrap_err();
    assert_eq!(code(dup), 68);
    assert_eq!(
        person::list(&mut c, &s).await.unwrap(),
        vec!["alice", "bob"]
    );
    let text = tessera::admin::render(&person::get(&mut c, &s, "alice").await.unwrap());
    assert!(
        text.contains("uidNumber: ")
            && text.contains("sn: Liddell")
            && text.contains("mail: alice@example.com"),
        "{text}"
    );
    assert!(!text.contains("userPassword"));

    person::set_password(&mut c, &s, "alice", Some("chosen one"))
        .await
        .unwrap();
    server.bound(&person_dn("alice"), "chosen one").await;
    let generated = person::set_password(&mut c, &s, "bob", None)
        .await
        .unwrap()
        .unwrap();
    server.bound(&person_dn("bob"), &generated).await;

    group::create(&mut c, &s, "staff", true).await.unwrap();
    group::members(
        &mut c,
        &s,
        "staff",
        &["alice".into(), person_dn("bob")],
        true,
    )
    .await
    .unwrap();
    let text = tessera::admin::render(&group::get(&mut c, &s, "staff").await.unwrap());
    assert!(
        text.contains("memberUid: alice") && text.contains("memberUid: bob"),
        "{text}"
    );
    group::members(&mut c, &s, "staff", &["bob".into()], false)
        .await
        .unwrap();
    let text = tessera::admin::render(&group::get(&mut c, &s, "staff").await.unwrap());
    assert!(!text.contains("memberUid: bob"));
    assert_eq!(group::list(&mut c, &s).await.unwrap(), vec!["staff"]);
    group::delete(&mut c, &s, "staff").await.unwrap();
    person::delete(&mut c, &s, "bob").await.unwrap();
    assert_eq!(person::list(&mut c, &s).await.unwrap(), vec!["alice"]);

    // Acting as a person over LDAPS: the server's rules apply.
    let mut alice = Client::connect(&remote(&server, &person_dn("alice"), "chosen one"))
        .await
        .unwrap();
    assert_eq!(
        code(
            person::create(&mut alice, &s, "eve", "Eve", None, false)
                .await
                .unwrap_err()
        ),
        50
    );
    let wrong = Client::connect(&remote(&server, &person_dn("alice"), "nope"))
        .await
        .err()
        .unwrap();
    assert_eq!(code(wrong), 49);
    let nowhere = Target::Local {
        socket: server.dir.path().join("no.sock"),
    };
    let err = Client::connect(&nowhere).await.err().unwrap();
    assert!(
        err.to_string().contains("no.sock") && err.to_string().contains("tessera serve"),
        "{err}"
    );
    server.stop().await;
}

#[tokio::test]
async fn service_accounts_and_tokens() {
    let server = TestServer::start().await;
    let s = suffix();
    let mut c = local(&server).await;
    add_person(&mut server.admin().await, "bob", "pw-bob", false).await;
    group::create(&mut c, &s, "demo_group", false)
        .await
        .unwrap();
    group::members(&mut c, &s, "demo_group", &["bob".into()], true)
        .await
        .unwrap();
    let new = sa::NewAccount {
        id: "demo_service",
        display_name: "Demo service",
        managed_by: "demo_group",
        description: Some("kanidm's example"),
        expires: None,
        groups: &[],
    };
    sa::create(&mut c, &s, &new).await.unwrap();
    assert_eq!(sa::list(&mut c, &s).await.unwrap(), vec!["demo_service"]);
    let bad = sa::NewAccount { id: "Demo", ..new };
    assert_eq!(code(sa::create(&mut c, &s, &bad).await.unwrap_err()), 19);

    // bob manages it through demo_group, over LDAPS.
    let mut bob = Client::connect(&remote(&server, &person_dn("bob"), "pw-bob"))
        .await
        .unwrap();
    let account = sa::dn(&s, "demo_service");
    let req = sa::TokenRequest {
        account: &account,
        label: "ro",
        expires: None,
        read_write: false,
        app_password: false,
        extend_on_use: None,
    };
    let ro = sa::generate(&mut bob, &req).await.unwrap();
    let mut ldap = server.bound("dn=token", &ro.token).await;
    assert_eq!(whoami(&mut ldap).await, format!("dn:{account}"));
    let status = sa::status(&mut bob, &account).await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0][0].1, ro.id);
    assert_eq!(status[0][2].1, "read-only");
    let rotated = sa::rotate(&mut bob, &account, &ro.id, Some("1h"))
        .await
        .unwrap();
    server.bound("dn=token", &rotated.token).await;
    sa::destroy(&mut bob, &account, &ro.id).await.unwrap();
    let mut fresh = server.ldaps().await;
    assert_eq!(
        fresh.simple_bind("dn=token", &ro.token).await.unwrap().rc,
        49
    );

    // A read-write token used by the CLI itself (TESSERA_TOKEN's path): it is the account.
    let rw_req = sa::TokenRequest {
        read_write: true,
        label: "rw",
        ..req
    };
    let rw = sa::generate(&mut c, &rw_req).await.unwrap();
    let mut as_token = Client::connect(&remote(&server, "dn=token", &rw.token))
        .await
        .unwrap();
    assert_eq!(
        sa::list(&mut as_token, &s).await.unwrap(),
        vec!["demo_service"]
    );

    sa::update(
        &mut bob,
        &s,
        "demo_service",
        vec![("description", "updated by bob".into())],
    )
    .await
    .unwrap();
    sa::delete(&mut c, &s, "demo_service").await.unwrap();
    let mut fresh = server.ldaps().await;
    assert_eq!(
        fresh
            .simple_bind("dn=token", &rotated.token)
            .await
            .unwrap()
            .rc,
        49,
        "deleting the account ends its tokens"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_binary_creates_and_lists() {
    let server = TestServer::start().await;
    let url = server.ldapi_url();
    // The server shares this test's runtime: run the binary without blocking it.
    let run = |args: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .args(["-H", &url])
            .output()
    };
    let out = run(&["person", "create", "alice", "Alice Example", "--posix"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("created uid=alice,ou=people,dc=example,dc=com")
    );
    let out = run(&["person", "list"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice\n");
    let out = run(&["person", "create", "alice", "Alice Example"])
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("entryAlreadyExists (68)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["service-account", "create", "nas01", "NAS", "alice"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "service-account",
        "api-token",
        "generate",
        "nas01",
        "nas",
        "30d",
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(String::from_utf8_lossy(&out.stderr).contains("will not be shown again"));
    server.bound("dn=token", &token).await;
    server.stop().await;
}
