//! DN and RDN parsing: never a panic, and a parsed DN reads back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::directory::dn::{Dn, Rdn};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Rdn::parse(text);
    if let Ok(dn) = Dn::parse(text) {
        let again = Dn::parse(&dn.to_string()).expect("a DN's own string form parses");
        assert_eq!(again, dn, "{text:?} -> {dn}");
        let _ = dn.parent();
        let _ = dn.depth();
    }
});
