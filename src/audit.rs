//! The audit trail: one typed record for each thing worth answering for later (binds with
//! their outcome and reason, token generation, rotation, revocation and exposure, password
//! changes, role, membership and management changes), each naming the actor, the target,
//! the token, the peer and the transport, never a secret.
//!
//! Every record is logged (an `event = "..."` line, as before) and kept in the store, where
//! the API lists it with filters. Records made by a write (a token minted, a member added)
//! go into that write's own transaction ([`write`]) and are logged once it commits; records
//! of things that write nothing (binds, throttling) go through the [`Journal`], which
//! stores them in batches, a second apart, with repeats of one bind counted in one record,
//! so a bind flood costs a commit a second, not one per bind. The trail is bounded by age
//! and count (`[audit]`), pruned as the journal runs. No protocol types here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::AuditLimits;
use crate::directory::dn::Dn;
use crate::directory::time::Clock;
use crate::store::{Store, StoreError, Writer};

/// What happened.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A bind or an HTTP authentication, with its outcome and, when it failed, why.
    #[default]
    Bind,
    /// Failed binds started being slowed down.
    BindThrottled,
    TokenGenerated,
    TokenRotated,
    TokenRevoked,
    /// A valid token crossed the wire readable (a bind without TLS).
    TokenExposed,
    PasswordChanged,
    /// A role was created, redefined or deleted.
    RoleChanged,
    /// The members of a group or role changed.
    MembershipChanged,
    /// Who manages an account (`entryManagedBy`) changed.
    ManagerChanged,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Bind,
        Kind::BindThrottled,
        Kind::TokenGenerated,
        Kind::TokenRotated,
        Kind::TokenRevoked,
        Kind::TokenExposed,
        Kind::PasswordChanged,
        Kind::RoleChanged,
        Kind::MembershipChanged,
        Kind::ManagerChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::BindThrottled => "bind-throttled",
            Kind::TokenGenerated => "token-generated",
            Kind::TokenRotated => "token-rotated",
            Kind::TokenRevoked => "token-revoked",
            Kind::TokenExposed => "token-exposed",
            Kind::PasswordChanged => "password-changed",
            Kind::RoleChanged => "role-changed",
            Kind::MembershipChanged => "membership-changed",
            Kind::ManagerChanged => "manager-changed",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Where a request came from: the peer's address (without its port; empty on the local
/// socket) and the transport (`ldaps`, `starttls`, `ldap`, `ldapi uid=U gid=G`, `https`,
/// or `internal` for the server's own work).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub peer: String,
    pub transport: String,
}

impl Origin {
    pub fn new(peer: Option<std::net::IpAddr>, transport: impl Into<String>) -> Origin {
        Origin {
            peer: peer.map(|p| p.to_string()).unwrap_or_default(),
            transport: transport.into(),
        }
    }

    /// The server's own work (start-up, background jobs, the offline commands).
    pub fn internal() -> Origin {
        Origin {
            peer: String::new(),
            transport: "internal".into(),
        }
    }
}

/// One audit record. Empty fields are left out of the stored and listed form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// RFC 3339, set when the record is made.
    #[serde(default)]
    pub time: String,
    pub kind: Kind,
    /// `success` or `failure` (binds).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome: String,
    /// The LDAP result code of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    /// Who acted: a DN (for a bind, the DN it named).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
    /// What it acted on: a DN.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// The token concerned (its public id, never the secret).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_id: String,
    /// The token a rotation replaced.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub old_token_id: String,
    /// Why a bind failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What else is worth knowing: a token's intent, scope and expiry; members added.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transport: String,
    /// How many times this happened within the second the record covers (binds).
    #[serde(default = "one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

impl Event {
    pub fn new(kind: Kind) -> Event {
        Event {
            kind,
            count: 1,
            ..Event::default()
        }
    }

    pub fn actor(mut self, dn: impl ToString) -> Event {
        self.actor = dn.to_string();
        self
    }

    pub fn target(mut self, dn: impl ToString) -> Event {
        self.target = dn.to_string();
        self
    }

    pub fn token(mut self, id: impl Into<String>) -> Event {
        self.token_id = id.into();
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = detail.into();
        self
    }

    /// Stamped with the time and where it came from.
    fn at(mut self, now: OffsetDateTime, origin: &Origin) -> Event {
        self.time = crate::directory::time::rfc3339(now);
        if self.peer.is_empty() {
            self.peer = origin.peer.clone();
        }
        if self.transport.is_empty() {
            self.transport = origin.transport.clone();
        }
        self
    }

