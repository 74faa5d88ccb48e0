//! Offline data commands: import, export and verify on the redb file.

use std::collections::HashSet;

use ldap3::Scope;
use tessera::config::Config;

use crate::{GROUPS, PEOPLE, TestServer, add_group, add_person, group_dn, person_dn, search};

fn config_for(dir: &std::path::Path) -> Config {
    let toml = format!(
        "data_dir = \"{}\"\n[argon2]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n",
        dir.display()
    );
    Config::parse(&toml).unwrap()
}

#[tokio::test]
async fn export_import_round_trip_and_verify() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw-alice", true).await;
    add_person(&mut admin, "bob", "pw-bob", true).await;
    add_group(&mut admin, "team", &["alice", "bob"], true).await;
    let (before, _) = search(
        &mut admin,
        "dc=example,dc=com",
        Scope::Subtree,
        "(objectClass=*)",
        &["*", "entryUUID"],
    )
    .await;
    let data = server.dir.path().join("data");

    // A server holds the file: offline commands say so plainly.
    let err = tessera::db::export(&config_for(&data), &mut Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    let _dir = server.stop().await;

    let mut ldif = Vec::new();
    let n = tessera::db::export(&config_for(&data), &mut ldif).unwrap();
    assert_eq!(n as usize, before.len());
    let text = String::from_utf8(ldif.clone()).unwrap();
    assert!(
        text.contains("userPassword: {ARGON2}"),
        "hashes are exported"
    );
    tessera::db::verify(&config_for(&data)).unwrap();

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &ldif).unwrap();
    let fresh = crate::private_tempdir();
    let imported = tessera::db::import(&config_for(fresh.path()), file.path(), &Default::default())
        .unwrap()
        .imported;
    // The suffix and the containers exist from first start and are skipped.
    assert!(imported >= 3);
    tessera::db::verify(&config_for(fresh.path())).unwrap();
    let mut again = Vec::new();
    tessera::db::export(&config_for(fresh.path()), &mut again).unwrap();
    let strip = |s: &str| {
        let mut lines: Vec<String> = s
            .lines()
            .filter(|l| !l.starts_with("createTimestamp") && !l.starts_with("modifyTimestamp"))
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    let first = strip(&text);
    let second = strip(&String::from_utf8(again).unwrap());
    // Same entries, values, UUIDs and hashes (bootstrap timestamps differ).
    assert_eq!(
        first.iter().filter(|l| l.starts_with("entryUUID")).count(),
        second.iter().filter(|l| l.starts_with("entryUUID")).count()
    );
    assert!(second.iter().any(|l| l.starts_with("uid: alice")));
    let uuids_first: Vec<_> = first
        .iter()
        .filter(|l| l.starts_with("userPassword"))
        .collect();
    let uuids_second: Vec<_> = second
        .iter()
        .filter(|l| l.starts_with("userPassword"))
        .collect();
    assert_eq!(uuids_first, uuids_second);
}

#[tokio::test]
async fn import_reports_the_bad_entry_and_line() {
    let fresh = crate::private_tempdir();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "dn: uid=ok,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: ok\nsn: ok\nuserPassword: cleartext\n\n\
         dn: uid=bad,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: bad\n\n",
    )
    .unwrap();
    let err = tessera::db::import(&config_for(fresh.path()), file.path(), &Default::default())
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("uid=bad") && msg.contains("sn"), "{msg}");

    std::fs::write(
        file.path(),
        "dn: uid=ok,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: ok\nsn: ok\nuserPassword: cleartext\n\n",
    )
    .unwrap();
    tessera::db::import(&config_for(fresh.path()), file.path(), &Default::default()).unwrap();
    let mut out = Vec::new();
    tessera::db::export(&config_for(fresh.path()), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains("cleartext"),
        "cleartext passwords are hashed on import"
    );
    let _ = PEOPLE;
}

#[test]
fn import_names_the_hashes_it_cannot_verify_and_takes_yescrypt() {
    let fresh = crate::private_tempdir();
    let file = tempfile::NamedTempFile::new().unwrap();
    let person = |uid: &str, hash: &str| {
        format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\ncn: {uid}\nsn: x\nuserPassword: {hash}\n\n"
        )
    };
    let ldif = [
        // Debian's default {CRYPT}: verifies.
        person(
            "yes",
            "{CRYPT}$y$j75$saltsaltsaltsalt$DsMjm5uqUiFBUYLB9CLnX8E/M0k0mOVJBUWdpCrUik9",
        ),
        // yescrypt at 4 GiB a try (N = 2^19, r = 32): past the cost cap.
        person(
            "costly",
            "{CRYPT}$y$jHT$saltsaltsaltsalt$DsMjm5uqUiFBUYLB9CLnX8E/M0k0mOVJBUWdpCrUik9",
        ),
        // scrypt's $7$, OpenLDAP's pw-pbkdf2 and its pass-through {SASL}: not verifiable
        // here, kept as they are (not hashed as if they were passwords) and named.
        person("scrypt", "{CRYPT}$7$CU..../....saltsalt$abc"),
        person("pbkdf2", "{PBKDF2-SHA512}10000$c2FsdHNhbHQ$YWJj"),
        person("sasl", "{SASL}sasl@EXAMPLE.COM"),
    ]
    .concat();
    std::fs::write(file.path(), ldif).unwrap();
    let report =
        tessera::db::import(&config_for(fresh.path()), file.path(), &Default::default()).unwrap();
    assert_eq!(report.imported, 5);
    assert_eq!(
        report.unverifiable,
        ["costly", "scrypt", "pbkdf2", "sasl"].map(person_dn),
        "yescrypt within the cap verifies"
    );
    let mut out = Vec::new();
    tessera::db::export(&config_for(fresh.path()), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for kept in [
        "userPassword: {PBKDF2-SHA512}10000$c2FsdHNhbHQ$YWJj",
        "userPassword: {SASL}sasl@EXAMPLE.COM",
    ] {
        assert!(text.contains(kept), "{kept} not kept as it was:\n{text}");
    }
}

