//! Password hashing (argon2id) and secret tokens (256 random bits, stored as SHA-256).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use skein_domain::DomainError;

/// argon2id with configurable cost (OWASP's minimum by default: 19 MiB, 2 passes). Hashes
/// run on the blocking pool, at most one per core at a time: a burst of registrations or
/// logins queues here instead of taking every core and `memory × requests` of RAM; past
/// [`QUEUE_PER_PERMIT`] waiting per permit, more are refused as busy.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    params: Params,
    dummy_hash: OnceLockHash,
    gate: Arc<Gate>,
}

/// Waiting hashes allowed per permit before more are refused.
pub const QUEUE_PER_PERMIT: usize = 32;

/// One more in a count while it lives.
struct Counting<'a> {
    count: &'a AtomicUsize,
    /// The count before this one.
    before: usize,
}

impl<'a> Counting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        Self { count, before: count.fetch_add(1, Ordering::SeqCst) }
    }
}

impl Drop for Counting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Gate {
    permits: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
    running: AtomicUsize,
    /// The most hashes that ever ran at once (for tests).
    peak: AtomicUsize,
}

#[derive(Clone, Debug, Default)]
struct OnceLockHash(OnceLock<String>);

impl PasswordHasher {
    pub fn new(memory_kib: u32, passes: u32) -> Result<Self, DomainError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_permits(memory_kib, passes, cores)
    }

    /// At most `permits` hashes at once.
    pub fn with_permits(memory_kib: u32, passes: u32, permits: usize) -> Result<Self, DomainError> {
        let params = Params::new(memory_kib, passes, 1, None).map_err(|e| DomainError::Internal(e.to_string()))?;
        let size = permits.max(1);
        let gate = Gate {
            permits: Arc::new(Semaphore::new(size)),
            size,
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        };
        Ok(Self { params, dummy_hash: OnceLockHash::default(), gate: Arc::new(gate) })
    }

    /// The most hashes that have run at once.
    pub fn peak_concurrency(&self) -> usize {
        self.gate.peak.load(Ordering::Relaxed)
    }

    /// Hashes a new password, waiting for a permit.
    pub async fn hash(&self, password: String) -> Result<String, DomainError> {
        let hasher = self.clone();
        self.gated(move || hasher.hash_blocking(&password)).await?
    }

    /// [`Self::verify_blocking`], waiting for a permit; a refused or failed wait is `false`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, DomainError> {
        let hasher = self.clone();
        self.gated(move || hasher.verify_blocking(&password, hash.as_deref())).await
    }

    async fn gated<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, DomainError> {
        let gate = &self.gate;
        // Counted by guards: a request dropped while it waits (its client went away) gives
        // its place back.
        let waiting = Counting::enter(&gate.waiting);
        if waiting.before >= gate.size * QUEUE_PER_PERMIT {
            return Err(DomainError::Busy { retry_after_secs: 1 });
        }
        let permit = gate.permits.clone().acquire_owned().await.map_err(|e| DomainError::Internal(e.to_string()))?;
        drop(waiting);
        // The blocking work runs to its end even if this future is dropped: the permit goes
        // with it, not with the request.
        let gate = self.gate.clone();
        let done = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let running = Counting::enter(&gate.running);
            gate.peak.fetch_max(running.before + 1, Ordering::SeqCst);
            work()
        });
        done.await.map_err(|e| DomainError::Internal(e.to_string()))
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash_blocking(&self, password: &str) -> Result<String, DomainError> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| DomainError::Internal(e.to_string()))?;
        self.argon()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    /// Checks `password` against `hash`; with no hash (unknown user) it still spends the time
    /// of one verification, so a caller cannot tell unknown emails from wrong passwords.
    pub fn verify_blocking(&self, password: &str, hash: Option<&str>) -> bool {
        match hash {
            Some(hash) => verify(password, hash),
            None => {
                let dummy = self.dummy_hash.0.get_or_init(|| self.hash_blocking("not a password").unwrap_or_default());
                verify(password, dummy);
                false
            }
        }
    }
}

/// Verifies with the parameters stored in the hash (they may predate a config change).
fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

pub fn fill_random(buf: &mut [u8]) {
    // The OS generator only fails on a broken system; refusing to continue is then right.
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// 256 random bits, URL-safe.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// Eight hashes asked for at once run at most `permits` at a time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_runs_at_most_one_per_permit() {
        let hasher = PasswordHasher::with_permits(1024, 1, 2).unwrap();
        let runs = (0..8).map(|n| hasher.hash(format!("password {n}")));
        let hashes = futures_util::future::join_all(runs).await;
        assert!(hashes.iter().all(Result::is_ok));
        assert_eq!(hasher.peak_concurrency(), 2);
        assert!(hasher.verify("password 3".into(), hashes[3].as_ref().ok().cloned()).await.unwrap());
    }

    /// A request dropped while it waits for a permit (its client went away) gives its place
    /// in the queue back: the queue cannot fill with the dead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_waiter_leaves_the_queue() {
        let hasher = PasswordHasher::with_permits(1024, 1, 1).unwrap();
        for _ in 0..(QUEUE_PER_PERMIT * 3) {
            let waiting = hasher.hash("dropped".into());
            // Polled once (it queues), then dropped.
            let _ = tokio::time::timeout(std::time::Duration::from_micros(1), waiting).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(hasher.gate.waiting.load(Ordering::SeqCst), 0);
        assert!(hasher.hash("after".into()).await.is_ok());
    }
}
