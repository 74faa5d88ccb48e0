//! The command line as people meet it, through the real binary: help with an example on
//! every command and argument, completions and man pages, refusals that say what is
//! missing or why, RFC 3339 times and token states, person ids and `person update`; and
//! the server's own start-up output: logs without colour codes off a terminal, JSON logs,
//! readiness for a service manager, bad log levels refused.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};

use clap::CommandFactory;
use ldap3::Mod;

use crate::{SUFFIX, TestServer};

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The binary against `server`'s LDAPI socket (the local administrator), or over LDAPS
/// with `env` holding the secret.
async fn run(server: &TestServer, args: &[&str], env: &[(&str, &str)], remote: bool) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args)
        .env_remove("TESSERA_TOKEN")
        .env_remove("TESSERA_PASSWORD");
    if remote {
        let ca = server.running().ca.clone().unwrap();
        cmd.args(["-H", &server.ldaps_url(), "--ca"]).arg(ca);
    } else {
        cmd.args(["-H", &server.ldapi_url()]);
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

async fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = run(server, args, &[], false).await;
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.stdout
}

/// Read the child's standard output until a line contains `marker`, then stop it with
/// SIGTERM and collect the rest.
pub fn stop_when(child: &mut Child, marker: &str) -> Out {
    let mut stdout = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            stdout.push_str(&line);
            stdout.push('\n');
            if line.contains(marker) {
                break;
            }
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        std::io::Read::read_to_string(&mut err, &mut stderr).unwrap();
    }
    Out {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

#[test]
fn every_command_and_argument_has_help_with_an_example() {
    fn walk(cmd: &clap::Command, path: &str, checked: &mut usize) {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        assert!(!about.is_empty(), "{path}: no help text");
        let after = cmd
            .get_after_help()
            .map(|a| a.to_string())
            .unwrap_or_default();
        assert!(after.contains("tessera "), "{path}: no example: {after:?}");
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(!help.is_empty(), "{path} {id}: no help text");
            if arg.get_action().takes_values() {
                assert!(help.contains("e.g."), "{path} {id}: no example in {help:?}");
            }
            *checked += 1;
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            walk(sub, &format!("{path} {}", sub.get_name()), checked);
        }
    }
    let mut checked = 0;
    let cli = tessera::cli::Cli::command();
    walk(&cli, "tessera", &mut checked);
    assert!(checked > 80, "{checked} arguments checked");
    // The points people trip over.
    let role = cli.find_subcommand("role").unwrap();
    let create = role.find_subcommand("create").unwrap();
    let level = create
        .get_arguments()
        .find(|a| a.get_id() == "level")
        .unwrap();
    assert!(level.get_help().unwrap().to_string().contains("children"));
    let db = cli.find_subcommand("db").unwrap().get_about().unwrap();
    assert!(
        db.to_string().contains("backup works while it runs"),
        "{db}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_definitions() {
    let bin = env!("CARGO_BIN_EXE_tessera");
    let bash = Command::new(bin)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(bash.status.success());
    let text = String::from_utf8_lossy(&bash.stdout);
    assert!(
        text.contains("complete -F") && text.contains("service-account") && text.contains("renew"),
        "{text}"
    );
    let zsh = Command::new(bin)
        .args(["completions", "zsh"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&zsh.stdout).contains("#compdef tessera"));
    let bad = Command::new(bin)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "clap's usage error");

    let man = Command::new(bin).arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.contains(".TH tessera 1") && page.contains("service\\-account"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = std::fs::read_to_string(dir.path().join("tessera-person-update.1")).unwrap();
    assert!(
        page.contains("uid\\-number") && page.contains("e.g."),
        "{page}"
    );
    let pages = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(pages > 40, "{pages} pages");
    let nowhere = Command::new(bin)
        .args(["man", "--dir", "/proc/no-such-place"])
        .output()
        .unwrap();
    assert_eq!(nowhere.status.code(), Some(1));
    let err = String::from_utf8_lossy(&nowhere.stderr);
    assert!(err.starts_with("tessera: /proc/no-such-place: "), "{err}");
}

#[tokio::test]
async fn refusals_name_what_is_missing_or_why() {
    let server = TestServer::start().await;
    let missing = run(&server, &["person", "get", "nosuch"], &[], false).await;
    assert_eq!(missing.code, 32);
    assert_eq!(
        missing.stderr.trim(),
        "tessera: no person 'nosuch' (uid=nosuch,ou=people,dc=example,dc=com) [noSuchObject (32)]"
    );
    for (args, want) in [
        (&["role", "get", "ghost"][..], "no role 'ghost'"),
        (&["group", "delete", "ghost"][..], "no group 'ghost'"),
        (
            &["service-account", "delete", "ghost"][..],
            "no service account 'ghost'",
        ),
        (
            &["service-account", "api-token", "status", "ghost"][..],
            "no such account: uid=ghost,ou=services",
        ),
        (
            &["person", "update", "ghost", "--mail", "g@example.com"][..],
            "no person 'ghost'",
        ),
    ] {
        let out = run(&server, args, &[], false).await;
        assert_eq!(out.code, 32, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(want) && out.stderr.contains("[noSuchObject (32)]"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let nobody = run(
        &server,
        &["search", "--as", "nosuch", "(uid=*)"],
        &[],
        false,
    )
    .await;
    assert_eq!(nobody.code, 123, "{}", nobody.stderr);
    assert!(
        nobody.stderr.contains("no such identity 'nosuch'"),
        "{}",
        nobody.stderr
    );

    // Person ids are login names.
    let bad = run(
        &server,
        &["person", "create", "Bob Smith", "Bob"],
        &[],
        false,
    )
    .await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("'Bob Smith' is not a valid person id")
            && bad.stderr.contains("lowercase letters, digits"),
        "{}",
        bad.stderr
    );
    assert_eq!(ok(&server, &["person", "list"]).await, "");

    // A bad expiry is explained here, with an example in the future.
    ok(&server, &["group", "create", "admins"]).await;
    ok(
        &server,
        &["service-account", "create", "nas01", "NAS", "admins"],
    )
    .await;
    let soon = run(
        &server,
        &[
            "service-account",
            "api-token",
            "generate",
            "nas01",
            "x",
            "soon",
        ],
        &[],
        false,
    )
    .await;
    assert_eq!(soon.code, 1, "{}", soon.stderr);
    assert!(!soon.stderr.contains("protocolError"), "{}", soon.stderr);
    let year: i32 = soon
        .stderr
        .split("e.g. ")
        .nth(1)
        .and_then(|t| t.get(..4))
        .and_then(|y| y.parse().ok())
        .unwrap_or_else(|| panic!("an example date in {}", soon.stderr));
    assert!(year >= time::OffsetDateTime::now_utc().year());

    // A write with a read-only token says that is why.
    crate::grant(
        &mut server.admin().await,
        "service-account-admins",
        &format!("uid=nas01,ou=services,{SUFFIX}"),
    )
    .await;
    let minted = run(
        &server,
        &[
            "service-account",
            "api-token",
            "generate",
            "nas01",
            "ro",
            "30d",
        ],
        &[],
        false,
    )
    .await;
    let token = minted.stdout.trim().to_string();
    assert!(
        minted.stderr.contains("(expires 20"),
        "RFC 3339: {}",
        minted.stderr
    );
    let write = run(
        &server,
        &["service-account", "update", "nas01", "--description", "x"],
        &[("TESSERA_TOKEN", &token)],
        true,
    )
    .await;
    assert_eq!(write.code, 50, "{}", write.stderr);
    assert!(
        write.stderr.contains("is read-only")
            && write.stderr.contains("[insufficientAccessRights (50)]"),
        "{}",
        write.stderr
    );
    server.stop().await;
}

#[tokio::test]
async fn token_status_shows_times_and_states() {
    let server = TestServer::start().await;
    ok(&server, &["group", "create", "admins"]).await;
    ok(
        &server,
        &["service-account", "create", "nas01", "NAS", "admins"],
    )
    .await;
    let generate = ["service-account", "api-token", "generate", "nas01"];
    let exposed = run(
        &server,
        &[&generate[..], &["exposed", "30d"]].concat(),
        &[],
        false,
    )
    .await;
    let old = run(
        &server,
        &[&generate[..], &["old", "30d"]].concat(),
        &[],
        false,
    )
    .await;
    ok(&server, &[&generate[..], &["fine", "30d"]].concat()).await;

    // Sent without TLS: the server stamps tokenExposed.
    let mut plain = server.plain().await;
    let rc = plain
        .simple_bind("dn=token", exposed.stdout.trim())
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 13);
    // Expired: its expiry moved into the past by the administrator.
    let old_id = &old.stdout.trim()[4..16];
    let old_dn = format!("tokenId={old_id},uid=nas01,ou=services,{SUFFIX}");
    let past = HashSet::from(["20200101000000Z"]);
    let mut admin = server.admin().await;
    admin
        .modify(&old_dn, vec![Mod::Replace("tokenExpires", past)])
        .await
        .unwrap()
        .success()
        .unwrap();

    let status = ok(
        &server,
        &["service-account", "api-token", "status", "nas01"],
    )
    .await;
    let line = |label: &str| {
        status
            .lines()
            .find(|l| l.contains(&format!(" {label} ")))
            .unwrap_or_else(|| panic!("{label} in {status}"))
            .to_string()
    };
    assert!(
        status.lines().next().unwrap().ends_with("state"),
        "{status}"
    );
    assert!(line("exposed").contains("exposed 20"), "{status}");
    assert!(line("exposed").contains("rotate it"), "{status}");
    assert!(line("old").contains("2020-01-01T00:00:00Z") && line("old").ends_with("expired"));
    assert!(line("fine").ends_with(" ok"), "{status}");
    let created = line("fine").split_whitespace().nth(4).unwrap().to_string();
    assert!(
        time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{created}"
    );
    // Entries show times the same way.
    ok(
        &server,
        &["service-account", "update", "nas01", "--expires", "90d"],
    )
    .await;
    let nas = ok(&server, &["service-account", "get", "nas01"]).await;
    let expires = nas
        .lines()
        .find_map(|l| l.strip_prefix("accountExpires: "))
        .unwrap_or_else(|| panic!("accountExpires in {nas}"));
    assert!(
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{expires}"
    );
    server.stop().await;
}

#[tokio::test]
async fn person_update_and_fixed_posix_numbers() {
    let server = TestServer::start().await;
    ok(
        &server,
        &[
            "person",
            "create",
            "bob",
            "Bob Smith",
            "--uid-number",
            "20002",
            "--login-shell",
            "/bin/zsh",
        ],
    )
    .await;
    let bob = ok(&server, &["person", "get", "bob"]).await;
    for want in [
        "objectClass: posixAccount",
        "uidNumber: 20002",
        "gidNumber: 20002",
        "loginShell: /bin/zsh",
        "sn: Smith",
    ] {
        assert!(bob.contains(want), "{want} in {bob}");
    }
    ok(&server, &["person", "create", "alice", "Alice Example"]).await;
    ok(
        &server,
        &[
            "person",
            "update",
            "alice",
            "--display-name",
            "Alice Liddell",
            "--mail",
            "alice@example.org",
            "--uid-number",
            "20001",
            "--gid-number",
            "20500",
        ],
    )
    .await;
    let alice = ok(&server, &["person", "get", "alice"]).await;
    for want in [
        "cn: Alice Liddell",
        "displayName: Alice Liddell",
        "sn: Liddell",
        "mail: alice@example.org",
        "objectClass: posixAccount",
        "uidNumber: 20001",
        "gidNumber: 20500",
        "homeDirectory: /home/alice",
    ] {
        assert!(alice.contains(want), "{want} in {alice}");
    }
    ok(&server, &["person", "update", "alice", "--mail", ""]).await;
    assert!(
        !ok(&server, &["person", "get", "alice"])
            .await
            .contains("mail:")
    );
    let taken = run(
        &server,
        &["person", "update", "alice", "--uid-number", "20002"],
        &[],
        false,
    )
    .await;
    assert_ne!(taken.code, 0, "bob holds 20002: {}", taken.stderr);
    let nothing = run(&server, &["person", "update", "alice"], &[], false).await;
    assert_eq!(nothing.code, 1);
    assert!(
        nothing.stderr.contains("nothing to update"),
        "{}",
        nothing.stderr
    );
    server.stop().await;
}

fn serve(toml: &str, env: &[(&str, &str)]) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    let text = format!(
        "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"127.0.0.1:0\"\n{toml}",
        dir.path().join("data").display()
    );
    std::fs::write(&config, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), dir)
}

