//! argon2id hashing of API secrets.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// argon2id cost of newly created hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory, in KiB.
    pub m_kib: u32,
    /// Passes over the memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for Argon2Params {
    /// OWASP's minimum argon2id configuration.
    fn default() -> Self {
        Self {
            m_kib: 19_456,
            t: 2,
            p: 1,
        }
    }
}

/// Hashes new secrets with the configured cost and verifies stored ones with
/// the cost recorded in their PHC string (so a cost change never locks out
/// existing keys).
#[derive(Clone, Debug)]
pub struct SecretHasher {
    params: Params,
}

/// The hasher could not be built from its parameters.
#[derive(Debug, thiserror::Error)]
#[error("invalid argon2 parameters: {0}")]
pub struct HasherError(String);

impl SecretHasher {
    /// Builds a hasher for the given cost.
    pub fn new(cfg: Argon2Params) -> Result<Self, HasherError> {
        let params =
            Params::new(cfg.m_kib, cfg.t, cfg.p, None).map_err(|e| HasherError(e.to_string()))?;
        Ok(Self { params })
    }

    /// Returns the PHC string of a fresh argon2id hash with a random salt.
    pub fn hash(&self, secret: &SecretString) -> Result<String, HasherError> {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password(secret.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HasherError(e.to_string()))
    }

    /// Checks a secret against a stored PHC string. A malformed stored hash
    /// never matches. The comparison inside is constant-time.
    pub fn verify(secret: &SecretString, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return false;
        }
        let (Ok(params), Some(expected), Some(salt)) =
            (Params::try_from(&parsed), parsed.hash, parsed.salt)
        else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::V0x13,
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let blocks = params.block_count();
        let hashed = WORK_MEMORY.with_borrow_mut(|memory| {
            // Reuse this thread's argon2 memory: a fresh 19 MiB allocation
            // per verify costs page faults and, with glibc, memory that is
            // never handed back to the OS.
            if memory.len() < blocks {
                memory.resize(blocks, Block::default());
            }
            Argon2::new(Algorithm::Argon2id, version, params).hash_password_into_with_memory(
                secret.expose_secret().as_bytes(),
                salt,
                &mut out,
                &mut memory[..blocks],
            )
        });
        hashed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    }
}

thread_local! {
    /// argon2 working memory, kept per thread (the pool has one thread per core).
    static WORK_MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> SecretHasher {
        SecretHasher::new(Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_with_the_configured_cost() {
        let h = cheap().hash(&SecretString::from("s".to_owned())).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
    }

    #[test]
    fn verify_accepts_only_the_right_secret() {
        let secret = SecretString::from("right".to_owned());
        let h = cheap().hash(&secret).unwrap();
        assert!(SecretHasher::verify(&secret, &h));
        assert!(!SecretHasher::verify(
            &SecretString::from("wrong".to_owned()),
            &h
        ));
        assert!(!SecretHasher::verify(&secret, "not a hash"));
    }

    #[test]
    fn verifies_hashes_made_by_another_implementation() {
        // Made by Python's argon2-cffi (the reference C implementation).
        let phc = "$argon2id$v=19$m=64,t=1,p=1$DG/Gs42GlRdTGOpcecjeDQ$FuC5TvngTfipYFnwFqTI1SbzXr6mmuFIF0AapIOBjzY";
        assert!(SecretHasher::verify(
            &SecretString::from("tms_live_reference".to_owned()),
            phc
        ));
        assert!(!SecretHasher::verify(
            &SecretString::from("tms_live_reference!".to_owned()),
            phc
        ));
        // argon2i and argon2d hashes are refused outright.
        let argon2i = phc.replacen("argon2id", "argon2i", 1);
        assert!(!SecretHasher::verify(
            &SecretString::from("tms_live_reference".to_owned()),
            &argon2i
        ));
    }

    #[test]
    fn same_secret_gets_a_different_salt() {
        let secret = SecretString::from("x".to_owned());
        assert_ne!(
            cheap().hash(&secret).unwrap(),
            cheap().hash(&secret).unwrap()
        );
    }
}

/// Runs this thread at a lower CPU priority (nice 10), so that under a
/// flood of wrong secrets the HTTP workers — warm exchanges, JWKS, health
/// checks — still get the cores first; argon2 takes what is left.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read their arguments; on Linux a
    // PRIO_PROCESS "who" of a thread id changes just that thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 10) != 0 {
            tracing::debug!("could not lower the argon2 thread priority");
        }
    }
}

/// The argon2 pool is saturated; the caller should answer 503 with Retry-After.
#[derive(Debug, thiserror::Error)]
#[error("argon2 pool busy")]
pub struct PoolBusy;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads, sized to the cores, that does all argon2 work
/// behind a bounded queue. It is separate from the async workers and from the
/// blocking pool that runs database calls, so a flood of wrong secrets can
/// slow only other argon2 work, and a full queue answers at once.
#[derive(Clone)]
pub struct HashPool {
    hasher: SecretHasher,
    /// argon2 verifications run by this pool (for metrics and tests).
    verifications: std::sync::Arc<std::sync::atomic::AtomicU64>,
    jobs: std::sync::mpsc::SyncSender<Job>,
}

impl HashPool {
    /// Starts `threads` workers with room for `queue` waiting jobs.
    pub fn start(hasher: SecretHasher, threads: usize, queue: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(queue);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // Hold the lock only to take a job, not to run it.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every sender dropped: shut down
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start an argon2 thread");
            }
        }
        Self {
            hasher,
            jobs: tx,
            verifications: Default::default(),
        }
    }

    async fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolBusy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.try_send(job).map_err(|_| PoolBusy)?;
        rx.await.map_err(|_| PoolBusy)
    }

    /// Verifies `secret` against each stored hash in turn; the index of the
    /// one that matches, if any.
    pub async fn verify_any(
        &self,
        secret: SecretString,
        hashes: Vec<String>,
    ) -> Result<Option<usize>, PoolBusy> {
        let counter = self.verifications.clone();
        self.submit(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let started = std::time::Instant::now();
            let ok = hashes.iter().position(|h| SecretHasher::verify(&secret, h));
            crate::telemetry::observe_argon2(started.elapsed().as_secs_f64());
            ok
        })
        .await
    }

    /// Hashes a new secret.
    pub async fn hash(
        &self,
        secret: SecretString,
    ) -> Result<Result<String, HasherError>, PoolBusy> {
        let hasher = self.hasher.clone();
        self.submit(move || hasher.hash(&secret)).await
    }

    /// How many verifications this pool has run.
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hashes on the calling thread (CLI use).
    pub fn hash_now(&self, secret: &SecretString) -> Result<String, HasherError> {
        self.hasher.hash(secret)
    }
}
