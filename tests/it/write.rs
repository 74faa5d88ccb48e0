//! Add, Modify, Delete, ModifyDN and Compare with their RFC 4511 result codes, schema
//! checks, POSIX id allocation and who may write.

use std::collections::HashSet;

use ldap3::{Mod, Scope};

use crate::{PEOPLE, TestServer, add_group, add_person, group_dn, person_dn, replace, search};

#[tokio::test]
async fn add_checks_schema_and_existence() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    let dup = admin
        .add(
            &person_dn("alice"),
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["a"])),
                ("sn", HashSet::from(["a"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(dup.rc, 68);
    type Attrs<'a> = Vec<(&'a str, HashSet<&'a str>)>;
    let cases: Vec<(&str, Attrs, u32)> = vec![
        // sn is required by person
        (
            "uid=x1",
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["x"])),
            ],
            65,
        ),
        // no structural class
        (
            "uid=x2",
            vec![
                ("objectClass", HashSet::from(["posixAccount"])),
                ("cn", HashSet::from(["x"])),
            ],
            65,
        ),
        // attribute not allowed
        (
            "uid=x3",
            vec![
                ("objectClass", HashSet::from(["person"])),
                ("cn", HashSet::from(["x"])),
                ("sn", HashSet::from(["x"])),
                ("mail", HashSet::from(["x@example.com"])),
            ],
            65,
        ),
        // unknown attribute type
        (
            "uid=x4",
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["x"])),
                ("sn", HashSet::from(["x"])),
                ("bogusAttr", HashSet::from(["x"])),
            ],
            17,
        ),
        // integer syntax
        (
            "uid=x5",
            vec![
                (
                    "objectClass",
                    HashSet::from(["inetOrgPerson", "posixAccount"]),
                ),
                ("cn", HashSet::from(["x"])),
                ("sn", HashSet::from(["x"])),
                ("uidNumber", HashSet::from(["twelve"])),
            ],
            21,
        ),
        // unknown class
        (
            "uid=x6",
            vec![
                ("objectClass", HashSet::from(["noSuchClass"])),
                ("cn", HashSet::from(["x"])),
            ],
            21,
        ),
        // server-maintained attribute
        (
            "uid=x7",
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["x"])),
                ("sn", HashSet::from(["x"])),
                (
                    "entryUUID",
                    HashSet::from(["00000000-0000-0000-0000-000000000000"]),
                ),
            ],
            19,
        ),
        // the same value twice, by the attribute's matching rule
        (
            "uid=x8",
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["x"])),
                ("sn", HashSet::from(["x"])),
                (
                    "mail",
                    HashSet::from(["b@example.com", "a@example.com", "B@Example.COM"]),
                ),
            ],
            20,
        ),
    ];
    for (rdn, attrs, code) in cases {
        let res = admin.add(&format!("{rdn},{PEOPLE}"), attrs).await.unwrap();
        assert_eq!(res.rc, code, "{rdn}: {}", res.text);
    }
    let orphan = admin
        .add(
            "uid=x,ou=nowhere,dc=example,dc=com",
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["x"])),
                ("sn", HashSet::from(["x"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(orphan.rc, 32);
    assert_eq!(orphan.matched.to_ascii_lowercase(), "dc=example,dc=com");
    let (e, _) = search(
        &mut admin,
        PEOPLE,
        Scope::OneLevel,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    assert_eq!(e.len(), 1, "nothing refused was stored");
    server.stop().await;
}

#[tokio::test]
async fn modify_semantics() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    let dn = person_dn("alice");
    let m = |mods: Vec<Mod<&'static str>>| mods;
    let rc = admin
        .modify(
            &dn,
            m(vec![Mod::Add("mail", HashSet::from(["a@example.com"]))]),
        )
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 0);
    let rc = admin
        .modify(
            &dn,
            m(vec![Mod::Add("mail", HashSet::from(["A@EXAMPLE.COM"]))]),
        )
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 20, "mail is case-insensitive");
    let rc = admin
        .modify(&dn, m(vec![Mod::Delete("title", HashSet::new())]))
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 16);
    let rc = admin
        .modify(
            &dn,
            m(vec![Mod::Delete(
                "mail",
                HashSet::from(["other@example.com"]),
            )]),
        )
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 16);
    let rc = admin
        .modify(&dn, m(vec![Mod::Delete("sn", HashSet::new())]))
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 65, "sn is required");
    let rc = admin
        .modify(&dn, m(vec![Mod::Replace("bogus", HashSet::from(["x"]))]))
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 17);
    let rc = admin
        .modify(&dn, m(vec![Mod::Delete("uid", HashSet::new())]))
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 67, "the RDN value stays");
    let rc = admin
        .modify(
            &dn,
            m(vec![Mod::Replace(
                "objectClass",
                HashSet::from(["organizationalUnit"]),
            )]),
        )
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 69);
    // A failed change list applies nothing: the first change is fine, the second fails.
    let rc = admin
        .modify(
            &dn,
            m(vec![
                Mod::Replace("title", HashSet::from(["Boss"])),
                Mod::Delete("description", HashSet::new()),
            ]),
        )
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 16);
    let (e, _) = search(
        &mut admin,
        &dn,
        Scope::Base,
        "(objectClass=*)",
        &["title", "mail", "modifyTimestamp", "createTimestamp"],
    )
    .await;
    assert!(!e[0].attrs.contains_key("title"));
    assert_eq!(e[0].attrs["mail"], vec!["a@example.com"]);
    assert_eq!(
        replace(&mut admin, &dn, "userPassword", &["new secret"]).await,
        0
    );
    let (e, _) = search(
        &mut admin,
        &dn,
        Scope::Base,
        "(objectClass=*)",
        &["userPassword"],
    )
    .await;
    assert!(e[0].attrs["userPassword"][0].starts_with("{ARGON2}"));
    server.bound(&dn, "new secret").await;
    server.stop().await;
}