    /// The log line, with the field names the log has always had. The peer and transport
    /// come from the connection's span.
    fn log(&self) {
        let kind = self.kind;
        let event = kind.as_str();
        let (actor, target, token_id) = (&self.actor, &self.target, &self.token_id);
        match kind {
            Kind::Bind => match self.code {
                None => tracing::info!(
                    event,
                    outcome = self.outcome.as_str(),
                    dn = %actor,
                    token_id = token_id.as_str(),
                ),
                Some(code) => tracing::info!(
                    event,
                    outcome = self.outcome.as_str(),
                    code,
                    reason = self.reason.as_str(),
                    dn = %actor,
                    token_id = token_id.as_str(),
                ),
            },
            Kind::BindThrottled => tracing::warn!(
                event,
                account = %target,
                source = %self.peer,
                failures = %self.detail,
                "failed binds are being slowed down"
            ),
            Kind::TokenExposed => tracing::warn!(
                event,
                token_id = %token_id,
                account = %target,
                detail = %self.detail,
                "a valid token was sent in a bind without TLS; rotate it"
            ),
            Kind::TokenGenerated | Kind::TokenRevoked => tracing::info!(
                event,
                token_id = %token_id,
                account = %target,
                actor = %actor,
                detail = %self.detail,
            ),
            Kind::TokenRotated => tracing::info!(
                event,
                account = %target,
                old_token_id = %self.old_token_id,
                token_id = %token_id,
                actor = %actor,
                detail = %self.detail,
            ),
            Kind::PasswordChanged
            | Kind::RoleChanged
            | Kind::MembershipChanged
            | Kind::ManagerChanged => {
                tracing::info!(event, dn = %target, actor = %actor, detail = %self.detail)
            }
        }
    }
}

/// Record `event`, made by a write, in that write's transaction: stored with it, and
/// logged once it commits. Nothing is recorded of a write that fails.
pub fn write(
    w: &mut Writer<'_>,
    now: OffsetDateTime,
    origin: &Origin,
    event: Event,
) -> Result<(), StoreError> {
    let event = event.at(now, origin);
    w.append_audit(micros(now), &encode(&event))?;
    w.on_commit(move || event.log());
    Ok(())
}

/// Records of what no write stands behind (binds, throttling), on their way to the store.
#[derive(Clone, Default)]
pub struct Journal {
    inner: Arc<Pending>,
}

#[derive(Default)]
struct Pending {
    batch: Mutex<Batch>,
    wake: Notify,
    /// Records dropped because the batch was full (the store could not keep up).
    dropped: AtomicU64,
}

#[derive(Default)]
struct Batch {
    events: Vec<(u64, Event)>,
    /// Where a repeat of a record already in the batch is counted.
    repeats: HashMap<String, usize>,
}

