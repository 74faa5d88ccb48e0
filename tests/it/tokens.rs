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

pub fn service_dn(name: &str) -> String {
    format!("uid={name},ou=services,{SUFFIX}")
}

pub async fn add_service(ldap: &mut Ldap, name: &str, managed_by: Option<&str>) -> u32 {
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

pub struct Generated {
    pub id: String,
    pub token: String,
}

/// Send a generate request; Ok(token) or Err(result code).
pub async fn generate(
    ldap: &mut Ldap,
    account: &str,
    label: &str,
    scope: Option<&str>,
    expires: Option<&str>,
    intent: Option<&str>,
) -> Result<Generated, u32> {
    let fields = [(0x82, scope), (0x83, expires), (0x84, intent)];
    generate_with(ldap, account, label, &fields).await
}

/// A generate request with the optional fields given as (tag, value).
async fn generate_with(
    ldap: &mut Ldap,
    account: &str,
    label: &str,
    optional: &[(u8, Option<&str>)],
) -> Result<Generated, u32> {
    let mut body = tlv(0x80, account.as_bytes());
    body.extend(tlv(0x81, label.as_bytes()));
    for (tag, value) in optional {
        if let Some(v) = value {
            body.extend(tlv(*tag, v.as_bytes()));
        }
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
    if !overlap.is_empty() {
        body.extend(tlv(0x82, overlap.as_bytes()));
    }
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
    crate::grant(&mut admin, "directory-readers", &service_dn("nas01")).await;
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
    let nas = service_dn("nas01");
    crate::grant(&mut admin, "directory-admins", &nas).await;
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
    // Revoked: the next operation is told so (a Notice of Disconnection), not answered.
    crate::expect_lapsed(&mut bound).await;
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 49);

    let t = generate(&mut admin, &nas, "nas2", None, None, None)
        .await
        .unwrap();
    let mut bound = server.bound(&nas, &t.token).await;
    assert_eq!(
        crate::replace(&mut admin, &nas, "accountExpires", &["20000101000000Z"]).await,
        0
    );
    // Expired account: likewise.
    crate::expect_lapsed(&mut bound).await;
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

    // A value the server cannot take is a constraint (19), with the reason; a request
    // that is not shaped as the operation says is a protocol error (2).
    for (expires, why) in [
        ("soon", "not an expiry"),
        ("0s", "born expired"),
        ("1ms", "expired before use"),
        ("59s", "under the minimum"),
    ] {
        let bad = generate(&mut admin, &nas, "x", None, Some(expires), None).await;
        assert_eq!(bad.err(), Some(19), "{expires}: {why}");
    }
    assert!(
        generate(&mut admin, &nas, "x", None, Some("1m"), None)
            .await
            .is_ok()
    );
    let long = "x".repeat(100_000);
    for label in [long.as_str(), "two\nlines", "nul\0byte", "   "] {
        let bad = generate(&mut admin, &nas, label, None, None, None).await;
        assert_eq!(
            bad.err(),
            Some(19),
            "label {:?}",
            &label[..label.len().min(12)]
        );
    }
    assert!(
        generate(&mut admin, &nas, &"x".repeat(128), None, None, None)
            .await
            .is_ok()
    );
    let twice = [(0x81u8, Some("again")), (0x83, Some("1d"))];
    let res = generate_with(&mut admin, &nas, "x", &twice).await;
    assert_eq!(res.err(), Some(2), "a repeated field");
    let unknown = [(0x86u8, Some("x"))];
    let res = generate_with(&mut admin, &nas, "x", &unknown).await;
    assert_eq!(res.err(), Some(2), "an unknown field");
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
    // Others get 50, whether or not they could see the account.
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
    assert_eq!(
        generate(&mut bob, &service_dn("ghost"), "missing", None, None, None)
            .await
            .err(),
        Some(50),
        "the same for an account that does not exist"
    );
    let token_dn = format!("tokenId={},{nas}", t.id);
    assert_eq!(
        carol.delete(&token_dn).await.unwrap().rc,
        50,
        "she writes nowhere"
    );
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
    let (server, mut admin) = setup().await;
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
    let others = |carol: &mut Ldap| {
        let bob_dn = bob_dn.clone();
        let carol = carol.clone();
        async move {
            let mut carol = carol;
            generate(&mut carol, &bob_dn, "x", None, None, Some("app-password"))
                .await
                .err()
        }
    };
    // 50 whether or not carol can see bob.
    assert_eq!(others(&mut carol).await, Some(50), "invisible to carol");
    crate::grant(&mut admin, "directory-readers", &person_dn("carol")).await;
    assert_eq!(others(&mut carol).await, Some(50), "visible, not hers");
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
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

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
pub fn capture_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let sink = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
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
    let bad_checksum = format!("{}{last}", &t.token[..t.token.len() - 1]);
    assert_eq!(bind_rc(&server, "dn=token", &bad_checksum).await, 49);
    let wrong = wrong_secret(&t.token);
    assert_eq!(bind_rc(&server, "dn=token", &wrong).await, 49);
    // The bare 33-character secret, without the checksum after it: a log, result or export
    // holding it alone gives the token away as surely as the whole token.
    let wrong_secret_part = bare_secret(&wrong);
    let secret = bare_secret(&t.token);
    let rotated = rotate(&mut admin, &service_dn("nas01"), &t.id, "1h").await;
    let revoked = format!("tokenId={},{}", rotated.id, service_dn("nas01"));
    admin.delete(&revoked).await.unwrap().success().unwrap();
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
    let dir = server.stop().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // Other tests log through the same subscriber: look at this test's token ids only.
    let events: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&t.id) || l.contains(&rotated.id))
        .collect();
    let has = |needles: &[&str]| events.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        has(&["token-generated", "actor=gidNumber="]),
        "generation: {events:#?}"
    );
    assert!(
        has(&[
            "event=\"bind\"",
            "outcome=\"success\"",
            "peer=\"127.0.0.1:",
            "transport=\"ldaps\""
        ]),
        "a bind names who, the token, where from and over what: {events:#?}"
    );
    assert!(
        has(&["event=\"bind\"", "outcome=\"failure\"", "code=49"]),
        "{events:#?}"
    );
    assert!(has(&["token-rotated", "account=uid=nas01"]), "{events:#?}");
    assert!(
        has(&["token-revoked", &rotated.id, "account=uid=nas01"]),
        "{events:#?}"
    );
    for s in [secret, wrong_secret_part, bare_secret(&rotated.token)] {
        assert!(!log.contains(s), "a secret is never logged");
    }

    // Nor is it in a backup: the export holds hashes only.
    let config = tessera::config::Config::parse(&format!(
        "data_dir = \"{}\"\n",
        dir.path().join("data").display()
    ))
    .unwrap();
    let mut export = Vec::new();
    tessera::db::export(&config, &mut export).unwrap();
    // LDIF folds long lines: join them, so a value cut in two is still found.
    let export = String::from_utf8(export).unwrap().replace("\n ", "");
    assert!(export.contains(&format!("tokenId={}", t.id)));
    assert!(!export.contains(secret));
}

