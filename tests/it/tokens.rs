//! Service accounts and API tokens: both bind styles, app passwords, scope, revocation
//! and expiry on live connections, rotation, delegation, names, and secrets kept secret.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::exop::Exop;
use ldap3::{Ldap, Mod, Scope};

use crate::raw::tlv;
use crate::{SUFFIX, TestServer, add_group, add_person, group_dn, person_dn, search, whoami};

const GENERATE: &str = "2.25.235497813471364094925541187040296631981.4.1";
const ROTATE: &str = "2.25.235497813471364094925541187040296631981.4.2";

fn service_dn(name: &str) -> String {
    format!("uid={name},ou=services,{SUFFIX}")
}

async fn add_service(ldap: &mut Ldap, name: &str, managed_by: Option<&str>) -> u32 {
    let mut attrs = vec![
        ("objectClass", HashSet::from(["tesseraServiceAccount"])),
        ("uid", HashSet::from([name])),
        ("cn", HashSet::from([name])),
    ];
    if let Some(m) = managed_by {
        attrs.push(("entryManagedBy", HashSet::from([m])));
    }
    ldap.add(&service_dn(name), attrs).await.unwrap().rc
}

struct Generated {
    id: String,
    token: String,
}

/// Send a generate request; Ok(token) or Err(result code).
async fn generate(
    ldap: &mut Ldap,
    account: &str,
    label: &str,
    scope: Option<&str>,
    expires: Option<&str>,
    intent: Option<&str>,
) -> Result<Generated, u32> {
    let mut body = tlv(0x80, account.as_bytes());
    body.extend(tlv(0x81, label.as_bytes()));
    if let Some(s) = scope {
        body.extend(tlv(0x82, s.as_bytes()));
    }
    if let Some(e) = expires {
        body.extend(tlv(0x83, e.as_bytes()));
    }
    if let Some(i) = intent {
        body.extend(tlv(0x84, i.as_bytes()));
    }
    let req = Exop {
        name: Some(GENERATE.into()),
        val: Some(tlv(0x30, &body)),
    };
    let ldap3::result::ExopResult(exop, res) = ldap.extended(req).await.unwrap();
    if res.rc != 0 {
        return Err(res.rc);
    }
    Ok(parse_response(&exop.val.unwrap()))
}

async fn rotate(ldap: &mut Ldap, account: &str, id: &str, overlap: &str) -> Generated {
    let mut body = tlv(0x80, account.as_bytes());
    body.extend(tlv(0x81, id.as_bytes()));
    body.extend(tlv(0x82, overlap.as_bytes()));
    let req = Exop {
        name: Some(ROTATE.into()),
        val: Some(tlv(0x30, &body)),
    };
    let ldap3::result::ExopResult(exop, res) = ldap.extended(req).await.unwrap();
    assert_eq!(res.rc, 0, "{}", res.text);
    parse_response(&exop.val.unwrap())
}

fn parse_response(value: &[u8]) -> Generated {
    // SEQUENCE { [0] id, [1] token, [2] expires OPTIONAL }, short lengths.
    assert_eq!(value[0], 0x30);
    let mut rest = &value[2..];
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let len = rest[1] as usize;
        fields.push(String::from_utf8(rest[2..2 + len].to_vec()).unwrap());
        rest = &rest[2 + len..];
    }
    Generated {
        id: fields[0].clone(),
        token: fields[1].clone(),
    }
}

async fn bind_rc(server: &TestServer, dn: &str, pw: &str) -> u32 {
    let mut ldap = server.ldaps().await;
    ldap.simple_bind(dn, pw).await.unwrap().rc
}

async fn setup() -> (TestServer, Ldap) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "bob", "pw-bob", false).await;
    add_person(&mut admin, "carol", "pw-carol", false).await;
    add_group(&mut admin, "nas-admins", &["bob"], false).await;
    assert_eq!(
        add_service(&mut admin, "nas01", Some(&group_dn("nas-admins"))).await,
        0
    );
    assert_eq!(add_service(&mut admin, "other", None).await, 0);
    (server, admin)
}

