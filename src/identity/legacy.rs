//! Legacy `userPassword` schemes, as other directories store them: salted and unsalted
//! digests (`{SSHA}` and the SHA-2 variants, `{SMD5}`, `{SHA}`, `{MD5}`) and `{CRYPT}` values
//! in the crypt(3) methods md5-crypt, sha256-crypt, sha512-crypt, bcrypt and yescrypt (the
//! default of Debian 11 and later, Ubuntu 22.04 and later, Fedora and Arch).
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
use yescrypt::{PasswordVerifier, Yescrypt};

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
    /// The salt; for yescrypt, the whole setting (`$y$`, parameters and salt), which its
    /// verifier reads.
    salt: Vec<u8>,
    /// The encoded digest as stored: compared with the candidate's encoding, so the
    /// crypt base64 permutation never has to be inverted (bcrypt: the raw digest).
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
    /// `$y$` with parameters within [`YESCRYPT_MAX_WORK`].
    Yescrypt,
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
        if let Some(rest) = crypt.strip_prefix("$y$") {
            return parse_yescrypt(rest);
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
            CryptMethod::Yescrypt => {
                return yescrypt_verify(candidate, &self.salt, &self.digest);
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
            CryptMethod::Yescrypt => "yescrypt",
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

// ---------------------------------------------------------------------------------------
// yescrypt: RustCrypto's `yescrypt` computes and compares (in constant time); the limits on
// what a stored value may cost are checked here, on the parameters as crypt(3) encodes them.

/// Largest accepted `128 * r * N * p * (t + 1)`: the memory one pass takes (bytes) times
/// the passes, with the same 2 GiB cap as argon2's `memory_kib * iterations`. libxcrypt's
/// default (`j9T`: N = 4096, r = 32) is 16 MiB; its largest cost factor (11) is 1 GiB.
const YESCRYPT_MAX_WORK: u64 = 2 << 30;
/// Longest salt, in characters: 64 bytes encoded, libxcrypt's limit.
const YESCRYPT_MAX_SALT: usize = 86;
/// The digest: 32 bytes in crypt's base64.
const YESCRYPT_DIGEST_LEN: usize = 43;

/// Parses the part after `$y$`: parameters, salt and digest. The parameters must be
/// yescrypt's own encoding of a flavor, N, r and optionally p and t, with no cost upgrades
/// (g) and no ROM, which libxcrypt never writes and the verifier does not support.
fn parse_yescrypt(rest: &str) -> Option<CryptHash> {
    let mut fields = rest.split('$');
    let params = fields.next()?;
    let salt = fields.next()?;
    let digest = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    let in_alphabet = |text: &str| text.bytes().all(|b| CRYPT_ALPHABET.contains(&b));
    let salt_ok = (1..=YESCRYPT_MAX_SALT).contains(&salt.len()) && in_alphabet(salt);
    let digest_ok = digest.len() == YESCRYPT_DIGEST_LEN && in_alphabet(digest);
    if !salt_ok || !digest_ok || !yescrypt_params_allowed(params) {
        return None;
    }
    Some(CryptHash {
        method: CryptMethod::Yescrypt,
        salt: format!("$y${params}${salt}").into_bytes(),
        digest: digest.as_bytes().to_vec(),
    })
}

/// Whether a `$y$` parameter field is well formed and within [`YESCRYPT_MAX_WORK`].
fn yescrypt_params_allowed(field: &str) -> bool {
    let mut numbers = YescryptNumbers {
        text: field.as_bytes(),
        at: 0,
    };
    let parsed = (|| {
        let flavor = numbers.next(0)?;
        let n_log2 = numbers.next(1)?;
        let r = numbers.next(1)?;
        let (mut p, mut t) = (1, 0);
        if !numbers.done() {
            let have = numbers.next(1)?;
            // 4: cost upgrades (g), 8: a ROM.
            if have & !0b11 != 0 {
                return None;
            }
            if have & 1 != 0 {
                p = numbers.next(2)?;
            }
            if have & 2 != 0 {
                t = numbers.next(1)?;
            }
        }
        numbers.done().then_some((flavor, n_log2, r, p, t))
    })();
    let Some((flavor, n_log2, r, p, t)) = parsed else {
        return false;
    };
    if !(1..=32).contains(&n_log2) {
        return false;
    }
    let work = [u64::from(r), 1u64 << n_log2, u64::from(p), u64::from(t) + 1]
        .into_iter()
        .try_fold(128u64, u64::checked_mul);
    if work.is_none_or(|w| w > YESCRYPT_MAX_WORK) {
        return false;
    }
    // The verifier's own checks of the combination (N, r and p for the flavor).
    yescrypt::Mode::try_from(flavor)
        .and_then(|mode| yescrypt::Params::new_with_all_params(mode, 1 << n_log2, r, p, t, 0))
        .is_ok()
}

/// The numbers of a yescrypt parameter field: each in crypt's base64, in a variable number of
/// characters (the reference implementation's `decode64_uint32`), at least `min`.
struct YescryptNumbers<'a> {
    text: &'a [u8],
    at: usize,
}

impl YescryptNumbers<'_> {
    fn done(&self) -> bool {
        self.at == self.text.len()
    }

    fn next(&mut self, min: u32) -> Option<u32> {
        let digit = |c: u8| CRYPT_ALPHABET.iter().position(|&a| a == c);
        let first = u32::try_from(digit(*self.text.get(self.at)?)?).ok()?;
        self.at += 1;
        // The first character's value says how many follow: 0..=47 none, then 48..=55 one,
        // 56..=59 two, 60..=61 three, 62 four (63 is unused).
        let (mut start, mut end, mut chars, mut bits) = (0u32, 47u32, 1u32, 0u32);
        let mut value = min;
        while first > end {
            value = value.checked_add((end + 1 - start) << bits)?;
            start = end + 1;
            end = start + (62 - end) / 2;
            chars += 1;
            bits += 6;
        }
        value = value.checked_add((first - start) << bits)?;
        for _ in 1..chars {
            bits -= 6;
            let c = u32::try_from(digit(*self.text.get(self.at)?)?).ok()?;
            self.at += 1;
            value = value.checked_add(c << bits)?;
        }
        Some(value)
    }
}

