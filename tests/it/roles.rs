//! Roles: the built-in roles against every operation on people, groups, service accounts
//! and roles; read-only and read-write tokens of holders; the NAS scenario; invisible
//! entries and values; revocation on live connections; proxied authorization; role
//! definitions that are refused.

use std::collections::HashSet;

use ldap3::controls::{ProxyAuth, RawControl};
use ldap3::{Ldap, Mod, Scope};

use crate::tokens::{add_service, generate, service_dn};
use crate::{
    GROUPS, PEOPLE, SUFFIX, TestServer, add_group, add_person, grant, group_dn, person_dn, revoke,
    search, whoami,
};

const SERVICES: &str = "ou=services,dc=example,dc=com";
const ROLES: &str = "ou=roles,dc=example,dc=com";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Person,
    Group,
    Service,
    Role,
}

impl Kind {
    fn container(self) -> &'static str {
        match self {
            Kind::Person => PEOPLE,
            Kind::Group => GROUPS,
            Kind::Service => SERVICES,
            Kind::Role => ROLES,
        }
    }

    fn dn(self, name: &str) -> String {
        let naming = match self {
            Kind::Person | Kind::Service => "uid",
            Kind::Group | Kind::Role => "cn",
        };
        format!("{naming}={name},{}", self.container())
    }

    fn attrs(self, name: &str) -> Vec<(&'static str, Vec<String>)> {
        let s = |v: &str| vec![v.to_string()];
        match self {
            Kind::Person => vec![
                ("objectClass", s("inetOrgPerson")),
                ("uid", s(name)),
                ("cn", s(name)),
                ("sn", s("Target")),
                ("mail", s(&format!("{name}@example.com"))),
            ],
            Kind::Group => vec![
                ("objectClass", s("groupOfNames")),
                ("cn", s(name)),
                ("member", s(&person_dn("someone"))),
            ],
            Kind::Service => vec![
                ("objectClass", s("tesseraServiceAccount")),
                ("uid", s(name)),
                ("cn", s(name)),
            ],
            Kind::Role => vec![
                ("objectClass", s("tesseraRole")),
                ("cn", s(name)),
                ("roleRight", s("read")),
            ],
        }
    }
}

async fn add(ldap: &mut Ldap, kind: Kind, name: &str) -> u32 {
    let attrs = kind.attrs(name);
    let attrs: Vec<(&str, HashSet<&str>)> = attrs
        .iter()
        .map(|(a, v)| (*a, v.iter().map(String::as_str).collect()))
        .collect();
    ldap.add(&kind.dn(name), attrs).await.unwrap().rc
}

/// What one identity gets for each operation on one kind of entry.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    /// Base search: the result code (0 found, 32 invisible).
    search: u32,
    /// Attributes returned of `mail`/`cn` (user) and `creatorsName` (operational).
    read: &'static str,
    compare: u32,
    /// Token generation for the entry (people: an app password; services: an API token).
    tokens: Option<u32>,
    modify: u32,
    add: u32,
    rename: u32,
    delete: u32,
}

const fn row(
    search: u32,
    read: &'static str,
    compare: u32,
    tokens: Option<u32>,
    writes: u32,
    add: u32,
) -> Row {
    Row {
        search,
        read,
        compare,
        tokens,
        modify: writes,
        add,
        rename: writes,
        delete: writes,
    }
}

