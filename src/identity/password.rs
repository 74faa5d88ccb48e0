//! `userPassword` values: new argon2id hashes, parsing and verification of stored values,
//! rehash decisions and random passwords for Password Modify.
//!
//! New hashes use OpenLDAP's `{ARGON2}` form (a PHC string after the scheme prefix), so a
//! directory exported from Tessera loads into slapd with `pw-argon2` and the other way round.
//! Values imported from slapd in older schemes (`identity::legacy`: `{SSHA}` and the other
//! digests, `{CRYPT}`) verify, and report that they need a rehash so the bind path can
//! upgrade them.
//!
//! This module does no I/O, no logging and nothing async: argon2 is slow on purpose, so
//! callers run `hash` and `verify` on the hashing pool (`identity::hashers`), whose threads
//! keep one [`Argon2Memory`] each. No password, salt or digest may reach a `Debug`,
//! `Display` or error text from here.

use std::fmt;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::legacy::{
    CryptHash, DigestAlgorithm, LENIENT_STANDARD, SaltedDigest, UnsaltedDigest, parse_decimal,
};

pub use super::legacy::MAX_CRYPT_PASSWORD_LEN;

/// Longest password `hash` accepts and `verify` tries.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Cost parameters for new argon2id hashes (the `[argon2]` table of the configuration; a
/// missing key takes its default).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Params {
    /// Memory per hash, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Argon2Params {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Params {
    /// Largest accepted memory cost: 2 GiB.
    pub const MAX_MEMORY_KIB: u32 = 2 * 1024 * 1024;
    /// Largest accepted number of passes.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Largest accepted number of lanes.
    pub const MAX_PARALLELISM: u32 = 64;
    /// Largest accepted `memory_kib * iterations`: 2 GiB for one pass (RFC 9106's first
    /// recommendation), about 3 seconds a hash on a 2024 server core.
    pub const MAX_WORK_KIB: u64 = 2 * 1024 * 1024;

    /// Checks the ranges argon2 allows, capped so that one stored value or a typo in the
    /// configuration cannot pin a core and gigabytes of memory for minutes per bind. The same
    /// limits apply to the parameters of stored `{ARGON2}` values.
    pub fn validate(&self) -> Result<(), String> {
        let p = self.parallelism;
        if !(1..=Self::MAX_PARALLELISM).contains(&p) {
            return Err(format!(
                "parallelism must be between 1 and {}, got {p}",
                Self::MAX_PARALLELISM
            ));
        }
        if !(1..=Self::MAX_ITERATIONS).contains(&self.iterations) {
            return Err(format!(
                "iterations must be between 1 and {}, got {}",
                Self::MAX_ITERATIONS,
                self.iterations
            ));
        }
        // argon2 needs at least 8 KiB per lane; p <= 64 so 8 * p cannot overflow.
        let min_memory = 8 * p;
        if !(min_memory..=Self::MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(format!(
                "memory_kib must be between {min_memory} (8 per lane) and {}, got {}",
                Self::MAX_MEMORY_KIB,
                self.memory_kib
            ));
        }
        let work = u64::from(self.memory_kib) * u64::from(self.iterations);
        if work > Self::MAX_WORK_KIB {
            return Err(format!(
                "memory_kib * iterations must be at most {}, got {work}",
                Self::MAX_WORK_KIB
            ));
        }
        Ok(())
    }
}

/// Why a new hash or a random password could not be made. No variant carries the password.
#[derive(Debug, Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    InvalidParams(String),
    #[error("password is empty")]
    Empty,
    #[error("password is longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error("argon2 hashing failed: {0}")]
    Argon2(argon2::Error),
}

/// A parsed stored `userPassword` value. `Debug` shows the scheme only.
#[derive(Clone)]
pub enum StoredPassword {
    /// `{ARGON2}$argon2id$v=19$m=..,t=..,p=..$salt$hash` (argon2i and argon2d too).
    Argon2(Argon2Hash),
    /// `{SSHA}`, `{SSHA256}`, `{SSHA384}`, `{SSHA512}`, `{SMD5}`: base64(digest(password ‖ salt) ‖ salt).
    Ssha(SaltedDigest),
    /// `{SHA}`, `{SHA256}`, `{SHA384}`, `{SHA512}`, `{MD5}`: base64(digest(password)).
    Sha(UnsaltedDigest),
    /// `{CRYPT}` followed by a crypt(3) string.
    Crypt(CryptHash),
}

impl StoredPassword {
    /// Parses a stored value. `None` for an unknown scheme, a malformed value, parameters
    /// outside the limits, and cleartext: a value without a `{SCHEME}` prefix is never
    /// compared with a candidate.
    pub fn parse(stored: &[u8]) -> Option<StoredPassword> {
        let (scheme, rest) = split_scheme(stored)?;
        let rest = std::str::from_utf8(rest).ok()?;
        match scheme {
            Scheme::Argon2 => Argon2Hash::parse(rest).map(StoredPassword::Argon2),
            Scheme::Salted(algorithm) => {
                SaltedDigest::parse(algorithm, rest).map(StoredPassword::Ssha)
            }
            Scheme::Unsalted(algorithm) => {
                UnsaltedDigest::parse(algorithm, rest).map(StoredPassword::Sha)
            }
            Scheme::Crypt => CryptHash::parse(rest).map(StoredPassword::Crypt),
        }
    }

    /// A stored value that takes as long to check as a fresh hash with `params` and matches
    /// no password: verify against it when the bind DN is unknown or has no password, so
    /// timing does not tell which.
    pub fn dummy(params: &Argon2Params) -> Result<StoredPassword, PasswordError> {
        params.validate().map_err(PasswordError::InvalidParams)?;
        let salt = random_bytes::<SALT_LEN>()?;
        // A random "digest" has no preimage anyone knows.
        let hash = random_bytes::<HASH_LEN>()?;
        Ok(StoredPassword::Argon2(Argon2Hash {
            algorithm: Algorithm::Argon2id,
            version: Version::V0x13,
            params: *params,
            salt: salt.to_vec(),
            hash: hash.to_vec(),
        }))
    }

