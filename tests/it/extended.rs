//! Extended operations: Who Am I, Password Modify in all its forms, unknown OIDs.

use ldap3::exop::{Exop, PasswordModify, PasswordModifyResp};

use crate::{TestServer, add_person, person_dn, whoami};

#[tokio::test]
async fn password_modify_self_with_and_without_new_password() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "first", false).await;
    let dn = person_dn("alice");

    let mut alice = server.bound(&dn, "first").await;
    let req = PasswordModify {
        user_id: None,
        old_pass: Some("first"),
        new_pass: Some("second"),
    };
    let (exop, _) = alice.extended(req).await.unwrap().success().unwrap();
    assert!(
        exop.val.is_none(),
        "no value when the client chose the password"
    );
    server.bound(&dn, "second").await;

    // Wrong old password.
    let req = PasswordModify {
        user_id: None,
        old_pass: Some("nope"),
        new_pass: Some("third"),
    };
    assert_eq!(alice.extended(req).await.unwrap().1.rc, 49);

    // No new password: the server generates one and returns it.
    let req = PasswordModify {
        user_id: None,
        old_pass: None,
        new_pass: None,
    };
    let (exop, _) = alice.extended(req).await.unwrap().success().unwrap();
    let generated = exop.parse::<PasswordModifyResp>().gen_pass;
    assert!(generated.len() >= 16);
    server.bound(&dn, &generated).await;

    // The request with no value at all, as `ldappasswd` sends it with no arguments.
    let bare = Exop {
        name: Some("1.3.6.1.4.1.4203.1.11.1".into()),
        val: None,
    };
    let (exop, _) = alice.extended(bare).await.unwrap().success().unwrap();
    let generated = exop.parse::<PasswordModifyResp>().gen_pass;
    server.bound(&dn, &generated).await;
    server.stop().await;
}

#[tokio::test]
async fn password_modify_of_others_needs_an_administrator() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-a", false).await;
    add_person(&mut admin, "bob", "pw-b", false).await;
    let mut alice = server.bound(&person_dn("alice"), "pw-a").await;
    let bob = person_dn("bob");
    let req = PasswordModify {
        user_id: Some(&bob),
        old_pass: None,
        new_pass: Some("hijack"),
    };
    assert_eq!(alice.extended(req).await.unwrap().1.rc, 50);
    let req = PasswordModify {
        user_id: Some(&bob),
        old_pass: None,
        new_pass: Some("reset by admin"),
    };
    admin.extended(req).await.unwrap().success().unwrap();
    server.bound(&bob, "reset by admin").await;
    let mut anon = server.ldaps().await;
    let req = PasswordModify {
        user_id: Some(&bob),
        old_pass: None,
        new_pass: Some("x"),
    };
    assert_eq!(anon.extended(req).await.unwrap().1.rc, 53);
    let mut plain = server.plain().await;
    let req = PasswordModify {
        user_id: Some(&bob),
        old_pass: None,
        new_pass: Some("x"),
    };
    assert_eq!(plain.extended(req).await.unwrap().1.rc, 13);
    server.stop().await;
}

#[tokio::test]
async fn unknown_extended_operation_is_a_protocol_error() {
    let server = TestServer::start().await;
    let mut ldap = server.ldaps().await;
    let res = ldap
        .extended(Exop {
            name: Some("1.2.3.4.5".into()),
            val: None,
        })
        .await
        .unwrap();
    assert_eq!(res.1.rc, 2);
    assert_eq!(whoami(&mut ldap).await, "", "the connection still works");
    server.stop().await;
}

#[tokio::test]
async fn starttls_is_refused_on_tls_and_works_once_on_plain() {
    let server = TestServer::start().await;
    let mut ldap = server.ldaps().await;
    let res = ldap
        .extended(Exop {
            name: Some("1.3.6.1.4.1.1466.20037".into()),
            val: None,
        })
        .await
        .unwrap();
    assert_eq!(res.1.rc, 1);
    let mut upgraded = server.starttls().await;
    assert_eq!(whoami(&mut upgraded).await, "");
    let res = upgraded
        .extended(Exop {
            name: Some("1.3.6.1.4.1.1466.20037".into()),
            val: None,
        })
        .await
        .unwrap();
    assert_eq!(res.1.rc, 1);
    server.stop().await;
}
