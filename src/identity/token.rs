//! API tokens and app passwords: format, generation and verification.
//!
//! `tsr_<id>_<secret><check>`: a fixed prefix secret scanners can match, a 12-character
//! token id (so a bind finds its record without a scan), a 33-character secret (196 bits
//! from the OS CSPRNG) and a 6-character checksum, all base62: 56 characters of
//! `[A-Za-z0-9_]`, short enough for NAS bind-password fields that cut at 64. Only a
//! SHA-256 of the secret is stored; tokens are high-entropy, so a slow hash would only
//! slow binds. No I/O here.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

pub const PREFIX: &str = "tsr_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 33;
const CHECK_LEN: usize = 6;
/// `tsr_` + id + `_` + secret + check.
pub const TOKEN_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN + CHECK_LEN;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Error)]
pub enum TokenError {
    #[error("the system random number generator failed")]
    Random,
}

/// A freshly minted token: shown once, never stored.
pub struct NewToken {
    pub id: String,
    pub token: String,
    /// What the store keeps: SHA-256 of the secret, hex.
    pub hash: String,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A presented token, parsed but not yet verified.
pub struct Presented<'a> {
    pub id: &'a str,
    secret: &'a str,
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub fn generate() -> Result<NewToken, TokenError> {
    let id = random_base62(ID_LEN)?;
    let secret = random_base62(SECRET_LEN)?;
    let body = format!("{PREFIX}{id}_{secret}");
    let token = format!("{body}{}", checksum(&body));
    let hash = hash_secret(&secret);
    Ok(NewToken { id, token, hash })
}

/// Parse a bind password as a token; None if it is not one (a person's password, a typo,
/// a truncated paste). The checksum is checked here, so garbage costs no lookup.
pub fn parse(candidate: &str) -> Option<Presented<'_>> {
    if candidate.len() != TOKEN_LEN || !candidate.is_ascii() {
        return None;
    }
    let rest = candidate.strip_prefix(PREFIX)?;
    let (id, rest) = rest.split_at(ID_LEN);
    let rest = rest.strip_prefix('_')?;
    let (secret, check) = rest.split_at(SECRET_LEN);
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !base62(id) || !base62(secret) || !base62(check) {
        return None;
    }
    let body = &candidate[..candidate.len() - CHECK_LEN];
    if checksum(body) != check {
        return None;
    }
    Some(Presented { id, secret })
}

impl Presented<'_> {
    /// Constant-time comparison against the stored hex hash.
    pub fn verify(&self, stored_hash: &[u8]) -> bool {
        let computed = hash_secret(self.secret);
        computed.as_bytes().ct_eq(stored_hash).into()
    }
}

/// Could this password be a token? Used to keep token-shaped strings out of the
/// password path (and its argon2 cost).
pub fn looks_like_token(candidate: &str) -> bool {
    candidate.starts_with(PREFIX) && candidate.len() == TOKEN_LEN
}

fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A base62 rendering of the first bytes of SHA-256(body): catches typos and truncation.
fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let mut n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    let mut out = String::with_capacity(CHECK_LEN);
    for _ in 0..CHECK_LEN {
        out.push(char::from(BASE62[(n % 62) as usize]));
        n /= 62;
    }
    out
}

fn random_base62(len: usize) -> Result<String, TokenError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|_| TokenError::Random)?;
        // Rejection sampling keeps every character equally likely.
        for b in buf {
            if b < 248 && out.len() < len {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_verify_and_fit_nas_fields() {
        let t = generate().unwrap();
        assert_eq!(t.token.len(), TOKEN_LEN);
        assert!(t.token.len() <= 64);
        assert!(
            t.token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        );
        let p = parse(&t.token).unwrap();
        assert_eq!(p.id, t.id);
        assert!(p.verify(t.hash.as_bytes()));
        let other = generate().unwrap();
        assert!(!p.verify(other.hash.as_bytes()));
        assert_ne!(t.token, other.token);
        assert!(!format!("{t:?}").contains(&t.token[20..]));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let t = generate().unwrap().token;
        assert!(parse(&t[..t.len() - 1]).is_none());
        let mut flipped = t.clone().into_bytes();
        flipped[30] = if flipped[30] == b'a' { b'b' } else { b'a' };
        assert!(parse(std::str::from_utf8(&flipped).unwrap()).is_none());
        assert!(parse("tsr_").is_none());
        assert!(parse("correct horse battery staple").is_none());
        let bad = format!("tsr_{}", "é".repeat(26));
        assert!(parse(&bad).is_none());
    }
}
