//! Offline data commands: import, export and verify on the redb file.

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