/// Run every operation as `ldap` on a fresh entry of `kind` made by `admin`.
async fn exercise(admin: &mut Ldap, ldap: &mut Ldap, kind: Kind, tag: &str) -> Row {
    let name = format!("t-{tag}");
    let dn = kind.dn(&name);
    assert_eq!(add(admin, kind, &name).await, 0, "fixture {dn}");
    let (found, search_rc) = search(
        ldap,
        &dn,
        Scope::Base,
        "(objectClass=*)",
        &["*", "creatorsName"],
    )
    .await;
    let read = match found.first() {
        None => "",
        Some(e) => match (
            e.attrs.contains_key("cn") || e.attrs.contains_key("uid"),
            e.attrs.contains_key("creatorsName"),
        ) {
            (true, true) => "user+operational",
            (true, false) => "user",
            (false, true) => "operational",
            (false, false) => "none",
        },
    };
    let compare_attr = if matches!(kind, Kind::Person | Kind::Service) {
        "uid"
    } else {
        "cn"
    };
    let compare = ldap.compare(&dn, compare_attr, &name).await.unwrap().0.rc;
    let tokens = match kind {
        Kind::Person => Some(
            generate(
                ldap,
                &dn,
                "x",
                Some("read-write"),
                None,
                Some("app-password"),
            )
            .await
            .err()
            .unwrap_or(0),
        ),
        Kind::Service => Some(
            generate(ldap, &dn, "x", None, None, None)
                .await
                .err()
                .unwrap_or(0),
        ),
        _ => None,
    };
    let modify = ldap
        .modify(
            &dn,
            vec![Mod::Replace("description", HashSet::from(["changed"]))],
        )
        .await
        .unwrap()
        .rc;
    let add_rc = add(ldap, kind, &format!("n-{tag}")).await;
    // Tokens below the entry would block renaming and deletion: the administrator clears them.
    let (children, _) = search(admin, &dn, Scope::OneLevel, "(objectClass=*)", &["1.1"]).await;
    for c in children {
        admin.delete(&c.dn).await.unwrap();
    }
    let new_rdn = if matches!(kind, Kind::Person | Kind::Service) {
        format!("uid=r-{tag}")
    } else {
        format!("cn=r-{tag}")
    };
    let rename = ldap.modifydn(&dn, &new_rdn, true, None).await.unwrap().rc;
    let current = if rename == 0 {
        kind.dn(&format!("r-{tag}"))
    } else {
        dn.clone()
    };
    let delete = ldap.delete(&current).await.unwrap().rc;
    Row {
        search: search_rc,
        read,
        compare,
        tokens,
        modify,
        add: add_rc,
        rename,
        delete,
    }
}

#[tokio::test]
async fn built_in_roles_against_every_operation() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "someone", "pw", false).await;
    let holders = [
        ("admin", Some("directory-admins")),
        ("peopleadm", Some("people-admins")),
        ("saadm", Some("service-account-admins")),
        ("reader", Some("directory-readers")),
        ("syncer", Some("directory-sync")),
        ("nobody", None),
    ];
    for (uid, role) in holders {
        add_person(&mut admin, uid, "pw", false).await;
        if let Some(role) = role {
            grant(&mut admin, role, &person_dn(uid)).await;
        }
    }
    let all = "user+operational";
    // Invisible entries: 32 for those who write somewhere; 50, before looking, for those
    // who write nowhere (so it says nothing of what exists).
    let hidden = |uid: &str| {
        let writes = if matches!(uid, "peopleadm" | "saadm") {
            32
        } else {
            50
        };
        row(32, "", 32, Some(50), writes, 50)
    };
    let expected = |uid: &str, kind: Kind| -> Row {
        match (uid, kind) {
            ("admin", Kind::Person | Kind::Service) => row(0, all, 6, Some(0), 0, 0),
            ("admin", _) => row(0, all, 6, None, 0, 0),
            ("peopleadm", Kind::Person) => row(0, all, 6, Some(0), 0, 0),
            ("peopleadm", Kind::Group) => row(0, all, 6, None, 0, 0),
            ("saadm", Kind::Service) => row(0, all, 6, Some(0), 0, 0),
            ("reader", Kind::Person) => row(0, "user", 6, Some(50), 50, 50),
            ("reader", Kind::Group) => row(0, "user", 6, None, 50, 50),
            ("syncer", Kind::Person) => row(0, all, 6, Some(50), 50, 50),
            ("syncer", Kind::Group) => row(0, all, 6, None, 50, 50),
            (_, Kind::Group | Kind::Role) => Row {
                tokens: None,
                ..hidden(uid)
            },
            _ => hidden(uid),
        }
    };
    let mut cells = 0;
    for (i, (uid, _)) in holders.iter().enumerate() {
        let mut ldap = server.bound(&person_dn(uid), "pw").await;
        for kind in [Kind::Person, Kind::Group, Kind::Service, Kind::Role] {
            let tag = format!("{i}{kind:?}").to_lowercase();
            let got = exercise(&mut admin, &mut ldap, kind, &tag).await;
            assert_eq!(got, expected(uid, kind), "{uid} on {kind:?}");
            cells += 1;
        }
    }
    assert_eq!(cells, 24);
    server.stop().await;
}