#[tokio::test]
async fn both_bind_styles_and_wrong_pairings() {
    let (server, mut admin) = setup().await;
    let t = generate(&mut admin, &service_dn("nas01"), "nas", None, None, None)
        .await
        .unwrap();
    assert!(t.token.len() <= 64, "{}", t.token.len());
    assert!(t.token.starts_with("tsr_") && t.token.contains(&t.id));

    for dn in ["dn=token", "DN=Token", &service_dn("nas01")] {
        let mut ldap = server.bound(dn, &t.token).await;
        assert_eq!(
            whoami(&mut ldap).await,
            format!("dn:{}", service_dn("nas01")),
            "{dn}"
        );
        let (entries, rc) = search(
            &mut ldap,
            &person_dn("bob"),
            Scope::Base,
            "(objectClass=*)",
            &["uid"],
        )
        .await;
        assert_eq!((entries.len(), rc), (1, 0));
    }
    assert_eq!(bind_rc(&server, &service_dn("other"), &t.token).await, 49);
    assert_eq!(bind_rc(&server, &person_dn("bob"), &t.token).await, 49);
    assert_eq!(
        bind_rc(&server, "dn=token", &t.token[..t.token.len() - 1]).await,
        49
    );
    assert_eq!(bind_rc(&server, "dn=token", "pw-bob").await, 49);
    let mut tampered = t.token.clone().into_bytes();
    let last = tampered.len() - 10;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        bind_rc(&server, "dn=token", std::str::from_utf8(&tampered).unwrap()).await,
        49
    );
    // Over plain LDAP a token is a password like any other: 13.
    let mut plain = server.plain().await;
    assert_eq!(
        plain.simple_bind("dn=token", &t.token).await.unwrap().rc,
        13
    );
    // A service account has no password to bind with.
    assert_eq!(bind_rc(&server, &service_dn("nas01"), "anything").await, 49);
    server.stop().await;
}

