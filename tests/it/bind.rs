//! Binds: anonymous, password, the uniform 49, 53, 13, StartTLS, EXTERNAL, rehash.

use std::collections::HashSet;

use ldap3::controls::RawControl;
use ldap3::{Ldap, Scope, SearchEntry};

use crate::{TestServer, add_person, person_dn, search, whoami};

#[tokio::test]
async fn password_bind_and_whoami_over_ldaps() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "correct horse", false).await;

    let mut ldap = server.ldaps().await;
    assert_eq!(whoami(&mut ldap).await, "");
    ldap.simple_bind(&person_dn("alice"), "correct horse")
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(
        whoami(&mut ldap).await,
        format!("dn:{}", person_dn("alice"))
    );
    server.stop().await;
}

#[tokio::test]
async fn every_bad_credential_is_the_same_49() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "correct horse", false).await;
    let mut ldap = server.ldaps().await;
    let cases = [
        (person_dn("alice"), "wrong"),
        (person_dn("nobody"), "whatever"),
        ("uid=alice,dc=elsewhere,dc=org".to_string(), "correct horse"),
        (String::new(), "some password"),
        ("not a dn".to_string(), "x"),
        ("ou=people,dc=example,dc=com".to_string(), "x"),
    ];
    let mut messages = Vec::new();
    for (dn, pw) in &cases {
        let res = ldap.simple_bind(dn, pw).await.unwrap();
        assert_eq!(res.rc, 49, "{dn}");
        messages.push(res.text);
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "messages differ: {messages:?}");
    server.stop().await;
}

/// Equal cost, counted rather than timed: a failed password bind runs exactly one argon2
/// verification on the hashing pool whether the DN is unknown, names an entry without a
/// password, or names a person whose password did not match, as a successful bind does.
#[tokio::test]
async fn every_password_bind_costs_one_argon2_verification() {
    let server =
        TestServer::start_with("[throttle]\nfree_failures = 1000\nsource_free_failures = 1000\n")
            .await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", false).await;
    let nopass = person_dn("nopass");
    admin
        .add(
            &nopass,
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("uid", HashSet::from(["nopass"])),
                ("cn", HashSet::from(["No Password"])),
                ("sn", HashSet::from(["Password"])),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let hashers = &server.running().state.hashers;
    let cases = [
        ("an unknown DN", person_dn("nobody"), "pw-alice", 49),
        (
            "a known DN, wrong password",
            person_dn("alice"),
            "wrong",
            49,
        ),
        ("a DN without a password", nopass, "pw-alice", 49),
        (
            "a DN outside the suffix",
            "uid=alice,dc=elsewhere,dc=org".to_string(),
            "pw-alice",
            49,
        ),
        ("not a DN", "not a dn".to_string(), "pw-alice", 49),
        ("the right password", person_dn("alice"), "pw-alice", 0),
    ];
    let mut ldap = server.ldaps().await;
    for (what, dn, password, rc) in cases {
        let before = hashers.argon2_runs();
        let got = ldap.simple_bind(&dn, password).await.unwrap().rc;
        let runs = hashers.argon2_runs() - before;
        assert_eq!((got, runs), (rc, 1), "{what}: (result code, argon2 runs)");
    }
    server.stop().await;
}

#[tokio::test]
async fn failed_bind_leaves_the_connection_anonymous() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", false).await;
    let mut ldap = server.bound(&person_dn("alice"), "pw-alice").await;
    assert!(whoami(&mut ldap).await.starts_with("dn:"));
    assert_eq!(
        ldap.simple_bind(&person_dn("alice"), "bad")
            .await
            .unwrap()
            .rc,
        49
    );
    assert_eq!(whoami(&mut ldap).await, "");
    server.stop().await;
}

#[tokio::test]
async fn unauthenticated_bind_is_53_and_plaintext_bind_is_13() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", false).await;
    let mut ldap = server.ldaps().await;
    assert_eq!(
        ldap.simple_bind(&person_dn("alice"), "").await.unwrap().rc,
        53
    );

    let mut plain = server.plain().await;
    assert_eq!(
        plain
            .simple_bind(&person_dn("alice"), "pw-alice")
            .await
            .unwrap()
            .rc,
        13
    );
    // An anonymous bind needs no protection.
    assert_eq!(plain.simple_bind("", "").await.unwrap().rc, 0);

    let mut upgraded = server.starttls().await;
    upgraded
        .simple_bind(&person_dn("alice"), "pw-alice")
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(
        whoami(&mut upgraded).await,
        format!("dn:{}", person_dn("alice"))
    );
    server.stop().await;
}

