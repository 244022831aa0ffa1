//! The password hash pool: a fixed set of `rayon` threads behind a bounded
//! admission counter.
//!
//! Each pool thread runs one long-lived loop that takes jobs from a channel
//! and blocks on it when there is none. (Handing each job to `rayon::spawn`
//! instead let idle workers spin through rayon's 33 `yield_now` rounds after
//! every job: measured at about 3% of the pool's CPU, over a millisecond per
//! OWASP login on this machine.)
//!
//! Password hashing runs here and nowhere else (never on a may worker, a tokio
//! worker or inside an actor handler). A job is admitted only while fewer than
//! `threads + queue` jobs are in flight; otherwise the caller gets
//! [`PoolError::Overloaded`] at once, so latency under overload stays bounded
//! instead of growing with an unbounded queue. Each pool thread keeps its own
//! Argon2 memory buffer, so a hash does not map and fault in ~19 MiB afresh.

mod scheme;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use argon2::Block;
use ring::rand::SystemRandom;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

pub use scheme::{HashError, HashScheme, SchemeParseError, StoredHashError};
pub(crate) use scheme::{StoredHash, hash_password};

use crate::clock::Stopwatch;
use crate::metrics as m;

/// Hashing and verifying on the calling thread, with a reusable Argon2
/// buffer: what one pool job does, for benchmarks and tools. Production
/// code goes through [`HashPool`].
pub struct Hasher {
    memory: Vec<Block>,
    rng: SystemRandom,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    /// A hasher with an empty buffer (it grows on first use).
    pub fn new() -> Hasher {
        Hasher {
            memory: Vec::new(),
            rng: SystemRandom::new(),
        }
    }

    /// Hashes `password` with `scheme` into a PHC string.
    pub fn hash(&mut self, scheme: &HashScheme, password: &[u8]) -> Result<String, HashError> {
        hash_password(scheme, password, &self.rng, &mut self.memory)
    }

    /// Verifies `password` against a stored hash.
    pub fn verify(&mut self, stored: &str, password: &[u8]) -> Result<bool, StoredHashError> {
        Ok(StoredHash::parse(stored)?.verify(password, &mut self.memory))
    }
}

/// Why a pool job did not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every thread is busy and the queue is full.
    #[error("password hash pool is saturated")]
    Overloaded,
    /// The pool shut down before the job ran.
    #[error("password hash pool is shut down")]
    Closed,
    /// Hashing itself failed.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Whether the password matched.
    pub ok: bool,
    /// When the password matched and the stored hash should be upgraded, the
    /// new hash made with the configured scheme (computed in the same job).
    pub rehashed: Option<String>,
}

/// Sizing of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Hashing threads.
    pub threads: usize,
    /// Jobs that may wait beyond the running ones.
    pub queue: usize,
}

/// The hash pool.
pub struct HashPool {
    _pool: rayon::ThreadPool,
    jobs: mpsc::Sender<Job>,
    scheme: HashScheme,
    size: PoolSize,
    in_flight: Arc<AtomicUsize>,
    rng: SystemRandom,
    /// A hash of a random password made with the configured scheme, verified
    /// against for unknown emails so they cost the same as a wrong password.
    dummy: StoredHash,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("scheme", &self.scheme)
            .field("size", &self.size)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish()
    }
}

impl HashPool {
    /// Starts the pool's threads.
    pub fn new(scheme: HashScheme, size: PoolSize) -> Result<HashPool, PoolError> {
        HashPool::with_niceness(scheme, size, 0)
    }