#[test]
fn import_takes_odd_login_names_and_refuses_what_is_not_one() {
    let fresh = crate::private_tempdir();
    let file = tempfile::NamedTempFile::new().unwrap();
    let account = |uid: &str, n: u32| {
        format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             uid: {uid}\ncn: {uid}\nsn: x\nuidNumber: {n}\ngidNumber: {n}\n\
             homeDirectory: /home/{uid}\n\n"
        )
    };
    // What useradd accepts imports as it is; "Bob Smith" is no login name.
    let ldif = [
        account("j.doe-2", 3001),
        account("_backup", 3002),
        account("ws01$", 3003),
        account("Bob Smith", 3004),
    ]
    .concat();
    std::fs::write(file.path(), ldif).unwrap();
    let config = config_for(fresh.path());
    let err = tessera::db::import(&config, file.path(), &Default::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("uid=Bob Smith") && msg.contains("'Bob Smith' is not a login name"),
        "{msg}"
    );
    let keep_going = tessera::db::ImportOptions {
        progress: false,
        keep_going: true,
    };
    let report = tessera::db::import(&config, file.path(), &keep_going).unwrap();
    assert_eq!(report.imported, 3);
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert_eq!(report.skipped[0].dn, person_dn("Bob Smith"));
    assert!(
        report.skipped[0].reason.contains("not a login name"),
        "{:?}",
        report.skipped
    );
}

#[tokio::test]
async fn import_takes_groups_of_rfc2307s_nis_schema() {
    // A slapcat dump of Debian's slapd as it comes (nis.schema): posixGroup is the group's
    // structural class, members are memberUid only.
    let mut ldif = String::new();
    for (uid, n) in [("alice", 4001), ("bob", 4002)] {
        ldif += &format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\nuidNumber: {n}\ngidNumber: 5000\n\
             homeDirectory: /home/{uid}\n\n"
        );
    }
    ldif += &format!(
        "dn: cn=staff,{GROUPS}\nobjectClass: top\nobjectClass: posixGroup\ncn: staff\n\
         gidNumber: 5000\nmemberUid: alice\nmemberUid: bob\ndescription: everyone\n\n\
         dn: cn=nobody-yet,{GROUPS}\nobjectClass: posixGroup\ncn: nobody-yet\ngidNumber: 5001\n\n\
         dn: cn=bis,{GROUPS}\nobjectClass: groupOfNames\nobjectClass: posixGroup\ncn: bis\n\
         gidNumber: 5002\nmemberUid: bob\n\n"
    );
    let fresh = crate::private_tempdir();
    let file = fresh.path().join("dump.ldif");
    std::fs::write(&file, &ldif).unwrap();
    let report = tessera::db::import(
        &config_for(&fresh.path().join("data")),
        &file,
        &Default::default(),
    )
    .unwrap();
    assert_eq!((report.imported, report.nis_groups), (5, 2), "{report:?}");

    let server = TestServer::start_with_ldif("", Some(&ldif)).await;
    let mut admin = server.admin().await;
    let (e, rc) = search(
        &mut admin,
        GROUPS,
        Scope::OneLevel,
        "(objectClass=posixGroup)",
        &[
            "objectClass",
            "member",
            "memberUid",
            "gidNumber",
            "description",
        ],
    )
    .await;
    assert_eq!((rc, e.len()), (0, 3));
    let staff = e.iter().find(|g| g.dn.starts_with("cn=staff")).unwrap();
    let classes: HashSet<&str> = staff.attrs["objectClass"]
        .iter()
        .map(String::as_str)
        .collect();
    assert!(
        classes.is_superset(&HashSet::from(["posixGroup", "groupOfNames", "top"])),
        "{classes:?}"
    );
    let mut members = staff.attrs["member"].clone();
    members.sort();
    assert_eq!(members, [person_dn("alice"), person_dn("bob")]);
    assert_eq!(staff.attrs["memberUid"].len(), 2);
    assert_eq!(staff.attrs["description"], ["everyone"]);
    let empty = e
        .iter()
        .find(|g| g.dn.starts_with("cn=nobody-yet"))
        .unwrap();
    assert!(!empty.attrs.contains_key("member"));
    assert_eq!(empty.attrs["gidNumber"], ["5001"]);
    server.stop().await;
}