#[tokio::test]
async fn plaintext_binds_allowed_when_configured() {
    let server = TestServer::start_with("[security]\nrequire_tls_for_bind = false\n").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", false).await;
    let mut plain = server.plain().await;
    plain
        .simple_bind(&person_dn("alice"), "pw-alice")
        .await
        .unwrap()
        .success()
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn external_on_ldapi_maps_peer_credentials() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let me = whoami(&mut admin).await;
    assert!(me.starts_with("dn:gidNumber="), "{me}");
    assert!(me.ends_with(",cn=peercred,cn=external,cn=auth"), "{me}");
    // EXTERNAL is refused on TCP.
    let mut ldap = server.ldaps().await;
    let res = ldap.sasl_external_bind().await.unwrap();
    assert_eq!(res.rc, 48);
    server.stop().await;
}

#[tokio::test]
async fn legacy_ssha_hash_verifies_and_is_rehashed_to_argon2id() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    // {SSHA} of "secret" with salt "salt" (sha1("secret" + "salt") + "salt", base64).
    let ssha = ssha("secret", b"salt");
    add_person(&mut admin, "legacy", &ssha, false).await;
    let (entries, _) = search(
        &mut admin,
        &person_dn("legacy"),
        Scope::Base,
        "(objectClass=*)",
        &["userPassword"],
    )
    .await;
    assert_eq!(
        entries[0].attrs["userPassword"],
        vec![ssha.clone()],
        "a hashed value is stored as given"
    );

    server.bound(&person_dn("legacy"), "secret").await;
    let (entries, _) = search(
        &mut admin,
        &person_dn("legacy"),
        Scope::Base,
        "(objectClass=*)",
        &["userPassword"],
    )
    .await;
    let stored = &SearchEntry::clone(&entries[0]).attrs["userPassword"][0];
    assert!(stored.starts_with("{ARGON2}$argon2id$"), "{stored}");
    server.bound(&person_dn("legacy"), "secret").await;
    server.stop().await;
}

#[tokio::test]
async fn ssha512_and_sha512_crypt_hashes_verify_and_are_rehashed() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "s512", &ssha512("secret", b"saltsalt"), false).await;
    add_person(&mut admin, "crypt6", SHA512_CRYPT_SECRET, false).await;
    for uid in ["s512", "crypt6"] {
        binds_then_holds_argon2(&server, &mut admin, uid, "secret").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn imported_legacy_hashes_verify_and_are_rehashed() {
    let ldif = format!(
        "dn: {ssha}\nobjectClass: inetOrgPerson\nuid: old-ssha\ncn: Old\nsn: Ssha\n\
         userPassword: {ssha_hash}\n\n\
         dn: {s512}\nobjectClass: inetOrgPerson\nuid: old-s512\ncn: Old\nsn: Ssha512\n\
         userPassword: {s512_hash}\n\n\
         dn: {crypt}\nobjectClass: inetOrgPerson\nuid: old-crypt\ncn: Old\nsn: Crypt\n\
         userPassword: {SHA512_CRYPT_SECRET}\n\n\
         dn: {yescrypt}\nobjectClass: inetOrgPerson\nuid: old-yescrypt\ncn: Old\nsn: Yescrypt\n\
         userPassword: {YESCRYPT_SECRET}\n\n",
        yescrypt = person_dn("old-yescrypt"),
        ssha = person_dn("old-ssha"),
        ssha_hash = ssha("secret", b"salt"),
        s512 = person_dn("old-s512"),
        s512_hash = ssha512("secret", b"saltsalt"),
        crypt = person_dn("old-crypt"),
    );
    let server = TestServer::start_with_ldif("", Some(&ldif)).await;
    let mut admin = server.admin().await;
    for uid in ["old-ssha", "old-s512", "old-crypt", "old-yescrypt"] {
        binds_then_holds_argon2(&server, &mut admin, uid, "secret").await;
    }
    server.stop().await;
}

/// `uid` has a legacy hash of `password`: it binds (and a wrong password does not), its
/// value is then `{ARGON2}`, and the new hash binds too.
async fn binds_then_holds_argon2(server: &TestServer, admin: &mut Ldap, uid: &str, password: &str) {
    let before = user_password(admin, uid).await;
    assert!(!before.starts_with("{ARGON2}"), "{uid}: {before}");
    let mut ldap = server.ldaps().await;
    assert_eq!(
        ldap.simple_bind(&person_dn(uid), "wrong").await.unwrap().rc,
        49,
        "{uid}"
    );
    assert_eq!(
        user_password(admin, uid).await,
        before,
        "no rehash on a failure"
    );
    server.bound(&person_dn(uid), password).await;
    let after = user_password(admin, uid).await;
    assert!(after.starts_with("{ARGON2}$argon2id$"), "{uid}: {after}");
    server.bound(&person_dn(uid), password).await;
}

async fn user_password(admin: &mut Ldap, uid: &str) -> String {
    let (entries, rc) = search(
        admin,
        &person_dn(uid),
        Scope::Base,
        "(objectClass=*)",
        &["userPassword"],
    )
    .await;
    assert_eq!(rc, 0);
    let values = &SearchEntry::clone(&entries[0]).attrs["userPassword"];
    assert_eq!(values.len(), 1, "{values:?}");
    values[0].clone()
}

/// sha512-crypt of "secret" with salt "saltsalt" (`openssl passwd -6 -salt saltsalt secret`).
const SHA512_CRYPT_SECRET: &str = "{CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

/// yescrypt of "secret" at Debian's default cost, as OpenLDAP's own tool writes it
/// (`slappasswd -h '{CRYPT}' -c '$y$j9T$%.16s' -s secret`, Debian 12).
const YESCRYPT_SECRET: &str =
    "{CRYPT}$y$j9T$.vUXsnpfdC83aMPc$zed/hRb6u2GCuMg.3id03Z7dg2dA5s.mH9T42r6J5K/";

fn ssha512(password: &str, salt: &[u8]) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha512};
    let mut h = Sha512::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(salt);
    format!(
        "{{SSHA512}}{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[tokio::test]
async fn bind_with_an_unsupported_critical_control_is_not_performed() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", false).await;
    let mut ldap = server.ldaps().await;
    let ctrl = |crit| RawControl {
        ctype: "1.2.3.4.5.6".into(),
        crit,
        val: None,
    };
    let res = ldap
        .with_controls(vec![ctrl(true)])
        .simple_bind(&person_dn("alice"), "pw-alice")
        .await
        .unwrap();
    assert_eq!(res.rc, 12);
    assert_eq!(whoami(&mut ldap).await, "", "the bind did not happen");
    // Not critical: ignored, and the bind succeeds.
    let res = ldap
        .with_controls(vec![ctrl(false)])
        .simple_bind(&person_dn("alice"), "pw-alice")
        .await
        .unwrap();
    assert_eq!(res.rc, 0);
    let me = format!("dn:{}", person_dn("alice"));
    assert_eq!(whoami(&mut ldap).await, me);
    // A refused bind leaves the current identity alone (it was never performed).
    let res = ldap
        .with_controls(vec![ctrl(true)])
        .simple_bind("", "")
        .await
        .unwrap();
    assert_eq!(res.rc, 12);
    assert_eq!(whoami(&mut ldap).await, me);
    server.stop().await;
}