#[tokio::test]
async fn tokens_of_role_holders_keep_or_drop_the_writes() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "someone", "pw", false).await;
    assert_eq!(add_service(&mut admin, "provisioner", None).await, 0);
    let svc = service_dn("provisioner");
    grant(&mut admin, "people-admins", &svc).await;
    let ro = generate(&mut admin, &svc, "ro", None, None, None)
        .await
        .unwrap();
    let rw = generate(&mut admin, &svc, "rw", Some("read-write"), None, None)
        .await
        .unwrap();
    let mut ro_ldap = server.bound("dn=token", &ro.token).await;
    let got = exercise(&mut admin, &mut ro_ldap, Kind::Person, "ro").await;
    assert_eq!(
        got,
        row(0, "user+operational", 6, Some(50), 50, 50),
        "read-only token"
    );
    let got = exercise(&mut admin, &mut ro_ldap, Kind::Service, "ro").await;
    assert_eq!(
        got,
        row(32, "", 32, Some(50), 50, 50),
        "outside the role, and no writes"
    );
    let mut rw_ldap = server.bound("dn=token", &rw.token).await;
    let got = exercise(&mut admin, &mut rw_ldap, Kind::Person, "rw").await;
    assert_eq!(
        got,
        row(0, "user+operational", 6, Some(0), 0, 0),
        "read-write token"
    );
    server.stop().await;
}

/// A NAS bind account that may see only the members of nas-users and that group.
const NAS_ROLE: &str = "cn=nas-readers,ou=roles,dc=example,dc=com";

async fn nas_directory() -> (TestServer, Ldap, Ldap) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for uid in ["ann", "ben", "cat", "dan"] {
        add_person(&mut admin, uid, "pw", true).await;
    }
    add_group(&mut admin, "nas-users", &["ann", "ben"], true).await;
    add_group(&mut admin, "staff", &["ann", "cat"], true).await;
    add_group(&mut admin, "secret", &["dan"], true).await;
    let filter = format!("(|(memberOf={})(cn=nas-users))", group_dn("nas-users"));
    let role = vec![
        ("objectClass", HashSet::from(["tesseraRole"])),
        ("cn", HashSet::from(["nas-readers"])),
        ("roleScopeBase", HashSet::from([PEOPLE, GROUPS])),
        ("roleScopeFilter", HashSet::from([filter.as_str()])),
        ("roleRight", HashSet::from(["read", "compare"])),
    ];
    admin.add(NAS_ROLE, role).await.unwrap().success().unwrap();
    assert_eq!(add_service(&mut admin, "nas01", None).await, 0);
    let nas = service_dn("nas01");
    grant(&mut admin, "nas-readers", &nas).await;
    let t = generate(&mut admin, &nas, "nas", None, None, None)
        .await
        .unwrap();
    let ldap = server.bound("dn=token", &t.token).await;
    (server, admin, ldap)
}