#[tokio::test]
async fn service_account_admins_create_and_managers_update() {
    let (server, mut admin) = setup().await;
    let carol_dn = person_dn("carol");
    crate::grant(&mut admin, "service-account-admins", &carol_dn).await;
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
        crate::replace(&mut carol, &nas, "description", &["by the role"]).await,
        0,
        "service-account-admins manage every service account"
    );
    assert_eq!(
        crate::replace(&mut bob, &service_dn("other"), "description", &["x"]).await,
        32,
        "not his, and invisible to him"
    );
    assert_eq!(
        crate::replace(&mut carol, &person_dn("bob"), "description", &["x"]).await,
        32,
        "people are outside the role"
    );
    // Once nas01 is a directory administrator, only administrators re-delegate it.
    crate::grant(&mut admin, "directory-admins", &nas).await;
    let carol_group = person_dn("carol");
    assert_eq!(
        crate::replace(&mut bob, &nas, "entryManagedBy", &[&carol_group]).await,
        50
    );
    assert_eq!(
        crate::replace(&mut carol, &nas, "entryManagedBy", &[&carol_group]).await,
        50,
        "nor through a role"
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

/// One attribute of one entry, as the administrator sees it.
async fn attr(admin: &mut Ldap, dn: &str, name: &str) -> Option<String> {
    let (e, _) = search(admin, dn, Scope::Base, "(objectClass=*)", &[name, "+"]).await;
    e.first()
        .and_then(|e| e.attrs.get(name))
        .and_then(|v| v.first().cloned())
}

/// Wait (bounded) for a background write to show `name` different from `old`.
async fn changed(admin: &mut Ldap, dn: &str, name: &str, old: Option<&str>) -> Option<String> {
    for _ in 0..200 {
        let now = attr(admin, dn, name).await;
        if now.as_deref() != old {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} of {dn} never changed from {old:?}");
}

#[tokio::test]
async fn last_use_is_recorded_coarsely_and_sliding_expiry_slides() {
    let (server, mut admin) = setup().await;
    let clock = server.running().state.clock.clone();
    let nas = service_dn("nas01");
    let t = generate_with(&mut admin, &nas, "sliding", &[(0x85, Some("2h"))])
        .await
        .unwrap();
    let dn = format!("tokenId={},{nas}", t.id);
    let first_expiry = attr(&mut admin, &dn, "tokenExpires").await.unwrap();
    assert_eq!(
        attr(&mut admin, &dn, "tokenExtendOnUse").await.as_deref(),
        Some("7200")
    );
    assert_eq!(attr(&mut admin, &dn, "tokenLastUsed").await, None);

    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 0);
    let used = changed(&mut admin, &dn, "tokenLastUsed", None)
        .await
        .unwrap();
    // The first use already slides the expiry to now + 2h.
    let first_expiry = changed(&mut admin, &dn, "tokenExpires", Some(&first_expiry))
        .await
        .unwrap();
    // A second use within the minute writes nothing.
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        attr(&mut admin, &dn, "tokenLastUsed").await.as_deref(),
        Some(used.as_str())
    );
    assert_eq!(
        attr(&mut admin, &dn, "tokenExpires").await.as_deref(),
        Some(first_expiry.as_str())
    );

    // 90 minutes on, a use pushes the expiry to now + 2h: past the first expiry.
    clock.advance(Duration::from_secs(90 * 60));
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 0);
    let pushed = changed(&mut admin, &dn, "tokenExpires", Some(&first_expiry))
        .await
        .unwrap();
    assert!(pushed > first_expiry, "{pushed} > {first_expiry}");
    clock.advance(Duration::from_secs(90 * 60));
    assert_eq!(
        bind_rc(&server, "dn=token", &t.token).await,
        0,
        "alive past the first expiry"
    );
    let _ = changed(&mut admin, &dn, "tokenExpires", Some(&pushed)).await;
    clock.advance(Duration::from_secs(3 * 3600));
    assert_eq!(
        bind_rc(&server, "dn=token", &t.token).await,
        49,
        "unused for longer than 2h"
    );
    server.stop().await;

    // The server's maximum bounds both the period and how far uses can push.
    let capped =
        TestServer::start_with("[tokens]\ndefault_lifetime = \"7d\"\nmax_lifetime = \"30d\"\n")
            .await;
    let clock = capped.running().state.clock.clone();
    let mut admin = capped.admin().await;
    assert_eq!(add_service(&mut admin, "nas01", None).await, 0);
    let too_long = generate_with(&mut admin, &nas, "x", &[(0x85, Some("60d"))]).await;
    assert_eq!(too_long.err(), Some(19));
    let t = generate_with(&mut admin, &nas, "x", &[(0x85, Some("20d"))])
        .await
        .unwrap();
    let dn = format!("tokenId={},{nas}", t.id);
    let before = attr(&mut admin, &dn, "tokenExpires").await;
    clock.advance(Duration::from_secs(15 * 86400));
    assert_eq!(bind_rc(&capped, "dn=token", &t.token).await, 0);
    let _ = changed(&mut admin, &dn, "tokenExpires", before.as_deref()).await;
    clock.advance(Duration::from_secs(14 * 86400));
    assert_eq!(bind_rc(&capped, "dn=token", &t.token).await, 0, "day 29");
    clock.advance(Duration::from_secs(2 * 86400));
    assert_eq!(
        bind_rc(&capped, "dn=token", &t.token).await,
        49,
        "never past 30 days"
    );
    capped.stop().await;
}