    /// Whether `candidate` is the password. Digests are compared in constant time. An empty
    /// candidate never matches (that is an unauthenticated bind, whatever was stored), nor
    /// does one longer than [`MAX_PASSWORD_LEN`] ([`MAX_CRYPT_PASSWORD_LEN`] for `{CRYPT}`),
    /// nor, for `{CRYPT}`, one containing a NUL byte.
    pub fn verify(&self, candidate: &[u8]) -> bool {
        self.verify_in(candidate, &mut Argon2Memory::none())
    }

    /// [`verify`](Self::verify), with argon2's working memory taken from `memory`.
    pub fn verify_in(&self, candidate: &[u8], memory: &mut Argon2Memory) -> bool {
        if candidate.is_empty() || candidate.len() > MAX_PASSWORD_LEN {
            return false;
        }
        match self {
            StoredPassword::Argon2(h) => h.verify(candidate, memory),
            StoredPassword::Ssha(h) => h.verify(candidate),
            StoredPassword::Sha(h) => h.verify(candidate),
            StoredPassword::Crypt(h) => h.verify(candidate),
        }
    }

    /// True for every scheme but argon2id, and for argon2id made with less memory or fewer
    /// passes than `params`, an old version, or a short salt or digest. A different lane
    /// count alone does not count: with memory and passes fixed it does not change an
    /// attacker's cost, and rehashing on it would churn every entry.
    pub fn needs_rehash(&self, params: &Argon2Params) -> bool {
        match self {
            StoredPassword::Argon2(h) => h.needs_rehash(params),
            StoredPassword::Ssha(_) | StoredPassword::Sha(_) | StoredPassword::Crypt(_) => true,
        }
    }

    /// An argon2 hash (as opposed to a legacy scheme).
    pub fn is_argon2(&self) -> bool {
        matches!(self, StoredPassword::Argon2(_))
    }

    /// The `{SCHEME}` name in OpenLDAP's spelling, for logs ("ARGON2", "SSHA512", "CRYPT").
    pub fn scheme(&self) -> &'static str {
        match self {
            StoredPassword::Argon2(_) => "ARGON2",
            StoredPassword::Ssha(h) => h.scheme(),
            StoredPassword::Sha(h) => h.scheme(),
            StoredPassword::Crypt(_) => "CRYPT",
        }
    }
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredPassword::Argon2(h) => write!(f, "StoredPassword({h:?})"),
            StoredPassword::Ssha(h) => write!(f, "StoredPassword({h:?})"),
            StoredPassword::Sha(h) => write!(f, "StoredPassword({h:?})"),
            StoredPassword::Crypt(h) => write!(f, "StoredPassword({h:?})"),
        }
    }
}

/// Hashes `password` with argon2id and a fresh 16-byte salt from the OS CSPRNG, in
/// OpenLDAP's `{ARGON2}$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>` form (unpadded base64).
/// An empty password is refused: a simple bind with one is an unauthenticated bind (RFC 4513
/// §5.1.2), never a password check, so its hash could never be used.
pub fn hash(password: &[u8], params: &Argon2Params) -> Result<String, PasswordError> {
    hash_in(password, params, &mut Argon2Memory::none())
}

/// [`hash`], with argon2's working memory taken from `memory`.
pub fn hash_in(
    password: &[u8],
    params: &Argon2Params,
    memory: &mut Argon2Memory,
) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    params.validate().map_err(PasswordError::InvalidParams)?;
    let salt = random_bytes::<SALT_LEN>()?;
    let mut out = [0u8; HASH_LEN];
    argon2_context(Algorithm::Argon2id, Version::V0x13, params, HASH_LEN)
        .and_then(|ctx| memory.hash_into(&ctx, password, &salt, &mut out))
        .map_err(PasswordError::Argon2)?;
    Ok(format!(
        "{{ARGON2}}$argon2id$v=19$m={},t={},p={}${}${}",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        general_purpose::STANDARD_NO_PAD.encode(salt),
        general_purpose::STANDARD_NO_PAD.encode(out),
    ))
}

/// Whether `value` starts with a `{SCHEME}` prefix this module verifies (case-insensitive, as
/// in OpenLDAP). A written `userPassword` without one is cleartext and gets hashed. Only the
/// prefix is checked: use [`StoredPassword::parse`] to know the rest is well formed.
pub fn is_hashed(value: &[u8]) -> bool {
    split_scheme(value).is_some()
}

/// Whether `value` starts with something shaped like a `{SCHEME}` prefix, one this module
/// verifies or not: `{`, 1 to 32 letters, digits, `-`, `_` or `.`, then `}` (`{SSHA}`,
/// `{PBKDF2-SHA512}`, `{SASL}`). A file of another directory's entries carries hashes, not
/// passwords: such a value is kept as it is, never hashed as if it were a password.
pub fn has_scheme_prefix(value: &[u8]) -> bool {
    let Some(inner) = value.strip_prefix(b"{") else {
        return false;
    };
    let Some(close) = inner.iter().position(|&b| b == b'}') else {
        return false;
    };
    let name = inner.get(..close).unwrap_or_default();
    (1..=32).contains(&name.len())
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A random password of `len` characters from letters and digits that cannot be mistaken
/// for each other (no `0 O o 1 I i l`), drawn from the OS CSPRNG without modulo bias.
/// Each character carries about 5.8 bits, so 20 characters give about 115 bits.
///
/// Returns an empty string if the OS random number generator fails (it does not on Linux
/// in practice). That fails closed: [`hash`] refuses an empty password and no empty
/// candidate ever verifies. Use [`try_generate`] to get the error instead.
pub fn generate(len: usize) -> String {
    try_generate(len).unwrap_or_default()
}

/// [`generate`], with the random number generator's failure as an error.
pub fn try_generate(len: usize) -> Result<String, PasswordError> {
    // Largest multiple of the alphabet size that fits in a byte: bytes at or above it are
    // dropped so every character is equally likely.
    const LIMIT: usize = 256 - 256 % GENERATED_ALPHABET.len();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in random_bytes::<64>()? {
            let byte = usize::from(byte);
            if out.len() == len {
                break;
            }
            if byte < LIMIT {
                let index = byte % GENERATED_ALPHABET.len();
                out.extend(GENERATED_ALPHABET.get(index).map(|&c| char::from(c)));
            }
        }
    }
    Ok(out)
}

