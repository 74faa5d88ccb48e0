//! Search: scopes, filters under schema matching, attribute selection, operational and
//! computed attributes, limits, rootDSE, subschema, paging and index use.

use std::collections::HashSet;

use ldap3::controls::{PagedResults, RawControl};
use ldap3::{Ldap, Scope, SearchEntry};

use crate::{PEOPLE, SUFFIX, TestServer, add_group, add_person, group_dn, person_dn, search};

async fn seeded() -> (TestServer, Ldap) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", true).await;
    add_person(&mut admin, "bob", "pw-bob", true).await;
    add_person(&mut admin, "carol", "pw-carol", false).await;
    add_group(&mut admin, "staff", &["alice", "bob"], true).await;
    add_group(&mut admin, "readers", &["carol"], false).await;
    // alice and bob read the directory through their group; carol holds no role.
    crate::grant(&mut admin, "directory-readers", &crate::group_dn("staff")).await;
    (server, admin)
}

fn dns(entries: &[SearchEntry]) -> HashSet<String> {
    entries.iter().map(|e| e.dn.to_ascii_lowercase()).collect()
}

#[tokio::test]
async fn scopes_and_missing_base() {
    let (server, mut admin) = seeded().await;
    let (base, rc) = search(&mut admin, PEOPLE, Scope::Base, "(objectClass=*)", &[]).await;
    assert_eq!((base.len(), rc), (1, 0));
    let (one, _) = search(&mut admin, PEOPLE, Scope::OneLevel, "(objectClass=*)", &[]).await;
    assert_eq!(one.len(), 3);
    let (sub, _) = search(
        &mut admin,
        SUFFIX,
        Scope::Subtree,
        "(objectClass=person)",
        &[],
    )
    .await;
    assert_eq!(sub.len(), 3);
    let (none, rc) = search(
        &mut admin,
        &person_dn("nobody"),
        Scope::Base,
        "(objectClass=*)",
        &[],
    )
    .await;
    assert_eq!((none.len(), rc), (0, 32));
    let res = admin
        .search(
            "uid=x,ou=missing,dc=example,dc=com",
            Scope::Base,
            "(objectClass=*)",
            vec!["*"],
        )
        .await
        .unwrap();
    assert_eq!(res.1.rc, 32);
    assert_eq!(res.1.matched.to_ascii_lowercase(), SUFFIX);
    let (_, rc) = search(
        &mut admin,
        "dc=other,dc=org",
        Scope::Subtree,
        "(objectClass=*)",
        &[],
    )
    .await;
    assert_eq!(rc, 32);
    server.stop().await;
}

#[tokio::test]
async fn filters_follow_the_schema() {
    let (server, mut admin) = seeded().await;
    let find = |f: &'static str| f;
    let cases: Vec<(&str, HashSet<String>)> = vec![
        (find("(uid=ALICE)"), HashSet::from([person_dn("alice")])),
        ("(cn=alice   example)", HashSet::from([person_dn("alice")])),
        (
            "(&(objectClass=posixAccount)(uid=bob))",
            HashSet::from([person_dn("bob")]),
        ),
        (
            "(|(uid=alice)(uid=carol))",
            HashSet::from([person_dn("alice"), person_dn("carol")]),
        ),
        (
            "(&(objectClass=person)(!(uid=alice)))",
            HashSet::from([person_dn("bob"), person_dn("carol")]),
        ),
        ("(uid=a*)", HashSet::from([person_dn("alice")])),
        (
            "(uid=*o*)",
            HashSet::from([person_dn("bob"), person_dn("carol")]),
        ),
        (
            "(&(objectClass=person)(uidNumber=*))",
            HashSet::from([person_dn("alice"), person_dn("bob")]),
        ),
        ("(uid~=carol)", HashSet::from([person_dn("carol")])),
        (
            "(uid:caseExactMatch:=alice)",
            HashSet::from([person_dn("alice")]),
        ),
        (
            "(member=UID=Alice,OU=People,DC=Example,DC=Com)",
            HashSet::from([group_dn("staff")]),
        ),
        ("(memberUid=bob)", HashSet::from([group_dn("staff")])),
        (
            "(memberOf=cn=staff,ou=groups,dc=example,dc=com)",
            HashSet::from([person_dn("alice"), person_dn("bob")]),
        ),
        (
            "(&(objectClass=person)(memberOf=*))",
            HashSet::from([person_dn("alice"), person_dn("bob"), person_dn("carol")]),
        ),
        ("(noSuchAttribute=x)", HashSet::new()),
        ("(!(noSuchAttribute=x))", HashSet::new()),
    ];
    for (filter, want) in cases {
        let (entries, rc) = search(&mut admin, SUFFIX, Scope::Subtree, filter, &["1.1"]).await;
        assert_eq!(rc, 0, "{filter}");
        let want: HashSet<String> = want.into_iter().map(|d| d.to_ascii_lowercase()).collect();
        assert_eq!(dns(&entries), want, "{filter}");
    }
    server.stop().await;
}

