//! Rate limits of the token endpoint (GCRA: governor in memory, a Lua
//! script in Redis for the cluster, see `crate::cluster`):
//! - a per-key budget spent only by successful exchanges (the key's
//!   `rate_limit_per_minute`, else the server default, else none);
//! - a per-address failure budget spent only by failed exchanges and checked
//!   before any database or argon2 work, so nobody can lock a key out by
//!   sending wrong secrets for it, and a flood from one address stops early.
//!   An argon2 verify reserves its unit *before* it runs and gets it back if
//!   the secret was right, so requests already in flight cannot overdraw the
//!   budget; and one address may hold only a few argon2 jobs at once, so it
//!   cannot monopolise the pool.
//!
//! With Redis both budgets are the cluster's: every spend is decided by
//! Redis, atomically, so N replicas admit no more than one budget (plus, for
//! the failure budget, the one failure per replica that finds the address
//! blocked). A key without a budget costs no Redis call. When Redis does not
//! answer in time the spend falls back to this replica's own budget: limits
//! fail open to per-replica, an exchange never fails because Redis did.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use moka::sync::Cache;
use uuid::Uuid;

use crate::cluster::{Redis, Spend};
use crate::keys::ApiKey;

/// What a client learns about its budget (`RateLimit-*` headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is full again.
    pub reset: u64,
}

/// A refused request: when to retry, and the budget it hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: u64,
    pub info: RateInfo,
}

type KeyLimiter = DefaultDirectRateLimiter<StateInformationMiddleware>;

/// The limiters.
pub struct Limits {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    failure_quota: u32,
    /// Units given back by reservations that turned out to be successes;
    /// spent before the governor budget (governor has no refund).
    refunds: Cache<IpAddr, Arc<AtomicU32>>,
    /// argon2 jobs each address has queued or running.
    in_flight: Cache<IpAddr, Arc<AtomicU32>>,
    max_in_flight: u32,
    /// Addresses out of failure budget, until when.
    blocked: Cache<IpAddr, Instant>,
    per_key: Cache<Uuid, Arc<(u32, KeyLimiter)>>,
    /// Until when (ms since `epoch`) any address may be blocked: while it
    /// lies in the past, the warm path skips the lookup altogether.
    blocked_until_ms: AtomicU64,
    epoch: Instant,
    default_per_key: Option<u32>,
    clock: DefaultClock,
    /// The cluster's budgets, when configured.
    redis: Option<Arc<Redis>>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

/// The unit a failure budget belongs to: an IPv4 address, or an IPv6 /64
/// (one subscriber usually holds a whole /64, so per-address budgets would
/// be 2^64 budgets).
fn budget_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn failure_key(ip: IpAddr) -> String {
    format!("fail:{ip}")
}

/// One unit of an address's failure budget, taken before an argon2 verify.
/// Dropped, it stays spent (the secret was wrong); [`Reservation::refund`]
/// gives it back.
#[must_use]
pub struct Reservation<'a> {
    limits: &'a Limits,
    ip: IpAddr,
    /// Taken from the cluster's budget (else from this replica's).
    clustered: bool,
}

impl Reservation<'_> {
    /// The verify succeeded (or never ran): the unit was not a failure.
    pub async fn refund(self) {
        let limits = self.limits;
        if self.clustered
            && let Some(redis) = &limits.redis
        {
            redis
                .refund(&failure_key(self.ip), limits.failure_quota)
                .await;
            return;
        }
        let credit = limits
            .refunds
            .get_with(self.ip, || Arc::new(AtomicU32::new(0)));
        // Never more credit than a full budget.
        let _ = credit.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
            (c < limits.failure_quota).then_some(c + 1)
        });
    }
}

/// An address's place in the argon2 pool; released on drop.
pub struct Argon2Slot {
    count: Arc<AtomicU32>,
}

impl Drop for Argon2Slot {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limits {
    /// Builds the limiters. `max_in_flight` bounds the argon2 jobs one
    /// address may hold at once (the pool's thread count is a good value).
    pub fn new(failed_per_minute: u32, default_per_key: Option<u32>, max_in_flight: u32) -> Self {
        Self {
            failures: DefaultKeyedRateLimiter::keyed(per_minute(failed_per_minute)),
            failure_quota: failed_per_minute,
            refunds: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            in_flight: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            max_in_flight: max_in_flight.max(1),
            blocked: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            per_key: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(120))
                .build(),
            default_per_key,
            clock: DefaultClock::default(),
            blocked_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            redis: None,
        }
    }

