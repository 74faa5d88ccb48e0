//! Schema files in OpenLDAP's syntax, on top of the shipped schema as an admin's drop-in
//! file is: an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::directory::schema::Schema;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Schema::default().with_files(&[("fuzz.schema".to_string(), text.to_string())]);
    if let Ok(shipped) = Schema::shipped() {
        let _ = shipped.with_files(&[("drop-in.schema".to_string(), text.to_string())]);
    }
});
