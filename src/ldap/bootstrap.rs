//! The entries every directory starts with: the suffix, `ou=people`, `ou=groups`,
//! `ou=services`, `ou=roles`, and the `directory-admins` role. Created when missing, so a
//! first start and every later start converge on the same tree.

use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::directory::schema::Schema;
use crate::ldap::access::{admin_role, role};
use crate::ldap::write;
use crate::store::{DirectoryRead, Store, StoreError};

pub const CONTAINERS: &[&str] = &["people", "groups", "services", "roles"];
pub const SERVICE_ACCOUNT_ADMINS: &str = "service-account-admins";

pub fn bootstrap(store: &Store, schema: &Schema, suffix: &Dn) -> Result<usize, StoreError> {
    let mut wanted = vec![suffix_entry(suffix)];
    for ou in CONTAINERS {
        let mut e = Entry::new(suffix.child(Rdn::single("ou", ou)));
        e.set(
            "objectClass",
            vec![b"top".to_vec(), b"organizationalUnit".to_vec()],
        );
        e.set_str("ou", ou);
        wanted.push(e);
    }
    let mut admins = Entry::new(admin_role(suffix));
    admins.set(
        "objectClass",
        vec![b"top".to_vec(), b"tesseraRole".to_vec()],
    );
    admins.set_str("cn", "directory-admins");
    admins.set_str(
        "description",
        "Directory administrators: every right on every entry",
    );
    wanted.push(admins);
    let mut sa_admins = Entry::new(role(suffix, SERVICE_ACCOUNT_ADMINS));
    sa_admins.set(
        "objectClass",
        vec![b"top".to_vec(), b"tesseraRole".to_vec()],
    );
    sa_admins.set_str("cn", SERVICE_ACCOUNT_ADMINS);
    sa_admins.set_str(
        "description",
        "May create service accounts; their managers (entryManagedBy) manage their tokens",
    );
    wanted.push(sa_admins);

    store.write_blocking(|w| {
        let mut created = 0;
        let now = write::now_generalized();
        for mut entry in wanted {
            if w.id_of(&entry.dn)?.is_some() {
                continue;
            }
            write::stamp_new(schema, &mut entry, "", &now);
            if &entry.dn == suffix {
                w.add_suffix(&entry)?;
            } else {
                w.add(&entry)?;
            }
            created += 1;
        }
        Ok(created)
    })
}

fn suffix_entry(suffix: &Dn) -> Entry {
    let mut e = Entry::new(suffix.clone());
    let Some(rdn) = suffix.rdn().and_then(|r| r.avas.first()) else {
        return e;
    };
    let value = rdn.value.clone();
    match rdn.attr.to_ascii_lowercase().as_str() {
        "dc" => {
            e.set(
                "objectClass",
                vec![
                    b"top".to_vec(),
                    b"dcObject".to_vec(),
                    b"organization".to_vec(),
                ],
            );
            e.set_str("dc", &value);
            e.set_str("o", &value);
        }
        "o" => {
            e.set(
                "objectClass",
                vec![b"top".to_vec(), b"organization".to_vec()],
            );
            e.set_str("o", &value);
        }
        "ou" => {
            e.set(
                "objectClass",
                vec![b"top".to_vec(), b"organizationalUnit".to_vec()],
            );
            e.set_str("ou", &value);
        }
        other => {
            e.set(
                "objectClass",
                vec![b"top".to_vec(), b"extensibleObject".to_vec()],
            );
            e.set_str(other, &value);
        }
    }
    e
}
