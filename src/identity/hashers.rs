//! The password hashing pool: a few dedicated threads that run every argon2 verification
//! and hash of the server (password binds, the decoy run for a bind DN without a password,
//! Password Modify, cleartext `userPassword` in Add and Modify), fed by one bounded queue.
//!
//! argon2 is slow on purpose and all CPU. The threads run at a low scheduling priority
//! (`[argon2] priority`, SCHED_IDLE by default), so the kernel hands a core to the async
//! workers, i.e. searches, whenever they want it and argon2 gets whatever is left: a bind
//! flood uses every idle cycle without starving searches. The queue holds one job per
//! thread beyond those running, so a thread never waits for an async task to hand it work;
//! past that a caller waits for room, in arrival order. Memory is bounded by the callers,
//! never by the queue.
//!
//! The pool counts the argon2 computations its jobs run, so a test can show that every
//! failed bind costs one verification, whether the DN is unknown, has no password, or has
//! a password that did not match: equal cost, shown without a clock.
//!
//! Nothing here knows LDAP, and no password, salt or digest is logged from here.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::identity::password::Argon2Memory;

/// The scheduling priority of the hashing threads (`[argon2] priority`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Linux's SCHED_IDLE: a core only when nothing else wants it (lower than nice 19).
    #[default]
    Idle,
    /// SCHED_BATCH at nice 19: like `low`, and never preempts on wake-up.
    Batch,
    /// nice 19 under the normal policy: about 1.5% of a core against one busy thread.
    Low,
    /// The server's own priority: argon2 competes with searches as an equal.
    Normal,
}

#[derive(Debug, Error)]
pub enum HashersError {
    #[error("cannot start a password hashing thread: {0}")]
    Spawn(std::io::Error),
    #[error("the password hashing pool has stopped")]
    Stopped,
    #[error("a password hashing job panicked")]
    Panicked,
}

type Job = Box<dyn FnOnce(&mut Argon2Memory) + Send>;

/// A handle on the pool; cheap to clone. The threads end when the last handle is dropped
/// and the queue is empty, so every test server takes its threads with it.
#[derive(Clone)]
pub struct Hashers {
    queue: mpsc::Sender<Job>,
    argon2_runs: Arc<AtomicU64>,
    /// Jobs submitted and not yet started, and (started jobs, their waits in µs).
    waiting: Arc<(AtomicU64, AtomicU64, AtomicU64)>,
}

impl Hashers {
    /// Starts `threads` hashing threads (at least one) at `priority`, each keeping up to
    /// `keep_kib` KiB of argon2 memory between runs (the configured `memory_kib`).
    pub fn start(
        threads: usize,
        priority: Priority,
        keep_kib: u32,
    ) -> Result<Hashers, HashersError> {
        let threads = threads.max(1);
        let (queue, jobs) = mpsc::channel::<Job>(threads);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("tessera-hash-{i}"))
                .spawn(move || work(&jobs, priority, keep_kib))
                .map_err(HashersError::Spawn)?;
        }
        Ok(Hashers {
            queue,
            argon2_runs: Arc::default(),
            waiting: Arc::default(),
        })
    }

    /// Runs `job` on a hashing thread and waits for its result. Waits first for room in the
    /// queue when it is full.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashersError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Argon2Memory) -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let runs = self.argon2_runs.clone();
        let waiting = self.waiting.clone();
        waiting.0.fetch_add(1, Ordering::Relaxed);
        let queued = std::time::Instant::now();
        let job: Job = Box::new(move |memory| {
            let waited = u64::try_from(queued.elapsed().as_micros()).unwrap_or(u64::MAX);
            waiting.0.fetch_sub(1, Ordering::Relaxed);
            waiting.1.fetch_add(1, Ordering::Relaxed);
            waiting.2.fetch_add(waited, Ordering::Relaxed);
            let before = memory.runs();
            let output = job(memory);
            // Counted before the answer goes out, so the caller sees its own job's runs.
            runs.fetch_add(memory.runs() - before, Ordering::Relaxed);
            // The caller may have gone (its connection closed); the work is done anyway.
            let _ = done.send(output);
        });
        self.queue
            .send(job)
            .await
            .map_err(|_| HashersError::Stopped)?;
        // A panicking job drops `done` as it unwinds.
        result.await.map_err(|_| HashersError::Panicked)
    }

    /// Jobs waiting for a hashing thread now.
    pub fn queued(&self) -> u64 {
        self.waiting.0.load(Ordering::Relaxed)
    }

    /// Jobs started since the pool started, and the microseconds they waited in total.
    pub fn waits(&self) -> (u64, u64) {
        (
            self.waiting.1.load(Ordering::Relaxed),
            self.waiting.2.load(Ordering::Relaxed),
        )
    }

    /// The argon2 computations (hashes and verifications) the pool's jobs have run.
    pub fn argon2_runs(&self) -> u64 {
        self.argon2_runs.load(Ordering::Relaxed)
    }
}