#[tokio::test]
async fn posix_ids_are_allocated_and_unique() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", true).await;
    add_person(&mut admin, "bob", "pw", true).await;
    let (e, _) = search(
        &mut admin,
        PEOPLE,
        Scope::OneLevel,
        "(objectClass=posixAccount)",
        &["uidNumber", "gidNumber", "homeDirectory"],
    )
    .await;
    let numbers: HashSet<String> = e.iter().map(|e| e.attrs["uidNumber"][0].clone()).collect();
    assert_eq!(numbers.len(), 2);
    assert!(
        e.iter()
            .all(|e| e.attrs["homeDirectory"][0].starts_with("/home/"))
    );
    let taken = e[0].attrs["uidNumber"][0].clone();
    let rc = replace(&mut admin, &person_dn("bob"), "uidNumber", &[&taken]).await;
    let rc2 = replace(&mut admin, &person_dn("alice"), "uidNumber", &[&taken]).await;
    assert!(rc == 19 || rc2 == 19, "a duplicate uidNumber is refused");
    // Deleting an account does not free its number for reuse.
    admin
        .delete(&person_dn("bob"))
        .await
        .unwrap()
        .success()
        .unwrap();
    add_person(&mut admin, "carol", "pw", true).await;
    let (c, _) = search(
        &mut admin,
        &person_dn("carol"),
        Scope::Base,
        "(objectClass=*)",
        &["uidNumber"],
    )
    .await;
    assert!(!numbers.contains(&c[0].attrs["uidNumber"][0]));
    server.stop().await;
}

/// The first value of a numeric attribute of `dn`.
async fn number(ldap: &mut ldap3::Ldap, dn: &str, attr: &str) -> u32 {
    let (e, rc) = search(ldap, dn, Scope::Base, "(objectClass=*)", &[attr]).await;
    assert_eq!(rc, 0, "{dn}");
    e[0].attrs[attr][0].parse().unwrap()
}

