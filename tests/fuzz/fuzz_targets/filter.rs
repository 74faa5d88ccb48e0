//! Filters: the RFC 4515 string form, conversion against the shipped schema, and
//! evaluation against an entry with typical attributes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera::directory::dn::Dn;
use tessera::directory::entry::Entry;
use tessera::directory::filter::{Filter, FilterLimits};
use tessera::directory::filter_string;
use tessera::directory::schema::Schema;

fn fixture() -> &'static (Schema, Entry) {
    static FIXTURE: OnceLock<(Schema, Entry)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let schema = Schema::shipped().expect("shipped schema");
        let dn = Dn::parse("uid=alice,ou=people,dc=example,dc=com").expect("dn");
        let mut e = Entry::new(dn);
        e.set("objectClass", vec![b"top".to_vec(), b"inetOrgPerson".to_vec(), b"posixAccount".to_vec()]);
        for (a, v) in [
            ("uid", "alice"),
            ("cn", "Alice Example"),
            ("sn", "Example"),
            ("mail", "alice@example.com"),
            ("uidNumber", "10000"),
            ("gidNumber", "10000"),
            ("homeDirectory", "/home/alice"),
            ("modifyTimestamp", "20260101000000.000000Z"),
            ("memberOf", "cn=staff,ou=groups,dc=example,dc=com"),
            ("entryUUID", "6f1c9a52-6e2f-4a39-9d8e-4b1f2c3d4e5f"),
        ] {
            e.set_str(a, v);
        }
        (schema, e)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = filter_string::parse(text) else {
        return;
    };
    let (schema, entry) = fixture();
    let limits = FilterLimits { max_depth: 32, max_elements: 1000 };
    if let Ok(filter) = Filter::from_ldap(&parsed, schema, limits) {
        let _ = filter.matches(entry);
        let mut attrs = Vec::new();
        filter.attributes(&mut attrs);
    }
});
