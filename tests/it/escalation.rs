//! The escalation matrix (the privilege-containment rule, `dit::control`): each delegated
//! role — the built-in people-admins and service-account-admins, and a custom one — times
//! each way to gain control of an identity, times targets less, equally and more
//! privileged than the actor. Every cell runs through the real server with a real client,
//! and its expected outcome is written out: an operation succeeds exactly where the actor
//! holds the base right and its rights cover the target's.

use std::collections::HashSet;

use ldap3::controls::RawControl;
use ldap3::exop::{Exop, PasswordModify};
use ldap3::{Ldap, Mod};

use tessera::store::DirectoryRead;

use crate::tokens::{add_service, generate, service_dn};
use crate::{GROUPS, SUFFIX, TestServer, add_group, add_person, grant, group_dn, person_dn};

const ROLES: &str = "ou=roles,dc=example,dc=com";
const ROTATE: &str = "2.25.235497813471364094925541187040296631981.4.2";

/// The directory every cell starts from.
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
async fn directory() -> (TestServer, Ldap) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for uid in [
        "dana", "pam", "pat", "sam", "hd", "hd2", "re", "plain", "owner", "filler",
    ] {
        add_person(&mut admin, uid, &format!("pw-{uid}"), false).await;
    }
    let helpdesk = vec![
        ("objectClass", HashSet::from(["tesseraRole"])),
        ("cn", HashSet::from(["helpdesk"])),
        (
            "roleScopeBase",
            HashSet::from(["ou=people,dc=example,dc=com", GROUPS]),
        ),
        (
            "roleRight",
            HashSet::from([
                "read",
                "compare",
                "write",
                "reset-password",
                "manage-tokens",
                "impersonate",
            ]),
        ),
    ];
    admin
        .add(&format!("cn=helpdesk,{ROLES}"), helpdesk)
        .await
        .unwrap()
        .success()
        .unwrap();
    // A custom role with the rights to edit roles' entries: what a role confers is still
    // the administrators' to decide.
    let role_editors = vec![
        ("objectClass", HashSet::from(["tesseraRole"])),
        ("cn", HashSet::from(["role-editors"])),
        ("roleScopeBase", HashSet::from([ROLES, GROUPS])),
        (
            "roleRight",
            HashSet::from(["read", "write", "add", "delete", "rename"]),
        ),
    ];
    admin
        .add(&format!("cn=role-editors,{ROLES}"), role_editors)
        .await
        .unwrap()
        .success()
        .unwrap();
    // An impersonate right for the built-in delegates too, so proxying is a cell of theirs.
    let impersonators = vec![
        ("objectClass", HashSet::from(["tesseraRole"])),
        ("cn", HashSet::from(["impersonators"])),
        (
            "roleScopeBase",
            HashSet::from([
                "ou=people,dc=example,dc=com",
                "ou=services,dc=example,dc=com",
            ]),
        ),
        ("roleRight", HashSet::from(["read", "impersonate"])),
    ];
    admin
        .add(&format!("cn=impersonators,{ROLES}"), impersonators)
        .await
        .unwrap()
        .success()
        .unwrap();
    for (uid, role) in [
        ("dana", "directory-admins"),
        ("pam", "people-admins"),
        ("pat", "people-admins"),
        ("sam", "service-account-admins"),
        ("hd", "helpdesk"),
        ("hd2", "helpdesk"),
        ("re", "role-editors"),
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

/// A path to control of a target.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// Password Modify (RFC 3062) for another entry.
    PasswordModify,
    /// Modify: replace `userPassword`.
    ReplacePassword,
    /// Generate a read-write app password for a person.
    MintAppPassword,
    /// Generate a read-write API token for a service account.
    MintToken,
    /// Rotate an existing token of a service account.
    RotateToken,
    /// Modify: make oneself the account's manager.
    BecomeManager,
    /// Modify: add oneself to a group (one that manages accounts, or holds a role).
    JoinGroup,
    /// Modify: add a group (with oneself in it) to another group.
    NestGroup,
    /// ModifyDN: move a group with a role's class into ou=roles.
    MoveIntoRoles,
    /// Modify: widen a role's rights to everything.
    WidenRole,
    /// Add: a new role with oneself as its member.
    CreateRole,
    /// Proxied authorization (RFC 4370) as the target.
    ActAs,
}

