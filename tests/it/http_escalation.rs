//! The escalation matrix over HTTP: the privilege-containment rule (`dit::control`) holds
//! for the API exactly as for LDAP. Each delegated role — the built-in people-admins and
//! service-account-admins, and a custom one — times each way the API offers to gain
//! control of an identity (a password set or reset, an app password or token minted or
//! rotated, a manager change, joining a group that holds a role or manages accounts,
//! searching as another), times targets less, equally and more privileged. Refusals are
//! 403 with the reason `dit::control` gives; covering actors succeed.

use std::collections::HashSet;

use ldap3::Ldap;
use serde_json::json;

use crate::http::{Auth, Reply};
use crate::tokens::{add_service, generate, service_dn};
use crate::{GROUPS, TestServer, add_group, add_person, grant, group_dn, person_dn};

const ROLES: &str = "ou=roles,dc=example,dc=com";

/// The directory every cell starts from (the LDAP matrix's own).
///
/// - People: `dana` (directory-admins), `pam` and `pat` (people-admins), `sam`
///   (service-account-admins), `hd` and `hd2` (the custom `helpdesk` role), `plain` (no
///   role), `owner` (no role, but in `admin-owners`), `filler` (in the other groups, so an
///   administrator through `g-admins`).
/// - Service accounts: `svc-admin` (directory-admins, managed by group `admin-owners`),
///   `svc-pa` (people-admins), `svc-hd` (helpdesk), `svc-plain` (no role, managed by group
///   `plain-owners`).
/// - Groups: `g-admins` (holds directory-admins), `g-pa` (holds people-admins), `g-hd`
///   (holds helpdesk), `g-plain` (holds nothing), `admin-owners` and `plain-owners` (manage
///   the accounts above).
pub async fn directory() -> (TestServer, Ldap) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for uid in [
        "dana", "pam", "pat", "sam", "hd", "hd2", "plain", "owner", "filler",
    ] {
        add_person(&mut admin, uid, &format!("pw-{uid}"), false).await;
    }
    for (cn, bases, rights) in [
        (
            "helpdesk",
            vec!["ou=people,dc=example,dc=com", GROUPS],
            vec![
                "read",
                "compare",
                "write",
                "reset-password",
                "manage-tokens",
                "impersonate",
            ],
        ),
        (
            "impersonators",
            vec![
                "ou=people,dc=example,dc=com",
                "ou=services,dc=example,dc=com",
            ],
            vec!["read", "impersonate"],
        ),
    ] {
        let attrs = vec![
            ("objectClass", HashSet::from(["tesseraRole"])),
            ("cn", HashSet::from([cn])),
            ("roleScopeBase", bases.into_iter().collect()),
            ("roleRight", rights.into_iter().collect()),
        ];
        admin
            .add(&format!("cn={cn},{ROLES}"), attrs)
            .await
            .unwrap()
            .success()
            .unwrap();
    }
    for (uid, role) in [
        ("dana", "directory-admins"),
        ("pam", "people-admins"),
        ("pat", "people-admins"),
        ("sam", "service-account-admins"),
        ("hd", "helpdesk"),
        ("hd2", "helpdesk"),
    ] {
        grant(&mut admin, role, &person_dn(uid)).await;
    }
    for uid in ["pam", "sam"] {
        grant(&mut admin, "impersonators", &person_dn(uid)).await;
    }
    add_group(&mut admin, "admin-owners", &["owner"], false).await;
    add_group(&mut admin, "plain-owners", &["filler"], false).await;
    for (svc, owners) in [
        ("svc-admin", Some("admin-owners")),
        ("svc-pa", None),
        ("svc-hd", None),
        ("svc-plain", Some("plain-owners")),
    ] {
        let owners = owners.map(group_dn);
        assert_eq!(add_service(&mut admin, svc, owners.as_deref()).await, 0);
    }
    for (svc, role) in [
        ("svc-admin", "directory-admins"),
        ("svc-pa", "people-admins"),
        ("svc-hd", "helpdesk"),
    ] {
        grant(&mut admin, role, &service_dn(svc)).await;
    }
    for (group, role) in [
        ("g-admins", Some("directory-admins")),
        ("g-pa", Some("people-admins")),
        ("g-hd", Some("helpdesk")),
        ("g-plain", None),
    ] {
        add_group(&mut admin, group, &["filler"], false).await;
        if let Some(role) = role {
            grant(&mut admin, role, &group_dn(group)).await;
        }
    }
    (server, admin)
}

/// A path to control of a target over the API.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// PUT /people/{uid}/password.
    SetPassword,
    /// PATCH /people/{uid}: replace userPassword.
    ReplacePassword,
    /// POST /people/{uid}/app-passwords, read-write.
    MintAppPassword,
    /// POST /service-accounts/{name}/tokens, read-write.
    MintToken,
    /// POST /service-accounts/{name}/tokens/{id}/rotate.
    RotateToken,
    /// PATCH /service-accounts/{name}: make oneself its manager.
    BecomeManager,
    /// PATCH /groups/{cn}/members: add oneself.
    JoinGroup,
    /// POST /search as the target.
    ActAs,
}

