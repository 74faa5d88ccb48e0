//! Per-connection protocol state: who is bound, over what transport, and the paged-search
//! cookies this connection has been issued.
//!
//! Owned by the connection task; operations in flight get a cheap snapshot. No I/O.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::directory::dn::Dn;
use crate::dit::caller::Principal;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
    Ldapi { uid: u32, gid: u32 },
}

impl Transport {
    /// Safe to carry credentials: TLS or a local socket.
    pub fn is_protected(&self) -> bool {
        !matches!(self, Transport::Plain)
    }
}

/// What the TLS handshake verified about the client, for SASL EXTERNAL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClientCert {
    /// No certificate: plain LDAP, LDAPI, or a TLS client that sent none.
    #[default]
    Absent,
    /// A certificate that chained to `tls.client_ca`, by its subject.
    Verified(Dn),
    /// A verified certificate whose subject has no LDAP string form (a value that is not
    /// a string): it cannot name an entry.
    Unnamed,
}

/// The paged searches a connection has open: cookies issued and not yet used, plus new
/// paged searches running their first page. A cookie is good for one use on this
/// connection. Their number is capped (`limits.max_paged_searches_per_connection`): a new
/// paged search past it gets 53, as in 389-ds. A search frees its place when it ends, when
/// the client sends size 0 with the cookie (RFC 2696 §3), when the identity changes (the
/// cookies are bound to it), and with the connection. A continuation racing a new search
/// can overshoot the cap by the operations in flight, no more.
#[derive(Debug)]
pub struct PagedCookies {
    issued: VecDeque<(Vec<u8>, Option<Remaining>)>,
    starting: usize,
    limit: usize,
}

/// Until the connection sets its configured limit.
const DEFAULT_PAGED_LIMIT: usize = 16;

impl Default for PagedCookies {
    fn default() -> Self {
        PagedCookies {
            issued: VecDeque::new(),
            starting: 0,
            limit: DEFAULT_PAGED_LIMIT,
        }
    }
}

impl PagedCookies {
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// A place for a new paged search, held until the returned guard drops (by then its
    /// cookie, if any, is issued); None when the connection has as many open as allowed.
    pub fn begin(paged: &Arc<Mutex<PagedCookies>>) -> Option<PagedStart> {
        let mut this = paged.lock().unwrap_or_else(PoisonError::into_inner);
        if this.issued.len() + this.starting >= this.limit {
            return None;
        }
        this.starting += 1;
        Some(PagedStart(paged.clone()))
    }

    /// Issue `cookie`, with the candidates its search has still to examine, if kept.
    pub fn issue(&mut self, cookie: Vec<u8>, remaining: Option<Remaining>) {
        self.issued.push_back((cookie, remaining));
    }

    /// Consume `cookie`: None if it was never issued here or was already used; otherwise
    /// the candidates kept with it, if any.
    pub fn take(&mut self, cookie: &[u8]) -> Option<Option<Remaining>> {
        let i = self.issued.iter().position(|(c, _)| c == cookie)?;
        self.issued.remove(i).map(|(_, remaining)| remaining)
    }

    /// Forget every issued cookie.
    pub fn clear(&mut self) {
        self.issued.clear();
    }

    /// Paged searches open now.
    pub fn open(&self) -> usize {
        self.issued.len() + self.starting
    }
}

/// The candidate ids a paged search has not examined yet, ascending, as planned at one
/// store generation: the next page starts from them instead of planning the search
/// again, which would make paging through N entries cost O(N²/page). Every list held
/// counts against a process-wide budget, so open paged searches cannot hold unbounded
/// memory; past it, pages are planned afresh.
#[derive(Debug)]
pub struct Remaining {
    pub ids: Vec<u64>,
    pub generation: u64,
    budget: Arc<AtomicUsize>,
}

/// Candidate ids all open paged searches may hold at once (8 bytes each).
pub const MAX_REMAINING_IDS: usize = 4 << 20;

impl Remaining {
    /// Keep `ids`, if the budget has room for them.
    pub fn keep(budget: &Arc<AtomicUsize>, ids: Vec<u64>, generation: u64) -> Option<Remaining> {
        let n = ids.len();
        let fits = budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n)
                    .filter(|&total| total <= MAX_REMAINING_IDS)
            })
            .is_ok();
        fits.then(|| Remaining {
            ids,
            generation,
            budget: budget.clone(),
        })
    }
}

impl Drop for Remaining {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.ids.len(), Ordering::Relaxed);
    }
}

/// A new paged search's place, from [`PagedCookies::begin`].
pub struct PagedStart(Arc<Mutex<PagedCookies>>);

impl Drop for PagedStart {
    fn drop(&mut self) {
        let mut paged = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        paged.starting = paged.starting.saturating_sub(1);
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub transport: Transport,
    /// The client's address; None on the LDAPI socket.
    pub peer: Option<std::net::IpAddr>,
    pub client_cert: ClientCert,
    pub paged: Arc<Mutex<PagedCookies>>,
    /// Random per connection; binds paged cookies to it.
    pub nonce: [u8; 16],
    /// Where the connection comes from, for the audit trail.
    pub origin: crate::audit::Origin,
}

impl Session {
    pub fn new(transport: Transport, peer: Option<std::net::IpAddr>) -> Session {
        let mut nonce = [0u8; 16];
        // A failure leaves a zero nonce: cookies are then still MAC-protected, only not
        // bound to this connection. getrandom does not fail on Linux once seeded.
        let _ = getrandom::fill(&mut nonce);
        let name = match transport {
            Transport::Plain => "ldap".to_string(),
            Transport::Tls => "ldaps".to_string(),
            Transport::Ldapi { uid, gid } => format!("ldapi uid={uid} gid={gid}"),
        };
        Session {
            origin: crate::audit::Origin::new(peer, name),
            principal: Principal::Anonymous,
            transport,
            peer,
            client_cert: ClientCert::Absent,
            paged: Arc::new(Mutex::new(PagedCookies::default())),
            nonce,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paged_searches_are_capped_and_freed() {
        let paged = Arc::new(Mutex::new(PagedCookies::default()));
        paged.lock().unwrap().set_limit(2);
        let first = PagedCookies::begin(&paged).unwrap();
        paged.lock().unwrap().issue(b"a".to_vec(), None);
        drop(first);
        let second = PagedCookies::begin(&paged).unwrap();
        assert!(
            PagedCookies::begin(&paged).is_none(),
            "one issued, one starting"
        );
        drop(second);
        assert_eq!(
            paged.lock().unwrap().open(),
            1,
            "a search with one page holds none"
        );
        assert!(paged.lock().unwrap().take(b"a").is_some());
        assert!(
            paged.lock().unwrap().take(b"a").is_none(),
            "good for one use"
        );
        assert_eq!(paged.lock().unwrap().open(), 0);
        let _a = PagedCookies::begin(&paged).unwrap();
        let _b = PagedCookies::begin(&paged).unwrap();
        assert!(PagedCookies::begin(&paged).is_none());
    }

    #[test]
    fn kept_candidates_count_against_the_budget_until_dropped() {
        let budget = Arc::new(AtomicUsize::new(0));
        let big = Remaining::keep(&budget, vec![1; MAX_REMAINING_IDS - 10], 7).unwrap();
        assert!(Remaining::keep(&budget, vec![2; 11], 7).is_none(), "over");
        let small = Remaining::keep(&budget, vec![3; 10], 7).unwrap();
        assert_eq!(budget.load(Ordering::Relaxed), MAX_REMAINING_IDS);
        drop(big);
        drop(small);
        assert_eq!(budget.load(Ordering::Relaxed), 0);
    }
}
