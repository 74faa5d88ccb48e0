//! Legacy `userPassword` schemes, as other directories store them: salted and unsalted
//! digests (`{SSHA}` and the SHA-2 variants, `{SMD5}`, `{SHA}`, `{MD5}`) and `{CRYPT}` values
//! in the crypt(3) methods md5-crypt, sha256-crypt, sha512-crypt and bcrypt.
//!
//! Values in these schemes are parsed and verified, never made: `identity::password` wraps
//! them in `StoredPassword`, which reports that they need a rehash, so a successful bind
//! replaces them with argon2id. Digests are compared in constant time. No password, salt or
//! digest may reach a `Debug`, `Display` or error text from here; no I/O, nothing async.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

/// Longest candidate tried against `{CRYPT}` values. md5-crypt and SHA-crypt hash the
/// password once or twice per round, so the candidate's length multiplies the cost of a
/// bind; legacy passwords this long do not occur.
pub const MAX_CRYPT_PASSWORD_LEN: usize = 256;

/// A stored `{SSHA*}` or `{SMD5}` value. `Debug` shows the scheme only.
#[derive(Clone)]
pub struct SaltedDigest {
    algorithm: DigestAlgorithm,
    digest: Vec<u8>,
    salt: Vec<u8>,
}

impl SaltedDigest {
    pub(super) fn parse(algorithm: DigestAlgorithm, encoded: &str) -> Option<SaltedDigest> {
        let mut digest = LENIENT_STANDARD.decode(encoded).ok()?;
        // slappasswd uses 4 salt bytes, other tools 8 or 16; an empty salt is a broken value.
        if digest.len() <= algorithm.output_len()
            || digest.len() > algorithm.output_len() + MAX_SALT_LEN
        {
            return None;
        }
        let salt = digest.split_off(algorithm.output_len());
        Some(SaltedDigest {
            algorithm,
            digest,
            salt,
        })
    }

    pub(super) fn verify(&self, candidate: &[u8]) -> bool {
        let computed = self.algorithm.digest(&[candidate, &self.salt]);
        computed.ct_eq(&self.digest).into()
    }
}

impl SaltedDigest {
    /// The `{SCHEME}` name ("SSHA512").
    pub(super) fn scheme(&self) -> &'static str {
        self.algorithm.salted_scheme()
    }
}

impl fmt::Debug for SaltedDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.algorithm.salted_scheme())
    }
}

/// A stored `{SHA*}` or `{MD5}` value. `Debug` shows the scheme only.
#[derive(Clone)]
pub struct UnsaltedDigest {
    algorithm: DigestAlgorithm,
    digest: Vec<u8>,
}

impl UnsaltedDigest {
    pub(super) fn parse(algorithm: DigestAlgorithm, encoded: &str) -> Option<UnsaltedDigest> {
        let digest = LENIENT_STANDARD.decode(encoded).ok()?;
        if digest.len() != algorithm.output_len() {
            return None;
        }
        Some(UnsaltedDigest { algorithm, digest })
    }

    pub(super) fn verify(&self, candidate: &[u8]) -> bool {
        let computed = self.algorithm.digest(&[candidate]);
        computed.ct_eq(&self.digest).into()
    }
}

impl UnsaltedDigest {
    /// The `{SCHEME}` name ("SHA256").
    pub(super) fn scheme(&self) -> &'static str {
        self.algorithm.unsalted_scheme()
    }
}

impl fmt::Debug for UnsaltedDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.algorithm.unsalted_scheme())
    }
}