#[tokio::test]
async fn extensible_match_by_rule_kind_and_dn() {
    let (server, mut admin) = seeded().await;
    let (e, _) = search(
        &mut admin,
        &person_dn("bob"),
        Scope::Base,
        "(objectClass=*)",
        &["uidNumber"],
    )
    .await;
    let bob_uid = e[0].attrs["uidNumber"][0].clone();
    let less_than_bob = format!("(uidNumber:integerOrderingMatch:={bob_uid})");
    let people = |uids: &[&str]| uids.iter().map(|u| person_dn(u)).collect::<HashSet<_>>();
    let cases: Vec<(&str, HashSet<String>)> = vec![
        // Ordering rules are "less than" (RFC 4517), not equality.
        (&less_than_bob, people(&["alice"])),
        (
            "(&(objectClass=person)(cn:caseIgnoreOrderingMatch:=BOB))",
            people(&["alice"]),
        ),
        (
            "(&(objectClass=person)(createTimestamp:generalizedTimeOrderingMatch:=29991231235959Z))",
            people(&["alice", "bob", "carol"]),
        ),
        // Substrings rules take a substrings assertion; a filter string escapes its `*`
        // (RFC 4515), so the server sees `ALI*ample`.
        (
            "(cn:caseIgnoreSubstringsMatch:=ALI\\2aample)",
            people(&["alice"]),
        ),
        (
            "(&(objectClass=person)(cn:2.5.13.4:=\\2ao\\2a))",
            people(&["bob", "carol"]),
        ),
        // :dn: matches the DN's values too: people have no `ou`, their DN does.
        ("(&(objectClass=person)(ou=people))", HashSet::new()),
        (
            "(&(objectClass=person)(ou:dn:=people))",
            people(&["alice", "bob", "carol"]),
        ),
        (
            "(&(objectClass=groupOfNames)(ou:dn:caseIgnoreMatch:=GROUPS))",
            HashSet::from([group_dn("staff"), group_dn("readers")]),
        ),
        // Unknown rules are Undefined: no entries, no error.
        ("(uid:noSuchMatch:=alice)", HashSet::new()),
        ("(!(uid:1.2.3.4.5:=alice))", HashSet::new()),
    ];
    for (filter, want) in cases {
        let (entries, rc) = search(&mut admin, SUFFIX, Scope::Subtree, filter, &["1.1"]).await;
        assert_eq!(rc, 0, "{filter}");
        let want: HashSet<String> = want.into_iter().map(|d| d.to_ascii_lowercase()).collect();
        assert_eq!(dns(&entries), want, "{filter}");
    }
    server.stop().await;
}