/// One cell's outcome: the LDAP result code (0 success, 123 for a refused proxy).
async fn attempt(
    server: &TestServer,
    admin: &mut Ldap,
    actor: &str,
    path: Path,
    target: &str,
) -> u32 {
    let me = person_dn(actor);
    let mut ldap = server.bound(&me, &format!("pw-{actor}")).await;
    match path {
        Path::PasswordModify => {
            let req = PasswordModify {
                user_id: Some(target),
                old_pass: None,
                new_pass: Some("taken-over"),
            };
            ldap.extended(req).await.unwrap().1.rc
        }
        Path::ReplacePassword => {
            crate::replace(&mut ldap, target, "userPassword", &["taken-over"]).await
        }
        Path::MintAppPassword => generate(
            &mut ldap,
            target,
            "x",
            Some("read-write"),
            None,
            Some("app-password"),
        )
        .await
        .err()
        .unwrap_or(0),
        Path::MintToken => generate(&mut ldap, target, "x", Some("read-write"), None, None)
            .await
            .err()
            .unwrap_or(0),
        Path::RotateToken => {
            let existing = generate(admin, target, "existing", Some("read-write"), None, None)
                .await
                .unwrap();
            let mut body = crate::raw::tlv(0x80, target.as_bytes());
            body.extend(crate::raw::tlv(0x81, existing.id.as_bytes()));
            let req = Exop {
                name: Some(ROTATE.into()),
                val: Some(crate::raw::tlv(0x30, &body)),
            };
            ldap.extended(req).await.unwrap().1.rc
        }
        Path::BecomeManager => crate::replace(&mut ldap, target, "entryManagedBy", &[&me]).await,
        Path::JoinGroup => {
            let add = vec![Mod::Add("member", HashSet::from([me.as_str()]))];
            ldap.modify(target, add).await.unwrap().rc
        }
        Path::NestGroup => {
            // A group of the actor's own making, with the actor in it.
            let own = group_dn(&format!("own-{actor}"));
            let _ = ldap
                .add(
                    &own,
                    vec![
                        ("objectClass", HashSet::from(["groupOfNames"])),
                        ("cn", HashSet::from([format!("own-{actor}").as_str()])),
                        ("member", HashSet::from([me.as_str()])),
                    ],
                )
                .await
                .unwrap();
            let add = vec![Mod::Add("member", HashSet::from([own.as_str()]))];
            ldap.modify(target, add).await.unwrap().rc
        }
        Path::MoveIntoRoles => {
            // A group with the role class and the actor in it, made by an administrator
            // where the actor may rename it; the move would make it a role.
            let cn = format!("moved-{actor}");
            let dn = group_dn(&cn);
            admin
                .add(
                    &dn,
                    vec![
                        ("objectClass", HashSet::from(["tesseraRole"])),
                        ("cn", HashSet::from([cn.as_str()])),
                        ("roleRight", HashSet::from(["all"])),
                        ("roleScopeBase", HashSet::from([SUFFIX])),
                        ("member", HashSet::from([me.as_str()])),
                    ],
                )
                .await
                .unwrap()
                .success()
                .unwrap();
            ldap.modifydn(&dn, &format!("cn={cn}"), true, Some(ROLES))
                .await
                .unwrap()
                .rc
        }
        Path::WidenRole => crate::replace(&mut ldap, target, "roleRight", &["all"]).await,
        Path::CreateRole => {
            let role = vec![
                ("objectClass", HashSet::from(["tesseraRole"])),
                ("cn", HashSet::from(["made"])),
                ("roleScopeBase", HashSet::from([SUFFIX])),
                ("roleRight", HashSet::from(["all"])),
                ("member", HashSet::from([me.as_str()])),
            ];
            ldap.add(target, role).await.unwrap().rc
        }
        Path::ActAs => {
            let ctrl = RawControl {
                ctype: "2.16.840.1.113730.3.4.18".into(),
                crit: true,
                val: Some(format!("dn:{target}").into_bytes()),
            };
            ldap.with_controls(vec![ctrl])
                .extended(ldap3::exop::WhoAmI)
                .await
                .unwrap()
                .1
                .rc
        }
    }
}