#[test]
fn import_stops_at_the_first_problem_in_file_order_and_continue_skips_each() {
    let fresh = crate::private_tempdir();
    let file = tempfile::NamedTempFile::new().unwrap();
    let person = |uid: &str, extra: &str| {
        format!("dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\ncn: {uid}\nsn: x\n{extra}\n")
    };
    let long = "x".repeat(2000);
    // Problems of each kind, found by different steps (a rule, reading, hashing), out of
    // the order those steps run in.
    let ldif = [
        person("ok1", ""),
        person("no-sn", "").replace("sn: x\n", ""),
        person("ok2", ""),
        person("unknown-attr", "favouriteColour: blue\n"),
        person("long-password", &format!("userPassword: {long}\n")),
        person("ok3", "userPassword: fine\n"),
    ]
    .concat();
    std::fs::write(file.path(), ldif).unwrap();
    let config = config_for(fresh.path());
    let err = tessera::db::import(&config, file.path(), &Default::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("entry {}", person_dn("no-sn"))),
        "{msg}"
    );
    let keep_going = tessera::db::ImportOptions {
        progress: false,
        keep_going: true,
    };
    let report = tessera::db::import(&config, file.path(), &keep_going).unwrap();
    assert_eq!(report.imported, 3);
    let skipped: Vec<(&str, &str)> = report
        .skipped
        .iter()
        .map(|s| (s.dn.as_str(), s.reason.as_str()))
        .collect();
    let (no_sn, unknown, long) = (
        person_dn("no-sn"),
        person_dn("unknown-attr"),
        person_dn("long-password"),
    );
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(skipped[0].0, no_sn);
    assert!(skipped[0].1.contains("'sn'"), "{skipped:?}");
    assert_eq!(
        skipped[1],
        (
            unknown.as_str(),
            "favouriteColour: attribute type undefined"
        )
    );
    assert_eq!(
        skipped[2],
        (
            long.as_str(),
            "userPassword: password is longer than 1024 bytes"
        )
    );
    let mut out = Vec::new();
    tessera::db::export(&config, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains(&long),
        "a refused cleartext password is not stored"
    );
}

#[test]
fn continue_skips_records_that_cannot_be_read_and_goes_on_at_the_next() {
    let fresh = crate::private_tempdir();
    let file = tempfile::NamedTempFile::new().unwrap();
    let person = |uid: &str, extra: &str| {
        format!("dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\ncn: {uid}\nsn: x\n{extra}\n")
    };
    // Lines 1-5, 6-11 (bad base64 on line 10), 12-16, 17-22 (no colon on line 21), 23-27.
    let ldif = [
        person("ok1", ""),
        person("bad-base64", "description:: ***\n"),
        person("ok2", ""),
        person("no-colon", "just words\n"),
        person("ok3", ""),
    ]
    .concat();
    std::fs::write(file.path(), &ldif).unwrap();
    let config = config_for(fresh.path());
    let err = tessera::db::import(&config, file.path(), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("line 10"), "{err}");
    let mut out = Vec::new();
    tessera::db::export(&config, &mut out).unwrap();
    assert!(
        !String::from_utf8(out).unwrap().contains("uid=ok1"),
        "a failed import leaves the store as it was"
    );

    let keep_going = tessera::db::ImportOptions {
        progress: false,
        keep_going: true,
    };
    let report = tessera::db::import(&config, file.path(), &keep_going).unwrap();
    assert_eq!(report.imported, 3);
    let skipped: Vec<(&str, usize)> = report
        .skipped
        .iter()
        .map(|s| (s.dn.as_str(), s.line))
        .collect();
    assert_eq!(skipped, [("", 10), ("", 21)], "{:?}", report.skipped);
    assert!(
        report.skipped[0].reason.contains("base64"),
        "{:?}",
        report.skipped
    );
    assert!(
        report.skipped[1].reason.contains("no ':'"),
        "{:?}",
        report.skipped
    );
    let mut out = Vec::new();
    tessera::db::export(&config, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for uid in ["ok1", "ok2", "ok3"] {
        assert!(text.contains(&person_dn(uid)), "{uid} imported");
    }
    for uid in ["bad-base64", "no-colon"] {
        assert!(!text.contains(&format!("uid={uid},")), "{uid} left out");
    }

    // A file in a version that does not exist is not LDIF this server reads: no --continue
    // makes it one.
    let other = crate::private_tempdir();
    std::fs::write(file.path(), format!("version: 2\n\n{}", person("v", ""))).unwrap();
    let err = tessera::db::import(&config_for(other.path()), file.path(), &keep_going).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
}

/// LDIF for people u0..u{n-1} under PEOPLE, with uidNumbers from 20000.
fn numbered_people(n: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "dn: uid=u{i},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
                 uid: u{i}\ncn: u{i}\nsn: u\nuidNumber: {}\n\n",
                20000 + i
            )
        })
        .collect()
}