fn uids(entries: &[ldap3::SearchEntry], attr: &str) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .flat_map(|e| e.attrs.get(attr).cloned().unwrap_or_default())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_nas_sees_exactly_its_users() {
    let (server, _admin, mut nas) = nas_directory().await;
    // SSSD's enumeration and getpwnam filters.
    let (people, rc) = search(
        &mut nas,
        SUFFIX,
        Scope::Subtree,
        "(&(objectclass=posixAccount)(uid=*)(uidNumber=*)(gidNumber=*))",
        &["uid"],
    )
    .await;
    assert_eq!(rc, 0);
    assert_eq!(uids(&people, "uid"), vec!["ann", "ben"]);
    for (uid, found) in [("ann", 1), ("cat", 0), ("dan", 0)] {
        let filter = format!(
            "(&(uid={uid})(objectclass=posixAccount)(uid=*)(&(uidNumber=*)(!(uidNumber=0))))"
        );
        let (e, _) = search(&mut nas, SUFFIX, Scope::Subtree, &filter, &["uid"]).await;
        assert_eq!(e.len(), found, "{uid}");
    }
    // Groups: only nas-users, with only its visible members.
    let (groups, _) = search(
        &mut nas,
        SUFFIX,
        Scope::Subtree,
        "(objectClass=posixGroup)",
        &["cn", "memberUid", "member"],
    )
    .await;
    assert_eq!(uids(&groups, "cn"), vec!["nas-users"]);
    assert_eq!(uids(&groups, "memberUid"), vec!["ann", "ben"]);
    // Asking for memberUid alone: the grant's filter still reads cn, and the pruning of
    // memberUid still reads member, though neither is returned.
    let (groups, _) = search(
        &mut nas,
        SUFFIX,
        Scope::Subtree,
        "(objectClass=posixGroup)",
        &["memberUid"],
    )
    .await;
    assert_eq!(groups.len(), 1);
    assert_eq!(uids(&groups, "memberUid"), vec!["ann", "ben"]);
    assert!(!groups[0].attrs.contains_key("cn") && !groups[0].attrs.contains_key("member"));
    // ann's memberOf shows nas-users, not staff.
    let (ann, _) = search(
        &mut nas,
        &person_dn("ann"),
        Scope::Base,
        "(objectClass=*)",
        &["memberOf"],
    )
    .await;
    assert_eq!(ann[0].attrs["memberOf"], vec![group_dn("nas-users")]);
    // Paged, one entry a page: the same two people.
    let mut seen = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let ctrl: RawControl = ldap3::controls::PagedResults {
            size: 1,
            cookie: cookie.clone(),
        }
        .into();
        let res = nas
            .with_controls(vec![ctrl])
            .search(
                PEOPLE,
                Scope::OneLevel,
                "(objectClass=posixAccount)",
                vec!["uid"],
            )
            .await
            .unwrap();
        seen.extend(
            res.0
                .into_iter()
                .map(|e| ldap3::SearchEntry::construct(e).dn),
        );
        let next = res.1.ctrls.iter().find_map(|c| match c.0 {
            Some(ldap3::controls::ControlType::PagedResults) => {
                Some(c.1.parse::<ldap3::controls::PagedResults>())
            }
            _ => None,
        });
        cookie = next.unwrap().cookie;
        if cookie.is_empty() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, vec![person_dn("ann"), person_dn("ben")]);
    server.stop().await;
}

#[tokio::test]
async fn invisible_entries_and_values_cannot_be_detected() {
    let (server, _admin, mut nas) = nas_directory().await;
    let dan = person_dn("dan");
    assert_eq!(base_rc(&mut nas, &dan).await, 32);
    assert_eq!(nas.compare(&dan, "uid", "dan").await.unwrap().0.rc, 32);
    assert_eq!(
        nas.compare(&group_dn("secret"), "cn", "secret")
            .await
            .unwrap()
            .0
            .rc,
        32
    );
    // Filters on membership of an invisible group find nothing, nor do filters that
    // would tell members of a hidden group apart. Each answers success with no entries,
    // exactly as for a value nobody holds: an error code would itself tell them apart.
    let nobody = format!("(memberOf={})", group_dn("no-such-group"));
    assert_eq!(
        found(&mut nas, SUFFIX, &nobody).await,
        (0, 0),
        "the baseline"
    );
    let by_secret = format!("(memberOf={})", group_dn("secret"));
    assert_eq!(found(&mut nas, SUFFIX, &by_secret).await, (0, 0));
    let by_staff = format!("(memberOf={})", group_dn("staff"));
    assert_eq!(
        found(&mut nas, SUFFIX, &by_staff).await,
        (0, 0),
        "ann is in staff, but staff is hidden"
    );
    assert_eq!(found(&mut nas, SUFFIX, "(memberUid=dan)").await, (0, 0));
    assert_eq!(
        found(&mut nas, SUFFIX, &format!("(member={dan})")).await,
        (0, 0)
    );
    // hasSubordinates counts what the caller can see.
    let (people, rc) = search(
        &mut nas,
        PEOPLE,
        Scope::Base,
        "(objectClass=*)",
        &["hasSubordinates"],
    )
    .await;
    assert_eq!((people.len(), rc), (1, 0));
    assert_eq!(people[0].attrs["hasSubordinates"], vec!["TRUE"]);
    let (services, rc) = search(
        &mut nas,
        SERVICES,
        Scope::Base,
        "(objectClass=*)",
        &["hasSubordinates"],
    )
    .await;
    assert_eq!(
        (services.len(), rc),
        (0, 32),
        "ou=services is not on the NAS's path"
    );
    // userPassword: never to anyone but administrators, whatever the role says. ann's
    // entry is visible: filtering on her password matches nothing, with success.
    let ann = person_dn("ann");
    let (visible, rc) = search(&mut nas, &ann, Scope::Base, "(objectClass=*)", &["1.1"]).await;
    assert_eq!((visible.len(), rc), (1, 0), "the baseline");
    let (matched, rc) = search(
        &mut nas,
        &ann,
        Scope::Base,
        "(userPassword=*)",
        &["userPassword"],
    )
    .await;
    assert_eq!((matched.len(), rc), (0, 0));
    server.stop().await;
}