/// argon2's working memory (`memory_kib` KiB), kept by a hashing thread from one run to
/// the next: allocating and zeroing 19 MiB of fresh pages for every bind costs a few percent
/// of each verification. argon2 writes every block before it reads it, so what a previous run
/// left behind never changes a result. A run that needs more than `keep_kib` (a stored value
/// with a larger cost) gets memory of its own, freed afterwards, so one odd value does not pin
/// gigabytes to a thread.
pub struct Argon2Memory {
    blocks: Vec<Block>,
    keep_kib: u32,
    /// argon2 computations run with this memory: the pool reports them (see
    /// `Hashers::argon2_runs`).
    runs: u64,
}

impl Argon2Memory {
    /// Memory that keeps up to `keep_kib` KiB between runs (a block is 1 KiB).
    pub fn new(keep_kib: u32) -> Argon2Memory {
        Argon2Memory {
            blocks: Vec::new(),
            keep_kib,
            runs: 0,
        }
    }

    /// Memory that keeps nothing: every run allocates its own.
    pub fn none() -> Argon2Memory {
        Argon2Memory::new(0)
    }

    /// How many argon2 computations (hashes and verifications) ran with this memory.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    fn hash_into(
        &mut self,
        ctx: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        self.runs += 1;
        let needed = ctx.params().block_count();
        if needed > self.keep_kib as usize {
            return ctx.hash_password_into(password, salt, out);
        }
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        let blocks = self
            .blocks
            .get_mut(..needed)
            .ok_or(argon2::Error::MemoryTooLittle)?;
        ctx.hash_password_into_with_memory(password, salt, out, blocks)
    }
}

/// A stored `{ARGON2}` value. `Debug` shows the algorithm name only.
#[derive(Clone)]
pub struct Argon2Hash {
    algorithm: Algorithm,
    version: Version,
    params: Argon2Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Argon2Hash {
    /// Parses the PHC string after `{ARGON2}`. The version field is optional, as in
    /// libargon2, which reads a missing one as 0x10; parameters must come as `m,t,p` in that
    /// order, and `keyid`/`data` are refused.
    fn parse(phc: &str) -> Option<Argon2Hash> {
        let mut fields = phc.split('$');
        if !fields.next()?.is_empty() {
            return None;
        }
        let algorithm = match fields.next()? {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            "argon2d" => Algorithm::Argon2d,
            _ => return None,
        };
        let mut field = fields.next()?;
        let version = match field.strip_prefix("v=") {
            Some(v) => {
                field = fields.next()?;
                match parse_decimal(v)? {
                    0x13 => Version::V0x13,
                    0x10 => Version::V0x10,
                    _ => return None,
                }
            }
            None => Version::V0x10,
        };
        let params = parse_argon2_params(field)?;
        let salt = LENIENT_STANDARD.decode(fields.next()?).ok()?;
        let hash = LENIENT_STANDARD.decode(fields.next()?).ok()?;
        if fields.next().is_some()
            || !(MIN_STORED_SALT_LEN..=MAX_STORED_LEN).contains(&salt.len())
            || !(MIN_STORED_HASH_LEN..=MAX_STORED_LEN).contains(&hash.len())
        {
            return None;
        }
        Some(Argon2Hash {
            algorithm,
            version,
            params,
            salt,
            hash,
        })
    }

    fn verify(&self, candidate: &[u8], memory: &mut Argon2Memory) -> bool {
        let mut out = vec![0u8; self.hash.len()];
        let hashed = argon2_context(self.algorithm, self.version, &self.params, out.len())
            .and_then(|ctx| memory.hash_into(&ctx, candidate, &self.salt, &mut out));
        hashed.is_ok() && bool::from(out.ct_eq(&self.hash))
    }

    fn needs_rehash(&self, params: &Argon2Params) -> bool {
        self.algorithm != Algorithm::Argon2id
            || self.version != Version::V0x13
            || self.params.memory_kib < params.memory_kib
            || self.params.iterations < params.iterations
            || self.salt.len() < SALT_LEN
            || self.hash.len() < HASH_LEN
    }
}

impl fmt::Debug for Argon2Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{ARGON2}}{}", self.algorithm.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// Schemes and digests

#[derive(Clone, Copy)]
enum Scheme {
    Argon2,
    Salted(DigestAlgorithm),
    Unsalted(DigestAlgorithm),
    Crypt,
}

const SCHEMES: &[(&str, Scheme)] = &[
    ("ARGON2", Scheme::Argon2),
    ("SSHA", Scheme::Salted(DigestAlgorithm::Sha1)),
    ("SSHA256", Scheme::Salted(DigestAlgorithm::Sha256)),
    ("SSHA384", Scheme::Salted(DigestAlgorithm::Sha384)),
    ("SSHA512", Scheme::Salted(DigestAlgorithm::Sha512)),
    ("SMD5", Scheme::Salted(DigestAlgorithm::Md5)),
    ("SHA", Scheme::Unsalted(DigestAlgorithm::Sha1)),
    ("SHA256", Scheme::Unsalted(DigestAlgorithm::Sha256)),
    ("SHA384", Scheme::Unsalted(DigestAlgorithm::Sha384)),
    ("SHA512", Scheme::Unsalted(DigestAlgorithm::Sha512)),
    ("MD5", Scheme::Unsalted(DigestAlgorithm::Md5)),
    ("CRYPT", Scheme::Crypt),
];