#[tokio::test]
async fn failed_import_leaves_the_store_as_it_was() {
    let fresh = crate::private_tempdir();
    let config = config_for(fresh.path());
    let file = tempfile::NamedTempFile::new().unwrap();
    // More entries than one batch, then a uidNumber already taken earlier in the file.
    let mut ldif = numbered_people(6000);
    ldif += &format!(
        "dn: uid=dup,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         uid: dup\ncn: dup\nsn: dup\nuidNumber: 20007\n\n"
    );
    std::fs::write(file.path(), &ldif).unwrap();
    let err = tessera::db::import(&config, file.path(), &Default::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("uid=dup") && msg.contains("20007"), "{msg}");
    let mut out = Vec::new();
    tessera::db::export(&config, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains("uid=u0,"),
        "nothing of the failed file stays"
    );

    // Without the duplicate it goes in whole, indexed.
    let good = ldif.rsplit_once("dn: uid=dup").unwrap().0;
    std::fs::write(file.path(), good).unwrap();
    let n = tessera::db::import(&config, file.path(), &Default::default())
        .unwrap()
        .imported;
    assert_eq!(n, 6000);
    tessera::db::verify(&config).unwrap();
}

#[tokio::test]
async fn import_reports_an_entry_given_twice() {
    let person = |uid: &str| {
        format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\nuidNumber: 30000\n\n"
        )
    };
    let unit = "dn: ou=extra,dc=example,dc=com\nobjectClass: organizationalUnit\nou: extra\n\n";
    // The entries made on first start may be in the file: they are skipped, not refused.
    let made_at_start = "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\n\
                         dc: example\no: example\n\n\
                         dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n";
    // A person twice fails its uidNumber's check before the DN's: still "already exists".
    for (twice, dn) in [
        (
            format!("{}{}", person("p"), person("p")),
            format!("uid=p,{PEOPLE}"),
        ),
        (
            format!("{unit}{unit}"),
            "ou=extra,dc=example,dc=com".to_string(),
        ),
    ] {
        let fresh = crate::private_tempdir();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("{made_at_start}{twice}")).unwrap();
        let config = config_for(fresh.path());
        let err = tessera::db::import(&config, file.path(), &Default::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&dn) && msg.contains("already exists"), "{msg}");
        let once = format!("{made_at_start}{}", twice.split_at(twice.len() / 2).0);
        std::fs::write(file.path(), once).unwrap();
        assert_eq!(
            tessera::db::import(&config, file.path(), &Default::default())
                .unwrap()
                .imported,
            1
        );
        tessera::db::verify(&config).unwrap();
    }
}

#[tokio::test]
async fn import_turns_member_uid_into_member() {
    let mut ldif = String::new();
    for uid in ["alice", "bob", "carol"] {
        ldif += &format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\n\n"
        );
    }
    // Members must exist, this one too.
    ldif += &format!(
        "dn: uid=ann\\+lee,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: ann+lee\ncn: a\nsn: a\n\n"
    );
    // memberUid only; a mix; and both forms naming the same person (as an export has).
    ldif += &format!(
        "dn: cn=uids,{GROUPS}\nobjectClass: groupOfNames\nobjectClass: posixGroup\ncn: uids\n\
         memberUid: alice\nmemberUid: bob\n\n\
         dn: cn=mixed,{GROUPS}\nobjectClass: groupOfNames\nobjectClass: posixGroup\ncn: mixed\n\
         member: uid=carol,{PEOPLE}\nmemberUid: alice\n\n\
         dn: cn=both,{GROUPS}\nobjectClass: groupOfNames\nobjectClass: posixGroup\ncn: both\n\
         member: UID=Bob,{PEOPLE}\nmemberUid: bob\n\n\
         dn: cn=odd,{GROUPS}\nobjectClass: groupOfNames\nobjectClass: posixGroup\ncn: odd\n\
         memberUid: ann+lee\nmember: uid=ann\\+lee,{PEOPLE}\nmemberUid: bob\n\n"
    );
    let server = TestServer::start_with_ldif("", Some(&ldif)).await;
    let mut admin = server.admin().await;
    let sorted = |mut v: Vec<String>| {
        v.iter_mut().for_each(|s| s.make_ascii_lowercase());
        v.sort();
        v
    };
    for (cn, uids) in [
        ("uids", vec!["alice", "bob"]),
        ("mixed", vec!["alice", "carol"]),
        ("both", vec!["bob"]),
        // A uid a DN must escape: the member written escaped is the same person.
        ("odd", vec!["ann+lee", "bob"]),
    ] {
        let (e, rc) = search(
            &mut admin,
            &group_dn(cn),
            Scope::Base,
            "(objectClass=*)",
            &["member", "memberUid"],
        )
        .await;
        assert_eq!(rc, 0, "{cn}");
        let members: Vec<String> = uids
            .iter()
            .map(|u| person_dn(&u.replace('+', "\\+")))
            .collect();
        assert_eq!(sorted(e[0].attrs["member"].clone()), members, "{cn}");
        assert_eq!(sorted(e[0].attrs["memberUid"].clone()), uids, "{cn}");
    }
    let (e, _) = search(
        &mut admin,
        &person_dn("alice"),
        Scope::Base,
        "(objectClass=*)",
        &["memberOf"],
    )
    .await;
    assert_eq!(
        sorted(e[0].attrs["memberOf"].clone()),
        vec![group_dn("mixed"), group_dn("uids")]
    );
    let (e, _) = search(
        &mut admin,
        GROUPS,
        Scope::OneLevel,
        "(memberUid=alice)",
        &["1.1"],
    )
    .await;
    assert_eq!(e.len(), 2, "memberUid is indexed after import");
    // The people had no uidNumber in the file: the ones given at import are indexed too.
    let (e, _) = search(
        &mut admin,
        &person_dn("carol"),
        Scope::Base,
        "(objectClass=*)",
        &["uidNumber"],
    )
    .await;
    let number = e[0].attrs["uidNumber"][0].clone();
    let (e, rc) = search(
        &mut admin,
        PEOPLE,
        Scope::OneLevel,
        &format!("(uidNumber={number})"),
        &["1.1"],
    )
    .await;
    assert_eq!((rc, e.len()), (0, 1), "uidNumber {number} given at import");
    assert_eq!(e[0].dn.to_ascii_lowercase(), person_dn("carol"));
    server.stop().await;
}