/// Records held for the next batch, at most; past this they are logged but not stored.
const MAX_PENDING: usize = 10_000;
/// How often the journal writes its batch.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Records pruned in one transaction, at most.
const PRUNE_BUDGET: u64 = 10_000;
/// How often the trail's extent is checked against its limits.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// After a failed write, the first wait before the next, and the longest.
const RETRY_AFTER: Duration = Duration::from_secs(5);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl Journal {
    /// Log `event` now and keep it for the store.
    pub fn push(&self, now: OffsetDateTime, origin: &Origin, event: Event) {
        let event = event.at(now, origin);
        event.log();
        // Counts stay counts after a panic elsewhere.
        let mut batch = self
            .inner
            .batch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = repeat_key(&event);
        if let Some(&at) = batch.repeats.get(&key)
            && let Some((_, held)) = batch.events.get_mut(at)
        {
            held.count += 1;
            return;
        }
        if batch.events.len() >= MAX_PENDING {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let at = batch.events.len();
        batch.repeats.insert(key, at);
        batch.events.push((micros(now), event));
        if batch.events.len() == MAX_PENDING / 2 {
            self.inner.wake.notify_one();
        }
    }

    /// Records not stored because the store fell behind, since the start.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Store what is pending now, in one transaction. Records a failed write held are
    /// logged already, and counted as dropped.
    pub async fn flush(&self, store: &Store) -> Result<(), StoreError> {
        let events = {
            let mut batch = self
                .inner
                .batch
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            batch.repeats.clear();
            std::mem::take(&mut batch.events)
        };
        if events.is_empty() {
            return Ok(());
        }
        let held = events.len() as u64;
        let stored = store
            .write(move |w| {
                for (at, event) in &events {
                    w.append_audit(*at, &encode(event))?;
                }
                Ok::<_, StoreError>(())
            })
            .await;
        if stored.is_err() {
            self.inner.dropped.fetch_add(held, Ordering::Relaxed);
        }
        stored
    }

    /// Until `shutdown`: store the pending records every second, and prune the trail to
    /// `limits` once a minute when it has grown past them; at shutdown, store what is left.
    /// A store that refuses a write (a full disk) is left alone for a while, longer each
    /// time, so the journal adds no write to a store in trouble.
    pub async fn run(
        self,
        store: Store,
        limits: AuditLimits,
        clock: Clock,
        shutdown: CancellationToken,
    ) {
        let mut wait = FLUSH_EVERY;
        let mut pruned_at = tokio::time::Instant::now();
        loop {
            let stopping = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(wait) => false,
                () = self.inner.wake.notified() => false,
            };
            match self.flush(&store).await {
                Ok(()) => wait = FLUSH_EVERY,
                Err(e) => {
                    wait = (wait * 2).clamp(RETRY_AFTER, MAX_RETRY_AFTER);
                    tracing::warn!(
                        error = %e,
                        retry_in = ?wait,
                        "storing audit records failed; they are in the log only"
                    );
                }
            }
            if stopping {
                return;
            }
            if pruned_at.elapsed() < PRUNE_EVERY || wait != FLUSH_EVERY {
                continue;
            }
            pruned_at = tokio::time::Instant::now();
            let cutoff = clock
                .now()
                .checked_sub(
                    time::Duration::try_from(limits.max_age).unwrap_or(time::Duration::MAX),
                )
                .map_or(0, micros);
            match store.audit_due(cutoff, limits.max_records) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the audit trail's extent failed");
                    continue;
                }
            }
            let pruned = store
                .write(move |w| w.prune_audit(cutoff, limits.max_records, PRUNE_BUDGET))
                .await;
            if let Err(e) = pruned {
                tracing::warn!(error = %e, "pruning the audit trail failed");
            }
        }
    }
}

/// What a listing asks for; every part that is set must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub kinds: Vec<Kind>,
    /// The actor or the target.
    pub account: Option<Dn>,
    pub actor: Option<Dn>,
    pub token: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