/// Splits `{SCHEME}rest` when SCHEME is one we verify, compared without regard to case.
fn split_scheme(value: &[u8]) -> Option<(Scheme, &[u8])> {
    let inner = value.strip_prefix(b"{")?;
    let close = inner.iter().position(|&b| b == b'}')?;
    let (name, rest) = inner.split_at(close);
    let rest = rest.get(1..)?;
    SCHEMES
        .iter()
        .find(|(known, _)| known.as_bytes().eq_ignore_ascii_case(name))
        .map(|&(_, scheme)| (scheme, rest))
}

// ---------------------------------------------------------------------------------------
// argon2

/// Salt length of new hashes (bytes), RFC 9106's recommendation.
const SALT_LEN: usize = 16;
/// Digest length of new hashes (bytes), as OpenLDAP and the argon2 CLI write.
const HASH_LEN: usize = 32;
/// Bounds for stored salts and digests: argon2's minimum salt, and a digest long enough
/// not to be a truncated value.
const MIN_STORED_SALT_LEN: usize = 8;
const MIN_STORED_HASH_LEN: usize = 16;
const MAX_STORED_LEN: usize = 64;

fn argon2_context(
    algorithm: Algorithm,
    version: Version,
    params: &Argon2Params,
    output_len: usize,
) -> Result<Argon2<'static>, argon2::Error> {
    let params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(output_len),
    )?;
    Ok(Argon2::new(algorithm, version, params))
}

/// Parses `m=<kib>,t=<passes>,p=<lanes>`, within [`Argon2Params::validate`]'s limits.
fn parse_argon2_params(field: &str) -> Option<Argon2Params> {
    let mut parts = field.split(',');
    let memory_kib = parse_decimal(parts.next()?.strip_prefix("m=")?)?;
    let iterations = parse_decimal(parts.next()?.strip_prefix("t=")?)?;
    let parallelism = parse_decimal(parts.next()?.strip_prefix("p=")?)?;
    if parts.next().is_some() {
        return None;
    }
    let params = Argon2Params {
        memory_kib,
        iterations,
        parallelism,
    };
    params.validate().ok()?;
    Some(params)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], PasswordError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(PasswordError::Random)?;
    Ok(bytes)
}

