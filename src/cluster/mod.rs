//! What the replicas of a cluster share through Redis (SPEC §9): the
//! budgets of keys and addresses (GCRA, one atomic script per spend), the
//! proofs of verified secrets, and spent `jti`s (DPoP proofs, assertions,
//! external tokens), so a budget, a proof or a replay window is the
//! cluster's, not each replica's.
//!
//! Redis is never the reason a request fails: every call has a short
//! deadline, and when Redis is unreachable callers fall back to what the
//! replica knows alone, `tokenmint_redis_up` drops to 0 and a warning is
//! logged at most once a minute. The first call connects while concurrent
//! ones wait for it; the connection manager then reconnects by itself;
//! after a failure Redis is left alone for a second (calls answer
//! `None` at once, so an outage costs requests no time), then one call
//! probes it again.

pub mod proofs;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};

/// The longest one Redis call may take before the request goes on without it.
const DEADLINE: Duration = Duration::from_millis(250);
/// Least time between two attempts to connect while there is no connection.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// Least time between two "Redis is unreachable" warnings.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// GCRA (the generic cell rate algorithm) on one Redis key holding the
/// bucket's "theoretical arrival time" in microseconds of Redis's own clock,
/// so replicas with skewed clocks still share one budget. ARGV: the emission
/// interval (µs), the burst, and `spend` or `refund`. Answers `{allowed,
/// remaining, retry_after_us, reset_us}`.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
if ARGV[3] == 'refund' then
  local back = tat - interval
  if back <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], string.format('%.0f', back), 'PX', math.max(1, math.ceil((back - now) / 1000)))
  end
  return {1, 0, 0, 0}
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
";

/// One spend of a cluster-wide budget, as Redis decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spend {
    pub allowed: bool,
    /// Units left after this spend.
    pub remaining: u32,
    /// When a refused spend may be retried.
    pub retry_after: Duration,
    /// Until the budget is full again.
    pub reset: Duration,
}

/// A Redis shared by the replicas, under a key prefix of their own.
pub struct Redis {
    gcra: Script,
    client: redis::Client,
    prefix: String,
    connection: RwLock<Option<ConnectionManager>>,
    /// Held while the first connection is made: concurrent callers wait
    /// for it instead of falling back to per-replica state.
    connecting: tokio::sync::Mutex<()>,
    last_warning: Mutex<Option<Instant>>,
    /// After a failure, until when (ms after `epoch`; 0: not resting) calls
    /// skip Redis. An atomic: successful calls read it on the hot path.
    resting_until: AtomicU64,
    epoch: Instant,
    /// Failed calls so far: a caller that waited for a connection attempt
    /// learns from it whether that attempt failed.
    failures: AtomicU64,
}

impl Redis {
    /// Checks the URL; nothing is connected until the first call.
    pub fn new(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        crate::telemetry::redis_up(false);
        Ok(Self {
            gcra: Script::new(GCRA),
            client: redis::Client::open(url)?,
            prefix: prefix.to_owned(),
            connection: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            last_warning: Mutex::new(None),
            resting_until: AtomicU64::new(0),
            epoch: Instant::now(),
            failures: AtomicU64::new(0),
        })
    }