/// A stored `{CRYPT}` value in one of the crypt(3) methods we verify. Traditional DES
/// crypt and other methods are not parsed. `Debug` shows the method only.
#[derive(Clone)]
pub struct CryptHash {
    method: CryptMethod,
    salt: Vec<u8>,
    /// The encoded digest as stored: compared with the candidate's encoding, so the
    /// crypt base64 permutation never has to be inverted.
    digest: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CryptMethod {
    /// `$1$`: 1000 rounds of MD5, fixed.
    Md5,
    /// `$5$` with its round count.
    Sha256(sha_crypt::Params),
    /// `$6$` with its round count.
    Sha512(sha_crypt::Params),
    /// `$2a$`, `$2b$`, `$2y$` with the cost (log2 of the rounds); the salt is 16 raw bytes
    /// and the digest 23 raw bytes.
    Bcrypt { cost: u32 },
}

impl CryptHash {
    pub(super) fn parse(crypt: &str) -> Option<CryptHash> {
        if let Some(rest) = crypt.strip_prefix("$1$") {
            let (salt, digest) = split_salt_digest(rest, MD5_CRYPT_MAX_SALT, 22)?;
            return Some(CryptHash {
                method: CryptMethod::Md5,
                salt,
                digest,
            });
        }
        if let Some(rest) = crypt.strip_prefix("$5$") {
            let (rounds, rest) = split_rounds(rest)?;
            let (salt, digest) = split_salt_digest(rest, SHA_CRYPT_MAX_SALT, 43)?;
            return Some(CryptHash {
                method: CryptMethod::Sha256(rounds),
                salt,
                digest,
            });
        }
        if let Some(rest) = crypt.strip_prefix("$6$") {
            let (rounds, rest) = split_rounds(rest)?;
            let (salt, digest) = split_salt_digest(rest, SHA_CRYPT_MAX_SALT, 86)?;
            return Some(CryptHash {
                method: CryptMethod::Sha512(rounds),
                salt,
                digest,
            });
        }
        parse_bcrypt(crypt)
    }

    pub(super) fn verify(&self, candidate: &[u8]) -> bool {
        // crypt(3) takes a C string; OpenLDAP refuses a password with a NUL rather than let
        // it match on the part before the NUL.
        if candidate.len() > MAX_CRYPT_PASSWORD_LEN || candidate.contains(&0) {
            return false;
        }
        let computed = match self.method {
            CryptMethod::Md5 => {
                let raw = md5_crypt(candidate, &self.salt);
                crypt_encode(&raw, &MD5_CRYPT_ORDER, &[11])
            }
            CryptMethod::Sha256(params) => {
                let raw = sha_crypt::sha256_crypt(candidate, &self.salt, params);
                crypt_encode(&raw, &SHA256_CRYPT_ORDER, &[31, 30])
            }
            CryptMethod::Sha512(params) => {
                let raw = sha_crypt::sha512_crypt(candidate, &self.salt, params);
                crypt_encode(&raw, &SHA512_CRYPT_ORDER, &[63])
            }
            CryptMethod::Bcrypt { cost } => {
                return bcrypt_verify(candidate, cost, &self.salt, &self.digest);
            }
        };
        computed.ct_eq(&self.digest).into()
    }
}

impl fmt::Debug for CryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match self.method {
            CryptMethod::Md5 => "md5-crypt",
            CryptMethod::Sha256(_) => "sha256-crypt",
            CryptMethod::Sha512(_) => "sha512-crypt",
            CryptMethod::Bcrypt { .. } => "bcrypt",
        };
        write!(f, "{{CRYPT}}{method}")
    }
}

/// The digest of a salted or unsalted scheme.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum DigestAlgorithm {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    fn output_len(self) -> usize {
        match self {
            DigestAlgorithm::Md5 => 16,
            DigestAlgorithm::Sha1 => 20,
            DigestAlgorithm::Sha256 => 32,
            DigestAlgorithm::Sha384 => 48,
            DigestAlgorithm::Sha512 => 64,
        }
    }

    /// The digest of the concatenation of `parts`.
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut ctx = D::new();
            for part in parts {
                ctx.update(part);
            }
            ctx.finalize().to_vec()
        }
        match self {
            DigestAlgorithm::Md5 => run::<Md5>(parts),
            DigestAlgorithm::Sha1 => run::<Sha1>(parts),
            DigestAlgorithm::Sha256 => run::<Sha256>(parts),
            DigestAlgorithm::Sha384 => run::<Sha384>(parts),
            DigestAlgorithm::Sha512 => run::<Sha512>(parts),
        }
    }

    pub(super) fn salted_scheme(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "SMD5",
            DigestAlgorithm::Sha1 => "SSHA",
            DigestAlgorithm::Sha256 => "SSHA256",
            DigestAlgorithm::Sha384 => "SSHA384",
            DigestAlgorithm::Sha512 => "SSHA512",
        }
    }

    pub(super) fn unsalted_scheme(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha1 => "SHA",
            DigestAlgorithm::Sha256 => "SHA256",
            DigestAlgorithm::Sha384 => "SHA384",
            DigestAlgorithm::Sha512 => "SHA512",
        }
    }
}