#[tokio::test]
async fn posix_uid_and_group_gid_never_collide() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    // A group first: it must not take the number the first user's private gid gets.
    add_group(&mut admin, "g1", &[], true).await;
    add_person(&mut admin, "alice", "pw", true).await;
    let g1 = number(&mut admin, &group_dn("g1"), "gidNumber").await;
    let alice_uid = number(&mut admin, &person_dn("alice"), "uidNumber").await;
    let alice_gid = number(&mut admin, &person_dn("alice"), "gidNumber").await;
    assert_eq!(alice_uid, alice_gid, "a user private group by default");
    assert_ne!(alice_gid, g1);
    add_group(&mut admin, "g2", &[], true).await;
    let g2 = number(&mut admin, &group_dn("g2"), "gidNumber").await;
    assert!(![g1, alice_gid].contains(&g2), "{g2}");

    // A gidNumber set by hand is skipped by the uid allocator (and a uidNumber by the
    // gid allocator).
    let taken = g2.max(alice_uid) + 1;
    let rc = admin
        .add(
            &group_dn("manual"),
            vec![
                ("objectClass", HashSet::from(["groupOfNames", "posixGroup"])),
                ("cn", HashSet::from(["manual"])),
                ("gidNumber", HashSet::from([taken.to_string().as_str()])),
            ],
        )
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 0);
    add_person(&mut admin, "bob", "pw", true).await;
    let bob = number(&mut admin, &person_dn("bob"), "uidNumber").await;
    assert_ne!(bob, taken);
    add_group(&mut admin, "g3", &[], true).await;
    let g3 = number(&mut admin, &group_dn("g3"), "gidNumber").await;
    assert!(![g1, g2, taken, alice_uid, bob].contains(&g3), "{g3}");

    // Never reused across kinds: a deleted group's gid does not become a user's, nor a
    // deleted user's uid a group's.
    for dn in [group_dn("g3"), person_dn("bob")] {
        admin.delete(&dn).await.unwrap().success().unwrap();
    }
    add_person(&mut admin, "carol", "pw", true).await;
    add_group(&mut admin, "g4", &[], true).await;
    let carol = number(&mut admin, &person_dn("carol"), "uidNumber").await;
    let g4 = number(&mut admin, &group_dn("g4"), "gidNumber").await;
    let used = [g1, g2, g3, taken, alice_uid, bob];
    assert!(!used.contains(&carol) && !used.contains(&g4) && carol != g4);

    // A chosen uidNumber that is a group's gid cannot become a private gid silently...
    let person = |uid: &str, numbers: &[(&str, u32)]| {
        let one = |v: &str| HashSet::from([v.to_string()]);
        let mut attrs: Vec<(String, HashSet<String>)> = vec![
            (
                "objectClass".into(),
                HashSet::from(["inetOrgPerson".into(), "posixAccount".into()]),
            ),
            ("uid".into(), one(uid)),
            ("cn".into(), one(uid)),
            ("sn".into(), one(uid)),
        ];
        attrs.extend(
            numbers
                .iter()
                .map(|(a, v)| (a.to_string(), one(&v.to_string()))),
        );
        attrs
    };
    let rc = admin
        .add(&person_dn("dave"), person("dave", &[("uidNumber", g1)]))
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 19, "the derived gid would be group g1's");
    // ...but a primary group named on purpose is fine.
    let rc = admin
        .add(
            &person_dn("dave"),
            person("dave", &[("uidNumber", g1), ("gidNumber", g1)]),
        )
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 0);
    server.stop().await;
}

