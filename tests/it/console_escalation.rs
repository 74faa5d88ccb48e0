//! The escalation matrix through the web console: every console action that changes a
//! credential, a membership or a role's holders, and "see as", succeeds exactly where the
//! signed-in person covers the target, as over LDAP and the API (the same directory as
//! `http_escalation`). Refusals are 403 (or 404 where the target is out of sight) pages
//! that say why in words derived from the rules' own reason.

use ldap3::Ldap;

use crate::console::Browser;
use crate::http::Reply;
use crate::http_escalation::directory;
use crate::tokens::{generate, service_dn};
use crate::{TestServer, person_dn};

/// A path to control of a target through the console.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// Reset a person's password.
    SetPassword,
    /// Make a person an app password.
    MintAppPassword,
    /// Generate a read-write token for a service account.
    MintToken,
    /// Rotate a service account's token.
    RotateToken,
    /// Add oneself to a group.
    JoinGroup,
    /// Add oneself to a role's holders.
    TakeRole,
    /// "See as" the target.
    SeeAs,
}

async fn attempt(
    server: &TestServer,
    admin: &mut Ldap,
    actor: &str,
    path: Path,
    target: &str,
) -> Reply {
    let mut b = Browser::person(server, actor, &format!("pw-{actor}")).await;
    let me = person_dn(actor);
    match path {
        Path::SetPassword => {
            b.post(
                &format!("/console/people/{target}/password"),
                &[("password", "taken-over")],
            )
            .await
        }
        Path::MintAppPassword => {
            b.post(
                &format!("/console/people/{target}/app-passwords"),
                &[("label", "x")],
            )
            .await
        }
        Path::MintToken => {
            b.post(
                &format!("/console/service-accounts/{target}/tokens"),
                &[
                    ("label", "x"),
                    ("scope", "read-write"),
                    ("intent", "http-api"),
                ],
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
            b.post(
                &format!(
                    "/console/service-accounts/{target}/tokens/{}/rotate",
                    existing.id
                ),
                &[],
            )
            .await
        }
        Path::JoinGroup => {
            b.post(
                &format!("/console/groups/{target}/members"),
                &[("add", &me)],
            )
            .await
        }
        Path::TakeRole => {
            b.post(&format!("/console/roles/{target}/members"), &[("add", &me)])
                .await
        }
        Path::SeeAs => {
            let dn = if target.starts_with("svc-") {
                service_dn(target)
            } else {
                person_dn(target)
            };
            let q = |t: &str| t.replace('=', "%3D").replace(',', "%2C");
            b.get(&format!("/console/see-as?as={}&base={}", q(&dn), q(&dn)))
                .await
        }
    }
}

fn cells() -> Vec<(&'static str, Path, &'static str, bool)> {
    use Path::*;
    vec![
        // people-admins (pam).
        ("pam", SetPassword, "plain", true),
        ("pam", SetPassword, "pat", true),
        ("pam", SetPassword, "dana", false),
        ("pam", SetPassword, "hd", false),
        ("pam", SetPassword, "owner", false),
        ("pam", SetPassword, "filler", false),
        ("pam", MintAppPassword, "plain", true),
        ("pam", MintAppPassword, "dana", false),
        ("pam", MintAppPassword, "hd", false),
        ("pam", JoinGroup, "g-plain", true),
        ("pam", JoinGroup, "g-admins", false),
        ("pam", JoinGroup, "g-hd", false),
        ("pam", JoinGroup, "admin-owners", false),
        ("pam", TakeRole, "directory-admins", false),
        ("pam", TakeRole, "helpdesk", false),
        ("pam", TakeRole, "service-account-admins", false),
        ("pam", SeeAs, "plain", true),
        ("pam", SeeAs, "dana", false),
        ("pam", SeeAs, "svc-admin", false),
        ("pam", MintToken, "svc-plain", false),
        ("pam", MintToken, "svc-admin", false),
        // service-account-admins (sam).
        ("sam", MintToken, "svc-plain", true),
        ("sam", MintToken, "svc-pa", false),
        ("sam", MintToken, "svc-admin", false),
        ("sam", RotateToken, "svc-plain", true),
        ("sam", RotateToken, "svc-admin", false),
        ("sam", SetPassword, "plain", false),
        ("sam", JoinGroup, "g-plain", false),
        ("sam", TakeRole, "directory-admins", false),
        // helpdesk (hd), a custom role.
        ("hd", SetPassword, "plain", true),
        ("hd", SetPassword, "pam", false),
        ("hd", SetPassword, "dana", false),
        ("hd", MintAppPassword, "hd2", true),
        ("hd", MintAppPassword, "pam", false),
        ("hd", JoinGroup, "g-hd", true),
        ("hd", JoinGroup, "g-pa", false),
        ("hd", JoinGroup, "g-admins", false),
        ("hd", TakeRole, "people-admins", false),
        ("hd", SeeAs, "hd2", true),
        ("hd", SeeAs, "pam", false),
        // No role at all (plain), and one who manages an admin's account (owner).
        ("plain", SetPassword, "pat", false),
        ("plain", JoinGroup, "g-plain", false),
        ("plain", TakeRole, "people-admins", false),
        // A manager named by entryManagedBy was given control when it was named.
        ("owner", MintToken, "svc-admin", true),
        // An administrator: every cell succeeds.
        ("dana", SetPassword, "pam", true),
        ("dana", MintToken, "svc-admin", true),
        ("dana", RotateToken, "svc-admin", true),
        ("dana", JoinGroup, "g-admins", true),
        ("dana", TakeRole, "helpdesk", true),
        ("dana", SeeAs, "svc-admin", true),
    ]
}

#[tokio::test]
async fn each_console_path_to_control_succeeds_exactly_where_the_actor_covers_the_target() {
    let (mut server, mut admin) = directory().await;
    let mut failures = Vec::new();
    for (actor, path, target, allowed) in cells() {
        let reply = attempt(&server, &mut admin, actor, path, target).await;
        let ok = matches!(reply.status, 200 | 303);
        let refused = matches!(reply.status, 403 | 404);
        if (allowed && !ok) || (!allowed && !refused) {
            failures.push(format!(
                "{actor} {path:?} {target}: got {}, wanted {}",
                reply.status,
                if allowed { "success" } else { "403 or 404" }
            ));
        }
        if !allowed && refused && !reply.text().contains("role=\"alert\"") {
            failures.push(format!(
                "{actor} {path:?} {target}: a refusal without a message"
            ));
        }
        if ok {
            server.stop().await;
            (server, admin) = directory().await;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    server.stop().await;
}

/// Refusals say, for people, what stands in the way: derived from the rules' reason.
#[tokio::test]
async fn console_refusals_say_why() {
    let (server, mut admin) = directory().await;
    let cases = [
        (
            "pam",
            Path::SetPassword,
            "dana",
            "You may not reset this person&#39;s password: they hold directory-admins.",
        ),
        (
            "pam",
            Path::SetPassword,
            "hd",
            "You may not reset this person&#39;s password: they hold the role helpdesk.",
        ),
        (
            "pam",
            Path::MintAppPassword,
            "dana",
            "You may not make an app password for this person: they hold directory-admins.",
        ),
        (
            "sam",
            Path::MintToken,
            "svc-admin",
            "You may not generate a token for this service account: it holds directory-admins.",
        ),
        (
            "sam",
            Path::RotateToken,
            "svc-pa",
            "You may not rotate this token: it holds the role people-admins.",
        ),
        (
            "pam",
            Path::JoinGroup,
            "g-admins",
            "You may not change this group&#39;s members: it holds directory-admins.",
        ),
    ];
    let mut failures = Vec::new();
    for (actor, path, target, words) in cases {
        let reply = attempt(&server, &mut admin, actor, path, target).await;
        if reply.status != 403 || !reply.text().contains(words) {
            let text = reply.text();
            let shown = text
                .split("role=\"alert\">")
                .nth(1)
                .and_then(|t| t.split('<').next())
                .unwrap_or("(no message)");
            failures.push(format!(
                "{actor} {path:?} {target}: {} {shown}",
                reply.status
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        crate::http::ldap_bind(&server, &person_dn("dana"), "pw-dana").await,
        0
    );
    server.stop().await;
}

/// The forms are offered by the same rules: a service-account-admins holder is offered a
/// token for an ordinary account, and for an administrators' account is told why not.
#[tokio::test]
async fn console_forms_are_offered_by_the_rules() {
    let (server, _admin) = directory().await;
    let mut sam = Browser::person(&server, "sam", "pw-sam").await;
    let plain = sam.get("/console/service-accounts/svc-plain").await;
    plain.expect(200);
    assert!(plain.text().contains(">Generate</button>"));
    let admin = sam.get("/console/service-accounts/svc-admin").await;
    admin.expect(200);
    let text = admin.text();
    assert!(!text.contains(">Generate</button>"));
    assert!(
        text.contains(
            "You may not generate a token for this service account: it holds directory-admins."
        ),
        "{text}"
    );
    let mut pam = Browser::person(&server, "pam", "pw-pam").await;
    let hd = pam.get("/console/people/hd").await.text();
    assert!(!hd.contains("Set the password"));
    assert!(hd.contains("they hold the role helpdesk"));
    server.stop().await;
}