/// One cell: the answer to `actor` (by HTTP Basic) taking `path` to `target` (a name).
async fn attempt(
    server: &TestServer,
    admin: &mut Ldap,
    actor: &str,
    path: Path,
    target: &str,
) -> Reply {
    let http = server.http();
    let password = format!("pw-{actor}");
    let me = Auth::Basic(actor, &password);
    let my_dn = person_dn(actor);
    match path {
        Path::SetPassword => {
            http.send(
                "PUT",
                &format!("/api/v1/people/{target}/password"),
                me,
                &json!({"password": "taken-over"}),
            )
            .await
        }
        Path::ReplacePassword => {
            http.send(
                "PATCH",
                &format!("/api/v1/people/{target}"),
                me,
                &json!({"changes": [{"op": "replace", "attribute": "userPassword", "values": ["taken-over"]}]}),
            )
            .await
        }
        Path::MintAppPassword => {
            http.send(
                "POST",
                &format!("/api/v1/people/{target}/app-passwords"),
                me,
                &json!({"label": "x", "scope": "read-write"}),
            )
            .await
        }
        Path::MintToken => {
            http.send(
                "POST",
                &format!("/api/v1/service-accounts/{target}/tokens"),
                me,
                &json!({"label": "x", "scope": "read-write", "intent": "http-api"}),
            )
            .await
        }
        Path::RotateToken => {
            let existing = generate(
                admin,
                &service_dn(target),
                "existing",
                Some("read-write"),
                None,
                None,
            )
            .await
            .unwrap();
            http.send(
                "POST",
                &format!(
                    "/api/v1/service-accounts/{target}/tokens/{}/rotate",
                    existing.id
                ),
                me,
                &json!({}),
            )
            .await
        }
        Path::BecomeManager => {
            http.send(
                "PATCH",
                &format!("/api/v1/service-accounts/{target}"),
                me,
                &json!({"changes": [{"op": "replace", "attribute": "entryManagedBy", "values": [my_dn]}]}),
            )
            .await
        }
        Path::JoinGroup => {
            http.send(
                "PATCH",
                &format!("/api/v1/groups/{target}/members"),
                me,
                &json!({"add": [my_dn]}),
            )
            .await
        }
        Path::ActAs => {
            let dn = if target.starts_with("svc-") {
                service_dn(target)
            } else {
                person_dn(target)
            };
            http.send(
                "POST",
                "/api/v1/search",
                me,
                &json!({"as": dn, "base": dn, "scope": "base"}),
            )
            .await
        }
    }
}

/// The cells: actor, path, target, whether it may succeed (the LDAP matrix's, over HTTP).
fn cells() -> Vec<(&'static str, Path, &'static str, bool)> {
    use Path::*;
    vec![
        // people-admins (pam): people and groups; reset-password and manage-tokens there.
        ("pam", SetPassword, "plain", true),
        ("pam", SetPassword, "pat", true),
        ("pam", SetPassword, "dana", false),
        ("pam", SetPassword, "hd", false),
        ("pam", SetPassword, "owner", false),
        ("pam", SetPassword, "filler", false),
        ("pam", ReplacePassword, "plain", true),
        ("pam", ReplacePassword, "pat", true),
        ("pam", ReplacePassword, "dana", false),
        ("pam", MintAppPassword, "plain", true),
        ("pam", MintAppPassword, "pat", true),
        ("pam", MintAppPassword, "dana", false),
        ("pam", MintAppPassword, "hd", false),
        ("pam", JoinGroup, "g-plain", true),
        ("pam", JoinGroup, "g-pa", true),
        ("pam", JoinGroup, "g-admins", false),
        ("pam", JoinGroup, "g-hd", false),
        ("pam", JoinGroup, "admin-owners", false),
        ("pam", JoinGroup, "plain-owners", true),
        ("pam", ActAs, "plain", true),
        ("pam", ActAs, "pat", true),
        ("pam", ActAs, "dana", false),
        ("pam", ActAs, "svc-plain", true),
        ("pam", ActAs, "svc-admin", false),
        // Outside the role's reach: services.
        ("pam", MintToken, "svc-plain", false),
        ("pam", BecomeManager, "svc-plain", false),
        // service-account-admins (sam): services; manage-tokens there.
        ("sam", MintToken, "svc-plain", true),
        ("sam", MintToken, "svc-pa", false),
        ("sam", MintToken, "svc-admin", false),
        ("sam", RotateToken, "svc-plain", true),
        ("sam", RotateToken, "svc-admin", false),
        ("sam", BecomeManager, "svc-plain", true),
        ("sam", BecomeManager, "svc-pa", false),
        ("sam", BecomeManager, "svc-admin", false),
        ("sam", ActAs, "svc-plain", true),
        ("sam", ActAs, "svc-admin", false),
        // Outside the role's reach: people.
        ("sam", SetPassword, "plain", false),
        ("sam", JoinGroup, "g-plain", false),
        // helpdesk (hd), a custom role: people and groups; reset-password, manage-tokens,
        // impersonate, write.
        ("hd", SetPassword, "plain", true),
        ("hd", SetPassword, "hd2", true),
        ("hd", SetPassword, "pam", false),
        ("hd", SetPassword, "dana", false),
        ("hd", ReplacePassword, "pam", false),
        ("hd", MintAppPassword, "hd2", true),
        ("hd", MintAppPassword, "pam", false),
        ("hd", JoinGroup, "g-hd", true),
        ("hd", JoinGroup, "g-pa", false),
        ("hd", JoinGroup, "g-admins", false),
        ("hd", ActAs, "hd2", true),
        ("hd", ActAs, "pam", false),
        // An administrator's hand in all of it: every cell succeeds.
        ("dana", SetPassword, "pam", true),
        ("dana", MintToken, "svc-admin", true),
        ("dana", RotateToken, "svc-admin", true),
        ("dana", BecomeManager, "svc-admin", true),
        ("dana", JoinGroup, "g-admins", true),
        ("dana", ActAs, "svc-admin", true),
    ]
}

