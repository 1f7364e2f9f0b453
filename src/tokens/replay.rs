//! "Accepted once while valid": the `jti`s of client assertions (RFC 7523)
//! and of exchanged external tokens (RFC 8693). Each is remembered until
//! its token expires (plus the leeway), in this process and, with Redis,
//! for the whole cluster, so a token captured in transit cannot be replayed
//! at this replica or at another.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use moka::Expiry;
use moka::sync::Cache;

use crate::cluster::Redis;

/// Remembered `jti`s at most. Full means new tokens are refused until
/// old ones expire (forgetting one early would let it be replayed), unless
/// Redis holds the cluster's window.
const MAX_REMEMBERED: u64 = 1_000_000;

/// Each entry lives until its own deadline.
struct UntilDeadline;

impl Expiry<[u8; 32], Instant> for UntilDeadline {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        deadline: &Instant,
        now: Instant,
    ) -> Option<Duration> {
        Some(deadline.saturating_duration_since(now))
    }
}

/// Why a `jti` could not be spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Seen before, here or (with Redis) at another replica.
    Seen,
    /// The local window is full.
    Full,
}

/// The spent `jti`s.
#[derive(Clone)]
pub struct SeenOnce {
    local: Cache<[u8; 32], Instant>,
    redis: Option<Arc<Redis>>,
}

impl SeenOnce {
    /// A window shared through `redis` when given.
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        Self {
            local: Cache::builder().expire_after(UntilDeadline).build(),
            redis,
        }
    }

    /// Spends `jti` of `scope` (who issued it: an api_key, an issuer URL,
    /// so one party cannot use up another's `jti`s) for `ttl`. Redis being
    /// down leaves the window per replica rather than failing the call.
    pub async fn spend(
        &self,
        kind: &str,
        scope: &str,
        jti: &str,
        ttl: Duration,
    ) -> Result<(), Replay> {
        let id = digest(&SHA256, format!("{kind}\n{scope}\n{jti}").as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(id.as_ref());
        if self.local.contains_key(&key) {
            return Err(Replay::Seen);
        }
        let ttl = ttl.max(Duration::from_secs(1));
        let redis_key = format!("jti:{}", B64.encode(key));
        if self.local.entry_count() >= MAX_REMEMBERED {
            // Full here: the cluster's window still decides, if there is one.
            return match &self.redis {
                Some(redis) => match redis.set_new(&redis_key, ttl).await {
                    Some(true) => Ok(()),
                    Some(false) => Err(Replay::Seen),
                    None => Err(Replay::Full),
                },
                None => Err(Replay::Full),
            };
        }
        // One initialiser runs per key even when copies race.
        if !self
            .local
            .entry(key)
            .or_insert_with(|| Instant::now() + ttl)
            .is_fresh()
        {
            return Err(Replay::Seen);
        }
        if let Some(redis) = &self.redis
            && redis
                .set_new(&format!("jti:{}", B64.encode(key)), ttl)
                .await
                == Some(false)
        {
            return Err(Replay::Seen);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_jti_is_spent_once_per_scope() {
        let seen = SeenOnce::new(None);
        let ttl = Duration::from_secs(60);
        assert_eq!(seen.spend("assertion", "tm_a", "j1", ttl).await, Ok(()));
        assert_eq!(
            seen.spend("assertion", "tm_a", "j1", ttl).await,
            Err(Replay::Seen)
        );
        assert_eq!(seen.spend("assertion", "tm_b", "j1", ttl).await, Ok(()));
        assert_eq!(seen.spend("subject", "tm_a", "j1", ttl).await, Ok(()));
    }

    #[actix_web::test]
    async fn entries_leave_after_their_deadline() {
        let seen = SeenOnce::new(None);
        seen.spend("a", "s", "j", Duration::from_millis(1))
            .await
            .unwrap();
        // The floor is one second: a token at its last instant still counts.
        assert_eq!(
            seen.spend("a", "s", "j", Duration::ZERO).await,
            Err(Replay::Seen)
        );
        std::thread::sleep(Duration::from_millis(1100));
        seen.local.run_pending_tasks();
        assert_eq!(seen.spend("a", "s", "j", Duration::ZERO).await, Ok(()));
    }
}