    /// Starts the pool's threads, `nice` steps below the process's CPU
    /// priority (Linux `setpriority` on each thread; 0 leaves it): hashing
    /// then takes the CPU only when request handling leaves it, so a pod
    /// saturated with logins still answers refreshes, `me` and refusals
    /// promptly. Lowering one's own priority needs no privilege; if it
    /// fails anyway the thread keeps its priority and a warning says so.
    pub fn with_niceness(
        scheme: HashScheme,
        size: PoolSize,
        nice: i32,
    ) -> Result<HashPool, PoolError> {
        let threads = size.threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("portcullis-hash-{i}"))
            .start_handler(move |_| lower_priority(nice))
            .build()
            .map_err(|e| {
                PoolError::Hash(HashError::Params(format!("cannot start threads: {e}")))
            })?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..threads {
            let queue = queue.clone();
            pool.spawn(move || worker(&queue));
        }
        let rng = SystemRandom::new();
        let mut scratch = Vec::new();
        let mut dummy_password = Zeroizing::new([0u8; 32]);
        ring::rand::SecureRandom::fill(&rng, dummy_password.as_mut())
            .map_err(|_| HashError::Random)?;
        let dummy = StoredHash::parse(&hash_password(
            &scheme,
            dummy_password.as_ref(),
            &rng,
            &mut scratch,
        )?)
        .map_err(|e| HashError::Params(e.to_string()))?;
        Ok(HashPool {
            _pool: pool,
            jobs,
            scheme,
            size: PoolSize {
                threads,
                queue: size.queue,
            },
            in_flight: Arc::new(AtomicUsize::new(0)),
            rng,
            dummy,
        })
    }

    /// The configured scheme.
    pub fn scheme(&self) -> HashScheme {
        self.scheme
    }

    /// The pool's sizing.
    pub fn size(&self) -> PoolSize {
        self.size
    }

    /// Jobs admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Takes a place in the pool now, for a hash job the caller will run
    /// later: refused at once (`Overloaded`) when every thread is busy and
    /// the queue is full. Flows reserve before they take a partition or
    /// count an attempt, so an attempt the pool cannot take is refused in
    /// microseconds, waits behind nobody, and is never counted as a failure.
    /// The place is given back when the job ends or the slot is dropped.
    pub fn reserve(&self) -> Result<HashSlot, PoolError> {
        let limit = self.size.threads + self.size.queue;
        let admitted = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if admitted >= limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!(m::HASH_REJECTED_TOTAL).increment(1);
            return Err(PoolError::Overloaded);
        }
        let depth = admitted.saturating_sub(self.size.threads);
        metrics::gauge!(m::HASH_QUEUE_DEPTH).set(depth as f64);
        Ok(HashSlot {
            jobs: self.jobs.clone(),
            scheme: self.scheme,
            rng: self.rng.clone(),
            dummy: self.dummy.clone(),
            release: Some(Release {
                in_flight: self.in_flight.clone(),
                threads: self.size.threads,
            }),
        })
    }

    /// Hashes a new password with the configured scheme.
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, PoolError> {
        self.reserve()?.hash(password).await
    }

    /// Verifies `password` against a stored hash; when it matches and the hash
    /// uses other parameters than the configured scheme, also computes the
    /// replacement. An unparseable stored hash verifies as a mismatch (after a
    /// dummy verify, so it costs the same).
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        stored: &str,
    ) -> Result<Verified, PoolError> {
        self.reserve()?.verify(password, stored).await
    }

    /// Verifies `password` against the dummy hash and reports a mismatch: the
    /// cost of a login for an unknown email equals that of a wrong password.
    pub async fn dummy_verify(&self, password: Zeroizing<String>) -> Result<Verified, PoolError> {
        self.reserve()?.dummy_verify(password).await
    }
}

/// A reserved place in the hash pool ([`HashPool::reserve`]): runs exactly
/// one job, or gives the place back when dropped unused.
pub struct HashSlot {
    jobs: mpsc::Sender<Job>,
    scheme: HashScheme,
    rng: SystemRandom,
    dummy: StoredHash,
    release: Option<Release>,
}

impl std::fmt::Debug for HashSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashSlot")
    }
}

impl HashSlot {
    fn parse_stored(&self, stored: &str) -> (StoredHash, bool) {
        // No password (an account made by a social sign-in): a mismatch,
        // at the cost of any other.
        if stored.is_empty() {
            return (self.dummy.clone(), false);
        }
        match StoredHash::parse(stored) {
            Ok(p) => (p, true),
            Err(e) => {
                tracing::error!(error = %e, "stored password hash is unusable; login refused");
                (self.dummy.clone(), false)
            }
        }
    }

    /// Hashes a new password with the configured scheme.
    pub async fn hash(self, password: Zeroizing<String>) -> Result<String, PoolError> {
        let scheme = self.scheme;
        let rng = self.rng.clone();
        self.run("hash", move |mem| {
            hash_password(&scheme, password.as_bytes(), &rng, mem)
        })
        .await?
        .map_err(PoolError::from)
    }