#[tokio::test]
async fn integer_and_time_ordering() {
    let (server, mut admin) = seeded().await;
    let (all, _) = search(
        &mut admin,
        PEOPLE,
        Scope::OneLevel,
        "(uidNumber>=0)",
        &["uidNumber"],
    )
    .await;
    assert_eq!(all.len(), 2);
    let mut numbers: Vec<i64> = all
        .iter()
        .map(|e| e.attrs["uidNumber"][0].parse().unwrap())
        .collect();
    numbers.sort();
    assert!(
        numbers[0] >= 10000 && numbers[1] > numbers[0],
        "{numbers:?}"
    );
    // 9 < 10000 as integers, though "9" > "10000" as strings.
    let (low, _) = search(&mut admin, PEOPLE, Scope::OneLevel, "(uidNumber<=9)", &[]).await;
    assert!(low.is_empty());
    let filter = format!("(uidNumber>={})", numbers[1]);
    let (high, _) = search(&mut admin, PEOPLE, Scope::OneLevel, &filter, &[]).await;
    assert_eq!(high.len(), 1);

    let (e, _) = search(
        &mut admin,
        &person_dn("alice"),
        Scope::Base,
        "(objectClass=*)",
        &["modifyTimestamp"],
    )
    .await;
    let stamp = e[0].attrs["modifyTimestamp"][0].clone();
    let ge = format!("(&(uid=alice)(modifyTimestamp>={stamp}))");
    assert_eq!(
        search(&mut admin, PEOPLE, Scope::OneLevel, &ge, &[])
            .await
            .0
            .len(),
        1
    );
    let later = "(&(uid=alice)(modifyTimestamp>=29991231235959.5Z))";
    assert!(
        search(&mut admin, PEOPLE, Scope::OneLevel, later, &[])
            .await
            .0
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test]
async fn attribute_selection() {
    let (server, mut admin) = seeded().await;
    let alice = person_dn("alice");
    let get = |entries: Vec<SearchEntry>| entries.into_iter().next().unwrap();

    let user = get(
        search(&mut admin, &alice, Scope::Base, "(objectClass=*)", &[])
            .await
            .0,
    );
    assert!(user.attrs.contains_key("uid") && user.attrs.contains_key("objectClass"));
    assert!(
        !user.attrs.contains_key("entryUUID"),
        "operational attributes never on *"
    );

    let op = get(
        search(&mut admin, &alice, Scope::Base, "(objectClass=*)", &["+"])
            .await
            .0,
    );
    for a in [
        "entryUUID",
        "entryDN",
        "createTimestamp",
        "modifyTimestamp",
        "creatorsName",
        "modifiersName",
        "structuralObjectClass",
        "hasSubordinates",
        "subschemaSubentry",
        "memberOf",
    ] {
        assert!(
            op.attrs.contains_key(a),
            "{a} missing from +: {:?}",
            op.attrs.keys()
        );
    }
    assert!(!op.attrs.contains_key("uid"));
    assert!(
        !op.attrs.contains_key("objectClass"),
        "+ is operational only"
    );
    assert_eq!(op.attrs["structuralObjectClass"], vec!["inetOrgPerson"]);
    assert_eq!(op.attrs["hasSubordinates"], vec!["FALSE"]);
    assert_eq!(
        op.attrs["memberOf"]
            .iter()
            .map(|m| m.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        vec![group_dn("staff")]
    );

    let named = get(search(
        &mut admin,
        &alice,
        Scope::Base,
        "(objectClass=*)",
        &["UID", "entryUUID", "nonexistent", "cn;binary"],
    )
    .await
    .0);
    let keys: HashSet<&str> = named.attrs.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from(["uid", "entryUUID", "cn"]),
        "what was named and nothing else, as slapd answers (RFC 4511 4.5.1.8)"
    );
    // Named in any case, objectClass comes, as SSSD and nslcd ask for it.
    let classes = get(search(
        &mut admin,
        &alice,
        Scope::Base,
        "(objectClass=*)",
        &["objectclass", "uid"],
    )
    .await
    .0);
    let keys: HashSet<&str> = classes.attrs.keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["uid", "objectClass"]));
    assert!(
        classes.attrs["objectClass"]
            .iter()
            .any(|c| c == "inetOrgPerson")
    );

    let none = get(
        search(&mut admin, &alice, Scope::Base, "(objectClass=*)", &["1.1"])
            .await
            .0,
    );
    assert!(none.attrs.is_empty());

    let res = admin
        .with_search_options(ldap3::SearchOptions::new().typesonly(true))
        .search(&alice, Scope::Base, "(objectClass=*)", vec!["uid"])
        .await
        .unwrap();
    let raw = SearchEntry::construct(res.0.into_iter().next().unwrap());
    assert!(raw.attrs["uid"].is_empty(), "typesOnly returns no values");

    let group = get(search(
        &mut admin,
        &group_dn("staff"),
        Scope::Base,
        "(objectClass=*)",
        &["memberUid", "gidNumber"],
    )
    .await
    .0);
    let mut uids = group.attrs["memberUid"].clone();
    uids.sort();
    assert_eq!(uids, vec!["alice", "bob"]);
    assert!(group.attrs["gidNumber"][0].parse::<u32>().unwrap() >= 10000);
    server.stop().await;
}

#[tokio::test]
async fn user_password_is_hashed_and_only_admins_see_it() {
    let (server, mut admin) = seeded().await;
    let (e, _) = search(
        &mut admin,
        &person_dn("alice"),
        Scope::Base,
        "(objectClass=*)",
        &["userPassword"],
    )
    .await;
    let stored = &e[0].attrs["userPassword"][0];
    assert!(stored.starts_with("{ARGON2}$argon2id$"), "{stored}");
    assert!(!stored.contains("pw-alice"));

    let mut bob = server.bound(&person_dn("bob"), "pw-bob").await;
    let (e, _) = search(
        &mut bob,
        &person_dn("alice"),
        Scope::Base,
        "(objectClass=*)",
        &["userPassword", "*"],
    )
    .await;
    assert!(!e[0].attrs.contains_key("userPassword"));
    assert!(e[0].attrs.contains_key("uid"));
    server.stop().await;
}