/// Letters and digits for `generate`, without the look-alikes 0 O o 1 I i l.
const GENERATED_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Cheap parameters so the suite stays fast on two shared cores.
    pub(crate) const SMALL: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    // Made by the reference implementation: `echo -n secret | argon2 saltsaltsaltsalt -id
    // -k 64 -t 1 -p 1 -e` (Debian's `argon2` package, libargon2), with `{ARGON2}` in front as
    // OpenLDAP's pw-argon2 stores it; the others change -id/-i/-d, -v, -p and -t.
    const ARGON2ID: &str = "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o";
    const ARGON2ID_P2: &str = "{ARGON2}$argon2id$v=19$m=64,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$qYU7CQli4wbO8+8y2FZjMN0UoXvUIu9BLxEieCYvr9s";
    const ARGON2ID_V16: &str = "{ARGON2}$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$TUd1SENgHJs0cX9TTIeOO4QHfvmlSeAa2U9Yx5XfzU8";
    const ARGON2I: &str = "{ARGON2}$argon2i$v=19$m=64,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$NT3HDqwlcYWoE8KsPuen7yL1bb4nJ7CI+YmVzQG20uU";
    const ARGON2D: &str = "{ARGON2}$argon2d$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$tqGvO4eiMNtIYvNdZcjTmQaSjawJJLFjjmK7OKqNQqc";

    // slappasswd's layout, base64(digest(password ‖ salt) ‖ salt), computed with python3:
    //   base64.b64encode(hashlib.sha1(b"secret" + salt).digest() + salt), salt = 9a 3c 01 fe
    // (4 bytes, as slappasswd uses) and likewise for the others with the salts noted.
    const SSHA: &str = "{SSHA}1UT5OJrjNCWlWwMftxKPIsWEeNOaPAH+";
    const SSHA256: &str = "{SSHA256}oBmrdHcA6OZEkkCLeXh71YAerbvhXz1qqwjrPsXmEtNzYWx0c2FsdA=="; // salt "saltsalt"
    const SSHA384: &str =
        "{SSHA384}xZjeLqA5S5k50pfYWOduoMpyOadNQ2hKzVUikzLgZ/JSGpE4X/aVRUUuwOH25+Urc2FsdHNhbHQ="; // salt "saltsalt"
    const SSHA512: &str = "{SSHA512}tgWXISz3gJpOVHWfyaxFvUAh5exD6NY4gS546G/lfd4Z1gLPS3UGi46Ple0RYIgGcbHAHutPIrvNS86MdloaigD/c2FsdHNhbHQQ"; // salt 00 ff "saltsalt" 10
    const SMD5: &str = "{SMD5}QtY1rL5sRAq49uXKCFn0XGFiY2Q="; // salt "abcd"
    // base64.b64encode(hashlib.<digest>(b"secret").digest())
    const SHA: &str = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";
    const SHA256: &str = "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=";
    const SHA384: &str = "{SHA384}WKd1ukESvjAFrkQHznV9iP2nHUBJe7gCbsrFTU4//HIyzo3jq1rLMK45dg/ufFPt";
    const SHA512: &str = "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==";
    const MD5: &str = "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==";

    // python3 -c "import crypt; print(crypt.crypt('secret', SETTING))" (libxcrypt underneath).
    const MD5_CRYPT: &str = "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//";
    const MD5_CRYPT_NO_SALT: &str = "{CRYPT}$1$$ysVNzQc4CTMkp5daOdZ.3/";
    const SHA256_CRYPT: &str = "{CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    const SHA256_CRYPT_ROUNDS: &str =
        "{CRYPT}$5$rounds=1000$saltsalt$eKLZU9t9OoPWrqOQsoTIKG0aYkZ5rGOoOQhiIvoSWX2";
    const SHA256_CRYPT_SHORT_SALT: &str = "{CRYPT}$5$a$tCYspCVtCn1.MmJdxOr008Us2DcT3YW7dL1YBGz6mE2";
    const SHA512_CRYPT: &str = "{CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    const SHA512_CRYPT_ROUNDS: &str = "{CRYPT}$6$rounds=1234$0123456789abcdef$VODeSFEg0EGdP8Mq9IJLg6ChBD5lEMcw5wcuG.kHh1CJw6u0uMYc89/dW0C630TSias07sp0cWvSEv6DHYlqY.";
    const SHA512_CRYPT_NO_SALT: &str = "{CRYPT}$6$$2M9DchxW4txWyTYoZrH9D3VvAAQxBpEezYsLY6Cao.jwzEXpyL9xwip9hiUZX7GqTqe/E/z6iKvZqXUuqniQH.";
    const BCRYPT_2B: &str = "{CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW";
    const BCRYPT_2A: &str = "{CRYPT}$2a$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW";
    const BCRYPT_2Y: &str = "{CRYPT}$2y$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a";
    // yescrypt at 1 MiB (N = 1024, r = 8) so the suite stays fast; the Debian default is in
    // identity::legacy's tests.
    const YESCRYPT: &str =
        "{CRYPT}$y$j75$saltsaltsaltsalt$DsMjm5uqUiFBUYLB9CLnX8E/M0k0mOVJBUWdpCrUik9";

    /// Every vector above whose password is "secret".
    const SECRET_VECTORS: &[&str] = &[
        ARGON2ID,
        ARGON2ID_P2,
        ARGON2ID_V16,
        ARGON2I,
        ARGON2D,
        SSHA,
        SSHA256,
        SSHA384,
        SSHA512,
        SMD5,
        SHA,
        SHA256,
        SHA384,
        SHA512,
        MD5,
        MD5_CRYPT,
        MD5_CRYPT_NO_SALT,
        SHA256_CRYPT,
        SHA256_CRYPT_ROUNDS,
        SHA256_CRYPT_SHORT_SALT,
        SHA512_CRYPT,
        SHA512_CRYPT_ROUNDS,
        SHA512_CRYPT_NO_SALT,
        BCRYPT_2B,
        BCRYPT_2A,
        BCRYPT_2Y,
        YESCRYPT,
    ];

    fn parsed(stored: &str) -> StoredPassword {
        match StoredPassword::parse(stored.as_bytes()) {
            Some(p) => p,
            None => panic!("vector did not parse: {stored}"),
        }
    }

    #[test]
    fn hash_then_verify() {
        let stored = hash(b"correct horse", &SMALL).unwrap();
        assert!(stored.starts_with("{ARGON2}$argon2id$v=19$m=64,t=1,p=1$"));
        let p = parsed(&stored);
        assert!(p.verify(b"correct horse"));
        assert!(!p.verify(b"correct horsf"));
        assert!(!p.verify(b"correct hors"));
        assert!(!p.needs_rehash(&SMALL));
        assert_eq!(p.scheme(), "ARGON2");
    }

    #[test]
    fn hash_has_a_fresh_16_byte_salt_and_32_byte_digest() {
        let a = hash(b"pw", &SMALL).unwrap();
        let b = hash(b"pw", &SMALL).unwrap();
        assert_ne!(a, b);
        let fields: Vec<&str> = a.split('$').collect();
        assert_eq!(fields.len(), 6, "{a}");
        assert_eq!(
            general_purpose::STANDARD_NO_PAD
                .decode(fields[4])
                .unwrap()
                .len(),
            16
        );
        assert_eq!(
            general_purpose::STANDARD_NO_PAD
                .decode(fields[5])
                .unwrap()
                .len(),
            32
        );
    }

    #[test]
    fn hash_with_default_params() {
        let params = Argon2Params::default();
        assert_eq!(
            params,
            Argon2Params {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1
            }
        );
        let stored = hash("pässwörd".as_bytes(), &params).unwrap();
        assert!(stored.starts_with("{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$"));
        let p = parsed(&stored);
        assert!(p.verify("pässwörd".as_bytes()));
        assert!(!p.needs_rehash(&params));
    }

    #[test]
    fn hash_refuses_bad_input() {
        assert!(matches!(hash(b"", &SMALL), Err(PasswordError::Empty)));
        let long = vec![b'x'; MAX_PASSWORD_LEN + 1];
        assert!(matches!(hash(&long, &SMALL), Err(PasswordError::TooLong)));
        let bad = Argon2Params {
            memory_kib: 4,
            ..SMALL
        };
        assert!(matches!(
            hash(b"pw", &bad),
            Err(PasswordError::InvalidParams(_))
        ));
        let longest = vec![b'x'; MAX_PASSWORD_LEN];
        assert!(parsed(&hash(&longest, &SMALL).unwrap()).verify(&longest));
    }

    #[test]
    fn known_vectors_verify() {
        for &v in SECRET_VECTORS {
            let p = parsed(v);
            assert!(p.verify(b"secret"), "{v}");
            assert!(!p.verify(b"Secret"), "{v}");
            assert!(!p.verify(b"secret "), "{v}");
            assert!(!p.verify(b""), "{v}");
        }
    }

    #[test]
    fn argon2_reference_vectors_match_our_hasher() {
        // Recompute the reference value with our own code from its salt.
        let salt = b"saltsaltsaltsalt";
        let mut out = [0u8; HASH_LEN];
        argon2_context(Algorithm::Argon2id, Version::V0x13, &SMALL, HASH_LEN)
            .unwrap()
            .hash_password_into(b"secret", salt, &mut out)
            .unwrap();
        assert!(ARGON2ID.ends_with(&general_purpose::STANDARD_NO_PAD.encode(out)));
    }

    #[test]
    fn crypt_edge_vectors() {
        // python3 crypt.crypt(PASSWORD, '$6$saltsalt') etc.
        let cases: &[(&[u8], &str)] = &[
            (
                "p\u{e4}ss w\u{f6}rd".as_bytes(),
                "{CRYPT}$6$saltsalt$UNKVWpOZ8w3tzg0ZdBW7BH2uxxiRNkxJlImsKl/zDWhsXbhj3Qk0I9AKSN8PDH1NM1KpeJfhoGSI7.cxnxNAx/",
            ),
            (&[b'x'; 80], "{CRYPT}$1$saltsalt$cdp3mv1pRxGa6vHES2lPv."),
            // bcrypt keys with the first 72 bytes only: 100 x's match the hash of 72.
            (
                &[b'x'; 100],
                "{CRYPT}$2b$04$abcdefghijklmnopqrstuubzadhGtS2zEF.gu0yd0opP6cVzb.e0i",
            ),
            (
                &[b'x'; 72],
                "{CRYPT}$2b$04$abcdefghijklmnopqrstuubzadhGtS2zEF.gu0yd0opP6cVzb.e0i",
            ),
        ];
        for &(password, stored) in cases {
            assert!(parsed(stored).verify(password), "{stored}");
        }
        assert!(!parsed(cases[0].1).verify("pass word".as_bytes()));
        assert!(!parsed(cases[2].1).verify(&[b'x'; 71]));
        // '' hashes to this, but an empty candidate is an unauthenticated bind.
        assert!(
            !parsed("{CRYPT}$5$saltsalt$09agN5RZ2meWdEdnEusqsq5G7RwwghB8jCKoWWADxW/").verify(b"")
        );
    }

    #[test]
    fn nul_in_a_crypt_candidate_never_matches() {
        // crypt(3) would stop at the NUL and accept "secret\0anything".
        for v in [MD5_CRYPT, SHA256_CRYPT, SHA512_CRYPT, BCRYPT_2B, YESCRYPT] {
            assert!(!parsed(v).verify(b"secret\0"), "{v}");
            assert!(!parsed(v).verify(b"secret\0xyz"), "{v}");
        }
    }

    #[test]
    fn overlong_candidate_never_matches() {
        let long = vec![b'a'; MAX_PASSWORD_LEN + 1];
        for &v in SECRET_VECTORS {
            assert!(!parsed(v).verify(&long), "{v}");
        }
        // bcrypt reads 72 bytes, so these would match; past the crypt cap they are refused.
        let bcrypt_72x =
            parsed("{CRYPT}$2b$04$abcdefghijklmnopqrstuubzadhGtS2zEF.gu0yd0opP6cVzb.e0i");
        assert!(bcrypt_72x.verify(&[b'x'; MAX_CRYPT_PASSWORD_LEN]));
        assert!(!bcrypt_72x.verify(&[b'x'; MAX_CRYPT_PASSWORD_LEN + 1]));
    }

    #[test]
    fn needs_rehash_for_legacy_schemes() {
        for &v in SECRET_VECTORS {
            let p = parsed(v);
            let expected = v != ARGON2ID && v != ARGON2ID_P2;
            assert_eq!(p.needs_rehash(&SMALL), expected, "{v}");
        }
    }

    #[test]
    fn needs_rehash_for_weaker_argon2() {
        let p = parsed(ARGON2ID); // m=64, t=1, p=1
        assert!(!p.needs_rehash(&SMALL));
        assert!(p.needs_rehash(&Argon2Params::default()));
        assert!(p.needs_rehash(&Argon2Params {
            memory_kib: 128,
            ..SMALL
        }));
        assert!(p.needs_rehash(&Argon2Params {
            iterations: 2,
            ..SMALL
        }));
        // Stronger than configured, or another lane count: left alone.
        assert!(!p.needs_rehash(&Argon2Params {
            memory_kib: 32,
            ..SMALL
        }));
        assert!(!p.needs_rehash(&Argon2Params {
            parallelism: 2,
            memory_kib: 64,
            iterations: 1
        }));
        assert!(!parsed(ARGON2ID_P2).needs_rehash(&SMALL));
        // Short salt or digest (still within what we parse).
        let short_salt = "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o";
        assert!(parsed(short_salt).needs_rehash(&SMALL));
        let short_hash =
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZw";
        assert!(parsed(short_hash).needs_rehash(&SMALL));
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for v in [
            "{ssha}",
            "{SSHA}",
            "{SsHa512}",
            "{crypt}",
            "{Argon2}",
            "{sha}",
            "{md5}",
            "{smd5}",
        ] {
            assert!(is_hashed(v.as_bytes()), "{v}");
        }
        assert!(is_hashed(b"{SSHA}not even base64"));
        assert!(StoredPassword::parse(SSHA.replace("{SSHA}", "{ssha}").as_bytes()).is_some());
        assert!(
            StoredPassword::parse(ARGON2ID.replace("{ARGON2}", "{argon2}").as_bytes()).is_some()
        );
        assert!(
            StoredPassword::parse(SHA512_CRYPT.replace("{CRYPT}", "{Crypt}").as_bytes()).is_some()
        );
    }

    #[test]
    fn scheme_prefixes_known_or_not() {
        for v in [
            "{SSHA}abc",
            "{PBKDF2-SHA512}10000$abc$def",
            "{SASL}user@realm",
            "{K5KEY}",
            "{NS-MTA-MD5}abc",
            "{x}",
        ] {
            assert!(has_scheme_prefix(v.as_bytes()), "{v}");
        }
        for v in [
            "secret",
            "{}secret",
            "{SSHA",
            " {SSHA}abc",
            "{SSHA }abc",
            "{pass word}",
            "{abcdefghijklmnopqrstuvwxyzabcdefg}",
            "${SSHA}",
        ] {
            assert!(!has_scheme_prefix(v.as_bytes()), "{v}");
        }
        for &v in SECRET_VECTORS {
            assert!(has_scheme_prefix(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn cleartext_and_unknown_schemes_are_not_hashed() {
        let values: &[&[u8]] = &[
            b"",
            b"secret",
            b"{",
            b"{}",
            b"{}secret",
            b"{SSHA",
            b" {SSHA}abc",
            b"{SSHA }abc",
            b"{CLEARTEXT}secret",
            b"{PBKDF2-SHA512}10000$abc$def",
            b"{SASL}user@realm",
            b"{K5KEY}",
            b"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$abc",
            b"$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
            b"\xff{SSHA}",
        ];
        for &v in values {
            assert!(!is_hashed(v), "{v:?}");
            assert!(StoredPassword::parse(v).is_none(), "{v:?}");
        }
    }

    #[test]
    fn malformed_values_do_not_parse() {
        let values: &[&str] = &[
            // empty payloads
            "{SSHA}",
            "{SHA}",
            "{CRYPT}",
            "{ARGON2}",
            // bad base64, wrong lengths
            "{SSHA}1UT5OJrjNCWlWwMftxKPIsWEeNOaPAH",
            "{SSHA}1UT5OJrjNCWlWwMftxKP!sWEeNOaPAH+",
            "{SSHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", // a bare SHA-1 digest: no salt
            "{SSHA512}5en6G6MezRroT3XKqkdPOmY/BfQ=",
            "{SHA}5en6G6MezRroT3XKqkdPOmY/Bf==",
            "{SHA}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=",
            "{SHA256}5en6G6MezRroT3XKqkdPOmY/BfQ=",
            "{MD5}Xr4ilOzQ4PCOq3aQ0qbu",
            "{SSHA} 1UT5OJrjNCWlWwMftxKPIsWEeNOaPAH+",
            // argon2: structure
            "{ARGON2}argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2x$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o$",
            "{ARGON2}$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1,keyid=abc$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            // argon2: numbers and limits
            "{ARGON2}$argon2id$v=19$m=+64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=7,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=65,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=9$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=1048576,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            // argon2: salt and digest
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIp",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2Fsd*NhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6o",
            "{ARGON2}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$+v0rf6ETYAIpqJIjJyARZ3W3zqJlkf+0TRXzsLHmR6",
            // crypt: unsupported methods
            "{CRYPT}saltTVLlQcbpF",
            "{CRYPT}$2x$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
            "{CRYPT}$7$CU..../....saltsalt$abc",
            // crypt: digest length and alphabet
            "{CRYPT}$y$j9T$saltsalt$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO",
            "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC/",
            "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC///",
            "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC/=",
            "{CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5s",
            "{CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO",
            "{CRYPT}$6$saltsalt",
            "{CRYPT}$6$saltsalt$",
            // crypt: salt and rounds
            "{CRYPT}$1$saltsaltx$9xy1btjgzLYfb7hivXtC//",
            "{CRYPT}$5$0123456789abcdefg$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "{CRYPT}$5$rounds=999$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "{CRYPT}$5$rounds=1000001$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "{CRYPT}$5$rounds=$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "{CRYPT}$5$rounds=99999999999999999999$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "{CRYPT}$5$rounds=5000",
            // bcrypt: cost, lengths, alphabet
            "{CRYPT}$2b$03$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
            "{CRYPT}$2b$16$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
            "{CRYPT}$2b$4$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
            "{CRYPT}$2b$+4$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
            "{CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIr",
            "{CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrWW",
            "{CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIr+",
            "{CRYPT}$2b$04$abcdefghijklmnopqrstu\u{e9}r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
        ];
        for &v in values {
            assert!(StoredPassword::parse(v.as_bytes()).is_none(), "{v}");
        }
        let not_utf8: &[&[u8]] = &[
            b"{SSHA}\xff\xfe",
            b"{CRYPT}$6$\xffsalt$abc",
            b"{ARGON2}$argon2id\x80",
        ];
        for &v in not_utf8 {
            assert!(StoredPassword::parse(v).is_none(), "{v:?}");
        }
    }

    #[test]
    fn padding_is_optional_in_base64() {
        let unpadded = SSHA256.trim_end_matches('=');
        assert!(parsed(unpadded).verify(b"secret"));
        let padded_argon2 = format!("{ARGON2ID}=");
        assert!(parsed(&padded_argon2).verify(b"secret"));
    }

    #[test]
    fn truncated_and_mangled_values_never_panic() {
        let mut checked = 0;
        for &v in SECRET_VECTORS {
            let bytes = v.as_bytes();
            for end in 0..bytes.len() {
                // Dropping only base64 padding leaves the same value.
                if v[..end].trim_end_matches('=') == v.trim_end_matches('=') {
                    continue;
                }
                if let Some(p) = StoredPassword::parse(&bytes[..end]) {
                    // Only argon2 and salted digests can lose bytes and still parse; the
                    // result must not accept the password.
                    assert!(!p.verify(b"secret"), "{v} cut at {end}");
                    checked += 1;
                }
            }
            for at in 0..bytes.len() {
                for replacement in [b'$', b'\0', 0xff, b'=', b',', b'9', b'}'] {
                    let mut mangled = bytes.to_vec();
                    mangled[at] = replacement;
                    if let Some(p) = StoredPassword::parse(&mangled) {
                        let _ = p.needs_rehash(&SMALL);
                        let _ = format!("{p:?}");
                    }
                    let _ = is_hashed(&mangled);
                }
            }
        }
        assert!(checked > 0);
    }

    #[test]
    fn debug_shows_the_scheme_only() {
        let expected = [
            (ARGON2ID, "StoredPassword({ARGON2}argon2id)"),
            (ARGON2I, "StoredPassword({ARGON2}argon2i)"),
            (SSHA, "StoredPassword({SSHA})"),
            (SSHA512, "StoredPassword({SSHA512})"),
            (SMD5, "StoredPassword({SMD5})"),
            (SHA, "StoredPassword({SHA})"),
            (MD5, "StoredPassword({MD5})"),
            (MD5_CRYPT, "StoredPassword({CRYPT}md5-crypt)"),
            (SHA256_CRYPT, "StoredPassword({CRYPT}sha256-crypt)"),
            (SHA512_CRYPT_ROUNDS, "StoredPassword({CRYPT}sha512-crypt)"),
            (BCRYPT_2Y, "StoredPassword({CRYPT}bcrypt)"),
            (YESCRYPT, "StoredPassword({CRYPT}yescrypt)"),
        ];
        for (v, debug) in expected {
            assert_eq!(format!("{:?}", parsed(v)), debug);
        }
        for &v in SECRET_VECTORS {
            let debug = format!("{:#?}", parsed(v));
            assert!(
                !debug.contains("salt") && !debug.contains("c2Fsd") && !debug.contains('$'),
                "{debug}"
            );
        }
        let dummy = StoredPassword::dummy(&SMALL).unwrap();
        assert_eq!(format!("{dummy:?}"), "StoredPassword({ARGON2}argon2id)");
    }

    #[test]
    fn errors_carry_no_secret() {
        let err = hash(b"", &SMALL).unwrap_err();
        assert_eq!(err.to_string(), "password is empty");
        let err = hash(&vec![b's'; MAX_PASSWORD_LEN + 1], &SMALL).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("sss"));
    }

    #[test]
    fn kept_memory_gives_the_same_results_as_fresh_memory() {
        let bigger = Argon2Params {
            memory_kib: 128,
            ..SMALL
        };
        // Keeps SMALL's memory; `bigger` runs on memory of its own.
        let mut memory = Argon2Memory::new(SMALL.memory_kib);
        let small_hash = hash_in(b"secret", &SMALL, &mut memory).unwrap();
        let big_hash = hash_in(b"secret", &bigger, &mut memory).unwrap();
        for _ in 0..2 {
            for stored in [&small_hash, &big_hash] {
                let p = parsed(stored);
                assert!(p.verify_in(b"secret", &mut memory));
                assert!(!p.verify_in(b"secreT", &mut memory));
                assert!(p.verify(b"secret"));
            }
            // Known vectors, after the memory has held other runs.
            for &v in SECRET_VECTORS {
                assert!(parsed(v).verify_in(b"secret", &mut memory), "{v}");
            }
        }
        assert_eq!(memory.blocks.len(), SMALL.memory_kib as usize);
    }

    #[test]
    fn dummy_matches_nothing_and_costs_the_same() {
        let dummy = StoredPassword::dummy(&SMALL).unwrap();
        assert!(!dummy.verify(b"secret"));
        assert!(!dummy.verify(b""));
        assert!(!dummy.needs_rehash(&SMALL));
        let StoredPassword::Argon2(h) = &dummy else {
            panic!("dummy is not argon2");
        };
        assert_eq!(h.params, SMALL);
        assert_eq!((h.salt.len(), h.hash.len()), (SALT_LEN, HASH_LEN));
        assert!(
            StoredPassword::dummy(&Argon2Params {
                parallelism: 0,
                ..SMALL
            })
            .is_err()
        );
    }

    #[test]
    fn generate_uses_the_unambiguous_alphabet() {
        for len in [0, 1, 20, 64, 65, 300] {
            let p = generate(len);
            assert_eq!(p.len(), len);
            assert!(p.bytes().all(|b| GENERATED_ALPHABET.contains(&b)), "{p}");
        }
        assert_eq!(GENERATED_ALPHABET.len(), 55);
        for c in b"0Oo1Iil" {
            assert!(!GENERATED_ALPHABET.contains(c));
        }
        assert_ne!(generate(20), generate(20));
        // Over many draws every character turns up.
        let many = try_generate(5000).unwrap();
        assert!(
            GENERATED_ALPHABET
                .iter()
                .all(|c| many.as_bytes().contains(c))
        );
    }

    #[test]
    fn validate_names_the_field_and_range() {
        assert!(Argon2Params::default().validate().is_ok());
        assert!(SMALL.validate().is_ok());
        // RFC 9106's first recommendation is the most we take.
        let rfc9106 = Argon2Params {
            memory_kib: 2 * 1024 * 1024,
            iterations: 1,
            parallelism: 4,
        };
        assert!(rfc9106.validate().is_ok());
        let cases = [
            (
                Argon2Params {
                    memory_kib: 7,
                    ..SMALL
                },
                "memory_kib must be between 8 (8 per lane) and 2097152, got 7",
            ),
            (
                Argon2Params {
                    memory_kib: 2097153,
                    ..SMALL
                },
                "memory_kib",
            ),
            (
                Argon2Params {
                    memory_kib: 1048576,
                    iterations: 3,
                    parallelism: 1,
                },
                "memory_kib * iterations must be at most 2097152, got 3145728",
            ),
            (
                Argon2Params {
                    memory_kib: 64,
                    parallelism: 9,
                    iterations: 1,
                },
                "memory_kib must be between 72",
            ),
            (
                Argon2Params {
                    iterations: 0,
                    ..SMALL
                },
                "iterations must be between 1 and 64, got 0",
            ),
            (
                Argon2Params {
                    iterations: 65,
                    ..SMALL
                },
                "iterations",
            ),
            (
                Argon2Params {
                    parallelism: 0,
                    ..SMALL
                },
                "parallelism must be between 1 and 64, got 0",
            ),
            (
                Argon2Params {
                    parallelism: 65,
                    memory_kib: 1024,
                    iterations: 1,
                },
                "parallelism",
            ),
        ];
        for (params, message) in cases {
            let err = params.validate().unwrap_err();
            assert!(err.starts_with(message), "{err}");
        }
    }

    #[test]
    fn params_deserialize_with_defaults_and_reject_unknown_keys() {
        let p: Argon2Params = toml::from_str("memory_kib = 65536").unwrap();
        assert_eq!(
            p,
            Argon2Params {
                memory_kib: 65536,
                ..Argon2Params::default()
            }
        );
        let p: Argon2Params =
            toml::from_str("memory_kib = 8\niterations = 1\nparallelism = 1").unwrap();
        assert_eq!(
            p,
            Argon2Params {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1
            }
        );
        let err = toml::from_str::<Argon2Params>("memory = 65536").unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }
}