#[tokio::test]
async fn read_only_tokens_cannot_write_and_read_write_tokens_can() {
    let (server, mut admin) = setup().await;
    // Writing needs the account's write rights: make nas01 a directory administrator.
    let role = format!("cn=directory-admins,ou=roles,{SUFFIX}");
    let nas = service_dn("nas01");
    admin
        .modify(
            &role,
            vec![Mod::Add("member", HashSet::from([nas.as_str()]))],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let ro = generate(&mut admin, &nas, "ro", None, None, None)
        .await
        .unwrap();
    let rw = generate(&mut admin, &nas, "rw", Some("read-write"), None, None)
        .await
        .unwrap();

    let mut ldap = server.bound("dn=token", &ro.token).await;
    let bob = person_dn("bob");
    assert_eq!(crate::replace(&mut ldap, &bob, "title", &["x"]).await, 50);
    assert_eq!(ldap.delete(&person_dn("carol")).await.unwrap().rc, 50);
    assert_eq!(
        ldap.modifydn(&bob, "uid=robert", true, None)
            .await
            .unwrap()
            .rc,
        50
    );
    let add = ldap
        .add(
            &person_dn("eve"),
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["e"])),
                ("sn", HashSet::from(["e"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(add.rc, 50);
    let (e, _) = search(&mut admin, &bob, Scope::Base, "(objectClass=*)", &["title"]).await;
    assert!(!e[0].attrs.contains_key("title"), "nothing changed");
    assert_eq!(
        search(
            &mut admin,
            &person_dn("carol"),
            Scope::Base,
            "(objectClass=*)",
            &[]
        )
        .await
        .1,
        0
    );

    let mut ldap = server.bound("dn=token", &rw.token).await;
    assert_eq!(crate::replace(&mut ldap, &bob, "title", &["y"]).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn revocation_and_account_expiry_reach_bound_connections() {
    let (server, mut admin) = setup().await;
    let nas = service_dn("nas01");
    let t = generate(&mut admin, &nas, "nas", None, None, None)
        .await
        .unwrap();
    let mut bound = server.bound("dn=token", &t.token).await;
    assert!(whoami(&mut bound).await.starts_with("dn:"));
    let status = search(
        &mut admin,
        &nas,
        Scope::OneLevel,
        "(objectClass=tesseraApiToken)",
        &["*", "+"],
    )
    .await
    .0;
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].attrs["tokenLabel"], vec!["nas"]);
    assert_eq!(status[0].attrs["tokenScope"], vec!["read-only"]);
    assert!(status[0].attrs.contains_key("tokenExpires"));
    admin
        .delete(&status[0].dn)
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(
        whoami(&mut bound).await,
        "",
        "revoked: the next operation is anonymous"
    );
    assert_eq!(
        search(
            &mut bound,
            &person_dn("bob"),
            Scope::Base,
            "(objectClass=*)",
            &[]
        )
        .await
        .1,
        32
    );
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 49);

    let t = generate(&mut admin, &nas, "nas2", None, None, None)
        .await
        .unwrap();
    let mut bound = server.bound(&nas, &t.token).await;
    assert_eq!(
        crate::replace(&mut admin, &nas, "accountExpires", &["20000101000000Z"]).await,
        0
    );
    assert_eq!(
        whoami(&mut bound).await,
        "",
        "expired account: the next operation is anonymous"
    );
    assert_eq!(bind_rc(&server, &nas, &t.token).await, 49);
    server.stop().await;
}

#[tokio::test]
async fn expiry_and_rotation_follow_the_clock() {
    let (server, mut admin) = setup().await;
    let nas = service_dn("nas01");
    let clock = server.running().state.clock.clone();
    let short = generate(&mut admin, &nas, "short", None, Some("1h"), None)
        .await
        .unwrap();
    let long = generate(&mut admin, &nas, "long", None, None, None)
        .await
        .unwrap();
    let forever = generate(&mut admin, &nas, "forever", None, Some("never"), None)
        .await
        .unwrap();
    assert_eq!(bind_rc(&server, "dn=token", &short.token).await, 0);

    let rotated = rotate(&mut admin, &nas, &long.id, "2h").await;
    assert_eq!(bind_rc(&server, "dn=token", &rotated.token).await, 0);
    assert_eq!(
        bind_rc(&server, "dn=token", &long.token).await,
        0,
        "overlap"
    );

    clock.advance(Duration::from_secs(3 * 3600));
    assert_eq!(
        bind_rc(&server, "dn=token", &short.token).await,
        49,
        "expired"
    );
    assert_eq!(
        bind_rc(&server, "dn=token", &long.token).await,
        49,
        "overlap over"
    );
    assert_eq!(bind_rc(&server, "dn=token", &rotated.token).await, 0);
    clock.advance(Duration::from_secs(366 * 86400));
    assert_eq!(
        bind_rc(&server, "dn=token", &rotated.token).await,
        49,
        "default lifetime is 365 days"
    );
    assert_eq!(bind_rc(&server, "dn=token", &forever.token).await, 0);

    let bad = generate(&mut admin, &nas, "x", None, Some("soon"), None)
        .await
        .err();
    assert_eq!(bad, Some(2));
    server.stop().await;

    let capped =
        TestServer::start_with("[tokens]\ndefault_lifetime = \"7d\"\nmax_lifetime = \"30d\"\n")
            .await;
    let mut admin = capped.admin().await;
    assert_eq!(add_service(&mut admin, "nas01", None).await, 0);
    assert_eq!(
        generate(&mut admin, &nas, "x", None, Some("never"), None)
            .await
            .err(),
        Some(19)
    );
    assert_eq!(
        generate(&mut admin, &nas, "x", None, Some("90d"), None)
            .await
            .err(),
        Some(19)
    );
    assert!(
        generate(&mut admin, &nas, "x", None, Some("7d"), None)
            .await
            .is_ok()
    );
    capped.stop().await;
}

#[tokio::test]
async fn delegation_to_the_managing_group() {
    let (server, _admin) = setup().await;
    let nas = service_dn("nas01");
    let mut bob = server.bound(&person_dn("bob"), "pw-bob").await;
    let t = generate(&mut bob, &nas, "by bob", None, None, None)
        .await
        .unwrap();
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 0);
    let mut carol = server.bound(&person_dn("carol"), "pw-carol").await;
    assert_eq!(
        generate(&mut carol, &nas, "by carol", None, None, None)
            .await
            .err(),
        Some(50)
    );
    assert_eq!(
        generate(&mut bob, &service_dn("other"), "not his", None, None, None)
            .await
            .err(),
        Some(50)
    );
    let token_dn = format!("tokenId={},{nas}", t.id);
    assert_eq!(carol.delete(&token_dn).await.unwrap().rc, 50);
    assert_eq!(
        bob.delete(&token_dn).await.unwrap().rc,
        0,
        "managers revoke"
    );
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 49);
    // A token cannot mint tokens for its own account's peers... nor use a read-only token to manage.
    let ro = generate(&mut bob, &nas, "ro", None, None, None)
        .await
        .unwrap();
    let mut via_token = server.bound("dn=token", &ro.token).await;
    assert_eq!(
        generate(&mut via_token, &nas, "x", None, None, None)
            .await
            .err(),
        Some(50)
    );
    server.stop().await;
}