#[tokio::test]
async fn anonymous_sees_the_root_dse_and_the_suffix_entry_by_default() {
    let (server, _admin) = seeded().await;
    let mut anon = server.ldaps().await;
    let (e, rc) = search(&mut anon, "", Scope::Base, "(objectClass=*)", &["+"]).await;
    assert_eq!((e.len(), rc), (1, 0));
    // Synology DSM reads the base entry before it binds: the suffix entry itself, and
    // nothing below it.
    let (e, rc) = search(&mut anon, SUFFIX, Scope::Base, "(objectClass=*)", &[]).await;
    assert_eq!((e.len(), rc), (1, 0));
    assert!(e[0].attrs.contains_key("objectClass"));
    let (e, rc) = search(
        &mut anon,
        SUFFIX,
        Scope::Subtree,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    assert_eq!((dns(&e), rc), (HashSet::from([SUFFIX.to_string()]), 0));
    let (e, rc) = search(&mut anon, PEOPLE, Scope::Base, "(objectClass=*)", &[]).await;
    assert_eq!((e.len(), rc), (0, 32));
    // carol holds no role: the same view, plus her own entry.
    let mut carol = server.bound(&person_dn("carol"), "pw-carol").await;
    let (e, rc) = search(
        &mut carol,
        SUFFIX,
        Scope::Subtree,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    let want = HashSet::from([SUFFIX.to_string(), person_dn("carol").to_ascii_lowercase()]);
    assert_eq!((dns(&e), rc), (want, 0));
    server.stop().await;
    // With anonymous = "none", not even that.
    let server = TestServer::start_with("[security]\nanonymous = \"none\"\n").await;
    let mut anon = server.ldaps().await;
    let (e, rc) = search(&mut anon, SUFFIX, Scope::Base, "(objectClass=*)", &[]).await;
    assert_eq!((e.len(), rc), (0, 32));
    server.stop().await;
}

#[tokio::test]
async fn size_limit_returns_4_after_exactly_n() {
    let (server, _admin) = seeded().await;
    let mut bob = server.bound(&person_dn("bob"), "pw-bob").await;
    let res = bob
        .with_search_options(ldap3::SearchOptions::new().sizelimit(2))
        .search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .await
        .unwrap();
    assert_eq!((res.0.len(), res.1.rc), (2, 4));
    let server_limited = TestServer::start_with("[limits]\nsize_limit = 3\n").await;
    let mut admin = server_limited.admin().await;
    for uid in ["a1", "a2", "a3", "a4"] {
        add_person(&mut admin, uid, "pw", false).await;
    }
    crate::grant(&mut admin, "directory-readers", &person_dn("a1")).await;
    let mut user = server_limited.bound(&person_dn("a1"), "pw").await;
    let (e, rc) = search(
        &mut user,
        PEOPLE,
        Scope::OneLevel,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    assert_eq!((e.len(), rc), (3, 4));
    // Administrators are not limited by the server's size limit.
    let (e, rc) = search(
        &mut admin,
        PEOPLE,
        Scope::OneLevel,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    assert_eq!((e.len(), rc), (4, 0));
    server_limited.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn root_dse_and_subschema() {
    let (server, _admin) = seeded().await;
    let mut anon = server.ldaps().await;
    let (e, _) = search(&mut anon, "", Scope::Base, "(objectClass=*)", &["+"]).await;
    let root = &e[0].attrs;
    assert_eq!(root["namingContexts"], vec![SUFFIX]);
    assert_eq!(root["defaultNamingContext"], vec![SUFFIX]);
    assert_eq!(root["supportedLDAPVersion"], vec!["3"]);
    assert!(root["supportedControl"].contains(&"1.2.840.113556.1.4.319".to_string()));
    for oid in [
        "1.3.6.1.4.1.4203.1.11.3",
        "1.3.6.1.4.1.4203.1.11.1",
        "1.3.6.1.4.1.1466.20037",
    ] {
        assert!(
            root["supportedExtension"].contains(&oid.to_string()),
            "{oid}"
        );
    }
    assert!(root["supportedFeatures"].contains(&"1.3.6.1.4.1.4203.1.5.1".to_string()));
    // EXTERNAL is listed where it can work: LDAPI, or TLS with a client certificate.
    assert!(!root.contains_key("supportedSASLMechanisms"), "{root:?}");
    let mut local = server.admin().await;
    let (e, _) = search(&mut local, "", Scope::Base, "(objectClass=*)", &["+"]).await;
    assert_eq!(e[0].attrs["supportedSASLMechanisms"], vec!["EXTERNAL"]);
    assert_eq!(root["subschemaSubentry"], vec!["cn=Subschema"]);
    assert_eq!(root["vendorName"], vec!["Tessera"]);
    assert!(root.contains_key("vendorVersion"));
    let (plain, _) = search(&mut anon, "", Scope::Base, "(objectClass=*)", &[]).await;
    assert!(
        !plain[0].attrs.contains_key("namingContexts"),
        "rootDSE attributes are operational"
    );

    let (e, rc) = search(
        &mut anon,
        "CN=SUBSCHEMA",
        Scope::Base,
        "(objectClass=subschema)",
        &["+"],
    )
    .await;
    assert_eq!(rc, 0);
    let schema = &e[0].attrs;
    for a in [
        "attributeTypes",
        "objectClasses",
        "ldapSyntaxes",
        "matchingRules",
    ] {
        assert!(!schema[a].is_empty(), "{a}");
    }
    // Every attribute the server returns is declared, operational ones included.
    let declared = schema["attributeTypes"].join("\n").to_ascii_lowercase();
    for a in [
        "'entryuuid'",
        "'memberof'",
        "'entrydn'",
        "'hassubordinates'",
        "'createtimestamp'",
        "'memberuid'",
        "'uidnumber'",
        "'namingcontexts'",
    ] {
        assert!(declared.contains(a), "{a} not in the subschema");
    }
    server.stop().await;
}

#[tokio::test]
async fn paged_results_continue_and_refuse_bad_cookies() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for i in 0..25 {
        add_person(&mut admin, &format!("p{i:02}"), "pw", false).await;
    }
    crate::grant(&mut admin, "directory-readers", &person_dn("p00")).await;
    let mut user = server.bound(&person_dn("p00"), "pw").await;
    let mut seen = Vec::new();
    let mut cookie = Vec::new();
    let mut pages = 0;
    loop {
        let ctrl: RawControl = PagedResults {
            size: 10,
            cookie: cookie.clone(),
        }
        .into();
        let res = user
            .with_controls(vec![ctrl])
            .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["uid"])
            .await
            .unwrap();
        assert_eq!(res.1.rc, 0);
        pages += 1;
        let next = crate::paged_cookie(&res).expect("a paged response control on every page");
        seen.extend(res.0.into_iter().map(|e| SearchEntry::construct(e).dn));
        if next.is_empty() {
            break;
        }
        assert!(
            next.iter().all(|b| b.is_ascii_graphic()),
            "printable cookie"
        );
        // Replaying the cookie after use is refused.
        cookie = next;
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        25,
        "each entry exactly once"
    );

    // A cookie from page one, used twice; then tampered.
    let first = user
        .with_controls(vec![RawControl::from(PagedResults {
            size: 5,
            cookie: Vec::new(),
        })])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["uid"])
        .await
        .unwrap();
    let cookie = crate::paged_cookie(&first).unwrap();
    let again = |cookie: Vec<u8>| RawControl::from(PagedResults { size: 5, cookie });
    let ok = user
        .with_controls(vec![again(cookie.clone())])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["uid"])
        .await
        .unwrap();
    assert_eq!((ok.0.len(), ok.1.rc), (5, 0));
    let replay = user
        .with_controls(vec![again(cookie.clone())])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["uid"])
        .await
        .unwrap();
    assert_eq!((replay.0.len(), replay.1.rc), (0, 2));
    let mut tampered = cookie.clone();
    tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
    let bad = user
        .with_controls(vec![again(tampered)])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["uid"])
        .await
        .unwrap();
    assert_eq!((bad.0.len(), bad.1.rc), (0, 2));
    // A cookie from another connection is refused too.
    let mut other = server.bound(&person_dn("p01"), "pw").await;
    let foreign = other
        .with_controls(vec![again(cookie)])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["uid"])
        .await
        .unwrap();
    assert_eq!((foreign.0.len(), foreign.1.rc), (0, 2));
    server.stop().await;
}