fn yescrypt_verify(candidate: &[u8], setting: &[u8], digest: &[u8]) -> bool {
    let (Ok(setting), Ok(digest)) = (std::str::from_utf8(setting), std::str::from_utf8(digest))
    else {
        return false;
    };
    let stored = format!("{setting}${digest}");
    Yescrypt::default()
        .verify_password(candidate, stored.as_str())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yescrypt(value: &str) -> CryptHash {
        match CryptHash::parse(value) {
            Some(h) if matches!(h.method, CryptMethod::Yescrypt) => h,
            _ => panic!("not parsed as yescrypt: {value}"),
        }
    }

    #[test]
    fn yescrypt_from_libxcrypt_verifies() {
        // python3 -c "import crypt; print(crypt.crypt(PASSWORD, SETTING))" on Debian 12
        // (libxcrypt), and slappasswd -h '{CRYPT}' -c '$y$j9T$%.16s' -s secret.
        let cases: &[(&[u8], &str)] = &[
            // Debian's default cost (j9T: 16 MiB), with crypt_gensalt's 22-character salt
            // and with slappasswd's 16.
            (
                b"secret",
                "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$GmcwIgvdUC9qLWcKCi6gklUa1dM3ziD43YxYNURLKy0",
            ),
            (
                b"secret",
                "$y$j9T$.vUXsnpfdC83aMPc$zed/hRb6u2GCuMg.3id03Z7dg2dA5s.mH9T42r6J5K/",
            ),
            (
                "p\u{e4}ss w\u{f6}rd".as_bytes(),
                "$y$j75$saltsaltsaltsalt$iyOpp5QHbHGSLJ88UX4Ks72euI4M/urW/t.oUKb4xk6",
            ),
            (
                &[b'x'; MAX_CRYPT_PASSWORD_LEN],
                "$y$j75$saltsaltsaltsalt$hjyOKEApzXRMy5Tt1gmfogt8UbN9tt7TsFUCByLgPq0",
            ),
            // t = 4 (more time at the same memory), and the write-once/read-many flavor.
            (
                b"secret",
                "$y$j75/1$saltsaltsaltsalt$FSHKxbDsqSPoGPdas6Aa1XxDkqsD3XfXf5AC/ADmpU3",
            ),
            (
                b"secret",
                "$y$/75$saltsaltsaltsalt$cltKBglS8xbvaAncYDvjbYyQNd5GjEig6Y/6iXptWbB",
            ),
        ];
        for &(password, value) in cases {
            let h = yescrypt(value);
            assert!(h.verify(password), "{value}");
            assert!(!h.verify(b"Secret"), "{value}");
            assert!(!h.verify(&[password, b"x"].concat()), "{value}");
        }
        // One byte past the {CRYPT} cap is refused before any work.
        let longest = yescrypt(cases[3].1);
        assert!(!longest.verify(&[b'x'; MAX_CRYPT_PASSWORD_LEN + 1]));
        assert_eq!(format!("{longest:?}"), "{CRYPT}yescrypt");
    }

    #[test]
    fn yescrypt_reference_vectors_verify() {
        // The cheaper of the reference implementation's TESTS-OK hashes of "pleaseletmein":
        // variable-length parameter fields (p, t), both flavors, salts of 1 to 16 bytes.
        let vectors = [
            "$y$j0/$LdJM$k7BXzSDuoGHW56SY3HxROCiA0gWRscZe2aA0q5oHPM0",
            "$y$//..0$Ld3$6BJXezMFxaMiO5wsuoEmztvtCs/79085dZO56ADlV5B",
            "$y$///$L/$Rrrkp6OVljrIk0kcwkCDhAiHJiSthh3cKeIGHUW7Z0C",
            "$y$j1../$LdJMENpBABJJ3hIHjB1Bi.$L8OQFc8mxJPd7CpUFgkS7KqJM2I9jGXu3BdqX2D.647",
            "$y$j//$LdJMENpBABJJ3hIHjB1B$U8a2MaK.yesqWySK8Owk6PWeWmp/XuagMbpP45q1/q1",
            "$y$j2..1$LdJME/$iLEt6kuTwHch6XdCxtTHfsQzYwWFmpUwgl6Ax8RH4d1",
        ];
        for value in vectors {
            let h = yescrypt(value);
            assert!(h.verify(b"pleaseletmein"), "{value}");
            assert!(!h.verify(b"pleaseletmeiN"), "{value}");
        }
    }

    #[test]
    fn yescrypt_costs_past_the_cap_and_unsupported_fields_do_not_parse() {
        let digest = "DsMjm5uqUiFBUYLB9CLnX8E/M0k0mOVJBUWdpCrUik9";
        let with = |params: &str| format!("$y${params}$saltsaltsaltsalt${digest}");
        // libxcrypt's largest cost factor (1 GiB) and 2 GiB are taken; 4 GiB is not.
        assert!(CryptHash::parse(&with("jFT")).is_some());
        assert!(CryptHash::parse(&with("jGT")).is_some());
        for params in [
            "jHT",     // N = 2^19, r = 32: 4 GiB
            "j9T/zzz", // t far past the cap
            "j9T.zz",  // p past the cap
            "jzz",     // N = 2^63
            "j9T3.",   // g: a cost upgrade
            "j9T5.",   // a ROM
            "j9T.",    // 'have' says p follows; nothing does
            "j9Tzzzzzzzzz",
            "j9",    // no r
            "",      // nothing
            "a9T",   // an unknown flavor
            "j.T..", // N = 2 with p = 2: refused by the read-write flavor
            "j9T!",  // outside the alphabet
            "j9T$x", // an extra field
        ] {
            assert!(CryptHash::parse(&with(params)).is_none(), "{params}");
        }
        for bad in [
            format!("$y$j75$${digest}"),
            format!("$y$j75$salt!salt${digest}"),
            format!("$y$j75${}${digest}", "s".repeat(YESCRYPT_MAX_SALT + 1)),
            format!("$y$j75$saltsaltsaltsalt${}", &digest[1..]),
            format!("$y$j75$saltsaltsaltsalt${digest}x"),
            format!("$y$j75$saltsaltsaltsalt${digest}$"),
            "$y$j75$saltsaltsaltsalt".to_string(),
            format!("$y$j75$saltsaltsaltsalt${}=", &digest[1..]),
        ] {
            assert!(CryptHash::parse(&bad).is_none(), "{bad}");
        }
    }
}
