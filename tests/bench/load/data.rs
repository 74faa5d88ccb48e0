//! The data set both servers load: N people (inetOrgPerson + posixAccount, one argon2id
//! password hash shared by all, so binds cost a real verification without hashing N
//! passwords), groups of `groupOfNames` + `posixGroup` (rfc2307bis) with ~3 groups a
//! person, and the service accounts each server binds its readers with (Tessera: token
//! accounts; slapd: `{SSHA}` passwords). Two LDIF files, identical but for the accounts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use sha1::{Digest, Sha1};

use tessera::identity::password::{self, Argon2Params};

pub const SUFFIX: &str = "dc=example,dc=com";
/// Groups a person is in.
const GROUPS_PER_PERSON: usize = 3;

pub struct DataSet {
    pub people: usize,
    pub groups: usize,
    /// The cleartext of every person's (argon2id) password.
    pub person_password: String,
    /// The cleartext of slapd's service accounts' `{SSHA}` passwords.
    pub service_password: String,
    pub tessera_ldif: PathBuf,
    pub slapd_ldif: PathBuf,
}

impl DataSet {
    pub fn generate(people: usize, dir: &Path) -> Self {
        let groups = if people >= 10_000 {
            1000
        } else {
            (people / 10).max(GROUPS_PER_PERSON)
        };
        let person_password = "bench-person-password".to_string();
        let service_password = "bench-service-password".to_string();
        let hash = password::hash(person_password.as_bytes(), &Argon2Params::default())
            .expect("argon2 hash");
        let data = DataSet {
            people,
            groups,
            person_password,
            service_password,
            tessera_ldif: dir.join("tessera.ldif"),
            slapd_ldif: dir.join("slapd.ldif"),
        };
        let ssha = ssha(data.service_password.as_bytes());
        for (path, accounts) in [
            (&data.tessera_ldif, tessera_accounts()),
            (&data.slapd_ldif, slapd_accounts(&ssha)),
        ] {
            let mut w = BufWriter::new(File::create(path).expect("create LDIF"));
            data.write_tree(&mut w, &hash, &accounts)
                .expect("write LDIF");
            w.flush().expect("flush LDIF");
        }
        data
    }

    pub fn person_dn(&self, n: usize) -> String {
        format!("uid=user{n},ou=people,{SUFFIX}")
    }

    pub fn slapd_reader_dn(&self) -> String {
        format!("uid=svc-reader,ou=services,{SUFFIX}")
    }

    /// The groups person `n` (1-based) is in: spread evenly, never the same one twice.
    fn groups_of(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        let step = self.groups / GROUPS_PER_PERSON;
        (0..GROUPS_PER_PERSON).map(move |k| (n + k * step) % self.groups + 1)
    }

    fn write_tree(&self, w: &mut impl Write, hash: &str, accounts: &str) -> std::io::Result<()> {
        writeln!(
            w,
            "dn: {SUFFIX}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n"
        )?;
        for ou in ["people", "groups", "services"] {
            writeln!(
                w,
                "dn: ou={ou},{SUFFIX}\nobjectClass: top\nobjectClass: organizationalUnit\nou: {ou}\n"
            )?;
        }
        w.write_all(accounts.as_bytes())?;
        for n in 1..=self.people {
            let id = 1_000_000 + n;
            writeln!(
                w,
                "dn: {dn}\nobjectClass: top\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
                 uid: user{n}\ncn: User {n}\nsn: User{n}\ngivenName: Bench\nmail: user{n}@example.com\n\
                 uidNumber: {id}\ngidNumber: {id}\nhomeDirectory: /home/user{n}\nloginShell: /bin/bash\n\
                 gecos: Bench User {n}\nuserPassword: {hash}\n",
                dn = self.person_dn(n)
            )?;
        }
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); self.groups + 1];
        for n in 1..=self.people {
            for g in self.groups_of(n) {
                members[g].push(n);
            }
        }
        for (g, people) in members.iter().enumerate().skip(1) {
            writeln!(
                w,
                "dn: cn=group{g},ou=groups,{SUFFIX}\nobjectClass: top\nobjectClass: groupOfNames\n\
                 objectClass: posixGroup\ncn: group{g}\ngidNumber: {}",
                2_000_000 + g
            )?;
            for n in people {
                writeln!(w, "member: {}", self.person_dn(*n))?;
            }
            for n in people {
                writeln!(w, "memberUid: user{n}")?;
            }
            writeln!(w)?;
        }
        Ok(())
    }
}

/// Tessera's accounts bind with tokens minted after the import (see `servers::provision`).
fn tessera_accounts() -> String {
    ["svc-reader", "svc-admin"]
        .iter()
        .map(|name| {
            format!(
                "dn: uid={name},ou=services,{SUFFIX}\nobjectClass: tesseraServiceAccount\nuid: {name}\ncn: {name}\n\n"
            )
        })
        .collect()
}

fn slapd_accounts(ssha: &str) -> String {
    format!(
        "dn: uid=svc-reader,ou=services,{SUFFIX}\nobjectClass: account\nobjectClass: simpleSecurityObject\n\
         uid: svc-reader\nuserPassword: {ssha}\n\n"
    )
}

/// OpenLDAP's `{SSHA}`: base64(SHA-1(password + salt) + salt).
pub fn ssha(password: &[u8]) -> String {
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).expect("random salt");
    let mut h = Sha1::new();
    h.update(password);
    h.update(salt);
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(&salt);
    format!(
        "{{SSHA}}{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}