    /// [`HashPool::verify`] in this slot.
    pub async fn verify(
        self,
        password: Zeroizing<String>,
        stored: &str,
    ) -> Result<Verified, PoolError> {
        let (parsed, usable) = self.parse_stored(stored);
        let scheme = self.scheme;
        let rng = self.rng.clone();
        self.run("verify", move |mem| {
            let ok = parsed.verify(password.as_bytes(), mem) && usable;
            let rehashed = if ok && parsed.needs_rehash(&scheme) {
                hash_password(&scheme, password.as_bytes(), &rng, mem).ok()
            } else {
                None
            };
            Verified { ok, rehashed }
        })
        .await
    }

    /// [`HashPool::dummy_verify`] in this slot.
    pub async fn dummy_verify(self, password: Zeroizing<String>) -> Result<Verified, PoolError> {
        let dummy = self.dummy.clone();
        self.run("dummy_verify", move |mem| {
            let _ = dummy.verify(password.as_bytes(), mem);
            Verified {
                ok: false,
                rehashed: None,
            }
        })
        .await
    }

    /// Verifies `current` against `stored` and, only if it matches, hashes
    /// `new` with the configured scheme, in one job (a password change):
    /// `Ok(None)` when `current` is wrong.
    pub async fn verify_then_hash(
        self,
        current: Zeroizing<String>,
        stored: &str,
        new: Zeroizing<String>,
    ) -> Result<Option<String>, PoolError> {
        let (parsed, usable) = self.parse_stored(stored);
        let scheme = self.scheme;
        let rng = self.rng.clone();
        self.run("verify_then_hash", move |mem| {
            if !(parsed.verify(current.as_bytes(), mem) && usable) {
                return Ok(None);
            }
            hash_password(&scheme, new.as_bytes(), &rng, mem).map(Some)
        })
        .await?
        .map_err(PoolError::from)
    }

    async fn run<T, F>(mut self, op: &'static str, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    {
        let release = self.release.take();
        let (tx, rx) = oneshot::channel();
        let queued = Stopwatch::start();
        let job: Job = Box::new(move |memory: &mut Vec<Block>| {
            let release = release;
            metrics::histogram!(m::HASH_QUEUE_WAIT_SECONDS).record(queued.elapsed_secs());
            let started = Stopwatch::start();
            let cpu_before = crate::clock::thread_cpu_ns();
            let result = job(memory);
            metrics::histogram!(m::HASH_DURATION_SECONDS, "op" => op)
                .record(started.elapsed_secs());
            if let (Some(a), Some(b)) = (cpu_before, crate::clock::thread_cpu_ns()) {
                metrics::counter!(m::HASH_CPU_MICROSECONDS_TOTAL, "op" => op)
                    .increment(b.saturating_sub(a) / 1000);
            }
            // Free the place before answering, so a caller that sees the
            // answer also sees the pool's room back.
            drop(release);
            let _ = tx.send(result);
        });
        if self.jobs.send(job).is_err() {
            // The workers are gone; the job (and its place) was dropped with the error.
            return Err(PoolError::Closed);
        }
        rx.await.map_err(|_| PoolError::Closed)
    }
}

/// Lowers the calling thread's CPU priority by `nice` steps (Linux: a
/// thread has a priority of its own).
fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    let target = current.saturating_add(nice).min(19);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), target) {
        tracing::warn!(error = %e, "could not lower a hash thread's CPU priority");
    }
}

/// A pool job: gets the worker's reusable Argon2 buffer.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// One pool thread's life: take a job, run it with this thread's buffer,
/// block when there is none; end when the pool is dropped.
fn worker(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        let next = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        match next {
            Ok(job) => {
                // A panicking job must not take the thread with it.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)))
                    .is_err()
                {
                    tracing::error!("a password hash job panicked");
                }
            }
            Err(_) => return,
        }
    }
}

/// Decrements the in-flight count when a job ends, even by panic.
struct Release {
    in_flight: Arc<AtomicUsize>,
    threads: usize,
}

impl Drop for Release {
    fn drop(&mut self) {
        let before = self.in_flight.fetch_sub(1, Ordering::AcqRel);
        let depth = before.saturating_sub(1).saturating_sub(self.threads);
        metrics::gauge!(m::HASH_QUEUE_DEPTH).set(depth as f64);
    }
}

#[cfg(test)]
mod tests;
