//! argon2id hashing of API secrets.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Argon2Config;

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
    pub fn new(cfg: Argon2Config) -> Result<Self, HasherError> {
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
        Argon2::default()
            .verify_password(secret.expose_secret().as_bytes(), &parsed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> SecretHasher {
        SecretHasher::new(Argon2Config {
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
    fn same_secret_gets_a_different_salt() {
        let secret = SecretString::from("x".to_owned());
        assert_ne!(
            cheap().hash(&secret).unwrap(),
            cheap().hash(&secret).unwrap()
        );
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
        Self { hasher, jobs: tx }
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
        self.submit(move || {
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

    /// Hashes on the calling thread (CLI use).
    pub fn hash_now(&self, secret: &SecretString) -> Result<String, HasherError> {
        self.hasher.hash(secret)
    }
}