#[tokio::test]
async fn import_hashes_cleartext_passwords_in_place() {
    // Cleartext and already-hashed values mixed, so a value landing on the wrong entry, or
    // a hash skipped or applied twice, shows.
    let mut ldif = String::new();
    for i in 0..40u32 {
        let password = if i.is_multiple_of(2) {
            format!("pw-{i}")
        } else {
            crate::bind::ssha(&format!("pw-{i}"), format!("salt{i}").as_bytes())
        };
        ldif += &format!(
            "dn: uid=p{i},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: p{i}\ncn: p{i}\nsn: p\n\
             userPassword: {password}\n\n"
        );
    }
    ldif += &format!(
        "dn: uid=two,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: two\ncn: two\nsn: two\n\
         userPassword: first-two\nuserPassword: second-two\n\n"
    );
    let server = TestServer::start_with_ldif("", Some(&ldif)).await;
    let mut admin = server.admin().await;
    let (e, _) = search(
        &mut admin,
        PEOPLE,
        Scope::OneLevel,
        "(objectClass=person)",
        &["uid", "userPassword"],
    )
    .await;
    assert_eq!(e.len(), 41);
    for entry in &e {
        let uid = &entry.attrs["uid"][0];
        let values = &entry.attrs["userPassword"];
        let n: usize = uid.trim_start_matches('p').parse().unwrap_or(0);
        let want = if uid == "two" {
            (2, "{ARGON2}")
        } else if n.is_multiple_of(2) {
            (1, "{ARGON2}")
        } else {
            (1, "{SSHA}")
        };
        assert_eq!(values.len(), want.0, "{uid}");
        assert!(
            values.iter().all(|v| v.starts_with(want.1)),
            "{uid}: {values:?}"
        );
    }
    for i in [0, 1, 2, 17, 38, 39] {
        server
            .bound(&person_dn(&format!("p{i}")), &format!("pw-{i}"))
            .await;
    }
    server.bound(&person_dn("two"), "first-two").await;
    server.bound(&person_dn("two"), "second-two").await;
    let mut anon = server.ldaps().await;
    let rc = anon.simple_bind(&person_dn("p2"), "pw-4").await.unwrap().rc;
    assert_eq!(rc, 49, "each hash is its own entry's");
    server.stop().await;
}

#[tokio::test]
async fn online_backup_starts_a_server() {
    use tessera::admin::client::{Client, Target};
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    crate::add_person(&mut admin, "kept", "pw", true).await;
    let socket = server.running().ldapi.clone().unwrap();
    let mut local = Client::connect(&Target::Local { socket }).await.unwrap();
    let backups = crate::private_tempdir();
    let file = backups.path().join("tessera.redb");
    let oid = "2.25.235497813471364094925541187040296631981.4.4";
    let path = file.display().to_string().into_bytes();
    let copied = local
        .extended(oid, Some(path.clone()))
        .await
        .unwrap()
        .unwrap();
    let copied = String::from_utf8(copied).unwrap();
    let (copied, written) = copied.split_once('\t').unwrap();
    assert_eq!(written, file.display().to_string());
    let copied: u64 = copied.parse().unwrap();
    assert!(copied > 8, "{copied} entries");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Never over an existing file, never a relative path, never from the network.
    let again = local.extended(oid, Some(path.clone())).await.unwrap_err();
    assert!(again.to_string().contains("exists already"), "{again}");
    assert!(
        local
            .extended(oid, Some(b"relative.redb".to_vec()))
            .await
            .is_err()
    );
    crate::grant(&mut admin, "directory-admins", &crate::person_dn("kept")).await;
    let mut remote = server.bound(&crate::person_dn("kept"), "pw").await;
    let other = backups.path().join("other.redb").display().to_string();
    let res = remote
        .extended(ldap3::exop::Exop {
            name: Some(oid.into()),
            val: Some(other.into_bytes()),
        })
        .await
        .unwrap();
    assert_eq!(
        res.1.rc, 50,
        "a network administrator cannot make the server write files"
    );
    server.stop().await;

    // The copy is a data directory's database: a server starts from it.
    let restored = crate::private_tempdir();
    crate::private_dir(&restored.path().join("data"));
    std::fs::copy(&file, restored.path().join("data/tessera.redb")).unwrap();
    let toml = format!(
        "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"\"\n",
        restored.path().join("data").display()
    );
    let config = tessera::config::Config::parse(&toml).unwrap();
    tessera::db::verify(&config).unwrap();
    let running = tessera::server::start(config).await.unwrap();
    let socket = running.ldapi.clone().unwrap();
    let mut local = Client::connect(&Target::Local { socket }).await.unwrap();
    let found = local
        .read(&crate::person_dn("kept"), &["uid"])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    running.shutdown().await;
}