#[tokio::test]
async fn role_changes_reach_bound_connections() {
    let (server, mut admin, mut nas) = nas_directory().await;
    let nas_dn = service_dn("nas01");
    assert_eq!(base_rc(&mut nas, &person_dn("ann")).await, 0);
    // Leaving nas-users hides ann at once.
    let ann = person_dn("ann");
    let leave = vec![Mod::Delete("member", HashSet::from([ann.as_str()]))];
    admin
        .modify(&group_dn("nas-users"), leave)
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(base_rc(&mut nas, &person_dn("ann")).await, 32);
    // Holding the role through a group counts, and losing it counts on the next operation.
    revoke(&mut admin, "nas-readers", &nas_dn).await;
    assert_eq!(base_rc(&mut nas, &person_dn("ben")).await, 32);
    add_group(&mut admin, "nas-devices", &["ann"], false).await;
    let devices = vec![Mod::Add("member", HashSet::from([nas_dn.as_str()]))];
    admin
        .modify(&group_dn("nas-devices"), devices)
        .await
        .unwrap()
        .success()
        .unwrap();
    let nested = group_dn("nas-devices");
    grant(&mut admin, "nas-readers", &nested).await;
    assert_eq!(
        base_rc(&mut nas, &person_dn("ben")).await,
        0,
        "through a group"
    );
    revoke(&mut admin, "nas-readers", &nested).await;
    assert_eq!(base_rc(&mut nas, &person_dn("ben")).await, 32);
    server.stop().await;
}

/// The result code of a base search of `dn`: 0 when visible, 32 when not.
async fn base_rc(ldap: &mut Ldap, dn: &str) -> u32 {
    search(ldap, dn, Scope::Base, "(objectClass=*)", &[])
        .await
        .1
}

async fn proxied_whoami(ldap: &mut Ldap, authzid: &str) -> (u32, String) {
    let ctrl: RawControl = ProxyAuth {
        authzid: authzid.into(),
    }
    .into();
    let res = ldap
        .with_controls(vec![ctrl])
        .extended(ldap3::exop::WhoAmI)
        .await
        .unwrap();
    let text = res
        .0
        .val
        .map(|v| String::from_utf8(v).unwrap())
        .unwrap_or_default();
    (res.1.rc, text)
}