/// Longest salt a stored salted digest may carry (slappasswd uses 4 bytes, other tools 8 or
/// 16).
const MAX_SALT_LEN: usize = 64;

/// Standard base64 with or without padding: PHC strings have none, `{SSHA}` values do.
pub(super) const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A `u32` written as plain ASCII digits (`u32::from_str` would also take a leading `+`).
pub(super) fn parse_decimal(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------
// crypt(3): sha256-crypt and sha512-crypt (Ulrich Drepper's "Unix crypt using SHA-256 and
// SHA-512") are RustCrypto's `sha-crypt`, written out here in crypt's base64; md5-crypt
// follows FreeBSD's original, which SHA-crypt builds on.

const MD5_CRYPT_MAX_SALT: usize = 8;
const SHA_CRYPT_MAX_SALT: usize = 16;
const SHA_CRYPT_DEFAULT_ROUNDS: u32 = 5000;
/// glibc clamps requested rounds to at least 1000, so no stored value has fewer.
const SHA_CRYPT_MIN_ROUNDS: u32 = 1000;
/// The spec allows 999,999,999; passlib's defaults (535,000 and 656,000) are the largest
/// seen in practice. The cap keeps one stored value from costing minutes per bind.
const SHA_CRYPT_MAX_ROUNDS: u32 = 1_000_000;
/// Each step doubles the work; cost 15 is about 2 seconds a try. Deployments use 10 to 14.
const BCRYPT_MIN_COST: u32 = 4;
const BCRYPT_MAX_COST: u32 = 15;

/// The 64 characters of crypt's base64, in value order.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Byte triples (most significant first) in the order the SHA-crypt methods encode them.
const SHA256_CRYPT_ORDER: [(usize, usize, usize); 10] = [
    (0, 10, 20),
    (21, 1, 11),
    (12, 22, 2),
    (3, 13, 23),
    (24, 4, 14),
    (15, 25, 5),
    (6, 16, 26),
    (27, 7, 17),
    (18, 28, 8),
    (9, 19, 29),
];
const SHA512_CRYPT_ORDER: [(usize, usize, usize); 21] = [
    (0, 21, 42),
    (22, 43, 1),
    (44, 2, 23),
    (3, 24, 45),
    (25, 46, 4),
    (47, 5, 26),
    (6, 27, 48),
    (28, 49, 7),
    (50, 8, 29),
    (9, 30, 51),
    (31, 52, 10),
    (53, 11, 32),
    (12, 33, 54),
    (34, 55, 13),
    (56, 14, 35),
    (15, 36, 57),
    (37, 58, 16),
    (59, 17, 38),
    (18, 39, 60),
    (40, 61, 19),
    (62, 20, 41),
];
const MD5_CRYPT_ORDER: [(usize, usize, usize); 5] =
    [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)];

/// Splits an optional `rounds=N$` off a SHA-crypt setting; without it the count is 5000.
fn split_rounds(rest: &str) -> Option<(sha_crypt::Params, &str)> {
    let Some(after) = rest.strip_prefix("rounds=") else {
        return Some((sha_crypt::Params::new(SHA_CRYPT_DEFAULT_ROUNDS).ok()?, rest));
    };
    let (digits, rest) = after.split_once('$')?;
    let rounds = parse_decimal(digits)?;
    if !(SHA_CRYPT_MIN_ROUNDS..=SHA_CRYPT_MAX_ROUNDS).contains(&rounds) {
        return None;
    }
    Some((sha_crypt::Params::new(rounds).ok()?, rest))
}

/// Splits `salt$digest`, checking the salt length and that the digest is `digest_len`
/// characters of crypt's base64.
fn split_salt_digest(rest: &str, max_salt: usize, digest_len: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let (salt, digest) = rest.split_once('$')?;
    let salt_ok = salt.len() <= max_salt && salt.bytes().all(|b| b.is_ascii_graphic());
    let digest_ok =
        digest.len() == digest_len && digest.bytes().all(|b| CRYPT_ALPHABET.contains(&b));
    (salt_ok && digest_ok).then(|| (salt.as_bytes().to_vec(), digest.as_bytes().to_vec()))
}