#[tokio::test]
async fn service_account_names_and_no_passwords() {
    let (server, mut admin) = setup().await;
    for (name, rc) in [
        ("svc-1_a", 0),
        ("a", 0),
        ("Bad", 19),
        ("-lead", 19),
        ("trail_", 19),
        ("dot.ted", 19),
    ] {
        assert_eq!(add_service(&mut admin, name, None).await, rc, "{name}");
    }
    let long = "a".repeat(64);
    assert_eq!(add_service(&mut admin, &long, None).await, 19);
    let res = admin
        .add(
            &service_dn("Bad"),
            vec![
                ("objectClass", HashSet::from(["tesseraServiceAccount"])),
                ("uid", HashSet::from(["Bad"])),
            ],
        )
        .await
        .unwrap();
    assert!(res.text.contains("'B'"), "{}", res.text);
    let nas = service_dn("nas01");
    assert_eq!(
        crate::replace(&mut admin, &nas, "userPassword", &["secret"]).await,
        19
    );
    let add = vec![Mod::Add("userPassword", HashSet::from(["secret"]))];
    assert_eq!(admin.modify(&nas, add).await.unwrap().rc, 19);
    server.stop().await;
}

#[tokio::test]
async fn app_passwords_bind_as_their_person_only() {
    let (server, _admin) = setup().await;
    let bob_dn = person_dn("bob");
    let mut bob = server.bound(&bob_dn, "pw-bob").await;
    let app = generate(&mut bob, &bob_dn, "phone", None, None, Some("app-password"))
        .await
        .unwrap();
    let mut phone = server.bound(&bob_dn, &app.token).await;
    assert_eq!(whoami(&mut phone).await, format!("dn:{bob_dn}"));
    assert_eq!(bind_rc(&server, "dn=token", &app.token).await, 49);
    assert_eq!(bind_rc(&server, &person_dn("carol"), &app.token).await, 49);
    assert_eq!(
        bind_rc(&server, &bob_dn, "pw-bob").await,
        0,
        "the password still works"
    );
    let mut carol = server.bound(&person_dn("carol"), "pw-carol").await;
    assert_eq!(
        generate(&mut carol, &bob_dn, "x", None, None, Some("app-password"))
            .await
            .err(),
        Some(50)
    );
    assert_eq!(
        generate(&mut bob, &bob_dn, "x", None, None, None)
            .await
            .err(),
        Some(53),
        "API tokens are for service accounts"
    );
    server.stop().await;
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything the test binary logs from now on, at info and above. A process-wide
/// subscriber, because the server logs from whatever thread runs the operation.
fn capture_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let sink = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || sink.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            captured
        })
        .clone()
}