#[tokio::test]
async fn proxied_authorization() {
    let (server, mut admin, _nas) = nas_directory().await;
    add_person(&mut admin, "helpdesk", "pw", false).await;
    let role = vec![
        ("objectClass", HashSet::from(["tesseraRole"])),
        ("cn", HashSet::from(["impersonators"])),
        ("roleScopeBase", HashSet::from([SERVICES])),
        ("roleRight", HashSet::from(["read", "impersonate"])),
    ];
    admin
        .add(&format!("cn=impersonators,{ROLES}"), role)
        .await
        .unwrap()
        .success()
        .unwrap();
    grant(&mut admin, "impersonators", &person_dn("helpdesk")).await;
    let nas = service_dn("nas01");
    let mut helpdesk = server.bound(&person_dn("helpdesk"), "pw").await;
    // Acting as the NAS gives its rights: refused until the caller holds them too.
    assert_eq!(
        proxied_whoami(&mut helpdesk, &format!("dn:{nas}")).await.0,
        123,
        "the NAS holds nas-readers, which helpdesk does not"
    );
    grant(&mut admin, "nas-readers", &person_dn("helpdesk")).await;

    // As the NAS: its identity and exactly its view.
    assert_eq!(
        proxied_whoami(&mut helpdesk, &format!("dn:{nas}")).await,
        (0, format!("dn:{nas}"))
    );
    assert_eq!(
        proxied_whoami(&mut helpdesk, "u:nas01").await,
        (0, format!("dn:{nas}"))
    );
    let ctrl: RawControl = ProxyAuth {
        authzid: format!("dn:{nas}"),
    }
    .into();
    let res = helpdesk
        .with_controls(vec![ctrl])
        .search(
            SUFFIX,
            Scope::Subtree,
            "(objectClass=posixAccount)",
            vec!["uid"],
        )
        .await
        .unwrap();
    let seen: Vec<String> = res
        .0
        .into_iter()
        .map(|e| ldap3::SearchEntry::construct(e).dn)
        .collect();
    assert_eq!(seen.len(), 2, "the NAS's two users: {seen:?}");
    // Its rights, not more: the NAS cannot write.
    let ctrl: RawControl = ProxyAuth {
        authzid: format!("dn:{nas}"),
    }
    .into();
    let res = helpdesk
        .with_controls(vec![ctrl])
        .modify(
            &person_dn("ann"),
            vec![Mod::Replace("title", HashSet::from(["x"]))],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 50);
    // Refused: targets outside the role, missing targets, administrators, and callers
    // without the right; the connection's own identity is untouched.
    assert_eq!(
        proxied_whoami(&mut helpdesk, &format!("dn:{}", person_dn("ann")))
            .await
            .0,
        123
    );
    assert_eq!(
        proxied_whoami(&mut helpdesk, &format!("dn:{}", service_dn("ghost")))
            .await
            .0,
        123
    );
    assert_eq!(proxied_whoami(&mut helpdesk, "x:nonsense").await.0, 123);
    assert_eq!(
        whoami(&mut helpdesk).await,
        format!("dn:{}", person_dn("helpdesk"))
    );
    grant(&mut admin, "directory-admins", &nas).await;
    assert_eq!(
        proxied_whoami(&mut helpdesk, &format!("dn:{nas}")).await.0,
        123,
        "acting as an administrator takes one"
    );
    let mut ann = server.bound(&person_dn("ann"), "pw").await;
    assert_eq!(proxied_whoami(&mut ann, "u:nas01").await.0, 123);
    // Administrators may act as anyone; the control must be critical.
    assert_eq!(
        proxied_whoami(&mut admin, &format!("dn:{}", person_dn("ann"))).await,
        (0, format!("dn:{}", person_dn("ann")))
    );
    let lax = RawControl {
        ctype: "2.16.840.1.113730.3.4.18".into(),
        crit: false,
        val: Some(b"u:ann".to_vec()),
    };
    let res = admin
        .with_controls(vec![lax])
        .extended(ldap3::exop::WhoAmI)
        .await
        .unwrap();
    assert_eq!(res.1.rc, 2);
    server.stop().await;
}

#[tokio::test]
async fn bad_role_definitions_are_refused() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let cases = [
        ("roleRight", "fly", "unknown right 'fly'"),
        ("roleScopeFilter", "(uid=a", "not an LDAP filter"),
        ("roleScopeBase", "dc=elsewhere", "outside the directory"),
        ("roleScopeLevel", "deep", "not base, one, sub"),
        ("roleReadAllow", "nosuchattribute", "unknown attribute"),
    ];
    for (attr, value, message) in cases {
        let res = admin
            .add(
                &format!("cn=bad,{ROLES}"),
                vec![
                    ("objectClass", HashSet::from(["tesseraRole"])),
                    ("cn", HashSet::from(["bad"])),
                    (attr, HashSet::from([value])),
                ],
            )
            .await
            .unwrap();
        assert_eq!(res.rc, 19, "{attr}: {value}");
        assert!(res.text.contains(message), "{}", res.text);
        let (e, _) = search(
            &mut admin,
            &format!("cn=bad,{ROLES}"),
            Scope::Base,
            "(objectClass=*)",
            &[],
        )
        .await;
        assert!(e.is_empty(), "never stored");
    }
    // A modify that would break a role is refused too.
    let readers = format!("cn=directory-readers,{ROLES}");
    let res = admin
        .modify(
            &readers,
            vec![Mod::Add("roleRight", HashSet::from(["teleport"]))],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 19);
    server.stop().await;
}