/// The cells: actor, path, target, whether it may succeed. Each runs on a fresh directory
/// only when it succeeds (a success changes the directory); refusals share one.
fn cells() -> Vec<(&'static str, Path, String, bool)> {
    use Path::*;
    let p = person_dn;
    let s = service_dn;
    let g = group_dn;
    let role = |cn: &str| format!("cn={cn},{ROLES}");
    vec![
        // people-admins (pam): people and groups; reset-password and manage-tokens there.
        ("pam", PasswordModify, p("plain"), true),
        ("pam", PasswordModify, p("pat"), true),
        ("pam", PasswordModify, p("dana"), false),
        ("pam", PasswordModify, p("hd"), false),
        // No role, but a manager of an administrator account: as privileged as it.
        ("pam", PasswordModify, p("owner"), false),
        // No role of its own, but in g-admins: an administrator through a group.
        ("pam", PasswordModify, p("filler"), false),
        ("pam", ReplacePassword, p("plain"), true),
        ("pam", ReplacePassword, p("pat"), true),
        ("pam", ReplacePassword, p("dana"), false),
        ("pam", MintAppPassword, p("plain"), true),
        ("pam", MintAppPassword, p("pat"), true),
        ("pam", MintAppPassword, p("dana"), false),
        ("pam", MintAppPassword, p("hd"), false),
        ("pam", JoinGroup, g("g-plain"), true),
        ("pam", JoinGroup, g("g-pa"), true),
        ("pam", JoinGroup, g("g-admins"), false),
        ("pam", JoinGroup, g("g-hd"), false),
        ("pam", JoinGroup, g("admin-owners"), false),
        ("pam", JoinGroup, g("plain-owners"), true),
        ("pam", NestGroup, g("g-pa"), true),
        ("pam", NestGroup, g("g-admins"), false),
        ("pam", NestGroup, g("admin-owners"), false),
        ("pam", MoveIntoRoles, g("unused"), false),
        ("pam", ActAs, p("plain"), true),
        ("pam", ActAs, p("pat"), true),
        ("pam", ActAs, p("dana"), false),
        ("pam", ActAs, s("svc-plain"), true),
        ("pam", ActAs, s("svc-admin"), false),
        // Outside the role's reach: services.
        ("pam", MintToken, s("svc-plain"), false),
        ("pam", BecomeManager, s("svc-plain"), false),
        // service-account-admins (sam): services; manage-tokens there.
        ("sam", MintToken, s("svc-plain"), true),
        ("sam", MintToken, s("svc-pa"), false),
        ("sam", MintToken, s("svc-admin"), false),
        ("sam", RotateToken, s("svc-plain"), true),
        ("sam", RotateToken, s("svc-admin"), false),
        ("sam", BecomeManager, s("svc-plain"), true),
        ("sam", BecomeManager, s("svc-pa"), false),
        ("sam", BecomeManager, s("svc-admin"), false),
        ("sam", ActAs, s("svc-plain"), true),
        ("sam", ActAs, s("svc-admin"), false),
        // Outside the role's reach: people.
        ("sam", PasswordModify, p("plain"), false),
        ("sam", JoinGroup, g("g-plain"), false),
        // helpdesk (hd), a custom role: people and groups; reset-password, manage-tokens,
        // impersonate, write.
        ("hd", PasswordModify, p("plain"), true),
        ("hd", PasswordModify, p("hd2"), true),
        ("hd", PasswordModify, p("pam"), false),
        ("hd", PasswordModify, p("dana"), false),
        ("hd", ReplacePassword, p("pam"), false),
        ("hd", MintAppPassword, p("hd2"), true),
        ("hd", MintAppPassword, p("pam"), false),
        ("hd", JoinGroup, g("g-hd"), true),
        ("hd", JoinGroup, g("g-pa"), false),
        ("hd", JoinGroup, g("g-admins"), false),
        ("hd", NestGroup, g("g-pa"), false),
        ("hd", ActAs, p("hd2"), true),
        ("hd", ActAs, p("pam"), false),
        // role-editors (re), a custom role with write, add and rename over ou=roles: the
        // entries' own rights, but no say in what a role confers or who holds one it lacks.
        ("re", WidenRole, role("role-editors"), false),
        ("re", WidenRole, role("helpdesk"), false),
        ("re", CreateRole, role("made"), false),
        ("re", JoinGroup, role("helpdesk"), false),
        ("re", JoinGroup, g("g-hd"), false),
        ("re", MoveIntoRoles, g("unused"), false),
        // An administrator's hand in all of it: every cell succeeds.
        ("dana", PasswordModify, p("pam"), true),
        ("dana", MintToken, s("svc-admin"), true),
        ("dana", JoinGroup, g("g-admins"), true),
        ("dana", MoveIntoRoles, g("unused"), true),
        ("dana", WidenRole, role("helpdesk"), true),
        ("dana", CreateRole, role("made"), true),
    ]
}

