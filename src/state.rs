//! The shared state every front end (LDAP, and what comes after it) serves from, and the
//! runtime services around the rules that need it: password hashing on the bounded pool,
//! recording token use in the background, marking a token exposed.
//!
//! Cheap to clone, passed in, never global. The rules themselves live in `dit`: they are
//! synchronous and see a transaction, a `Policy` and the time, never this struct.

use std::sync::Arc;

use ldap3_proto::proto::LdapResultCode;

use crate::config::Config;
use crate::directory::dn::Dn;
use crate::directory::schema::Schema;
use crate::directory::time::{Clock, generalized};
use crate::dit::caller::{Policy, Principal, RightsCache};
use crate::dit::command::{self, Command, Op, Outcome};
use crate::dit::{DitError, credentials as token};
use crate::identity::hashers::{Hashers, HashersError};
use crate::identity::password;
use crate::store::{Store, StoreError};

/// Shared server state: cheap to clone, passed in, never global.
#[derive(Clone)]
pub struct State {
    pub config: Arc<Config>,
    pub schema: Arc<Schema>,
    pub store: Store,
    /// Every argon2 hash and verification runs here: a bounded queue and low-priority
    /// threads, so a bind flood cannot starve other operations.
    pub hashers: Hashers,
    /// Candidate ids held by open paged searches, against `session::MAX_REMAINING_IDS`.
    pub paged_ids: Arc<std::sync::atomic::AtomicUsize>,
    /// Key for paged-results cookie MACs; random per process.
    pub cookie_key: Arc<[u8; 32]>,
    /// A valid hash to verify against when a bind names no password-bearing entry, so
    /// that failures take the same time whatever the cause.
    pub decoy_hash: Arc<String>,
    /// The server's own process uid: always a local administrator on LDAPI.
    pub own_uid: u32,
    /// Policy time (token and account expiry); tests move it forward.
    pub clock: Clock,
    /// When each token's last use was written, to write it at most once a minute.
    pub token_uses: TokenUses,
    /// Each identity's roles, derived once per change of the directory.
    pub rights: RightsCache,
    /// Failed binds, to slow guessing down.
    pub throttle: Arc<crate::identity::throttle::Throttle>,
    /// Cancelled when the server shuts down, so nothing waits on a held answer then.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Audit records of what writes nothing (binds), on their way to the store.
    pub audit: crate::audit::Journal,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This server's part in a cluster, when `[cluster]` is configured: writes then go
    /// through its Raft log.
    pub cluster: Option<crate::cluster::Cluster>,
    /// The web console's one-time sign-in links for local administrators (minted over
    /// LDAPI, redeemed over HTTPS), and the identity each signs in as.
    pub sign_in_links: Arc<crate::identity::ticket::Tickets<crate::dit::caller::Principal>>,
}

pub type TokenUses = Arc<std::sync::Mutex<std::collections::HashMap<String, time::OffsetDateTime>>>;

/// Tokens whose last write is remembered; past this, entries older than a minute go.
const MAX_REMEMBERED_USES: usize = 100_000;

impl State {
    /// The refusal for binds and searches when this server is a cluster member cut off
    /// from its cluster (52, so clients fail over to another server); None otherwise.
    pub fn cut_off(&self) -> Option<DitError> {
        self.cluster.as_ref().and_then(|c| c.refusal())
    }

    /// Now, as generalizedTime, by the policy clock.
    pub fn now(&self) -> String {
        generalized(self.clock.now())
    }

    /// What the rules need besides a transaction, as of now.
    pub fn policy(&self) -> Policy {
        Policy::new(
            self.config.clone(),
            self.schema.clone(),
            self.rights.clone(),
            self.clock.now(),
        )
    }

    /// Hash cleartext `userPassword` values; already-hashed values are kept as they are.
    pub async fn hash_passwords(&self, values: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, DitError> {
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            if password::is_hashed(&v) {
                out.push(v);
                continue;
            }
            out.push(self.hash_password(v).await?.into_bytes());
        }
        Ok(out)
    }

    /// argon2id of `cleartext`, on the hashing pool.
    pub async fn hash_password(&self, cleartext: Vec<u8>) -> Result<String, DitError> {
        let params = self.config.argon2;
        let hashed = self
            .hashers
            .run(move |memory| password::hash_in(&cleartext, &params, memory))
            .await
            .map_err(hashers_failed)?;
        hashed.map_err(|e| match e {
            password::PasswordError::Empty | password::PasswordError::TooLong => DitError::new(
                LdapResultCode::ConstraintViolation,
                format!("userPassword: {e}"),
            ),
            other => {
                tracing::error!(error = %other, "password hashing failed");
                DitError::other("password hashing failed")
            }
        })
    }

