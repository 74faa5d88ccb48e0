//! LDIF as `tessera db import` reads it: every record of arbitrary input, to the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::db::ldif::LdifReader;

fuzz_target!(|data: &[u8]| {
    let reader = LdifReader::new(std::io::Cursor::new(data));
    for (n, record) in reader.enumerate() {
        if n > 10_000 || record.is_err() {
            break;
        }
    }
});