#[tokio::test]
async fn paged_results_see_writes_made_between_pages() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for i in 0..25 {
        add_person(&mut admin, &format!("p{i:02}"), "pw", false).await;
    }
    let paged = |size: i32, cookie: Vec<u8>| RawControl::from(PagedResults { size, cookie });
    let cookie_of =
        |res: &ldap3::SearchResult| crate::paged_cookie(res).expect("a paged response control");
    let mut seen: Vec<String> = Vec::new();
    let first = admin
        .with_controls(vec![paged(10, Vec::new())])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["uid"])
        .await
        .unwrap();
    let mut cookie = cookie_of(&first);
    seen.extend(first.0.into_iter().map(|e| SearchEntry::construct(e).dn));
    // Not yet returned: one goes, one is new (the highest id of all).
    assert!(!seen.contains(&person_dn("p24")));
    assert_eq!(admin.delete(&person_dn("p24")).await.unwrap().rc, 0);
    add_person(&mut admin, "p99", "pw", false).await;
    while !cookie.is_empty() {
        let res = admin
            .with_controls(vec![paged(10, cookie)])
            .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["uid"])
            .await
            .unwrap();
        assert_eq!(res.1.rc, 0, "{}", res.1.text);
        cookie = cookie_of(&res);
        seen.extend(res.0.into_iter().map(|e| SearchEntry::construct(e).dn));
        assert!(seen.len() < 40, "paging does not end");
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "each entry once: {seen:?}");
    assert!(
        unique.contains(&person_dn("p99")),
        "the entry added mid-way"
    );
    assert!(
        !unique.contains(&person_dn("p24")),
        "the entry deleted mid-way"
    );
    assert_eq!(unique.len(), 25);
    server.stop().await;
}

