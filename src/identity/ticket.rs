//! One-time secrets: single-use, short-lived, kept in memory only as their SHA-256 (so
//! neither the process's memory nor a `Debug` print holds one that works), each carrying
//! what it stands for. The console's sign-in links for local administrators, who have no
//! password, are these. A restart forgets every one not yet used.
//!
//! Knows nothing of what a ticket stands for: that is the payload's business.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// Tickets outstanding at once; past this, issuing a new one drops the oldest.
const MAX_OUTSTANDING: usize = 64;

/// Random bytes in a secret: 256 bits.
const SECRET_BYTES: usize = 32;

/// Outstanding tickets, by the hash of their secret.
pub struct Tickets<T> {
    outstanding: Mutex<HashMap<[u8; 32], (OffsetDateTime, T)>>,
}

impl<T> Default for Tickets<T> {
    fn default() -> Self {
        Tickets {
            outstanding: Mutex::new(HashMap::new()),
        }
    }
}

/// A ticket just issued: its secret (shown to whoever asked, once) and when it lapses.
pub struct Issued {
    pub secret: String,
    pub expires: OffsetDateTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("secret", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct RandomFailed;

impl<T> Tickets<T> {
    /// A new ticket for `payload`, good until `now + lifetime`.
    pub fn issue(
        &self,
        payload: T,
        now: OffsetDateTime,
        lifetime: time::Duration,
    ) -> Result<Issued, RandomFailed> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|_| RandomFailed)?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let expires = now + lifetime;
        let mut map = self.lock();
        map.retain(|_, (until, _)| *until > now);
        if map.len() >= MAX_OUTSTANDING
            && let Some(oldest) = map.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(digest(&secret), (expires, payload));
        Ok(Issued { secret, expires })
    }

    /// What `secret` stands for, if it is an outstanding ticket that has not lapsed; it is
    /// used up either way.
    pub fn redeem(&self, secret: &str, now: OffsetDateTime) -> Option<T> {
        let wanted = digest(secret.trim());
        let mut map = self.lock();
        // Found by its hash, then compared in constant time, as token secrets are.
        let key = map.keys().find(|k| bool::from(k.ct_eq(&wanted))).copied()?;
        let (until, payload) = map.remove(&key)?;
        (until > now).then_some(payload)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (OffsetDateTime, T)>> {
        // A map of hashes stays usable after a panic elsewhere poisoned the lock.
        self.outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_good_once_and_only_until_it_lapses() {
        let tickets = Tickets::default();
        let now = OffsetDateTime::now_utc();
        let minute = time::Duration::minutes(1);
        let a = tickets.issue("a", now, minute).unwrap();
        assert!(!format!("{a:?}").contains(&a.secret));
        assert_eq!(a.secret.len(), 43);
        assert_eq!(tickets.redeem("wrong", now), None);
        assert_eq!(tickets.redeem(&a.secret, now), Some("a"));
        assert_eq!(tickets.redeem(&a.secret, now), None, "used up");
        let b = tickets.issue("b", now, minute).unwrap();
        assert_eq!(tickets.redeem(&b.secret, now + minute), None, "lapsed");
        assert_eq!(
            tickets.redeem(&b.secret, now),
            None,
            "used up by the late try"
        );
    }

    #[test]
    fn outstanding_tickets_are_bounded() {
        let tickets = Tickets::default();
        let now = OffsetDateTime::now_utc();
        let first = tickets.issue(0, now, time::Duration::hours(1)).unwrap();
        for i in 1..=MAX_OUTSTANDING {
            let later = now + time::Duration::seconds(i as i64);
            tickets.issue(i, later, time::Duration::hours(1)).unwrap();
        }
        assert_eq!(tickets.redeem(&first.secret, now), None, "the oldest went");
    }
}
