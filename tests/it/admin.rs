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
    let alice = person::NewPerson {
        id: "alice",
        display_name: "Alice Liddell",
        mail: Some("alice@example.com"),
        posix: true,
        ..Default::default()
    };
    person::create(&mut c, &s, &alice).await.unwrap();
    let bob = person::NewPerson {
        id: "bob",
        display_name: "Bob",
        ..Default::default()
    };
    person::create(&mut c, &s, &bob).await.unwrap();
    let dup = person::create(&mut c, &s, &bob).await.unwrap_err();
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
            person::create(
                &mut alice,
                &s,
                &person::NewPerson {
                    id: "eve",
                    display_name: "Eve",
                    ..Default::default()
                }
            )
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
        http: false,
        extend_on_use: None,
    };
    let ro = sa::generate(&mut bob, &req).await.unwrap();
    let mut ldap = server.bound("dn=token", &ro.token).await;
    assert_eq!(whoami(&mut ldap).await, format!("dn:{account}"));
    let status = sa::status(&mut bob, &account).await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].id, ro.id);
    assert_eq!(status[0].scope, "read-only");
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
    crate::grant(
        &mut server.admin().await,
        "service-account-admins",
        &account.to_string(),
    )
    .await;
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

/// The binary as an admin types it: exit codes, output, env-var secrets, LDAPS as a person
/// and with a token.
struct Cli<'a> {
    server: &'a TestServer,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli<'_> {
    async fn run(&self, args: &[&str], env: &[(&str, &str)], remote: bool) -> Out {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.args(args)
            .env_remove("TESSERA_TOKEN")
            .env_remove("TESSERA_PASSWORD");
        cmd.env_remove("TESSERA_NEW_PASSWORD");
        if remote {
            let ca = self.server.running().ca.clone().unwrap();
            cmd.args(["-H", &self.server.ldaps_url(), "--ca"]).arg(ca);
        } else {
            cmd.args(["-H", &self.server.ldapi_url()]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, &[], false).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        out.stdout
    }
}

#[tokio::test]
async fn the_binary_end_to_end() {
    let server = TestServer::start().await;
    let cli = Cli { server: &server };

    cli.ok(&[
        "person",
        "create",
        "alice",
        "Alice Example",
        "--mail",
        "a@example.com",
    ])
    .await;
    cli.ok(&["person", "create", "bob", "Bob Example", "--posix"])
        .await;
    let got = cli.ok(&["person", "get", "bob"]).await;
    assert!(
        got.contains("dn: uid=bob,ou=people,dc=example,dc=com") && got.contains("uidNumber: "),
        "{got}"
    );
    let set = cli
        .run(
            &["person", "set-password", "alice"],
            &[("TESSERA_NEW_PASSWORD", "alice-pw")],
            false,
        )
        .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    server.bound(&person_dn("alice"), "alice-pw").await;
    let generated = cli
        .ok(&["person", "set-password", "bob", "--generate"])
        .await;
    server.bound(&person_dn("bob"), generated.trim()).await;

    cli.ok(&["group", "create", "staff", "--posix"]).await;
    cli.ok(&["group", "add-members", "staff", "alice", "bob"])
        .await;
    let staff = cli.ok(&["group", "get", "staff"]).await;
    assert!(
        staff.contains("memberUid: alice") && staff.contains("gidNumber: "),
        "{staff}"
    );
    cli.ok(&["group", "remove-members", "staff", "bob"]).await;
    assert!(
        !cli.ok(&["group", "get", "staff"])
            .await
            .contains("memberUid: bob")
    );
    assert_eq!(cli.ok(&["group", "list"]).await, "staff\n");
    let missing = cli.run(&["group", "get", "nobody"], &[], false).await;
    assert_eq!(
        missing.code, 32,
        "exit status is the LDAP result code: {}",
        missing.stderr
    );

    // A service account with expiry and groups, managed by alice.
    cli.ok(&[
        "service-account",
        "create",
        "nas01",
        "The NAS",
        "alice",
        "--expires",
        "90d",
        "--group",
        "staff",
        "--description",
        "rack 2",
    ])
    .await;
    let nas = cli.ok(&["service-account", "get", "nas01"]).await;
    for want in [
        "accountExpires: ",
        "memberOf: cn=staff,ou=groups,dc=example,dc=com",
        "entryManagedBy: uid=alice,ou=people,dc=example,dc=com",
        "description: rack 2",
    ] {
        assert!(nas.contains(want), "{want} in {nas}");
    }
    let past = cli
        .run(
            &[
                "service-account",
                "update",
                "nas01",
                "--expires",
                "2001-01-01T00:00:00Z",
            ],
            &[],
            false,
        )
        .await;
    assert_eq!(
        past.code, 1,
        "a past expiry is a usage error: {}",
        past.stderr
    );
    assert!(past.stderr.contains("past"), "{}", past.stderr);

    // alice manages it from her workstation over LDAPS.
    let as_alice = [("TESSERA_PASSWORD", "alice-pw")];
    let generate = [
        "service-account",
        "api-token",
        "generate",
        "nas01",
        "fleet",
        "30d",
        "--rw",
        "--name",
        "alice",
    ];
    let minted = cli.run(&generate, &as_alice, true).await;
    assert_eq!(minted.code, 0, "{}", minted.stderr);
    let token = minted.stdout.trim().to_string();
    assert!(token.starts_with("tsr_") && token.len() <= 64, "{token}");
    assert!(minted.stderr.contains("will not be shown again"));
    let status = cli
        .run(
            &[
                "service-account",
                "api-token",
                "status",
                "nas01",
                "--name",
                "alice",
            ],
            &as_alice,
            true,
        )
        .await;
    let lines: Vec<&str> = status.stdout.lines().collect();
    for column in [
        "id",
        "label",
        "scope",
        "intent",
        "created",
        "expires",
        "last used",
    ] {
        assert!(lines[0].contains(column), "{column} in {}", lines[0]);
    }
    assert_eq!(lines.len(), 2, "{}", status.stdout);
    assert!(
        lines[1].contains("fleet")
            && lines[1].contains("read-write")
            && lines[1].contains("api-token"),
        "{}",
        lines[1]
    );
    let wrong = cli
        .run(
            &["person", "list", "--name", "alice"],
            &[("TESSERA_PASSWORD", "nope")],
            true,
        )
        .await;
    assert_eq!(wrong.code, 49, "{}", wrong.stderr);

    // The read-write token drives the CLI itself, as the account (bare name or dn=token).
    let nas_dn = "uid=nas01,ou=services,dc=example,dc=com";
    crate::grant(&mut server.admin().await, "service-account-admins", nas_dn).await;
    for name in [&["--name", "nas01"][..], &[][..]] {
        let args: Vec<&str> = ["service-account", "list"]
            .iter()
            .copied()
            .chain(name.iter().copied())
            .collect();
        let listed = cli.run(&args, &[("TESSERA_TOKEN", &token)], true).await;
        assert_eq!(listed.code, 0, "{name:?}: {}", listed.stderr);
        assert_eq!(listed.stdout, "nas01\n");
    }
    let token_id = lines[1].split_whitespace().next().unwrap().to_string();
    let rotated = cli
        .run(
            &[
                "service-account",
                "api-token",
                "rotate",
                "nas01",
                &token_id,
                "--overlap",
                "1h",
                "--name",
                "alice",
            ],
            &as_alice,
            true,
        )
        .await;
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    server.bound("dn=token", rotated.stdout.trim()).await;
    let destroyed = cli
        .run(
            &[
                "service-account",
                "api-token",
                "destroy",
                "nas01",
                &token_id,
                "--name",
                "alice",
            ],
            &as_alice,
            true,
        )
        .await;
    assert_eq!(destroyed.code, 0, "{}", destroyed.stderr);
    let mut fresh = server.ldaps().await;
    assert_eq!(fresh.simple_bind("dn=token", &token).await.unwrap().rc, 49);

    // App passwords: alice's own, per device.
    let app = cli
        .run(
            &[
                "person",
                "app-password",
                "generate",
                "alice",
                "phone",
                "--name",
                "alice",
            ],
            &as_alice,
            true,
        )
        .await;
    assert_eq!(app.code, 0, "{}", app.stderr);
    let app_token = app.stdout.trim().to_string();
    let mut phone = server.bound(&person_dn("alice"), &app_token).await;
    assert_eq!(
        whoami(&mut phone).await,
        format!("dn:{}", person_dn("alice"))
    );
    let app_status = cli.ok(&["person", "app-password", "status", "alice"]).await;
    assert!(
        app_status.contains("phone") && app_status.contains("app-password"),
        "{app_status}"
    );
    let app_id = app_status
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    cli.ok(&["person", "app-password", "destroy", "alice", &app_id])
        .await;
    // Destroyed while bound.
    crate::expect_lapsed(&mut phone).await;

    cli.ok(&["service-account", "delete", "nas01"]).await;
    assert_eq!(cli.ok(&["service-account", "list"]).await, "");
    cli.ok(&["group", "delete", "staff"]).await;
    cli.ok(&["person", "delete", "bob"]).await;
    assert_eq!(cli.ok(&["person", "list"]).await, "alice\n");
    server.stop().await;
}

#[tokio::test]
async fn roles_from_the_binary_and_search_as() {
    let server = TestServer::start().await;
    let cli = Cli { server: &server };
    cli.ok(&["person", "create", "ann", "Ann Example", "--posix"])
        .await;
    cli.ok(&["person", "create", "cat", "Cat Example", "--posix"])
        .await;
    cli.ok(&["group", "create", "nas-users", "--posix"]).await;
    cli.ok(&["group", "add-members", "nas-users", "ann"]).await;
    cli.ok(&["service-account", "create", "nas01", "NAS", "ann"])
        .await;

    let filter = "(|(memberOf=cn=nas-users,ou=groups,dc=example,dc=com)(cn=nas-users))";
    let created = cli
        .ok(&[
            "role",
            "create",
            "nas-readers",
            "--base",
            "people",
            "--base",
            "groups",
            "--filter",
            filter,
            "--right",
            "read",
            "--description",
            "the NAS",
        ])
        .await;
    assert!(
        created.contains("created cn=nas-readers,ou=roles,dc=example,dc=com"),
        "{created}"
    );
    cli.ok(&["role", "add-members", "nas-readers", "nas01"])
        .await;
    cli.ok(&["role", "grant", "nas-readers", "compare"]).await;
    let got = cli.ok(&["role", "get", "nas-readers"]).await;
    for want in [
        "member: uid=nas01,ou=services,dc=example,dc=com",
        "roleRight: compare",
        "roleScopeBase: ou=groups,dc=example,dc=com",
        "roleScopeFilter: (|(memberOf=",
    ] {
        assert!(got.contains(want), "{want} in {got}");
    }
    let listed = cli.ok(&["role", "list"]).await;
    assert!(
        listed.contains("nas-readers\n") && listed.contains("directory-readers\n"),
        "{listed}"
    );

    // The NAS's view, before any token exists.
    let view = cli
        .run(
            &[
                "search",
                "--as",
                "nas01",
                "(objectClass=posixAccount)",
                "uid",
            ],
            &[],
            false,
        )
        .await;
    assert_eq!(view.code, 0, "{}", view.stderr);
    assert!(
        view.stdout.contains("uid: ann") && !view.stdout.contains("uid: cat"),
        "{}",
        view.stdout
    );
    assert!(
        view.stderr.contains("1 entry visible to nas01"),
        "{}",
        view.stderr
    );
    let as_dn = cli
        .run(
            &[
                "search",
                "--as",
                "uid=nas01,ou=services,dc=example,dc=com",
                "-s",
                "one",
                "-b",
                "ou=groups,dc=example,dc=com",
                "(cn=*)",
                "cn",
            ],
            &[],
            false,
        )
        .await;
    assert!(as_dn.stdout.contains("cn: nas-users"), "{}", as_dn.stdout);
    let bad = cli
        .run(&["search", "--as", "nas01", "(uid=ann"], &[], false)
        .await;
    assert_eq!(bad.code, 1, "a bad filter is a usage error");
    assert!(bad.stderr.contains("bad filter"), "{}", bad.stderr);

    // Bad definitions are refused by the server with the reason.
    let refused = cli
        .run(&["role", "grant", "nas-readers", "teleport"], &[], false)
        .await;
    assert_eq!(refused.code, 19, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("unknown right 'teleport'"),
        "{}",
        refused.stderr
    );
    let outside = cli
        .run(
            &[
                "role",
                "create",
                "elsewhere",
                "--base",
                "dc=other",
                "--right",
                "read",
            ],
            &[],
            false,
        )
        .await;
    assert_eq!(outside.code, 19, "{}", outside.stderr);
    let nobody = cli
        .run(&["role", "add-members", "nas-readers", "ghost"], &[], false)
        .await;
    assert_eq!(nobody.code, 1);
    assert!(
        nobody
            .stderr
            .contains("no person, service account or group is called 'ghost'"),
        "{}",
        nobody.stderr
    );

    cli.ok(&["role", "revoke", "nas-readers", "compare"]).await;
    cli.ok(&["role", "remove-members", "nas-readers", "nas01"])
        .await;
    let view = cli
        .run(
            &[
                "search",
                "--as",
                "nas01",
                "(objectClass=posixAccount)",
                "uid",
            ],
            &[],
            false,
        )
        .await;
    // The suffix entry itself is visible to everyone; nobody below it is.
    assert!(
        !view.stdout.contains("ou=people"),
        "with no role the NAS sees no one: {}",
        view.stdout
    );
    cli.ok(&["role", "delete", "nas-readers"]).await;
    assert!(!cli.ok(&["role", "list"]).await.contains("nas-readers"));
    server.stop().await;
}