#[tokio::test]
async fn each_path_to_control_succeeds_exactly_where_the_actor_covers_the_target() {
    let (mut server, mut admin) = directory().await;
    let mut failures = Vec::new();
    for (actor, path, target, allowed) in cells() {
        let rc = attempt(&server, &mut admin, actor, path, &target).await;
        let ok = rc == 0;
        if ok != allowed {
            failures.push(format!(
                "{actor} {path:?} {target}: got {rc}, wanted {}",
                if allowed { "success" } else { "a refusal" }
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

/// The reproductions that found the defect, step by step, each now refused, with the
/// reason in the diagnostic.
#[tokio::test]
async fn the_reported_escalations_are_refused_with_the_reason() {
    let (server, mut admin) = directory().await;
    let dana = person_dn("dana");
    let mut pam = server.bound(&person_dn("pam"), "pw-pam").await;
    // 1. Resetting an administrator's password, by Password Modify or Modify.
    let req = PasswordModify {
        user_id: Some(&dana),
        old_pass: None,
        new_pass: Some("new"),
    };
    let res = pam.extended(req).await.unwrap().1;
    assert_eq!(res.rc, 50);
    assert!(
        res.text.contains("holds directory-admins") && res.text.contains("set its password"),
        "{}",
        res.text
    );
    let res = pam
        .modify(
            &dana,
            vec![Mod::Replace("userPassword", HashSet::from(["new"]))],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 50, "{}", res.text);
    // 2. Minting a read-write app password for the administrator.
    let res = generate(
        &mut pam,
        &dana,
        "x",
        Some("read-write"),
        None,
        Some("app-password"),
    )
    .await;
    assert_eq!(res.err(), Some(50));
    // The administrator's own password still works: nothing changed.
    server.bound(&dana, "pw-dana").await;
    // 3. A service-account-admins holder minting a token for an administrator account.
    let mut sam = server.bound(&person_dn("sam"), "pw-sam").await;
    let res = generate(
        &mut sam,
        &service_dn("svc-admin"),
        "x",
        Some("read-write"),
        None,
        None,
    )
    .await;
    assert_eq!(res.err(), Some(50));
    // 4. Joining the group that manages the administrator account, then minting.
    let res = pam
        .modify(
            &group_dn("admin-owners"),
            vec![Mod::Add(
                "member",
                HashSet::from([person_dn("pam").as_str()]),
            )],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 50);
    assert!(res.text.contains("manages uid=svc-admin"), "{}", res.text);
    let res = generate(
        &mut pam,
        &service_dn("svc-admin"),
        "x",
        Some("read-write"),
        None,
        None,
    )
    .await;
    assert_eq!(res.err(), Some(50));
    // An administrator may still do each of these.
    assert_eq!(
        generate(
            &mut admin,
            &service_dn("svc-admin"),
            "x",
            Some("read-write"),
            None,
            None
        )
        .await
        .err(),
        None
    );
    server.stop().await;
}

/// Names cannot be taken over: a reference must name an entry that exists, deleting or
/// renaming an entry rewrites the references to it, and a name created again gains
/// nothing its predecessor was given.
#[tokio::test]
async fn references_name_real_entries_and_follow_them() {
    let (server, mut admin) = directory().await;
    // A member that does not exist (as `group add-members nas-users zed` sent it), also as
    // a memberUid, and a manager that does not exist: 21, naming it.
    let zed = person_dn("zed");
    let res = admin
        .modify(
            &group_dn("g-plain"),
            vec![Mod::Add("member", HashSet::from([zed.as_str()]))],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 21);
    assert!(
        res.text.contains(&zed) && res.text.contains("does not exist"),
        "{}",
        res.text
    );
    add_group(&mut admin, "posix", &["plain"], true).await;
    let res = admin
        .modify(
            &group_dn("posix"),
            vec![Mod::Add("memberUid", HashSet::from(["zed"]))],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 21, "{}", res.text);
    assert_eq!(
        add_service(&mut admin, "web02", Some(&group_dn("no-such-group"))).await,
        21
    );
    // A DN outside the directory names nothing that could ever be created here: Keycloak's
    // placeholder member of a new groupOfNames is taken.
    let res = admin
        .add(
            &group_dn("kc"),
            vec![
                ("objectClass", HashSet::from(["groupOfNames"])),
                ("cn", HashSet::from(["kc"])),
                ("member", HashSet::from(["cn=empty-membership-placeholder"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 0, "{}", res.text);

    // Deleting the group that manages an account leaves it to administrators; renaming a
    // person rewrites their memberships.
    let plain_owners = group_dn("plain-owners");
    admin
        .delete(&plain_owners)
        .await
        .unwrap()
        .success()
        .unwrap();
    let managers = attr_values(&mut admin, &service_dn("svc-plain"), "entryManagedBy").await;
    assert!(managers.is_empty(), "{managers:?}");
    admin
        .modifydn(&person_dn("filler"), "uid=filled", true, None)
        .await
        .unwrap()
        .success()
        .unwrap();
    let members = attr_values(&mut admin, &group_dn("g-admins"), "member").await;
    assert_eq!(members, vec![person_dn("filled")]);
    admin
        .modifydn(&person_dn("owner"), "uid=owns", true, None)
        .await
        .unwrap()
        .success()
        .unwrap();
    let managed = attr_values(&mut admin, &group_dn("admin-owners"), "member").await;
    assert_eq!(managed, vec![person_dn("owns")]);

    // The group name comes back: it manages nothing, and its new member controls nothing.
    add_group(&mut admin, "plain-owners", &["pat"], false).await;
    let mut pat = server.bound(&person_dn("pat"), "pw-pat").await;
    assert_eq!(
        generate(&mut pat, &service_dn("svc-plain"), "x", None, None, None)
            .await
            .err(),
        Some(50),
        "the re-created group does not manage svc-plain"
    );
    // And the person's old name, created again, holds none of the old memberships.
    add_person(&mut admin, "filler", "pw-new", false).await;
    let groups = attr_values(&mut admin, &person_dn("filler"), "memberOf").await;
    assert!(groups.is_empty(), "{groups:?}");
    server.stop().await;
}

/// Values of one attribute of one entry, as the administrator sees them, lower-cased DNs
/// compared as written.
async fn attr_values(admin: &mut Ldap, dn: &str, attr: &str) -> Vec<String> {
    let (found, _) = crate::search(admin, dn, ldap3::Scope::Base, "(objectClass=*)", &[attr]).await;
    let mut values = found
        .first()
        .and_then(|e| e.attrs.get(attr).cloned())
        .unwrap_or_default();
    values.sort();
    values
}

/// A store written before references were kept whole may still hold one naming a deleted
/// entry. Taking that name is then a control operation on what it confers.
#[tokio::test]
async fn a_name_that_old_references_give_rights_to_is_taken_only_by_one_who_covers_them() {
    let (server, mut admin) = directory().await;
    // As an earlier version left it: svc-admin managed by a group deleted since.
    let legacy = group_dn("legacy-owners");
    let svc = service_dn("svc-admin");
    let store = server.running().state.store.clone();
    store
        .write_blocking(|w| {
            let dn = tessera::directory::dn::Dn::parse(&svc).unwrap();
            let (id, old) = w.entry_by_dn(&dn)?.unwrap();
            let mut stale = old.clone();
            stale.set("entryManagedBy", vec![legacy.clone().into_bytes()]);
            w.replace(id, &old, &stale)
        })
        .unwrap();
    let group = |cn: &str| {
        vec![
            ("objectClass", HashSet::from(["groupOfNames"])),
            ("cn", HashSet::from([cn.to_string().leak() as &str])),
            ("member", HashSet::from([person_dn("plain").leak() as &str])),
        ]
    };
    let mut pam = server.bound(&person_dn("pam"), "pw-pam").await;
    let res = pam.add(&legacy, group("legacy-owners")).await.unwrap();
    assert_eq!(res.rc, 50, "{}", res.text);
    assert!(res.text.contains("manages uid=svc-admin"), "{}", res.text);
    // A name nothing refers to is pam's to take, and so is this one for an administrator.
    let res = pam.add(&group_dn("fresh"), group("fresh")).await.unwrap();
    assert_eq!(res.rc, 0, "{}", res.text);
    let res = admin.add(&legacy, group("legacy-owners")).await.unwrap();
    assert_eq!(res.rc, 0, "{}", res.text);
    server.stop().await;
}
