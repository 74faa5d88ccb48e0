//! Token parsing and checking (row Z2): arbitrary bind passwords through the token parser,
//! the secret check and the generate request's value. Never a panic; a string the parser
//! accepts is token-shaped and names the id it carries; a bad checksum is refused by the
//! parser itself, before any lookup; only the right secret verifies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera::directory::time::parse_expiry;
use tessera::identity::token::{self, NewToken};
use tessera::directory::time::expired;
use tessera::ldap::extended::parse_generate;

fn real() -> &'static NewToken {
    static REAL: OnceLock<NewToken> = OnceLock::new();
    REAL.get_or_init(|| token::generate().expect("the OS random number generator"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text);
    // A real token with bytes of the input written over it (position, byte pairs): reaches
    // past the shape checks to the checksum and the secret comparison.
    let real = real();
    let mut bytes = real.token.clone().into_bytes();
    for pair in data.chunks_exact(2) {
        let at = usize::from(pair[0]) % bytes.len();
        bytes[at] = pair[1];
    }
    if let Ok(mutated) = std::str::from_utf8(&bytes) {
        if let Some(presented) = check(mutated) {
            let same_secret = mutated.get(17..50) == real.token.get(17..50);
            assert_eq!(
                presented.verify(real.hash.as_bytes()),
                same_secret,
                "{mutated:?}"
            );
        }
    }
    let _ = parse_generate(data);
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let _ = parse_expiry(&text, now);
    let _ = expired(Some(&text), now);
});

fn check(candidate: &str) -> Option<token::Presented<'_>> {
    let shaped = token::looks_like_token(candidate);
    let presented = token::parse(candidate)?;
    assert!(shaped, "parsed but not token-shaped: {candidate:?}");
    assert_eq!(Some(presented.id), candidate.get(4..16));
    assert!(!presented.verify(b"not a hash"));
    Some(presented)
}