/// D6: bytes flipped in a closed database file. At a place that holds data the server
/// refuses to start, naming the file and the way out, and `db verify` fails the same way;
/// where the flip hit unused space the file checks clean and serves everything. Never a
/// panic, never a silent start on a damaged file.
#[tokio::test]
async fn a_damaged_database_is_refused_at_start() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for i in 0..40 {
        add_person(&mut admin, &format!("d{i}"), "pw", false).await;
    }
    drop(admin);
    let dir = server.stop().await;
    let file = dir.path().join("data/tessera.redb");
    let pristine = std::fs::read(&file).unwrap();
    let len = pristine.len();
    // Every page holding d17's DN: whichever of them the store still uses (earlier
    // transactions leave stale copies), damage there must be found.
    let needle = b"uid=d17,ou=people";
    let holding: Vec<usize> = pristine
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| w == needle)
        .map(|(at, _)| at / 4096 * 4096)
        .collect();
    assert!(!holding.is_empty(), "d17's DN is in the file");
    let mut refused = Vec::new();
    // The header (its magic number, then its commit slots), the first pages, the middle,
    // the last page, and the pages holding an entry. Damage elsewhere may fall on a page no
    // longer in use: then the file must be served as it was.
    let cases = [
        vec![0],
        vec![600],
        vec![4096],
        vec![len / 2],
        vec![len - 4096],
        holding,
    ];
    for (case, offsets) in cases.iter().enumerate() {
        let copy = crate::private_tempdir();
        let data = copy.path().join("data");
        crate::private_dir(&data);
        let mut bytes = pristine.clone();
        for &offset in offsets {
            for b in &mut bytes[offset..(offset + 1024).min(len)] {
                *b ^= 0xa5;
            }
        }
        let offset = offsets[0];
        let damaged = data.join("tessera.redb");
        std::fs::write(&damaged, &bytes).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let owner_only = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&damaged, owner_only).unwrap();
        }
        let mut config = config_for(&data);
        config.listen.ldaps = Some("127.0.0.1:0".parse().unwrap());
        config.listen.ldap = None;
        let verified = tessera::db::verify(&config);
        match tessera::server::start(config).await {
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains(&damaged.display().to_string()), "{text}");
                assert!(text.contains("tessera db verify"), "{text}");
                assert!(text.contains("backup"), "{text}");
                assert!(verified.is_err(), "verify passes a file start refuses");
                refused.push(case);
            }
            Ok(running) => {
                assert!(
                    verified.is_ok(),
                    "at {offset}: started on a file verify refuses"
                );
                let socket = running.ldapi.clone().unwrap();
                let mut local = tessera::admin::client::Client::connect(
                    &tessera::admin::client::Target::Local { socket },
                )
                .await
                .unwrap();
                let found = local.read(&person_dn("d39"), &["uid"]).await.unwrap();
                assert_eq!(found.len(), 1, "at {offset}");
                running.shutdown().await;
            }
        }
    }
    assert!(
        refused.contains(&0),
        "a damaged header is refused: {refused:?}"
    );
    assert!(
        refused.contains(&(cases.len() - 1)),
        "damage to the pages holding an entry is refused: {refused:?}"
    );
}