#[tokio::test]
async fn attribute_lists_limit_reads_and_writes() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "ann", "pw", false).await;
    add_person(&mut admin, "editor", "pw", false).await;
    let role = vec![
        ("objectClass", HashSet::from(["tesseraRole"])),
        ("cn", HashSet::from(["phone-editors"])),
        ("roleScopeBase", HashSet::from([PEOPLE])),
        ("roleRight", HashSet::from(["read", "write"])),
        ("roleReadDeny", HashSet::from(["sn"])),
        ("roleWriteAllow", HashSet::from(["telephoneNumber"])),
    ];
    admin
        .add(&format!("cn=phone-editors,{ROLES}"), role)
        .await
        .unwrap()
        .success()
        .unwrap();
    grant(&mut admin, "phone-editors", &person_dn("editor")).await;
    let mut editor = server.bound(&person_dn("editor"), "pw").await;
    let ann = person_dn("ann");
    let (e, _) = search(
        &mut editor,
        &ann,
        Scope::Base,
        "(objectClass=*)",
        &["cn", "sn"],
    )
    .await;
    assert!(e[0].attrs.contains_key("cn") && !e[0].attrs.contains_key("sn"));
    assert!(
        search(
            &mut editor,
            PEOPLE,
            Scope::OneLevel,
            "(&(uid=ann)(sn=Example))",
            &["1.1"]
        )
        .await
        .0
        .is_empty(),
        "a denied attribute cannot be probed"
    );
    assert_eq!(
        crate::replace(&mut editor, &ann, "telephoneNumber", &["+1 555"]).await,
        0
    );
    assert_eq!(
        crate::replace(&mut editor, &ann, "title", &["boss"]).await,
        50
    );
    server.stop().await;
}

#[tokio::test]
async fn anonymous_access_is_a_setting() {
    let server = TestServer::start_with("[security]\nanonymous = \"read\"\n").await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "ann", "pw", false).await;
    assert_eq!(add_service(&mut admin, "nas01", None).await, 0);
    let mut anon = server.ldaps().await;
    let (e, rc) = search(
        &mut anon,
        SUFFIX,
        Scope::Subtree,
        "(objectClass=person)",
        &["uid"],
    )
    .await;
    assert_eq!((e.len(), rc), (1, 0));
    assert_eq!(base_rc(&mut anon, &service_dn("nas01")).await, 32);
    assert_eq!(
        crate::replace(&mut anon, &person_dn("ann"), "title", &["x"]).await,
        8
    );
    server.stop().await;

    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "ann", "pw", false).await;
    let mut anon = server.ldaps().await;
    // By default anonymous sees the suffix entry, and nobody below it.
    let (people, rc) = search(
        &mut anon,
        SUFFIX,
        Scope::Subtree,
        "(objectClass=person)",
        &["uid"],
    )
    .await;
    assert_eq!((people.len(), rc), (0, 0));
    let (root, rc) = search(
        &mut anon,
        "",
        Scope::Base,
        "(objectClass=*)",
        &["namingContexts"],
    )
    .await;
    assert_eq!((root.len(), rc), (1, 0), "the rootDSE stays readable");
    server.stop().await;
}