/// Page through a search asking `first` entries, then `rest` per page; the size of every
/// page, and the entries' DNs.
async fn page_through(ldap: &mut Ldap, first: i32, rest: i32) -> (Vec<usize>, Vec<String>) {
    let mut pages = Vec::new();
    let mut seen = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let ctrl: RawControl = PagedResults {
            size: if pages.is_empty() { first } else { rest },
            cookie: cookie.clone(),
        }
        .into();
        let res = ldap
            .with_controls(vec![ctrl])
            .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["1.1"])
            .await
            .unwrap();
        assert_eq!(res.1.rc, 0, "{}", res.1.text);
        pages.push(res.0.len());
        cookie = crate::paged_cookie(&res).expect("a paged response control on every page");
        seen.extend(res.0.into_iter().map(|e| SearchEntry::construct(e).dn));
        if cookie.is_empty() {
            return (pages, seen);
        }
        assert!(pages.len() < 20, "paging does not end: {pages:?}");
    }
}

#[tokio::test]
async fn paged_results_are_held_to_the_server_size_limit() {
    let server = TestServer::start_with("[limits]\nsize_limit = 3\n").await;
    let mut admin = server.admin().await;
    for i in 0..8 {
        add_person(&mut admin, &format!("p{i}"), "pw", false).await;
    }
    crate::grant(&mut admin, "directory-readers", &person_dn("p0")).await;
    let mut user = server.bound(&person_dn("p0"), "pw").await;
    // No page over the limit, whatever is asked (0 = no preference), yet every entry once.
    // (A zero size with a cookie abandons the search, RFC 2696 §3, so 0 only starts one.)
    for (first, rest) in [(0, 3), (100_000, 100_000), (5, 5)] {
        let (pages, seen) = page_through(&mut user, first, rest).await;
        assert_eq!(pages, vec![3, 3, 2], "page size {first}");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);
    }
    // A smaller page size than the limit is honoured.
    let (pages, _) = page_through(&mut user, 2, 2).await;
    assert_eq!(pages, vec![2, 2, 2, 2]);
    // Administrators are not held to the server limit.
    let (pages, _) = page_through(&mut admin, 0, 0).await;
    assert_eq!(pages, vec![8]);
    let (pages, _) = page_through(&mut admin, 100_000, 100_000).await;
    assert_eq!(pages, vec![8]);
    server.stop().await;
}

