//! The per-address connection cap (`limits.max_connections_per_ip`).
//!
//! Counts open TCP connections by source (an IPv4 address, an IPv6 /64, as the bind
//! throttle keys them), so one host cannot take every slot of `max_connections`. A
//! source's count goes when its last connection closes: the map holds only sources with
//! a connection open, so it is bounded by `max_connections`. No sockets here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::identity::throttle::Source;

#[derive(Clone)]
pub struct PerIp {
    limit: usize,
    open: Arc<Mutex<HashMap<Source, usize>>>,
}

impl PerIp {
    pub fn new(limit: usize) -> PerIp {
        PerIp {
            limit,
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `peer`, held until the guard drops; None when
    /// that source already has `limit` open.
    pub fn admit(&self, peer: IpAddr) -> Option<Admitted> {
        let source = Source::of(Some(peer));
        let mut open = self.lock();
        let count = open.entry(source.clone()).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Admitted {
            per_ip: self.clone(),
            source,
        })
    }

    /// Sources with at least one connection open.
    pub fn sources(&self) -> usize {
        self.lock().len()
    }

    /// A panic elsewhere while holding the lock leaves a consistent map (each update is a
    /// single insert or decrement), so carry on with it rather than refuse everyone.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Source, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One admitted connection; dropping it gives the place back.
pub struct Admitted {
    per_ip: PerIp,
    source: Source,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.per_ip.lock();
        if let Some(count) = open.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_per_source_and_forgotten_when_closed() {
        let per_ip = PerIp::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = per_ip.admit(a).unwrap();
        let second = per_ip.admit(a).unwrap();
        assert!(per_ip.admit(a).is_none());
        let other = per_ip.admit(b).unwrap();
        drop(first);
        let again = per_ip.admit(a).unwrap();
        assert_eq!(per_ip.sources(), 2);
        drop((second, again, other));
        assert_eq!(per_ip.sources(), 0, "the map shrinks as connections close");
        // A refused attempt leaves nothing behind either.
        let per_ip = PerIp::new(1);
        let _held = per_ip.admit(a).unwrap();
        assert!(per_ip.admit(a).is_none());
        assert_eq!(per_ip.sources(), 1);
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let per_ip = PerIp::new(1);
        let _one = per_ip.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert!(per_ip.admit("2001:db8::2".parse().unwrap()).is_none());
        assert!(per_ip.admit("2001:db8:0:1::1".parse().unwrap()).is_some());
    }
}