    /// `SET <prefix><key> 1 NX EX <ttl>`: `Some(true)` when the key was
    /// new, `Some(false)` when it was there already, `None` when Redis
    /// could not say in time.
    pub async fn set_new(&self, key: &str, ttl: Duration) -> Option<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        let mut connection = self.connection().await?;
        let set: Option<String> = self.answer(cmd.query_async(&mut connection)).await?;
        Some(set.is_some())
    }

    /// `GET <prefix><key>`: `Some(None)` when there is no such key.
    pub async fn get(&self, key: &str) -> Option<Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        let mut connection = self.connection().await?;
        self.answer(cmd.query_async(&mut connection)).await
    }

    /// `SET <prefix><key> <value> EX <ttl>`; `false` when Redis could not
    /// take it.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(value)
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        let Some(mut connection) = self.connection().await else {
            return false;
        };
        self.answer::<()>(cmd.query_async(&mut connection))
            .await
            .is_some()
    }

    /// Spends one unit of the budget `key` (`per_minute` units a minute,
    /// bursts of `per_minute`); `None` when Redis could not say in time.
    pub async fn spend(&self, key: &str, per_minute: u32) -> Option<Spend> {
        let (allowed, remaining, retry_us, reset_us): (i64, i64, i64, i64) =
            self.run_gcra(key, per_minute, "spend").await?;
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Some(Spend {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining).unwrap_or(0),
            retry_after: micros(retry_us),
            reset: micros(reset_us),
        })
    }

    /// Gives one unit back to the budget `key` (a reservation that turned
    /// out not to be a failure).
    pub async fn refund(&self, key: &str, per_minute: u32) {
        let _: Option<(i64, i64, i64, i64)> = self.run_gcra(key, per_minute, "refund").await;
    }

    async fn run_gcra<T: redis::FromRedisValue>(
        &self,
        key: &str,
        per_minute: u32,
        op: &str,
    ) -> Option<T> {
        let per_minute = per_minute.max(1);
        let mut invocation = self.gcra.key(self.key(key));
        invocation
            // At least 1 µs: a budget above 60 million a minute is no limit.
            .arg((60_000_000 / u64::from(per_minute)).max(1))
            .arg(per_minute)
            .arg(op);
        let mut connection = self.connection().await?;
        self.answer(invocation.invoke_async(&mut connection)).await
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Waits at most [`DEADLINE`] for an answer.
    async fn answer<T>(&self, call: impl Future<Output = RedisResult<T>>) -> Option<T> {
        match tokio::time::timeout(DEADLINE, call).await {
            Ok(Ok(value)) => {
                crate::telemetry::redis_up(true);
                self.rest_over();
                Some(value)
            }
            Ok(Err(e)) => self.unavailable(&e.to_string()),
            Err(_) => self.unavailable("no answer within 250 ms"),
        }
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let until = self.resting_until.load(Ordering::Relaxed);
        if until != 0 {
            let now = self.now_ms();
            // Past the rest, one call probes; the others rest on meanwhile.
            let probe = now + (DEADLINE * 2).as_millis() as u64;
            if now < until
                || self
                    .resting_until
                    .compare_exchange(until, probe, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            {
                return None;
            }
        }
        if let Some(existing) = self.current() {
            return Some(existing);
        }
        let failures = self.failures.load(Ordering::Acquire);
        let _connecting = self.connecting.lock().await;
        if let Some(existing) = self.current() {
            return Some(existing);
        }
        // The attempt made while this call waited failed: rest.
        if self.failures.load(Ordering::Acquire) != failures {
            return None;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE))
            .set_number_of_retries(1);
        let connect = ConnectionManager::new_with_config(self.client.clone(), config);
        match tokio::time::timeout(DEADLINE * 2, connect).await {
            Ok(Ok(connection)) => {
                *self
                    .connection
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
                Some(connection)
            }
            Ok(Err(e)) => self.unavailable(&e.to_string()),
            Err(_) => self.unavailable("no connection within 500 ms"),
        }
    }

    fn current(&self) -> Option<ConnectionManager> {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn rest_over(&self) {
        if self.resting_until.load(Ordering::Relaxed) != 0 {
            self.resting_until.store(0, Ordering::Relaxed);
        }
    }

    fn unavailable<T>(&self, why: &str) -> Option<T> {
        crate::telemetry::redis_up(false);
        self.failures.fetch_add(1, Ordering::AcqRel);
        // The next probe starts a fresh connection rather than waiting on
        // the manager's own reconnection, whatever state that is in.
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.resting_until.store(
            self.now_ms() + RECONNECT_EVERY.as_millis() as u64,
            Ordering::Relaxed,
        );
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                reason = why,
                "Redis unreachable: going on with per-replica state"
            );
        }
        None
    }
}