#[test]
fn logs_off_a_terminal_are_plain_and_json_is_one_object_a_line() {
    let (mut child, _dir) = serve("", &[]);
    let out = stop_when(&mut child, "Suffix");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("INFO"), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no colour codes: {:?}",
        out.stderr
    );

    let (mut child, _dir) = serve("[log]\nformat = \"json\"\n", &[]);
    let out = stop_when(&mut child, "Suffix");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(lines.len() >= 2, "{}", out.stderr);
    for line in lines {
        assert!(
            line.starts_with("{\"timestamp\":") && line.ends_with('}'),
            "{line}"
        );
    }
    assert!(
        out.stderr.contains("\"event\":\"tls-generated\""),
        "{}",
        out.stderr
    );
}

#[test]
fn readiness_and_stopping_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    listener
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let (mut child, _data) = serve("", &[("NOTIFY_SOCKET", socket.to_str().unwrap())]);
    let mut buf = [0u8; 256];
    let n = listener.recv(&mut buf).unwrap();
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        ready.starts_with("READY=1\n") && ready.contains("STATUS=serving"),
        "{ready}"
    );
    let out = stop_when(&mut child, "Suffix");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\n");
}

#[test]
fn a_misspelt_log_level_is_refused_with_the_valid_ones() {
    let (mut child, _dir) = serve("[log]\nlevel = \"warning\"\n", &[]);
    let out = stop_when(&mut child, "Suffix");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("config key log.level: 'warning' is not a level")
            && out.stderr.contains("error, warn, info, debug, trace, off"),
        "{}",
        out.stderr
    );
}