/// Writes `raw` in crypt's base64: each triple of `order` as a 24-bit number (first byte
/// most significant), six bits a character, low bits first; then the one or two bytes of
/// `tail` the same way, in 2 or 3 characters.
fn crypt_encode(raw: &[u8], order: &[(usize, usize, usize)], tail: &[usize]) -> Vec<u8> {
    let byte = |i: usize| u32::from(raw.get(i).copied().unwrap_or(0));
    let mut out = Vec::with_capacity(raw.len() * 4 / 3 + 1);
    let mut push = |mut value: u32, chars: usize| {
        for _ in 0..chars {
            out.extend(CRYPT_ALPHABET.get((value & 0x3f) as usize));
            value >>= 6;
        }
    };
    for &(a, b, c) in order {
        push((byte(a) << 16) | (byte(b) << 8) | byte(c), 4);
    }
    let last = tail.iter().fold(0, |acc, &i| (acc << 8) | byte(i));
    push(last, tail.len() + 1);
    out
}

/// md5-crypt's (`$1$`) raw digest.
fn md5_crypt(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();

    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(b"$1$")
        .chain_update(salt);
    update_repeated(&mut ctx, &alternate, password.len());
    // The original code meant to add the alternate digest here but adds a zero byte for
    // set bits and the first password byte for clear ones; every implementation keeps that.
    let first = password.get(..1).unwrap_or_default();
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(first);
        }
        bits >>= 1;
    }
    let mut current = ctx.finalize();

    for round in 0..1000u32 {
        let mut ctx = Md5::new();
        if round % 2 == 1 {
            ctx.update(password);
        } else {
            ctx.update(current);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round % 2 == 1 {
            ctx.update(current);
        } else {
            ctx.update(password);
        }
        current = ctx.finalize();
    }
    current.to_vec()
}

/// Feeds `len` bytes of `block` repeated end to end.
fn update_repeated<D: Digest>(ctx: &mut D, block: &[u8], len: usize) {
    let mut left = len;
    while left > 0 {
        let take = left.min(block.len());
        ctx.update(block.get(..take).unwrap_or_default());
        left -= take;
        if take == 0 {
            break;
        }
    }
}

/// bcrypt's own base64: a different alphabet, no padding. Spare low bits are ignored, as
/// OpenBSD's decoder does.
const BCRYPT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Parses `$2a$`, `$2b$` or `$2y$` + two-digit cost + `$` + 22 salt characters + 31 digest
/// characters. `$2x$` (the broken pre-2011 crypt_blowfish) is refused.
fn parse_bcrypt(crypt: &str) -> Option<CryptHash> {
    let rest = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|prefix| crypt.strip_prefix(prefix))?;
    let (cost, encoded) = rest.split_once('$')?;
    if cost.len() != 2 || encoded.len() != 53 || !encoded.is_ascii() {
        return None;
    }
    let cost = parse_decimal(cost)?;
    if !(BCRYPT_MIN_COST..=BCRYPT_MAX_COST).contains(&cost) {
        return None;
    }
    let (salt, digest) = encoded.split_at(22);
    let salt = BCRYPT_BASE64.decode(salt).ok()?;
    let digest = BCRYPT_BASE64.decode(digest).ok()?;
    (salt.len() == 16 && digest.len() == 23).then_some(CryptHash {
        method: CryptMethod::Bcrypt { cost },
        salt,
        digest,
    })
}

fn bcrypt_verify(candidate: &[u8], cost: u32, salt: &[u8], digest: &[u8]) -> bool {
    let Ok(salt) = <[u8; 16]>::try_from(salt) else {
        return false;
    };
    if !(BCRYPT_MIN_COST..=BCRYPT_MAX_COST).contains(&cost) {
        return false;
    }
    // bcrypt keys with the C string including its NUL, cut at 72 bytes; the key is then
    // 1..=72 bytes long, which the raw function requires.
    let mut key = Vec::with_capacity(72);
    key.extend_from_slice(candidate.get(..candidate.len().min(72)).unwrap_or_default());
    if key.len() < 72 {
        key.push(0);
    }
    let output = bcrypt::bcrypt(cost, salt, &key);
    let computed = output.get(..23).unwrap_or_default();
    computed.ct_eq(digest).into()
}