/// One hashing thread: lower its priority, then run jobs until every handle is gone.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>, priority: Priority, keep_kib: u32) {
    if let Err(error) = lower_priority(priority) {
        tracing::warn!(
            ?priority,
            error = ?error,
            "cannot lower the priority of a password hashing thread; it runs at the server's"
        );
    }
    let mut memory = Argon2Memory::new(keep_kib);
    loop {
        // One thread waits on the queue at a time, the others for the lock; no job runs
        // under it, so a panic cannot poison it (and poison would not matter).
        let next = jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some(job) = next else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            // The pool keeps its size; the memory may be half written, so it starts afresh.
            memory = Argon2Memory::new(keep_kib);
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority(priority: Priority) -> Result<(), thread_priority::Error> {
    use thread_priority::ThreadPriority;
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };

    let policy = match priority {
        Priority::Normal => return Ok(()),
        Priority::Idle => NormalThreadSchedulePolicy::Idle,
        Priority::Batch => NormalThreadSchedulePolicy::Batch,
        Priority::Low => NormalThreadSchedulePolicy::Other,
    };
    // `Min` is nice 19 under the normal and batch policies (on Linux niceness is per
    // thread), and the only allowed value, 0, under SCHED_IDLE, where nice does not count.
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(policy),
    )
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(priority: Priority) -> Result<(), thread_priority::Error> {
    // Elsewhere only the lowest priority of the current policy is portable.
    match priority {
        Priority::Normal => Ok(()),
        _ => thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::identity::password::tests::SMALL;
    use crate::identity::password::{self, StoredPassword};

    #[tokio::test]
    async fn runs_jobs_and_returns_their_results() {
        let pool = Hashers::start(2, Priority::Normal, SMALL.memory_kib).unwrap();
        let hashed = pool
            .run(|memory| password::hash_in(b"secret", &SMALL, memory))
            .await
            .unwrap()
            .unwrap();
        let stored = StoredPassword::parse(hashed.as_bytes()).unwrap();
        let (right, wrong) = pool
            .run(move |memory| {
                (
                    stored.verify_in(b"secret", memory),
                    stored.verify_in(b"secreT", memory),
                )
            })
            .await
            .unwrap();
        assert!(right && !wrong);
    }

    #[tokio::test]
    async fn counts_the_argon2_runs_of_its_jobs() {
        let pool = Hashers::start(2, Priority::Normal, SMALL.memory_kib).unwrap();
        let hashed = pool
            .run(|memory| password::hash_in(b"secret", &SMALL, memory))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pool.argon2_runs(), 1, "a hash");
        let stored = StoredPassword::parse(hashed.as_bytes()).unwrap();
        let wrong = pool
            .run(move |memory| stored.verify_in(b"secreT", memory))
            .await
            .unwrap();
        assert!(!wrong);
        assert_eq!(pool.argon2_runs(), 2, "and a verification");
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
        assert_eq!(pool.argon2_runs(), 2, "a job without argon2 counts nothing");
    }

    #[tokio::test]
    async fn many_callers_on_a_small_queue_all_get_answers() {
        let pool = Hashers::start(1, Priority::Normal, 0).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let calls = (0..200).map(|i| {
            let pool = pool.clone();
            let ran = ran.clone();
            tokio::spawn(async move {
                pool.run(move |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    i * 2
                })
                .await
            })
        });
        let mut results = Vec::new();
        for call in calls.collect::<Vec<_>>() {
            results.push(call.await.unwrap().unwrap());
        }
        assert_eq!(results, (0..200).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(ran.load(Ordering::SeqCst), 200);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_pool_goes_on() {
        let pool = Hashers::start(1, Priority::Normal, 0).unwrap();
        let failed = pool.run(|_| -> u32 { panic!("job fails") }).await;
        assert!(matches!(failed, Err(HashersError::Panicked)), "{failed:?}");
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn threads_run_at_the_configured_policy() {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy,
        };

        let cases = [
            (Priority::Idle, NormalThreadSchedulePolicy::Idle),
            (Priority::Batch, NormalThreadSchedulePolicy::Batch),
            (Priority::Low, NormalThreadSchedulePolicy::Other),
        ];
        for (priority, policy) in cases {
            let pool = Hashers::start(1, priority, 0).unwrap();
            let seen = pool.run(|_| thread_schedule_policy()).await.unwrap();
            assert_eq!(
                seen.unwrap(),
                ThreadSchedulePolicy::Normal(policy),
                "{priority:?}"
            );
        }
        // The nice value of the thread, from /proc: field 19 of its stat line.
        let pool = Hashers::start(1, Priority::Low, 0).unwrap();
        let nice = pool
            .run(|_| {
                let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
                let after_name = stat.rsplit_once(')').unwrap().1;
                after_name.split_whitespace().nth(16).unwrap().to_string()
            })
            .await
            .unwrap();
        assert_eq!(nice, "19");
    }
}