    /// Makes both budgets the cluster's, counted in `redis`.
    pub fn with_redis(mut self, redis: Option<Arc<Redis>>) -> Self {
        self.redis = redis;
        self
    }

    /// Refuses an address that has used up its failure budget.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Limited> {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        if now_ms >= self.blocked_until_ms.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.blocked.get(&budget_key(ip)) {
            Some(until) if until > Instant::now() => {
                Err(self.address_limited(whole_seconds(until - Instant::now()).max(1)))
            }
            _ => Ok(()),
        }
    }

    /// Spends one unit of an address's failure budget: `Some(clustered)`,
    /// or `None` (and the address blocked) when there was none left.
    async fn spend_failure(&self, ip: IpAddr) -> Option<bool> {
        let ip = budget_key(ip);
        if let Some(redis) = &self.redis
            && let Some(spend) = redis.spend(&failure_key(ip), self.failure_quota).await
        {
            if spend.allowed {
                return Some(true);
            }
            self.block(ip, Instant::now() + spend.retry_after);
            return None;
        }
        if let Some(credit) = self.refunds.get(&ip) {
            let taken =
                credit.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
            if taken.is_ok() {
                return Some(false);
            }
        }
        match self.failures.check_key(&ip) {
            Ok(()) => Some(false),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                self.block(ip, Instant::now() + wait);
                None
            }
        }
    }

    /// Refuses `ip` (a budget key) until `until`.
    fn block(&self, ip: IpAddr, until: Instant) {
        self.blocked.insert(ip, until);
        let until_ms = (until - self.epoch).as_millis() as u64 + 1;
        self.blocked_until_ms.fetch_max(until_ms, Ordering::Relaxed);
    }

    /// Spends one unit of an address's failure budget.
    pub async fn record_failure(&self, ip: IpAddr) {
        self.spend_failure(ip).await;
    }

    /// Takes one unit of the failure budget before an argon2 verify, so
    /// concurrent requests cannot all pass a check made before any of them
    /// failed.
    pub async fn reserve_failure(&self, ip: IpAddr) -> Result<Reservation<'_>, Limited> {
        match self.spend_failure(ip).await {
            Some(clustered) => Ok(Reservation {
                limits: self,
                ip: budget_key(ip),
                clustered,
            }),
            None => {
                self.check_address(ip)?;
                // Blocked just now by someone else's spend: same answer.
                Err(self.address_limited(60))
            }
        }
    }

    /// A place in the argon2 pool for `ip`, unless it already holds its share.
    pub fn argon2_slot(&self, ip: IpAddr) -> Result<Argon2Slot, Limited> {
        let count = self
            .in_flight
            .get_with(budget_key(ip), || Arc::new(AtomicU32::new(0)));
        let max = self.max_in_flight;
        match count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
            (c < max).then_some(c + 1)
        }) {
            Ok(_) => Ok(Argon2Slot { count }),
            Err(_) => Err(self.address_limited(1)),
        }
    }

    fn address_limited(&self, retry_after: u64) -> Limited {
        Limited {
            retry_after,
            info: RateInfo {
                limit: self.failure_quota,
                remaining: 0,
                reset: 60,
            },
        }
    }

    /// Spends one unit of a key's success budget: the cluster's when Redis
    /// answers, else this replica's.
    pub async fn spend_key(&self, key: &ApiKey) -> Result<Option<RateInfo>, Limited> {
        let Some(limit) = key.rate_limit_per_minute.or(self.default_per_key) else {
            return Ok(None);
        };
        if let Some(redis) = &self.redis
            // The limit is part of the name: a PATCH that changes it starts
            // a fresh budget, as it does in memory.
            && let Some(spend) = redis.spend(&format!("rate:{}:{limit}", key.id), limit).await
        {
            return clustered(limit, spend);
        }
        let fresh = || {
            Arc::new((
                limit,
                governor::RateLimiter::direct(per_minute(limit))
                    .with_middleware::<StateInformationMiddleware>(),
            ))
        };
        // `get_with` makes concurrent first requests share one budget.
        let mut entry = self.per_key.get_with(key.id, fresh);
        if entry.0 != limit {
            // A PATCH changed the limit: start a fresh budget.
            entry = fresh();
            self.per_key.insert(key.id, entry.clone());
        }
        let interval = 60.0 / f64::from(limit);
        match entry.1.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset = (f64::from(limit - remaining.min(limit)) * interval).ceil() as u64;
                Ok(Some(RateInfo {
                    limit,
                    remaining,
                    reset,
                }))
            }
            Err(not_until) => {
                let retry_after = whole_seconds(not_until.wait_time_from(self.clock.now())).max(1);
                Err(Limited {
                    retry_after,
                    info: RateInfo {
                        limit,
                        remaining: 0,
                        reset: (f64::from(limit) * interval).ceil() as u64,
                    },
                })
            }
        }
    }

    /// Forgets idle address state (called periodically).
    pub fn housekeeping(&self) {
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
    }
}