#[tokio::test]
async fn metadata_rfc3339_expiry_and_default_overlap() {
    let (server, mut admin) = setup().await;
    let clock = server.running().state.clock.clone();
    let nas = service_dn("nas01");
    let mut bob = server.bound(&person_dn("bob"), "pw-bob").await;
    let t = generate(
        &mut bob,
        &nas,
        "fleet",
        Some("read-write"),
        Some("2999-01-01T10:00:00+10:00"),
        None,
    )
    .await
    .unwrap();
    let dn = format!("tokenId={},{nas}", t.id);
    assert_eq!(
        attr(&mut admin, &dn, "tokenExpires").await.as_deref(),
        Some("29990101000000.000000Z")
    );
    assert_eq!(
        attr(&mut admin, &dn, "tokenCreatedBy").await,
        Some(person_dn("bob"))
    );
    assert_eq!(
        attr(&mut admin, &dn, "tokenIntent").await.as_deref(),
        Some("api-token")
    );
    assert!(attr(&mut admin, &dn, "createTimestamp").await.is_some());

    // Rotation keeps label and scope; the old token lives 24 hours by default.
    let new = rotate(&mut bob, &nas, &t.id, "").await;
    let new_dn = format!("tokenId={},{nas}", new.id);
    assert_eq!(
        attr(&mut admin, &new_dn, "tokenLabel").await.as_deref(),
        Some("fleet")
    );
    assert_eq!(
        attr(&mut admin, &new_dn, "tokenScope").await.as_deref(),
        Some("read-write")
    );
    clock.advance(Duration::from_secs(23 * 3600));
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 0);
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 49);
    assert_eq!(bind_rc(&server, "dn=token", &new.token).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn read_only_compare_no_password_modify_and_deletion_while_bound() {
    let (server, mut admin) = setup().await;
    let nas = service_dn("nas01");
    let ro = generate(&mut admin, &nas, "ro", None, None, None)
        .await
        .unwrap();
    let rw = generate(&mut admin, &nas, "rw", Some("read-write"), None, None)
        .await
        .unwrap();
    let mut ldap = server.bound("dn=token", &ro.token).await;
    let cmp = ldap
        .compare(&person_dn("bob"), "sn", "Example")
        .await
        .unwrap();
    assert_eq!(cmp.0.rc, 6, "compareTrue with a read-only token");

    // A service account never has a password, not even through Password Modify.
    let mut rw_ldap = server.bound("dn=token", &rw.token).await;
    let change = ldap3::exop::PasswordModify {
        user_id: Some(&nas),
        old_pass: None,
        new_pass: Some("a password"),
    };
    let res = rw_ldap.extended(change).await.unwrap().1;
    assert_eq!(res.rc, 53, "{}", res.text);
    let own = ldap3::exop::PasswordModify {
        user_id: None,
        old_pass: None,
        new_pass: Some("x"),
    };
    assert_eq!(rw_ldap.extended(own).await.unwrap().1.rc, 53);
    assert_eq!(attr(&mut admin, &nas, "userPassword").await, None);

    // Deleting the account ends connections already bound with its tokens.
    for t in [&ro, &rw] {
        let token_dn = format!("tokenId={},{nas}", t.id);
        admin.delete(&token_dn).await.unwrap().success().unwrap();
    }
    admin.delete(&nas).await.unwrap().success().unwrap();
    crate::expect_lapsed(&mut ldap).await;
    crate::expect_lapsed(&mut rw_ldap).await;
    server.stop().await;
}

#[tokio::test]
async fn app_passwords_expire_and_are_revoked() {
    let (server, mut admin) = setup().await;
    let clock = server.running().state.clock.clone();
    let bob_dn = person_dn("bob");
    let mut bob = server.bound(&bob_dn, "pw-bob").await;
    let phone = generate(
        &mut bob,
        &bob_dn,
        "phone",
        None,
        Some("1h"),
        Some("app-password"),
    )
    .await
    .unwrap();
    let laptop = generate(
        &mut bob,
        &bob_dn,
        "laptop",
        None,
        None,
        Some("app-password"),
    )
    .await
    .unwrap();
    let mut on_laptop = server.bound(&bob_dn, &laptop.token).await;
    bob.delete(&format!("tokenId={},{bob_dn}", laptop.id))
        .await
        .unwrap()
        .success()
        .unwrap();
    // Revoked while bound.
    crate::expect_lapsed(&mut on_laptop).await;
    assert_eq!(bind_rc(&server, &bob_dn, &laptop.token).await, 49);
    assert_eq!(bind_rc(&server, &bob_dn, &phone.token).await, 0);
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(bind_rc(&server, &bob_dn, &phone.token).await, 49, "expired");
    assert_eq!(bind_rc(&server, &bob_dn, "pw-bob").await, 0);
    let (left, _) = search(
        &mut admin,
        &bob_dn,
        Scope::OneLevel,
        "(objectClass=tesseraApiToken)",
        &["tokenLabel"],
    )
    .await;
    assert_eq!(left.len(), 1, "the expired one stays visible until deleted");
    server.stop().await;
}

#[tokio::test]
async fn delegation_limits() {
    let (server, mut admin) = setup().await;
    // A person as the manager, directly.
    let managed = service_dn("bobs");
    assert_eq!(
        add_service(&mut admin, "bobs", Some(&person_dn("bob"))).await,
        0
    );
    let mut bob = server.bound(&person_dn("bob"), "pw-bob").await;
    let t = generate(&mut bob, &managed, "mine", None, None, None)
        .await
        .unwrap();
    assert_eq!(bind_rc(&server, "dn=token", &t.token).await, 0);
    // Managers update the account, and nothing else about it.
    assert_eq!(bob.delete(&managed).await.unwrap().rc, 50);
    let renamed = bob
        .modifydn(&managed, "uid=renamed", true, None)
        .await
        .unwrap();
    assert_eq!(renamed.rc, 50);

    // service-account-admins create service accounts under ou=services only.
    let carol_dn = person_dn("carol");
    crate::grant(&mut admin, "service-account-admins", &carol_dn).await;
    let mut carol = server.bound(&carol_dn, "pw-carol").await;
    let elsewhere = carol
        .add(
            &person_dn("svc-in-people"),
            vec![
                ("objectClass", HashSet::from(["tesseraServiceAccount"])),
                ("uid", HashSet::from(["svc-in-people"])),
                ("cn", HashSet::from(["svc-in-people"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(elsewhere.rc, 50);
    assert_eq!(add_service(&mut carol, "in-services", None).await, 0);
    server.stop().await;
}

/// The same token id with another secret, checksum made good: a well-formed wrong token.
pub fn wrong_secret(token: &str) -> String {
    use sha2::{Digest, Sha256};
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let (body, _) = token.split_at(token.len() - 6);
    let flipped = if body.ends_with('a') { 'b' } else { 'a' };
    let body = format!("{}{flipped}", &body[..body.len() - 1]);
    let digest = Sha256::digest(body.as_bytes());
    let mut n = u64::from_be_bytes(digest[..8].try_into().unwrap());
    let mut check = String::new();
    for _ in 0..6 {
        check.push(char::from(BASE62[(n % 62) as usize]));
        n /= 62;
    }
    format!("{body}{check}")
}

/// The secret inside a token: after `tsr_`, the 12-character id and `_`; before the
/// 6-character checksum.
fn bare_secret(token: &str) -> &str {
    let secret = &token[4 + 12 + 1..token.len() - 6];
    assert_eq!(secret.len(), 33, "not a token: {} characters", token.len());
    secret
}

#[tokio::test]
async fn failed_binds_answer_alike_and_log_their_reason() {
    let captured = capture_logs();
    let (server, mut admin) = setup().await;
    add_person(&mut admin, "why-wrong", "right", false).await;
    let person = |uid: &str, password: &str, extra: Vec<(&'static str, HashSet<&'static str>)>| {
        let mut attrs = vec![
            (
                "objectClass",
                HashSet::from(["inetOrgPerson", "extensibleObject"]),
            ),
            ("cn", HashSet::from(["x"])),
            ("sn", HashSet::from(["x"])),
        ];
        attrs.push((
            "userPassword",
            HashSet::from([password.to_string().leak() as &str]),
        ));
        attrs.extend(extra);
        (person_dn(uid), attrs)
    };
    for (dn, attrs) in [
        person(
            "why-expired",
            "right",
            vec![("accountExpires", HashSet::from(["20000101000000Z"]))],
        ),
        // yescrypt's successor scheme, which nothing here verifies.
        person("why-scheme", "{CRYPT}$9$unknown$scheme", vec![]),
    ] {
        admin.add(&dn, attrs).await.unwrap().success().unwrap();
    }
    let t = generate(
        &mut admin,
        &service_dn("nas01"),
        "why",
        None,
        Some("1h"),
        None,
    )
    .await
    .unwrap();
    let app = generate(
        &mut admin,
        &person_dn("bob"),
        "why",
        None,
        None,
        Some("app-password"),
    )
    .await
    .unwrap();
    let revoked = generate(&mut admin, &service_dn("nas01"), "gone", None, None, None)
        .await
        .unwrap();
    let gone = format!("tokenId={},{}", revoked.id, service_dn("nas01"));
    admin.delete(&gone).await.unwrap().success().unwrap();
    let cases: Vec<(String, String, &str)> = vec![
        (
            person_dn("why-nobody"),
            "pw".into(),
            "unknown DN or no password",
        ),
        (
            "cn=why,o=elsewhere".into(),
            "pw".into(),
            "no such entry in the directory",
        ),
        (person_dn("why-wrong"), "wrong".into(), "wrong password"),
        (person_dn("why-expired"), "right".into(), "expired account"),
        (
            person_dn("why-scheme"),
            "right".into(),
            "unsupported password hash scheme",
        ),
        (
            service_dn("nas01"),
            wrong_secret(&t.token),
            "wrong token secret",
        ),
        (
            service_dn("other"),
            t.token.clone(),
            "token not valid for this bind DN",
        ),
        (
            "dn=token".into(),
            app.token.clone(),
            "token not valid for this bind DN",
        ),
        (
            person_dn("carol"),
            app.token.clone(),
            "token not valid for this bind DN",
        ),
        (
            service_dn("nas01"),
            revoked.token.clone(),
            "unknown or revoked token",
        ),
        (
            service_dn("nas01"),
            format!("{}0", &t.token[..t.token.len() - 1]),
            "malformed token",
        ),
    ];
    for (dn, pw, _) in &cases {
        let res = server.ldaps().await.simple_bind(dn, pw).await.unwrap();
        assert_eq!(
            (res.rc, res.text.as_str()),
            (49, "invalid credentials"),
            "{dn}"
        );
    }
    // Expiry: the same token, an hour and a bit later.
    server
        .running()
        .state
        .clock
        .advance(std::time::Duration::from_secs(2 * 3600));
    assert_eq!(bind_rc(&server, &service_dn("nas01"), &t.token).await, 49);
    server.stop().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("event=\"bind\"") && l.contains("outcome=\"failure\""))
        .collect();
    let logged = |dn: &str, reason: &str| {
        failures
            .iter()
            .any(|l| l.contains(&format!("dn={dn}")) && l.contains(&format!("reason=\"{reason}")))
    };
    for (dn, pw, reason) in &cases {
        assert!(logged(dn, reason), "{dn}: {reason} in {failures:#?}");
        assert!(
            !log.contains(pw.as_str()) || pw.len() < 8,
            "no secret in the log"
        );
    }
    assert!(logged(&service_dn("nas01"), "expired token or account"));
    // The token id is public and logged; its secret never.
    assert!(!log.contains(bare_secret(&t.token)));
}