#[tokio::test]
async fn critical_controls() {
    let (server, mut admin) = seeded().await;
    let unknown = RawControl {
        ctype: "1.2.3.4.5.6".into(),
        crit: true,
        val: None,
    };
    let res = admin
        .with_controls(vec![unknown])
        .search(PEOPLE, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .await
        .unwrap();
    assert_eq!(res.1.rc, 12);
    let ignorable = RawControl {
        ctype: "1.2.3.4.5.6".into(),
        crit: false,
        val: None,
    };
    let res = admin
        .with_controls(vec![ignorable])
        .search(PEOPLE, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .await
        .unwrap();
    assert_eq!((res.0.len(), res.1.rc), (1, 0));
    // A critical paged control on a base search (TrueNAS reads the rootDSE this way).
    let mut paged: RawControl = PagedResults {
        size: 100,
        cookie: Vec::new(),
    }
    .into();
    paged.crit = true;
    let res = admin
        .with_controls(vec![paged.clone()])
        .search("", Scope::Base, "(objectClass=*)", vec!["+"])
        .await
        .unwrap();
    assert_eq!((res.0.len(), res.1.rc), (1, 0));
    // Paged results mean nothing outside a search: critical there, it is refused.
    let res = admin
        .with_controls(vec![paged])
        .compare(&person_dn("alice"), "uid", "alice")
        .await
        .unwrap();
    assert_eq!(res.0.rc, 12);

    // Server Side Sort (RFC 2891) is not implemented: critical, the search is refused
    // with no entries; not critical, it is ignored.
    let sort = |crit| RawControl {
        ctype: "1.2.840.113556.1.4.473".into(),
        crit,
        val: Some(crate::tls::SORT_BY_CN.to_vec()),
    };
    let res = admin
        .with_controls(vec![sort(true)])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["cn"])
        .await
        .unwrap();
    assert_eq!((res.0.len(), res.1.rc), (0, 12));
    let res = admin
        .with_controls(vec![sort(false)])
        .search(PEOPLE, Scope::OneLevel, "(objectClass=person)", vec!["cn"])
        .await
        .unwrap();
    assert_eq!((res.0.len(), res.1.rc), (3, 0));
    // Every operation refuses it, writes and extended operations included.
    let res = admin
        .with_controls(vec![sort(true)])
        .delete(&person_dn("carol"))
        .await
        .unwrap();
    assert_eq!(res.rc, 12);
    let res = admin
        .with_controls(vec![sort(true)])
        .extended(ldap3::exop::WhoAmI)
        .await
        .unwrap();
    assert_eq!(res.1.rc, 12);
    let (carol, rc) = search(
        &mut admin,
        &person_dn("carol"),
        Scope::Base,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    assert_eq!(
        (carol.len(), rc),
        (1, 0),
        "the refused delete was not performed"
    );
    server.stop().await;
}

#[tokio::test]
async fn schema_dir_files_are_served_and_usable() {
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(extra.path().join("sudo.schema"), SUDO_SCHEMA).unwrap();
    // Files without the .schema extension are not schema.
    std::fs::write(extra.path().join("README"), "not schema").unwrap();
    let top = format!("schema_dir = \"{}\"", extra.path().display());
    let server = TestServer::start_setup(crate::Setup {
        top: &top,
        ..crate::Setup::default()
    })
    .await;
    let mut anon = server.ldaps().await;
    let (e, rc) = search(
        &mut anon,
        "cn=Subschema",
        Scope::Base,
        "(objectClass=*)",
        &["objectClasses", "attributeTypes"],
    )
    .await;
    assert_eq!(rc, 0);
    let listed = |attr: &str, name: &str| {
        e[0].attrs[attr]
            .iter()
            .any(|v| v.contains(&format!("NAME '{name}'")))
    };
    assert!(listed("objectClasses", "sudoRole"));
    assert!(listed("attributeTypes", "sudoUser"));
    assert!(listed("attributeTypes", "sudoCommand"));
    assert!(
        listed("objectClasses", "inetOrgPerson"),
        "shipped schema too"
    );

    let mut admin = server.admin().await;
    let sudoers = format!("ou=sudoers,{SUFFIX}");
    let ou = vec![
        ("objectClass", HashSet::from(["organizationalUnit"])),
        ("ou", HashSet::from(["sudoers"])),
    ];
    admin.add(&sudoers, ou).await.unwrap().success().unwrap();
    let role = vec![
        ("objectClass", HashSet::from(["sudoRole"])),
        ("cn", HashSet::from(["%wheel"])),
        ("sudoUser", HashSet::from(["%wheel"])),
        ("sudoHost", HashSet::from(["ALL"])),
        ("sudoCommand", HashSet::from(["ALL"])),
    ];
    let role_dn = format!("cn=%wheel,{sudoers}");
    admin.add(&role_dn, role).await.unwrap().success().unwrap();
    let (found, rc) = search(
        &mut admin,
        &sudoers,
        Scope::OneLevel,
        "(sudoUser=%wheel)",
        &["sudoCommand"],
    )
    .await;
    assert_eq!((found.len(), rc), (1, 0));
    assert_eq!(found[0].attrs["sudoCommand"], vec!["ALL"]);
    // The schema is enforced for the new class too: an attribute it does not allow.
    let bad = vec![
        ("objectClass", HashSet::from(["sudoRole"])),
        ("cn", HashSet::from(["bad"])),
        ("uidNumber", HashSet::from(["1"])),
    ];
    let rc = admin
        .add(&format!("cn=bad,{sudoers}"), bad)
        .await
        .unwrap()
        .rc;
    assert_eq!(rc, 65, "objectClassViolation");
    server.stop().await;
}

/// A cut-down sudo schema (sudo's own OIDs), as an administrator would drop it in.
const SUDO_SCHEMA: &str = "
attributetype ( 1.3.6.1.4.1.15953.9.1.1 NAME 'sudoUser'
    DESC 'User(s) who may  run sudo'
    EQUALITY caseExactIA5Match
    SUBSTR caseExactIA5SubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )

attributetype ( 1.3.6.1.4.1.15953.9.1.2 NAME 'sudoHost'
    DESC 'Host(s) who may run sudo'
    EQUALITY caseExactIA5Match
    SUBSTR caseExactIA5SubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )

attributetype ( 1.3.6.1.4.1.15953.9.1.3 NAME 'sudoCommand'
    DESC 'Command(s) to be executed by sudo'
    EQUALITY caseExactIA5Match
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )

objectclass ( 1.3.6.1.4.1.15953.9.2.1 NAME 'sudoRole' SUP top STRUCTURAL
    DESC 'Sudoer Entries'
    MUST ( cn )
    MAY ( sudoUser $ sudoHost $ sudoCommand $ description ) )
";

#[tokio::test]
async fn indexed_equality_reads_a_handful_of_entries() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for i in 0..300 {
        add_person(&mut admin, &format!("user{i}"), "pw", true).await;
    }
    let store = &server.running().state.store;
    let filters = [
        "(&(objectClass=posixAccount)(uid=user150))",
        "(uidNumber=10150)",
        "(cn=user150 example)",
        "(|(uid=user1)(uid=user2))",
    ];
    for f in filters {
        let before = store.entries_examined();
        let (e, rc) = search(&mut admin, SUFFIX, Scope::Subtree, f, &["uid"]).await;
        let examined = store.entries_examined() - before;
        assert_eq!(rc, 0);
        assert!(!e.is_empty(), "{f}");
        assert!(examined <= 5, "{f} examined {examined} entries");
    }
    // An unindexed filter has to look at every entry: the counter does count.
    let before = store.entries_examined();
    search(&mut admin, SUFFIX, Scope::Subtree, "(sn=nothing)", &["uid"]).await;
    assert!(store.entries_examined() - before >= 300);
    server.stop().await;
}

#[tokio::test]
async fn time_limit_returns_3() {
    // A 1 ms server limit cannot cover an unindexed scan of 3,000 entries.
    let server = TestServer::start_with_ldif(
        "[limits]\ntime_limit = \"1ms\"\n[security]\nanonymous = \"read\"\n",
        Some(&crate::bulk_people(3000)),
    )
    .await;
    let mut anon = server.ldaps().await;
    let (entries, rc) = search(
        &mut anon,
        SUFFIX,
        Scope::Subtree,
        "(description=none)",
        &["1.1"],
    )
    .await;
    assert_eq!((entries.len(), rc), (0, 3));
    // Administrators are held only to the limit they ask for.
    let mut admin = server.admin().await;
    let (_, rc) = search(
        &mut admin,
        SUFFIX,
        Scope::Subtree,
        "(description=none)",
        &["1.1"],
    )
    .await;
    assert_eq!(rc, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_streamed_search_sends_every_entry_before_its_result() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    // More entries than a search reads inline, and more bytes than one batch of them.
    let description = "d".repeat(1000);
    for n in 0..120 {
        let uid = format!("s{n:03}");
        let dn = person_dn(&uid);
        let attrs = vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("uid", HashSet::from([uid.as_str()])),
            ("cn", HashSet::from([uid.as_str()])),
            ("sn", HashSet::from(["s"])),
            ("description", HashSet::from([description.as_str()])),
        ];
        admin.add(&dn, attrs).await.unwrap().success().unwrap();
    }
    let filter = "(&(objectClass=inetOrgPerson)(uid=s*))";
    let (all, rc) = search(
        &mut admin,
        PEOPLE,
        Scope::OneLevel,
        filter,
        &["description"],
    )
    .await;
    assert_eq!((all.len(), rc), (120, 0));
    assert_eq!(dns(&all).len(), 120, "each entry once");
    assert!(
        all.iter()
            .all(|e| e.attrs["description"] == vec![description.clone()])
    );
    let res = admin
        .with_search_options(ldap3::SearchOptions::new().sizelimit(100))
        .search(PEOPLE, Scope::OneLevel, filter, vec!["uid"])
        .await
        .unwrap();
    assert_eq!((res.0.len(), res.1.rc), (100, 4));
    server.stop().await;
}