#[tokio::test]
async fn posix_accounts_need_login_names_from_every_writer() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let posix = |uid: &'static str| {
        vec![
            (
                "objectClass",
                HashSet::from(["inetOrgPerson", "posixAccount"]),
            ),
            ("uid", HashSet::from([uid])),
            ("cn", HashSet::from(["Someone"])),
            ("sn", HashSet::from(["Someone"])),
        ]
    };
    // Add: a login name (odd ones included, as useradd takes them) or 19 saying why.
    for uid in ["j.doe-2", "_backup", "ws01$", "a"] {
        let res = admin.add(&person_dn(uid), posix(uid)).await.unwrap();
        assert_eq!(res.rc, 0, "{uid}: {}", res.text);
    }
    for uid in [
        "Bob Smith",
        "Bob",
        "1bob",
        "bob$x",
        "-bob",
        "thirty-three-characters-long-abcd",
    ] {
        let res = admin.add(&person_dn(uid), posix(uid)).await.unwrap();
        assert_eq!(res.rc, 19, "{uid}");
        assert!(
            res.text.contains(&format!("'{uid}' is not a login name"))
                && res.text.contains("lowercase letters"),
            "{uid}: {}",
            res.text
        );
    }
    // Not a POSIX account: no login, no rule.
    let person = vec![
        ("objectClass", HashSet::from(["inetOrgPerson"])),
        ("uid", HashSet::from(["Bob Smith"])),
        ("cn", HashSet::from(["Bob Smith"])),
        ("sn", HashSet::from(["Smith"])),
    ];
    let res = admin.add(&person_dn("Bob Smith"), person).await.unwrap();
    assert_eq!(res.rc, 0, "{}", res.text);
    // Modify: becoming a POSIX account, or a new uid value, meets the rule.
    let res = admin
        .modify(
            &person_dn("Bob Smith"),
            vec![Mod::Add("objectClass", HashSet::from(["posixAccount"]))],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 19, "{}", res.text);
    let res = admin
        .modify(
            &person_dn("j.doe-2"),
            vec![Mod::Add("uid", HashSet::from(["J.Doe"]))],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 19, "{}", res.text);
    // The values it had stay good: other changes to it go through.
    let res = admin
        .modify(
            &person_dn("j.doe-2"),
            vec![Mod::Replace("cn", HashSet::from(["Jane Doe"]))],
        )
        .await
        .unwrap();
    assert_eq!(res.rc, 0, "{}", res.text);
    // ModifyDN: the new RDN's uid too.
    let res = admin
        .modifydn(&person_dn("j.doe-2"), "uid=Jane Doe", true, None)
        .await
        .unwrap();
    assert_eq!(res.rc, 19, "{}", res.text);
    let res = admin
        .modifydn(&person_dn("j.doe-2"), "uid=jane.doe", true, None)
        .await
        .unwrap();
    assert_eq!(res.rc, 0, "{}", res.text);
    server.stop().await;
}