#[tokio::test]
async fn each_path_to_control_over_http_succeeds_exactly_where_the_actor_covers_the_target() {
    let (mut server, mut admin) = directory().await;
    let mut failures = Vec::new();
    for (actor, path, target, allowed) in cells() {
        let reply = attempt(&server, &mut admin, actor, path, target).await;
        let ok = (200..300).contains(&reply.status);
        let refused = matches!(reply.status, 403 | 404);
        if (allowed && !ok) || (!allowed && !refused) {
            failures.push(format!(
                "{actor} {path:?} {target}: got {} {}, wanted {}",
                reply.status,
                reply.text(),
                if allowed { "success" } else { "403 or 404" }
            ));
        }
        if ok {
            // A success changed the directory: the next cells start afresh.
            server.stop().await;
            (server, admin) = directory().await;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    server.stop().await;
}

/// Each refusal of control says which right stands in the way, as over LDAP.
#[tokio::test]
async fn refusals_over_http_carry_the_reason() {
    let (server, mut admin) = directory().await;
    let cases = [
        ("pam", Path::SetPassword, "dana", "set its password"),
        ("pam", Path::ReplacePassword, "dana", "set its password"),
        (
            "pam",
            Path::MintAppPassword,
            "hd",
            "mint or rotate its tokens",
        ),
        (
            "sam",
            Path::MintToken,
            "svc-admin",
            "mint or rotate its tokens",
        ),
        (
            "sam",
            Path::RotateToken,
            "svc-pa",
            "mint or rotate its tokens",
        ),
        (
            "sam",
            Path::BecomeManager,
            "svc-pa",
            "change who manages it",
        ),
        ("pam", Path::JoinGroup, "g-admins", "change its members"),
        ("pam", Path::JoinGroup, "admin-owners", "change its members"),
        ("hd", Path::JoinGroup, "g-pa", "change its members"),
    ];
    for (actor, path, target, doing) in cases {
        let reply = attempt(&server, &mut admin, actor, path, target).await;
        assert_eq!(
            reply.status,
            403,
            "{actor} {path:?} {target}: {}",
            reply.text()
        );
        let problem = reply.json();
        assert_eq!(problem["code"], "insufficient_access_rights");
        assert_eq!(problem["ldap_result"], 50);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("only a holder of every right it has may {doing}")),
            "{actor} {path:?} {target}: {detail}"
        );
    }
    // Nothing changed: dana's password and the groups are as they were.
    assert_eq!(
        crate::http::ldap_bind(&server, &person_dn("dana"), "pw-dana").await,
        0
    );
    server.stop().await;
}

/// Creating an entry straight into groups is one command: a group the actor may not
/// change refuses the whole request, and the entry it would have made is not left behind.
#[tokio::test]
async fn creating_into_a_group_that_confers_rights_is_refused_whole() {
    let (server, mut admin) = directory().await;
    let http = server.http();
    let sam = Auth::Basic("sam", "pw-sam");
    let new = |groups: Vec<&str>| {
        json!({"name": "newsvc", "display_name": "New", "managed_by": "plain-owners",
               "groups": groups})
    };
    let reply = http
        .send(
            "POST",
            "/api/v1/service-accounts",
            sam,
            &new(vec!["g-admins"]),
        )
        .await;
    // The groups are out of sam's sight: the group's change is refused as for an entry
    // that is not there, and with it the whole request.
    reply.expect(404);
    let found = admin
        .search(
            &service_dn("newsvc"),
            ldap3::Scope::Base,
            "(objectClass=*)",
            vec!["1.1"],
        )
        .await
        .unwrap();
    assert_eq!(
        found.1.rc, 32,
        "the refused request left the account behind"
    );
    // Without the group, the same account is made: the refusal was the group's.
    http.send("POST", "/api/v1/service-accounts", sam, &new(vec![]))
        .await
        .expect(201);
    server.stop().await;
}