#[tokio::test]
async fn rights_are_derived_once_per_change() {
    let (server, mut admin, _) = nas_directory().await;
    // A password bind: token binds record their use with a write now and then.
    add_person(&mut admin, "viewer", "pw", false).await;
    grant(&mut admin, "nas-readers", &person_dn("viewer")).await;
    let mut nas = server.bound(&person_dn("viewer"), "pw").await;
    let examined = || server.running().state.store.entries_examined();
    let lookup = |ldap: &mut Ldap| {
        let mut ldap = ldap.clone();
        async move {
            let (e, _) = search(
                &mut ldap,
                &person_dn("ann"),
                Scope::Base,
                "(objectClass=*)",
                &["uid"],
            )
            .await;
            assert_eq!(e.len(), 1);
        }
    };
    lookup(&mut nas).await;
    let before = examined();
    lookup(&mut nas).await;
    let steady = examined() - before;
    lookup(&mut nas).await;
    assert_eq!(
        examined() - before,
        2 * steady,
        "the same work each time while nothing changes"
    );
    // A write anywhere: the roles are read again, once.
    crate::replace(&mut admin, &person_dn("cat"), "title", &["x"]).await;
    let before = examined();
    lookup(&mut nas).await;
    let after_change = examined() - before;
    assert!(
        after_change > steady,
        "roles re-read after a change: {after_change} vs {steady}"
    );
    let before = examined();
    lookup(&mut nas).await;
    assert_eq!(examined() - before, steady);
    server.stop().await;
}

#[tokio::test]
async fn member_values_outside_a_subtree_grant_are_dropped() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "ann", "pw", false).await;
    add_person(&mut admin, "eve", "pw", false).await;
    assert_eq!(add_service(&mut admin, "svc1", None).await, 0);
    // Written in different forms (upper case; spaced and escaped, which needs parsing),
    // and a service account outside the role's reach.
    let upper = person_dn("ann").to_uppercase();
    let spaced = format!("uid=\\65ve, {PEOPLE}");
    let svc = service_dn("svc1");
    // Two that end in the grant's base as text but name entries right under the suffix:
    // an escaped comma, and an RDN value that runs into the base.
    let escaped = format!("cn=trap\\,{PEOPLE}");
    let run_in = format!("cn=trap{PEOPLE}");
    // Members must exist: both traps are real entries, right under the suffix.
    for (dn, cn) in [(&escaped, "trap,ou=people"), (&run_in, "trapou=people")] {
        admin
            .add(
                dn,
                vec![
                    ("objectClass", HashSet::from(["organizationalRole"])),
                    ("cn", HashSet::from([cn])),
                ],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
    }
    let members: HashSet<&str> = [
        upper.as_str(),
        spaced.as_str(),
        svc.as_str(),
        escaped.as_str(),
        run_in.as_str(),
    ]
    .into();
    let group = group_dn("mixed");
    admin
        .add(
            &group,
            vec![
                ("objectClass", HashSet::from(["groupOfNames"])),
                ("cn", HashSet::from(["mixed"])),
                ("member", members),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let role = format!("cn=people-and-groups,{ROLES}");
    admin
        .add(
            &role,
            vec![
                ("objectClass", HashSet::from(["tesseraRole"])),
                ("cn", HashSet::from(["people-and-groups"])),
                ("roleScopeBase", HashSet::from([PEOPLE, GROUPS])),
                ("roleRight", HashSet::from(["read"])),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    grant(&mut admin, "people-and-groups", &person_dn("eve")).await;
    let mut eve = server.bound(&person_dn("eve"), "pw").await;
    let (found, rc) = search(
        &mut eve,
        &group,
        Scope::Base,
        "(objectClass=*)",
        &["member"],
    )
    .await;
    assert_eq!(rc, 0);
    let mut kept = found[0].attrs["member"].clone();
    kept.sort();
    let mut expected = vec![upper.clone(), spaced.clone()];
    expected.sort();
    assert_eq!(
        kept, expected,
        "ann and eve, not the service account or the entries under the suffix"
    );
    // The administrator sees every value.
    let (all, _) = search(
        &mut admin,
        &group,
        Scope::Base,
        "(objectClass=*)",
        &["member"],
    )
    .await;
    assert!(all[0].attrs["member"].contains(&svc));
    assert!(all[0].attrs["member"].contains(&escaped));
    assert!(all[0].attrs["member"].contains(&run_in));
    server.stop().await;
}

/// How many entries a subtree search from `base` returned, and its result code.
async fn found(ldap: &mut Ldap, base: &str, filter: &str) -> (usize, u32) {
    let (entries, rc) = search(ldap, base, Scope::Subtree, filter, &["1.1"]).await;
    (entries.len(), rc)
}