/// An attribute added to `index.attributes` of a directory that holds entries already: the
/// index is rebuilt when the server starts, so an equality search on that attribute finds
/// the entries written before (a stale index answers it from nothing), and the index then
/// follows writes. Taking the attribute off the list again leaves it searchable.
#[tokio::test]
async fn a_newly_indexed_attribute_finds_the_entries_written_before() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for uid in ["early", "late"] {
        add_person(&mut admin, uid, "pw", true).await;
    }
    assert_eq!(
        crate::replace(&mut admin, &person_dn("early"), "sn", &["Rebuilt"]).await,
        0
    );
    drop(admin);
    let dir = server.stop().await;
    let listed = r#""objectClass", "uid", "cn", "mail", "uidNumber", "gidNumber", "member", "memberUid", "entryUUID", "tokenId", "entryManagedBy""#;
    let restart = |dir: tempfile::TempDir, extra: &str| {
        let toml = format!(
            "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"\"\n\
             [argon2]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n[index]\nattributes = [{listed}{extra}]\n",
            dir.path().join("data").display()
        );
        let config = Config::parse(&toml).unwrap();
        async move {
            let running = tessera::server::start(config.clone()).await.unwrap();
            let tls = crate::client_tls(running.ca.as_ref().unwrap());
            let server = TestServer {
                running: Some(running),
                dir,
                tls,
            };
            (server, config)
        }
    };
    let uids = |entries: Vec<ldap3::SearchEntry>| {
        let mut uids: Vec<String> = entries
            .into_iter()
            .map(|e| e.attrs["uid"][0].clone())
            .collect();
        uids.sort();
        uids
    };

    let (server, _) = restart(dir, ", \"sn\"").await;
    let mut admin = server.admin().await;
    let (found, rc) = search(&mut admin, PEOPLE, Scope::Subtree, "(sn=rebuilt)", &["uid"]).await;
    assert_eq!((rc, uids(found)), (0, vec!["early".to_string()]));
    assert_eq!(
        crate::replace(&mut admin, &person_dn("late"), "sn", &["REBUILT"]).await,
        0
    );
    let (found, _) = search(&mut admin, PEOPLE, Scope::Subtree, "(sn=Rebuilt)", &["uid"]).await;
    assert_eq!(uids(found), vec!["early".to_string(), "late".to_string()]);
    drop(admin);
    let dir = server.stop().await;

    let (server, config) = restart(dir, "").await;
    let mut admin = server.admin().await;
    let (found, _) = search(&mut admin, PEOPLE, Scope::Subtree, "(sn=Rebuilt)", &["uid"]).await;
    assert_eq!(uids(found), vec!["early".to_string(), "late".to_string()]);
    drop(admin);
    let _dir = server.stop().await;
    tessera::db::verify(&config).unwrap();
}

#[tokio::test]
async fn import_of_large_groups_spans_size_capped_batches() {
    let fresh = crate::private_tempdir();
    let config = config_for(fresh.path());
    let file = tempfile::NamedTempFile::new().unwrap();
    // Far fewer entries than a batch's count, but over a megabyte of members: several
    // batches by size, and the uniqueness check must see groups of earlier batches.
    let mut ldif = numbered_people(300);
    for g in 0..120u32 {
        ldif += &format!(
            "dn: cn=g{g},{GROUPS}\nobjectClass: groupOfNames\nobjectClass: posixGroup\ncn: g{g}\ngidNumber: {}\n",
            30000 + g
        );
        for i in 0..300u32 {
            ldif += &format!("member: uid=u{i},{PEOPLE}\n");
        }
        ldif += "\n";
    }
    assert!(ldif.len() > 1 << 20, "{} bytes", ldif.len());
    let dup =
        format!("dn: cn=dup,{GROUPS}\nobjectClass: posixGroup\ncn: dup\ngidNumber: 30003\n\n");
    std::fs::write(file.path(), ldif.clone() + &dup).unwrap();
    let err = tessera::db::import(&config, file.path(), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("30003"), "{err}");

    std::fs::write(file.path(), &ldif).unwrap();
    let n = tessera::db::import(&config, file.path(), &Default::default())
        .unwrap()
        .imported;
    assert_eq!(n, 420);
    tessera::db::verify(&config).unwrap();
    let server = TestServer::start_with_ldif("", Some(&ldif)).await;
    let mut ldap = server.admin().await;
    let (found, rc) = search(
        &mut ldap,
        GROUPS,
        Scope::OneLevel,
        &format!("(member=uid=u299,{PEOPLE})"),
        &["cn"],
    )
    .await;
    assert_eq!((found.len(), rc), (120, 0));
}

