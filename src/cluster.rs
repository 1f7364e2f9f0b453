//! What the replicas of a cluster share through Redis (SPEC §9). For now:
//! the DPoP `jti`s, so a proof spent at one replica is refused at every
//! other (RFC 9449 §11.1).
//!
//! Redis is never the reason a request fails: every call has a short
//! deadline, and when Redis is unreachable callers fall back to what the
//! replica knows alone, `tokenmint_redis_up` drops to 0 and a warning is
//! logged at most once a minute. The connection manager reconnects by
//! itself; while there is none, a connection is tried at most once a second.

use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The longest one Redis call may take before the request goes on without it.
const DEADLINE: Duration = Duration::from_millis(250);
/// Least time between two attempts to connect while there is no connection.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// Least time between two "Redis is unreachable" warnings.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A Redis shared by the replicas, under a key prefix of their own.
pub struct Redis {
    client: redis::Client,
    prefix: String,
    connection: RwLock<Option<ConnectionManager>>,
    last_attempt: Mutex<Option<Instant>>,
    last_warning: Mutex<Option<Instant>>,
}

impl Redis {
    /// Checks the URL; nothing is connected until the first call.
    pub fn new(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        crate::telemetry::redis_up(false);
        Ok(Self {
            client: redis::Client::open(url)?,
            prefix: prefix.to_owned(),
            connection: RwLock::new(None),
            last_attempt: Mutex::new(None),
            last_warning: Mutex::new(None),
        })
    }

    /// `SET <prefix><key> 1 NX EX <ttl>`: `Some(true)` when the key was
    /// new, `Some(false)` when it was there already, `None` when Redis
    /// could not say in time.
    pub async fn set_new(&self, key: &str, ttl: Duration) -> Option<bool> {
        let mut connection = self.connection().await?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        let answer =
            tokio::time::timeout(DEADLINE, cmd.query_async::<Option<String>>(&mut connection))
                .await;
        match answer {
            Ok(Ok(set)) => {
                crate::telemetry::redis_up(true);
                Some(set.is_some())
            }
            Ok(Err(e)) => self.unavailable(&e.to_string()),
            Err(_) => self.unavailable("no answer within 250 ms"),
        }
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let existing = self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if existing.is_some() {
            return existing;
        }
        {
            let mut last = self
                .last_attempt
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < RECONNECT_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
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

    fn unavailable<T>(&self, why: &str) -> Option<T> {
        crate::telemetry::redis_up(false);
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