#[tokio::test]
async fn secrets_never_appear_in_logs_or_results() {
    let captured = capture_logs();

    let (server, mut admin) = setup().await;
    let t = generate(&mut admin, &service_dn("nas01"), "nas", None, None, None)
        .await
        .unwrap();
    server.bound("dn=token", &t.token).await;
    let last = if t.token.ends_with('x') { "y" } else { "x" };
    let wrong = format!("{}{last}", &t.token[..t.token.len() - 1]);
    assert_eq!(bind_rc(&server, "dn=token", &wrong).await, 49);
    let secret = &t.token[4 + 12 + 1..];
    let (all, _) = search(
        &mut admin,
        SUFFIX,
        Scope::Subtree,
        "(objectClass=*)",
        &["*", "+", "tokenSecretHash"],
    )
    .await;
    assert!(all.len() > 5);
    for e in &all {
        assert!(!e.attrs.contains_key("tokenSecretHash"), "{}", e.dn);
        for v in e.attrs.values().flatten() {
            assert!(!v.contains(secret), "secret in {}", e.dn);
        }
    }
    // Filtering on the hidden hash finds nothing, so it cannot be probed.
    assert!(
        search(
            &mut admin,
            SUFFIX,
            Scope::Subtree,
            "(tokenSecretHash=*)",
            &["1.1"]
        )
        .await
        .0
        .is_empty()
    );
    server.stop().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("token-generated") && log.contains(&t.id),
        "audit events are logged: {log}"
    );
    assert!(!log.contains(secret), "the secret is never logged");
}

#[tokio::test]
async fn service_account_admins_create_and_managers_update() {
    let (server, mut admin) = setup().await;
    let sa_admins = format!("cn=service-account-admins,ou=roles,{SUFFIX}");
    let carol_dn = person_dn("carol");
    let add = vec![Mod::Add("member", HashSet::from([carol_dn.as_str()]))];
    admin
        .modify(&sa_admins, add)
        .await
        .unwrap()
        .success()
        .unwrap();
    let mut carol = server.bound(&carol_dn, "pw-carol").await;
    let mut bob = server.bound(&person_dn("bob"), "pw-bob").await;
    assert_eq!(
        add_service(&mut carol, "made-by-carol", Some(&group_dn("nas-admins"))).await,
        0
    );
    assert_eq!(add_service(&mut bob, "made-by-bob", None).await, 50);
    // Members of service-account-admins create service accounts, nothing else.
    let person = carol
        .add(
            &person_dn("mallory"),
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["m"])),
                ("sn", HashSet::from(["m"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(person.rc, 50);

    let nas = service_dn("nas01");
    assert_eq!(
        crate::replace(&mut bob, &nas, "description", &["the NAS"]).await,
        0,
        "managers update"
    );
    assert_eq!(
        crate::replace(&mut carol, &nas, "description", &["not hers"]).await,
        50
    );
    assert_eq!(
        crate::replace(&mut bob, &person_dn("carol"), "description", &["x"]).await,
        50
    );
    // Once nas01 is a directory administrator, only administrators re-delegate it.
    let role = format!("cn=directory-admins,ou=roles,{SUFFIX}");
    admin
        .modify(
            &role,
            vec![Mod::Add("member", HashSet::from([nas.as_str()]))],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let carol_group = person_dn("carol");
    assert_eq!(
        crate::replace(&mut bob, &nas, "entryManagedBy", &[&carol_group]).await,
        50
    );
    assert_eq!(
        crate::replace(&mut bob, &nas, "description", &["still fine"]).await,
        0
    );
    assert_eq!(
        crate::replace(&mut admin, &nas, "entryManagedBy", &[&carol_group]).await,
        0
    );
    server.stop().await;
}