impl Filter {
    pub fn matches(&self, e: &Event) -> bool {
        let same = |text: &str, dn: &Dn| Dn::parse(text).is_ok_and(|d| &d == dn);
        (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self
                .account
                .as_ref()
                .is_none_or(|dn| same(&e.actor, dn) || same(&e.target, dn))
            && self.actor.as_ref().is_none_or(|dn| same(&e.actor, dn))
            && self.token.as_ref().is_none_or(|t| {
                e.token_id.eq_ignore_ascii_case(t) || e.old_token_id.eq_ignore_ascii_case(t)
            })
    }
}

/// A page of records, newest first, and where the next page starts (an opaque cursor).
pub struct Page {
    pub events: Vec<Event>,
    pub next: Option<String>,
}

/// Records matching `filter` that `may_see` lets through, newest first, at most `limit`,
/// starting after `cursor` (from a previous page).
pub fn list(
    store: &Store,
    filter: &Filter,
    cursor: Option<&str>,
    limit: usize,
    may_see: impl Fn(&Event) -> bool,
) -> Result<Page, StoreError> {
    let before = cursor.and_then(parse_cursor);
    let since = filter.since.map_or(0, micros);
    let until = filter.until.map_or(u64::MAX, micros);
    let keep = |raw: &[u8]| decode(raw).is_some_and(|e| filter.matches(&e) && may_see(&e));
    let (rows, more) = store.audit_page(since, until, before, limit, keep)?;
    let next = more
        .then(|| rows.last().map(|((t, s), _)| format!("{t}.{s}")))
        .flatten();
    Ok(Page {
        events: rows.iter().filter_map(|(_, raw)| decode(raw)).collect(),
        next,
    })
}

fn parse_cursor(text: &str) -> Option<(u64, u64)> {
    let (t, s) = text.split_once('.')?;
    Some((t.parse().ok()?, s.parse().ok()?))
}

/// Bind records that differ only in time are counted in one.
fn repeat_key(e: &Event) -> String {
    if e.kind != Kind::Bind {
        // Unique: never counted together.
        return format!("\u{0}{}", e.time) + &uuid::Uuid::now_v7().to_string();
    }
    format!(
        "{}\u{0}{:?}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        e.outcome, e.code, e.actor, e.target, e.token_id, e.reason, e.peer, e.transport, e.detail
    )
}

fn micros(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(0)
}

fn encode(e: &Event) -> Vec<u8> {
    // A struct of strings and numbers always serialises.
    serde_json::to_vec(e).unwrap_or_default()
}

fn decode(raw: &[u8]) -> Option<Event> {
    serde_json::from_slice(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn records_round_trip_and_filter() {
        let origin = Origin::new(Some("192.0.2.1".parse().unwrap()), "https");
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let e = Event::new(Kind::TokenGenerated)
            .actor("uid=alice,ou=people,dc=example,dc=com")
            .target("uid=nas01,ou=services,dc=example,dc=com")
            .token("ABCDEF123456")
            .at(now, &origin);
        let back = decode(&encode(&e)).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.peer, "192.0.2.1");
        let dn = |s: &str| Some(Dn::parse(s).unwrap());
        let f = Filter {
            account: dn("UID=nas01,ou=services,dc=example,dc=com"),
            ..Filter::default()
        };
        assert!(f.matches(&e));
        let f = Filter {
            actor: dn("uid=nas01,ou=services,dc=example,dc=com"),
            ..Filter::default()
        };
        assert!(!f.matches(&e), "nas01 is the target, not the actor");
        let f = Filter {
            kinds: vec![Kind::Bind],
            ..Filter::default()
        };
        assert!(!f.matches(&e));
        let f = Filter {
            token: Some("abcdef123456".into()),
            ..Filter::default()
        };
        assert!(f.matches(&e));
    }

    #[tokio::test]
    async fn repeated_binds_are_counted_in_one_record_and_the_trail_is_bounded() {
        let schema = crate::directory::schema::Schema::shipped().unwrap();
        let store = Store::in_memory(&schema, &[]).unwrap();
        let journal = Journal::default();
        let origin = Origin::new(Some("127.0.0.1".parse().unwrap()), "ldaps");
        let now = OffsetDateTime::now_utc();
        let bind = || {
            let mut e = Event::new(Kind::Bind)
                .actor("dn=token")
                .token("ABCDEF123456");
            e.outcome = "success".into();
            e
        };
        for _ in 0..5 {
            journal.push(now, &origin, bind());
        }
        let mut failed = bind();
        failed.outcome = "failure".into();
        failed.code = Some(49);
        journal.push(now, &origin, failed);
        journal.flush(&store).await.unwrap();
        let page = list(&store, &Filter::default(), None, 10, |_| true).unwrap();
        assert_eq!(page.events.len(), 2);
        let counts: Vec<u64> = page.events.iter().map(|e| e.count).collect();
        assert!(counts.contains(&5) && counts.contains(&1), "{counts:?}");
        // Paging: one at a time, newest first, then nothing more.
        let first = list(&store, &Filter::default(), None, 1, |_| true).unwrap();
        let next = first.next.clone().unwrap();
        let second = list(&store, &Filter::default(), Some(&next), 1, |_| true).unwrap();
        assert_eq!(second.events.len(), 1);
        assert_ne!(first.events, second.events);
        assert!(second.next.is_none());
        // Bounded by count.
        for i in 0..10 {
            journal.push(now, &origin, bind().token(format!("T{i}")));
        }
        journal.flush(&store).await.unwrap();
        let pruned = store.write(|w| w.prune_audit(0, 4, 100)).await.unwrap();
        assert_eq!(pruned, 8);
        let page = list(&store, &Filter::default(), None, 100, |_| true).unwrap();
        assert_eq!(page.events.len(), 4);
        assert!(
            !store.audit_due(0, 4).unwrap(),
            "nothing to prune: no write"
        );
        assert!(store.audit_due(0, 3).unwrap());
        assert!(store.audit_due(micros(now) + 1, 4).unwrap());
        // And by age.
        let pruned = store
            .write(move |w| w.prune_audit(micros(now) + 1, 100, 100))
            .await
            .unwrap();
        assert_eq!(pruned, 4);
    }
}