/// Many connections binding at once through a one-thread hashing pool (whose queue holds
/// one job): every bind gets its answer, the right ones succeed, a wrong password and an
/// unknown DN (the decoy run) fail with the same 49, and nothing is crossed between them.
#[tokio::test]
async fn concurrent_binds_through_a_small_hashing_pool_all_get_their_own_answer() {
    let server = TestServer::start_with(
        "[limits]\nmax_password_hashers = 1\n[throttle]\nfree_failures = 1000\nsource_free_failures = 1000\n",
    )
    .await;
    let mut admin = server.admin().await;
    for uid in ["alice", "bob", "carol"] {
        add_person(&mut admin, uid, &format!("pw-{uid}"), false).await;
    }
    let server = std::sync::Arc::new(server);
    let mut clients = Vec::new();
    for i in 0..48usize {
        let server = server.clone();
        clients.push(tokio::spawn(async move {
            let uid = ["alice", "bob", "carol"][i % 3];
            let mut ldap = server.ldaps().await;
            let mut codes = Vec::new();
            for (dn, password) in [
                (person_dn(uid), format!("pw-{uid}")),
                (person_dn(uid), "wrong".to_string()),
                (person_dn(&format!("nobody{i}")), format!("pw-{uid}")),
                (person_dn(uid), format!("pw-{uid}")),
            ] {
                codes.push(ldap.simple_bind(&dn, &password).await.unwrap().rc);
            }
            // The last bind succeeded, as this connection's own person.
            (codes, whoami(&mut ldap).await, uid)
        }));
    }
    let mut answered = 0;
    for client in clients {
        let (codes, me, uid) = client.await.unwrap();
        assert_eq!(codes, [0, 49, 49, 0], "{uid}");
        assert_eq!(me, format!("dn:{}", person_dn(uid)));
        answered += 1;
    }
    assert_eq!(answered, 48);
    let server = std::sync::Arc::into_inner(server).unwrap();
    server.stop().await;
}

pub fn ssha(password: &str, salt: &[u8]) -> String {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(salt);
    format!(
        "{{SSHA}}{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}