    /// A command as `principal`, at the policy clock's now.
    pub fn command(&self, principal: &Principal, op: Op) -> Command {
        Command::new(principal, self.clock.now(), op)
    }

    /// Run a write: the one entry point every front end's writes go through. A single
    /// server applies the command at once, in a write transaction on the store (no other
    /// cost); a cluster member commits it through the Raft log first (forwarded to the
    /// leader when this node is not), and answers once this node has applied it, so a
    /// read here afterwards sees it. The outcome, or why the rules refused it.
    pub async fn submit(&self, command: Command) -> Result<Outcome, DitError> {
        if let Some(cluster) = &self.cluster {
            return cluster.submit(command).await;
        }
        let policy = self.policy();
        self.store
            .write(move |w| command::apply(w, &policy, &command))
            .await
    }

    /// Note a use of the token: `tokenLastUsed` (and, for extend-on-use tokens, a later
    /// `tokenExpires`), written at most once a minute per token by the policy clock, in the
    /// background, so binds never wait on a write. A cluster member forwards them in
    /// batches (`cluster.token_use_flush`), merged with the latest use winning.
    pub fn record_token_use(&self, valid: &token::Valid) {
        let now = self.clock.now();
        {
            // A map of timestamps stays usable after a panic elsewhere poisoned the lock.
            let mut uses = self
                .token_uses
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if uses
                .get(&valid.id)
                .is_some_and(|t| now - *t < token::USE_RECORDED_EVERY)
            {
                return;
            }
            if uses.len() >= MAX_REMEMBERED_USES {
                uses.retain(|_, t| now - *t < token::USE_RECORDED_EVERY);
            }
            // Still full of recent uses: skip recording rather than grow without bound.
            if uses.len() >= MAX_REMEMBERED_USES {
                return;
            }
            uses.insert(valid.id.clone(), now);
        }
        // A cluster member gathers uses and forwards them to the leader in batches.
        if let Some(cluster) = &self.cluster {
            cluster.record_token_use(&valid.id, now);
            return;
        }
        let state = self.clone();
        let uses = vec![(valid.id.clone(), now.unix_timestamp_nanos())];
        tokio::spawn(async move {
            let command = Command::server(now, Op::RecordUses { uses });
            if let Err(e) = state.submit(command).await {
                tracing::warn!(error = %e.message, "recording token use failed");
            }
        });
    }

    /// A token sent in a simple bind over an unprotected connection, which was refused with
    /// 13: if it is valid, its secret has been readable on the wire. Logged
    /// (`token-exposed`, with the id, never the secret) and stamped `tokenExposed`, or
    /// revoked when `tokens.revoke_on_cleartext` is on (see `token::mark_exposed`).
    pub async fn token_exposed(&self, origin: &crate::audit::Origin, dn: &str, password: &str) {
        let token_dn = token::is_token_dn(dn);
        if !crate::identity::token::looks_like_token(password) && !token_dn {
            return;
        }
        let how = if token_dn {
            token::Presentation::TokenDn
        } else {
            let Ok(dn) = Dn::parse(dn) else {
                return;
            };
            token::Presentation::Account(dn)
        };
        let revoke = self.config.tokens.revoke_on_cleartext;
        let now = self.clock.now();
        let password = password.to_string();
        // Checked here, where the secret is: the write that follows carries the id only.
        let valid = self
            .store
            .read(move |r| {
                let Some(presented) = crate::identity::token::parse(&password) else {
                    return Ok::<_, StoreError>(None);
                };
                token::exposed_token(r, &presented, &how, now)
            })
            .await;
        let valid = match valid {
            Ok(Some(valid)) => valid,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "checking an exposed token failed");
                return;
            }
        };
        let op = Op::MarkExposed {
            token_id: valid.id.clone(),
            revoke,
        };
        match self.submit(Command::server(now, op).from(origin)).await {
            Ok(Outcome::Marked(true)) => tracing::warn!(
                event = "token-exposed",
                token_id = %valid.id,
                account = %valid.account,
                revoked = revoke,
                "a valid token was sent in a bind without TLS; rotate it"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "marking an exposed token failed"),
        }
    }
}

/// The answer when the hashing pool cannot take or finish a job.
pub fn hashers_failed(e: HashersError) -> DitError {
    match e {
        HashersError::Stopped => {
            DitError::new(LdapResultCode::Unavailable, "server is shutting down")
        }
        other => {
            tracing::error!(error = %other, "password hashing failed");
            DitError::other("password hashing failed")
        }
    }
}