/// One rule path: the same invalid entries, sent by LDAP Add and loaded by `db import`,
/// are refused by both, with the same reason.
#[tokio::test]
async fn add_and_import_refuse_the_same_entries_alike() {
    // (what breaks a rule, LDIF of the entry, what the refusal names)
    let cases: &[(&str, &str, &str)] = &[
        (
            "a service account with a password",
            "dn: uid=svc,ou=services,dc=example,dc=com\nobjectClass: tesseraServiceAccount\n\
             objectClass: simpleSecurityObject\nuid: svc\nuserPassword: {SSHA}c2VjcmV0c2FsdA==\n",
            "service accounts have no password",
        ),
        (
            "a service account with an invalid name",
            "dn: uid=Bad Name,ou=services,dc=example,dc=com\nobjectClass: tesseraServiceAccount\n\
             uid: Bad Name\n",
            "service account names are",
        ),
        (
            "an invalid role",
            "dn: cn=broken,ou=roles,dc=example,dc=com\nobjectClass: tesseraRole\ncn: broken\n\
             roleRight: everything\n",
            "unknown right 'everything'",
        ),
        (
            "a dangling member",
            "dn: cn=ghosts,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: ghosts\n\
             member: uid=zed,ou=people,dc=example,dc=com\n",
            "member: uid=zed,ou=people,dc=example,dc=com does not exist",
        ),
        (
            "a dangling manager",
            "dn: uid=web02,ou=services,dc=example,dc=com\nobjectClass: tesseraServiceAccount\n\
             uid: web02\nentryManagedBy: cn=no-such-group,ou=groups,dc=example,dc=com\n",
            "entryManagedBy: cn=no-such-group,ou=groups,dc=example,dc=com does not exist",
        ),
        (
            "a missing required attribute",
            "dn: uid=nosn,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: x\n",
            "requires attribute 'sn'",
        ),
        (
            "an attribute no class allows",
            "dn: uid=extra,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: x\nsn: x\n\
             uidNumber: 5\n",
            "not allowed by the entry's object classes",
        ),
        (
            "an unknown object class",
            "dn: uid=odd,ou=people,dc=example,dc=com\nobjectClass: noSuchClass\ncn: x\n",
            "is not a known object class",
        ),
        (
            "a value invalid per syntax",
            "dn: uid=num,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n\
             objectClass: posixAccount\ncn: x\nsn: x\nuid: num\nuidNumber: many\n\
             gidNumber: 1\nhomeDirectory: /h\n",
            "uidNumber: value #0 invalid per syntax",
        ),
    ];
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let mut checked = 0;
    for (what, ldif, names) in cases {
        // Over LDAP.
        let mut lines = ldif.lines();
        let dn = lines.next().unwrap().strip_prefix("dn: ").unwrap();
        let mut attrs: Vec<(String, HashSet<String>)> = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(": ").unwrap();
            match attrs.iter_mut().find(|(n, _)| n == name) {
                Some((_, values)) => {
                    values.insert(value.to_string());
                }
                None => attrs.push((name.to_string(), HashSet::from([value.to_string()]))),
            }
        }
        let res = admin.add(dn, attrs).await.unwrap();
        assert_ne!(res.rc, 0, "{what}: LDAP Add took it");
        assert!(res.text.contains(names), "{what}: LDAP says {:?}", res.text);
        // Through the importer, into a fresh directory.
        let fresh = crate::private_tempdir();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("{ldif}\n")).unwrap();
        let err = tessera::db::import(&config_for(fresh.path()), file.path(), &Default::default())
            .expect_err(what)
            .to_string();
        assert!(err.contains(names), "{what}: import says {err:?}");
        assert!(
            err.contains(&res.text),
            "{what}: the same reason: {err:?} against {:?}",
            res.text
        );
        checked += 1;
    }
    assert_eq!(checked, cases.len());
    server.stop().await;
}

/// `tessera db verify --file FILE`, through the binary, with TESSERA_CONFIG naming a file
/// that does not exist (so no configuration can be read) and its temporary copy in `tmp`.
fn verify_file(file: &std::path::Path, tmp: &std::path::Path) -> crate::cli::Out {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["db", "verify", "--file"])
        .arg(file)
        .env("TESSERA_CONFIG", "/nonexistent/tessera.toml")
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    crate::cli::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn verify_checks_a_backup_file_without_a_configuration_and_leaves_it_as_it_was() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for i in 0..20 {
        add_person(&mut admin, &format!("v{i}"), "pw", false).await;
    }
    drop(admin);
    let dir = server.stop().await;
    let pristine = std::fs::read(dir.path().join("data/tessera.redb")).unwrap();
    let backups = crate::private_tempdir();
    let tmp = crate::private_tempdir();
    let backup = backups.path().join("tessera-20261207.redb");
    std::fs::write(&backup, &pristine).unwrap();

    let out = verify_file(&backup, tmp.path());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{}: ", backup.display()))
            && first.ends_with("entries, file integrity ok"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().last(), Some("ok"), "{}", out.stdout);
    assert!(
        std::fs::read(&backup).unwrap() == pristine,
        "checking a backup changed it"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the private copy is removed"
    );

    // The pages holding an entry damaged: refused, naming the file.
    let needle = b"uid=v7,ou=people";
    let mut damaged = pristine.clone();
    let mut hit = 0;
    for at in 0..pristine.len() - needle.len() {
        if &pristine[at..at + needle.len()] == needle {
            let page = at / 4096 * 4096;
            for b in &mut damaged[page..(page + 1024).min(pristine.len())] {
                *b ^= 0xa5;
            }
            hit += 1;
        }
    }
    assert!(hit > 0, "v7's DN is in the file");
    let bad = backups.path().join("damaged.redb");
    std::fs::write(&bad, &damaged).unwrap();
    let out = verify_file(&bad, tmp.path());
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&bad.display().to_string())
            && out.stderr.contains("damaged")
            && out.stderr.contains("do not restore from it"),
        "{}",
        out.stderr
    );

    // Missing (and not created), empty, or not a database at all.
    let missing = backups.path().join("missing.redb");
    let out = verify_file(&missing, tmp.path());
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains(&format!("cannot read {}", missing.display())),
        "{}",
        out.stderr
    );
    assert!(!missing.exists(), "verify created the file it was to check");
    let empty = backups.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let out = verify_file(&empty, tmp.path());
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "{} is not a Tessera database: it is empty",
            empty.display()
        )),
        "{}",
        out.stderr
    );
    let text = backups.path().join("notes.txt");
    std::fs::write(&text, b"not a database\n").unwrap();
    let out = verify_file(&text, tmp.path());
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("do not restore from it"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