/// A key budget's state as Redis decided it.
fn clustered(limit: u32, spend: Spend) -> Result<Option<RateInfo>, Limited> {
    let info = RateInfo {
        limit,
        remaining: spend.remaining.min(limit),
        reset: whole_seconds(spend.reset),
    };
    if spend.allowed {
        Ok(Some(info))
    } else {
        Err(Limited {
            retry_after: whole_seconds(spend.retry_after).max(1),
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Environment, now_micros};

    fn key(limit: Option<u32>) -> ApiKey {
        let now = now_micros();
        ApiKey {
            id: Uuid::new_v4(),
            api_key: "k".into(),
            name: "n".into(),
            subject: "s".into(),
            scopes: vec![],
            environment: Environment::Live,
            secret_hash: String::new(),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            allowed_ips: vec![],
            rate_limit_per_minute: limit,
            audiences: vec![],
            token_ttl_seconds: None,
            claims: Default::default(),
            metadata: Default::default(),
            expires_at: None,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            revoked_at: None,
            require_dpop: false,
            credential_type: Default::default(),
            jwks: None,
            federation: vec![],
        }
    }

    #[tokio::test]
    async fn a_key_budget_runs_out_and_says_when_to_retry() {
        let limits = Limits::new(60, None, 2);
        let k = key(Some(3));
        let mut infos = Vec::new();
        for _ in 0..3 {
            infos.push(limits.spend_key(&k).await.unwrap().unwrap());
        }
        assert_eq!(
            infos.iter().map(|i| i.remaining).collect::<Vec<_>>(),
            [2, 1, 0]
        );
        let limited = limits.spend_key(&k).await.unwrap_err();
        assert!((1..=20).contains(&limited.retry_after), "{limited:?}");
        assert_eq!(limited.info.limit, 3);
        // Another key is unaffected; no limit means no budget at all.
        assert!(limits.spend_key(&key(Some(3))).await.is_ok());
        assert_eq!(limits.spend_key(&key(None)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_server_default_applies_to_keys_without_their_own() {
        let limits = Limits::new(60, Some(1), 2);
        let k = key(None);
        assert!(limits.spend_key(&k).await.is_ok());
        assert!(limits.spend_key(&k).await.is_err());
    }

    #[tokio::test]
    async fn an_ipv6_subnet_shares_one_failure_budget() {
        let limits = Limits::new(1, None, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limits.record_failure(a).await;
        limits.record_failure(b).await;
        assert!(limits.check_address(a).is_err());
        assert!(limits.check_address(b).is_err(), "same /64, same budget");
        assert!(limits.check_address(other).is_ok());
    }

    #[tokio::test]
    async fn failures_block_an_address_but_not_others() {
        let limits = Limits::new(2, None, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..2 {
            assert!(limits.check_address(a).is_ok());
            limits.record_failure(a).await;
        }
        assert!(
            limits.check_address(a).is_ok(),
            "budget spent but not exceeded yet"
        );
        limits.record_failure(a).await;
        let blocked = limits.check_address(a).unwrap_err();
        assert!(blocked.retry_after >= 1);
        assert!(limits.check_address(b).is_ok());
    }

    /// Two replicas' limiters on one Redis, under a prefix of this test's.
    fn clustered_pair(failures: u32) -> Option<(Limits, Limits, String)> {
        let url = "redis://127.0.0.1:6379";
        let probe = redis::Client::open(url)
            .ok()?
            .get_connection_with_timeout(Duration::from_millis(300));
        if probe.is_err() {
            eprintln!("SKIPPED: no Redis on 127.0.0.1:6379 for the cluster budget test");
            return None;
        }
        let prefix = format!("tokenmint-test:{}:", Uuid::new_v4());
        // A client each, as two processes would have.
        let make = || {
            let redis = Arc::new(Redis::new(url, &prefix).unwrap());
            Limits::new(failures, None, 2).with_redis(Some(redis))
        };
        Some((make(), make(), prefix))
    }

    #[tokio::test]
    async fn replicas_on_one_redis_share_a_key_budget() {
        let Some((a, b, _)) = clustered_pair(60) else {
            return;
        };
        let k = key(Some(4));
        let mut admitted = 0;
        for i in 0..10 {
            let limits = if i % 2 == 0 { &a } else { &b };
            if let Ok(Some(info)) = limits.spend_key(&k).await {
                admitted += 1;
                assert_eq!(info.remaining, 4 - admitted, "the cluster's count");
            }
        }
        assert_eq!(admitted, 4, "one budget for both replicas, not one each");
        let refused = a.spend_key(&k).await.unwrap_err();
        assert!((1..=15).contains(&refused.retry_after), "{refused:?}");
        assert_eq!(refused.info.remaining, 0);
    }

    #[tokio::test]
    async fn concurrent_first_spends_wait_for_the_connection() {
        let Some((a, b, _)) = clustered_pair(60) else {
            return;
        };
        // Both replicas start cold and get 10 concurrent spends each: none
        // may fall back to a per-replica budget while connecting.
        let (a, b) = (Arc::new(a), Arc::new(b));
        let k = Arc::new(key(Some(4)));
        let spends: Vec<_> = (0..20)
            .map(|i| {
                let limits = if i % 2 == 0 { a.clone() } else { b.clone() };
                let k = k.clone();
                tokio::spawn(async move { limits.spend_key(&k).await.is_ok() })
            })
            .collect();
        let mut admitted = 0;
        for s in spends {
            admitted += usize::from(s.await.unwrap());
        }
        assert_eq!(admitted, 4, "one budget for the cluster from the start");
    }

    #[tokio::test]
    async fn a_huge_budget_is_still_counted_by_the_cluster() {
        let Some((a, _, prefix)) = clustered_pair(60) else {
            return;
        };
        // An emission interval below 1 µs must not break the script (it
        // would fall back to per-replica budgets without a word).
        let k = key(Some(u32::MAX));
        assert!(a.spend_key(&k).await.unwrap().is_some());
        let mut raw = redis::Client::open("redis://127.0.0.1:6379")
            .unwrap()
            .get_connection()
            .unwrap();
        let bucket: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}rate:{}:{}", k.id, u32::MAX))
            .query(&mut raw)
            .unwrap();
        assert!(bucket.is_some(), "the spend was not made in Redis");
    }

    #[tokio::test]
    async fn replicas_on_one_redis_share_a_failure_budget_and_refunds() {
        let Some((a, b, _)) = clustered_pair(3) else {
            return;
        };
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        // A refunded reservation is not a failure.
        a.reserve_failure(ip).await.unwrap().refund().await;
        a.record_failure(ip).await;
        b.record_failure(ip).await;
        drop(b.reserve_failure(ip).await.unwrap());
        assert!(a.check_address(ip).is_ok(), "a has not seen the block yet");
        // The fourth failure anywhere finds the budget spent and blocks.
        assert!(a.reserve_failure(ip).await.is_err());
        assert!(a.check_address(ip).is_err());
    }

    #[tokio::test]
    async fn without_redis_budgets_fall_back_to_the_replica() {
        // Nothing listens on port 1: every spend falls back at once.
        let redis = Arc::new(Redis::new("redis://127.0.0.1:1", "x:").unwrap());
        let limits = Limits::new(60, None, 2).with_redis(Some(redis));
        let k = key(Some(2));
        assert!(limits.spend_key(&k).await.is_ok());
        assert!(limits.spend_key(&k).await.is_ok());
        assert!(
            limits.spend_key(&k).await.is_err(),
            "the local budget holds"
        );
    }
}
