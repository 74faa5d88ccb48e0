//! Brute-force protection that cannot lock a victim out: failed binds are slowed per
//! (account, source address) and per source address, with growing delays, while a bind
//! with the right credentials is never held, whoever else is failing.
//!
//! A failure past the free allowance is answered only after a delay that doubles with each
//! further failure, up to a maximum; failures on one key queue behind each other, so
//! parallel guessing is no faster than serial. Records are forgotten after a quiet period,
//! and their number is bounded, so spraying addresses cannot grow memory without limit.
//! Pure bookkeeping: the caller sleeps, and passes the policy time in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failures on one (account, source) before delays start.
    pub free_failures: u32,
    /// Failures from one source (any account) before delays start: higher, for NAT.
    pub source_free_failures: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A key with no failure for this long starts afresh.
    pub forget_after: Duration,
    /// Keys tracked at once.
    pub max_tracked: usize,
}

/// Where a bind came from: an address (IPv6 by its /64, which one host can fill), or the
/// local socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Net(IpAddr),
    Local,
}

impl Source {
    pub fn of(peer: Option<IpAddr>) -> Source {
        match peer {
            None => Source::Local,
            Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                Source::Net(IpAddr::V6(prefix))
            }
            Some(IpAddr::V6(v6)) => Source::Net(IpAddr::V4(
                v6.to_ipv4_mapped()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            )),
            Some(ip) => Source::Net(ip),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Net(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Source::Net(ip) => write!(f, "{ip}"),
            Source::Local => f.write_str("ldapi"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Account { account: String, source: Source },
    Source(Source),
}

#[derive(Clone, Debug)]
struct Record {
    failures: u32,
    last: OffsetDateTime,
    /// Answers to failures on this key are held until then.
    until: OffsetDateTime,
}

/// What a failure costs.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    /// How long to hold the 49.
    pub hold: Duration,
    /// This failure made a key start delaying: worth an audit event.
    pub started: bool,
    pub failures: u32,
}

/// A key being slowed down now, for the admin view.
#[derive(Debug, PartialEq, Eq)]
pub struct Throttled {
    /// The bind DN, or empty for a whole source.
    pub account: String,
    pub source: String,
    pub failures: u32,
    pub until: OffsetDateTime,
}

pub struct Throttle {
    config: ThrottleConfig,
    records: Mutex<HashMap<Key, Record>>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// Note a failed bind of `account` from `source` at `now`.
    pub fn failed(&self, account: &str, source: &Source, now: OffsetDateTime) -> Failure {
        // Poisoned means a panic elsewhere mid-update; the counts are still counts, and
        // failing open here would switch the throttle off for good.
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        self.make_room(&mut records, now);
        let account_key = Key::Account {
            account: account.to_string(),
            source: source.clone(),
        };
        let a = self.count(&mut records, account_key, self.config.free_failures, now);
        let s = self.count(
            &mut records,
            Key::Source(source.clone()),
            self.config.source_free_failures,
            now,
        );
        let hold = a.hold.max(s.hold);
        Failure {
            hold,
            started: a.started || s.started,
            failures: a.failures,
        }
    }

    /// A successful bind: that account's record from that source goes. The source's own
    /// record stays: one user's success does not excuse a spray from their address.
    pub fn succeeded(&self, account: &str, source: &Source) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.remove(&Key::Account {
            account: account.to_string(),
            source: source.clone(),
        });
    }

    /// What is being slowed down at `now`, longest hold first.
    pub fn throttled(&self, now: OffsetDateTime) -> Vec<Throttled> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Throttled> = records
            .iter()
            .filter(|(key, r)| r.failures > self.free(key) && !self.forgotten(r, now))
            .map(|(key, r)| {
                let (account, source) = match key {
                    Key::Account { account, source } => (account.clone(), source.to_string()),
                    Key::Source(source) => (String::new(), source.to_string()),
                };
                Throttled {
                    account,
                    source,
                    failures: r.failures,
                    until: r.until,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.until
                .cmp(&a.until)
                .then_with(|| a.account.cmp(&b.account))
        });
        out
    }

    fn free(&self, key: &Key) -> u32 {
        match key {
            Key::Account { .. } => self.config.free_failures,
            Key::Source(_) => self.config.source_free_failures,
        }
    }

    fn forgotten(&self, r: &Record, now: OffsetDateTime) -> bool {
        now - r.last > self.config.forget_after && now >= r.until
    }

    fn count(
        &self,
        records: &mut HashMap<Key, Record>,
        key: Key,
        free: u32,
        now: OffsetDateTime,
    ) -> Failure {
        let record = records.entry(key).or_insert(Record {
            failures: 0,
            last: now,
            until: now,
        });
        if self.forgotten(record, now) {
            *record = Record {
                failures: 0,
                last: now,
                until: now,
            };
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
        let Some(over) = record.failures.checked_sub(free).filter(|n| *n > 0) else {
            return Failure {
                hold: Duration::ZERO,
                started: false,
                failures: record.failures,
            };
        };
        let delay = self.delay(over);
        record.until = record.until.max(now) + delay;
        let hold = Duration::try_from(record.until - now).unwrap_or(Duration::ZERO);
        Failure {
            hold,
            started: over == 1,
            failures: record.failures,
        }
    }

    /// The delay for the n-th failure past the allowance: base, doubling, capped.
    fn delay(&self, over: u32) -> Duration {
        let factor = 1u32
            .checked_shl(over.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.config
            .base_delay
            .saturating_mul(factor)
            .min(self.config.max_delay)
    }

    /// Keep the table within its bound: forgotten records go first, then the quietest half.
    fn make_room(&self, records: &mut HashMap<Key, Record>, now: OffsetDateTime) {
        // A failure adds up to two records.
        let fits = |records: &HashMap<Key, Record>| records.len() + 2 <= self.config.max_tracked;
        if fits(records) {
            return;
        }
        records.retain(|_, r| !self.forgotten(r, now));
        if fits(records) {
            return;
        }
        let mut lasts: Vec<OffsetDateTime> = records.values().map(|r| r.last).collect();
        lasts.sort_unstable();
        let cut = lasts[lasts.len() / 2];
        records.retain(|_, r| r.last > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            free_failures: 2,
            source_free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            forget_after: Duration::from_secs(600),
            max_tracked: 100,
        }
    }

    fn ip(s: &str) -> Source {
        Source::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn delays_grow_after_the_allowance_and_queue() {
        let t = Throttle::new(config());
        let now = OffsetDateTime::now_utc();
        let src = ip("192.0.2.1");
        let holds: Vec<u64> = (0..7)
            .map(|_| t.failed("uid=a", &src, now).hold.as_secs())
            .collect();
        // Free, free, then 1, 2, 4, 8, 8 seconds, each queued behind the one before.
        assert_eq!(holds, vec![0, 0, 1, 3, 7, 15, 23]);
        let later = now + Duration::from_secs(30);
        assert_eq!(t.failed("uid=a", &src, later).hold, Duration::from_secs(8));
    }

    #[test]
    fn others_are_not_slowed_and_success_clears() {
        let t = Throttle::new(config());
        let now = OffsetDateTime::now_utc();
        let (attacker, home) = (ip("192.0.2.1"), ip("198.51.100.7"));
        for _ in 0..4 {
            t.failed("uid=victim", &attacker, now);
        }
        assert_eq!(
            t.failed("uid=victim", &home, now).hold,
            Duration::ZERO,
            "the victim elsewhere"
        );
        let listed = t.throttled(now);
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].account.as_str(), listed[0].source.as_str()),
            ("uid=victim", "192.0.2.1")
        );
        t.succeeded("uid=victim", &attacker);
        assert!(t.throttled(now).is_empty());
    }

    #[test]
    fn a_spraying_source_is_slowed_whatever_the_account() {
        let t = Throttle::new(config());
        let now = OffsetDateTime::now_utc();
        let holds: Vec<bool> = (0..7)
            .map(|i| {
                t.failed(
                    &format!("uid=u{i}"),
                    &ip(&format!("2001:db8:1:2::{i:x}")),
                    now,
                )
                .hold
                    > Duration::ZERO
            })
            .collect();
        assert_eq!(
            holds,
            vec![false, false, false, false, false, true, true],
            "one /64 is one source"
        );
        let listed = t.throttled(now);
        assert_eq!(listed[0].source, "2001:db8:1:2::/64");
        assert_eq!(listed[0].account, "");
        assert_eq!(
            Source::of(Some("::ffff:192.0.2.9".parse().unwrap())),
            ip("192.0.2.9")
        );
    }

    #[test]
    fn quiet_keys_are_forgotten_and_memory_is_bounded() {
        let t = Throttle::new(config());
        let now = OffsetDateTime::now_utc();
        for _ in 0..3 {
            t.failed("uid=a", &Source::Local, now);
        }
        assert_eq!(t.throttled(now).len(), 1);
        let later = now + Duration::from_secs(3600);
        assert!(t.throttled(later).is_empty());
        assert_eq!(
            t.failed("uid=a", &Source::Local, later).failures,
            1,
            "starts afresh"
        );
        for i in 0..1000u32 {
            let src = Source::Net(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
            t.failed("uid=x", &src, later + Duration::from_millis(u64::from(i)));
        }
        assert!(t.records.lock().unwrap().len() <= 100);
    }
}