#[tokio::test]
async fn add_takes_member_uid_alongside_member() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    add_person(&mut admin, "bob", "pw", false).await;
    // Both forms for alice (as an OpenLDAP rfc2307bis export has), memberUid only for bob.
    let alice = person_dn("alice");
    let rc = admin
        .add(
            &group_dn("team"),
            vec![
                ("objectClass", HashSet::from(["groupOfNames", "posixGroup"])),
                ("cn", HashSet::from(["team"])),
                ("member", HashSet::from([alice.as_str()])),
                ("memberUid", HashSet::from(["alice", "bob"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(rc.rc, 0, "{}", rc.text);
    let (g, _) = search(
        &mut admin,
        &group_dn("team"),
        Scope::Base,
        "(objectClass=*)",
        &["member", "memberUid"],
    )
    .await;
    let mut members: Vec<String> = g[0].attrs["member"]
        .iter()
        .map(|m| m.to_ascii_lowercase())
        .collect();
    members.sort();
    assert_eq!(members, vec![alice, person_dn("bob")]);
    assert_eq!(g[0].attrs["memberUid"].len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn delete_rename_and_referential_integrity() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    add_person(&mut admin, "bob", "pw", false).await;
    add_group(&mut admin, "team", &["alice", "bob"], true).await;
    assert_eq!(admin.delete(PEOPLE).await.unwrap().rc, 66);
    assert_eq!(admin.delete(&person_dn("nobody")).await.unwrap().rc, 32);

    admin
        .modifydn(&person_dn("alice"), "uid=alicia", true, None)
        .await
        .unwrap()
        .success()
        .unwrap();
    let (e, _) = search(
        &mut admin,
        &person_dn("alicia"),
        Scope::Base,
        "(objectClass=*)",
        &["uid"],
    )
    .await;
    assert_eq!(e[0].attrs["uid"], vec!["alicia"], "old RDN value removed");
    let (g, _) = search(
        &mut admin,
        &group_dn("team"),
        Scope::Base,
        "(objectClass=*)",
        &["member", "memberUid"],
    )
    .await;
    let members: HashSet<String> = g[0].attrs["member"]
        .iter()
        .map(|m| m.to_ascii_lowercase())
        .collect();
    assert_eq!(
        members,
        HashSet::from([person_dn("alicia"), person_dn("bob")])
    );
    assert!(g[0].attrs["memberUid"].contains(&"alicia".to_string()));

    assert_eq!(
        admin
            .modifydn(&person_dn("bob"), "uid=alicia", true, None)
            .await
            .unwrap()
            .rc,
        68
    );
    admin
        .modifydn(
            &person_dn("bob"),
            "uid=bob",
            false,
            Some("ou=services,dc=example,dc=com"),
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    admin
        .delete("uid=bob,ou=services,dc=example,dc=com")
        .await
        .unwrap()
        .success()
        .unwrap();
    let (g, _) = search(
        &mut admin,
        &group_dn("team"),
        Scope::Base,
        "(objectClass=*)",
        &["member", "memberUid"],
    )
    .await;
    assert_eq!(g[0].attrs["member"].len(), 1);
    assert_eq!(g[0].attrs["memberUid"], vec!["alicia"]);
    server.stop().await;
}

#[tokio::test]
async fn compare_codes() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", true).await;
    let dn = person_dn("alice");
    assert_eq!(admin.compare(&dn, "uid", "ALICE").await.unwrap().0.rc, 6);
    assert_eq!(admin.compare(&dn, "uid", "bob").await.unwrap().0.rc, 5);
    assert_eq!(admin.compare(&dn, "mail", "x").await.unwrap().0.rc, 16);
    assert_eq!(admin.compare(&dn, "bogus", "x").await.unwrap().0.rc, 17);
    assert_eq!(
        admin
            .compare(&person_dn("nobody"), "uid", "x")
            .await
            .unwrap()
            .0
            .rc,
        32
    );
    let (e, _) = search(
        &mut admin,
        &dn,
        Scope::Base,
        "(objectClass=*)",
        &["uidNumber"],
    )
    .await;
    let n = format!("0{}", e[0].attrs["uidNumber"][0]);
    assert_eq!(
        admin
            .compare(&dn, "uidNumber", n.as_str())
            .await
            .unwrap()
            .0
            .rc,
        6,
        "integer matching"
    );
    server.stop().await;
}

#[tokio::test]
async fn only_administrators_write() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    add_person(&mut admin, "bob", "pw", false).await;
    let mut alice = server.bound(&person_dn("alice"), "pw").await;
    // Without a role (and as a reader) alice may write nothing: 50 before anything is looked up.
    assert_eq!(
        replace(&mut alice, &person_dn("bob"), "title", &["x"]).await,
        50
    );
    crate::grant(&mut admin, "directory-readers", &person_dn("alice")).await;
    assert_eq!(
        replace(&mut alice, &person_dn("bob"), "title", &["x"]).await,
        50
    );
    assert_eq!(alice.delete(&person_dn("bob")).await.unwrap().rc, 50);
    assert_eq!(
        replace(&mut alice, &person_dn("alice"), "title", &["x"]).await,
        50,
        "not even her own entry, beyond her password"
    );
    let mut anon = server.ldaps().await;
    assert_eq!(
        replace(&mut anon, &person_dn("bob"), "title", &["x"]).await,
        8
    );
    assert_eq!(anon.delete(&person_dn("bob")).await.unwrap().rc, 8);

    // Members of the directory-admins role are administrators, from the next operation on.
    let alice_dn = person_dn("alice");
    crate::grant(&mut admin, "directory-admins", &alice_dn).await;
    assert_eq!(
        replace(&mut alice, &person_dn("bob"), "title", &["x"]).await,
        0
    );
    crate::revoke(&mut admin, "directory-admins", &alice_dn).await;
    assert_eq!(
        replace(&mut alice, &person_dn("bob"), "title", &["y"]).await,
        50
    );
    server.stop().await;
}

/// A valid person entry for Add requests.
fn person_attrs(uid: &str) -> Vec<(String, HashSet<String>)> {
    let one = |v: &str| HashSet::from([v.to_string()]);
    vec![
        ("objectClass".into(), one("inetOrgPerson")),
        ("uid".into(), one(uid)),
        ("cn".into(), one(uid)),
        ("sn".into(), one(uid)),
    ]
}

/// What each kind of write by `ldap` returns, with the labels to report.
async fn write_codes(ldap: &mut ldap3::Ldap) -> Vec<(&'static str, u32)> {
    let bob = person_dn("bob");
    let mut with_password = person_attrs("eve2");
    with_password.push(("userPassword".into(), HashSet::from(["secret".into()])));
    let mut bogus = person_attrs("eve3");
    bogus.push(("bogusAttr".into(), HashSet::from(["x".into()])));
    let mut codes = vec![
        (
            "add",
            ldap.add(&person_dn("eve"), person_attrs("eve"))
                .await
                .unwrap()
                .rc,
        ),
        (
            "add with a password",
            ldap.add(&person_dn("eve2"), with_password)
                .await
                .unwrap()
                .rc,
        ),
        (
            "add with an unknown attribute",
            ldap.add(&person_dn("eve3"), bogus).await.unwrap().rc,
        ),
        (
            "add of an existing entry",
            ldap.add(&bob, person_attrs("bob")).await.unwrap().rc,
        ),
        (
            "add under a missing parent",
            ldap.add("uid=eve,ou=nowhere,dc=example,dc=com", person_attrs("eve"))
                .await
                .unwrap()
                .rc,
        ),
        (
            "modifydn",
            ldap.modifydn(&bob, "uid=robert", true, None)
                .await
                .unwrap()
                .rc,
        ),
        (
            "modifydn to a new superior",
            ldap.modifydn(
                &bob,
                "uid=bob",
                false,
                Some("ou=services,dc=example,dc=com"),
            )
            .await
            .unwrap()
            .rc,
        ),
        (
            "modifydn of a missing entry",
            ldap.modifydn(&person_dn("nobody"), "uid=somebody", true, None)
                .await
                .unwrap()
                .rc,
        ),
    ];
    let modify = vec![Mod::Replace("title", HashSet::from(["x"]))];
    codes.push(("modify", ldap.modify(&bob, modify).await.unwrap().rc));
    let password = vec![Mod::Replace("userPassword", HashSet::from(["new"]))];
    codes.push((
        "modify of a password",
        ldap.modify(&bob, password).await.unwrap().rc,
    ));
    let server_attr = vec![Mod::Replace("entryUUID", HashSet::from(["x"]))];
    codes.push((
        "modify of a server attribute",
        ldap.modify(&bob, server_attr).await.unwrap().rc,
    ));
    codes.push(("delete", ldap.delete(&bob).await.unwrap().rc));
    codes.push((
        "delete of a missing entry",
        ldap.delete(&person_dn("nobody")).await.unwrap().rc,
    ));
    codes
}

/// Nothing a refused write touched has changed.
async fn assert_untouched(admin: &mut ldap3::Ldap) {
    let (e, _) = search(
        admin,
        crate::SUFFIX,
        Scope::Subtree,
        "(objectClass=person)",
        &["uid", "title", "userPassword"],
    )
    .await;
    let mut uids: Vec<&str> = e.iter().map(|e| e.attrs["uid"][0].as_str()).collect();
    uids.sort();
    assert_eq!(uids, vec!["alice", "bob"]);
    assert!(e.iter().all(|e| !e.attrs.contains_key("title")));
    let bob = e.iter().find(|e| e.attrs["uid"][0] == "bob").unwrap();
    assert_eq!(bob.dn.to_ascii_lowercase(), person_dn("bob"));
}

#[tokio::test]
async fn bound_non_administrators_get_50_for_every_write() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    add_person(&mut admin, "bob", "pw", false).await;
    let mut alice = server.bound(&person_dn("alice"), "pw").await;
    for (what, rc) in write_codes(&mut alice).await {
        assert_eq!(rc, 50, "{what} by a bound non-administrator");
    }
    assert_untouched(&mut admin).await;
    // Still refused over StartTLS and when the target is the caller's own entry.
    let mut alice = server.starttls().await;
    alice
        .simple_bind(&person_dn("alice"), "pw")
        .await
        .unwrap()
        .success()
        .unwrap();
    let rc = alice
        .modifydn(&person_dn("alice"), "uid=alicia", true, None)
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 50, "renaming oneself");
    assert_untouched(&mut admin).await;
    server.stop().await;
}

#[tokio::test]
async fn anonymous_writes_get_8() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    add_person(&mut admin, "bob", "pw", false).await;
    let mut anon = server.ldaps().await;
    for (what, rc) in write_codes(&mut anon).await {
        assert_eq!(rc, 8, "anonymous {what}");
    }
    // A failed bind leaves the connection anonymous: still 8.
    let mut failed = server.ldaps().await;
    let rc = failed
        .simple_bind(&person_dn("alice"), "wrong")
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 49);
    for (what, rc) in write_codes(&mut failed).await {
        assert_eq!(rc, 8, "{what} after a failed bind");
    }
    // Readable anonymously or not, anonymous writes are refused the same way.
    let open = TestServer::start_with("[security]\nanonymous = \"read\"\n").await;
    let mut open_admin = open.admin().await;
    add_person(&mut open_admin, "alice", "pw", false).await;
    add_person(&mut open_admin, "bob", "pw", false).await;
    let mut anon = open.ldaps().await;
    for (what, rc) in write_codes(&mut anon).await {
        assert_eq!(rc, 8, "anonymous {what} with anonymous reads on");
    }
    assert_untouched(&mut open_admin).await;
    open.stop().await;
    assert_untouched(&mut admin).await;
    server.stop().await;
}

#[tokio::test]
async fn entry_uuids_follow_the_order_entries_were_added_in() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let mut uuids = Vec::new();
    for uid in ["zed", "amy", "kim"] {
        add_person(&mut admin, uid, "pw", false).await;
        let (e, rc) = search(
            &mut admin,
            &person_dn(uid),
            Scope::Base,
            "(objectClass=*)",
            &["entryUUID"],
        )
        .await;
        assert_eq!(rc, 0);
        uuids.push(e[0].attrs["entryUUID"][0].clone());
    }
    // Version 7 (time-ordered): new entries' index keys go to the end of the range.
    assert!(
        uuids.iter().all(|u| u.len() == 36 && &u[14..15] == "7"),
        "{uuids:?}"
    );
    assert!(uuids.windows(2).all(|w| w[0] < w[1]), "{uuids:?}");
    server.stop().await;
}
