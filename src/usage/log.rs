//! What exchanges leave behind, batched so no exchange writes to the
//! database: `last_used_at` per key, exchanges counted per key, hour and
//! outcome (the usage table), and denied exchanges counted per key and
//! reason, written as one aggregated audit row per pair and window. An
//! attacker can therefore add at most one row per key and reason per window,
//! and every map is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, action};
use crate::db::{Db, DbConnection, DbError, write_transaction};
use crate::keys::{now_micros, store};
use crate::telemetry;
use crate::usage::store::{self as usage_store, Count, ISSUED};

/// `last_used_at` is kept to about this precision: at most one write per key
/// per minute, however busy the key.
pub const LAST_USED_PRECISION: chrono::Duration = chrono::Duration::seconds(60);

/// Most distinct (key, reason) pairs held between flushes; the rest are
/// counted under "no key".
const MAX_DENIED_ENTRIES: usize = 10_000;
/// Most distinct addresses counted per (key, reason) between flushes; the
/// rest add to `other_addresses`.
const MAX_ADDRESSES_PER_ENTRY: usize = 32;
/// Addresses named in an aggregated audit row (the busiest first).
const TOP_ADDRESSES: usize = 5;
/// Most distinct (key, hour, outcome) counts held between flushes. Only
/// authenticated keys are counted, so this is reached only by a very large
/// fleet between two flushes; what does not fit is counted in a metric.
const MAX_COUNT_ENTRIES: usize = 200_000;

/// A key's usage counter: (key, hour since the epoch, outcome).
type CountKey = (Uuid, i64, &'static str);

/// The hour an instant falls in, counted from the epoch.
fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

/// Denied exchanges of one (key, reason) pair since the last flush, with
/// the addresses they came from.
#[derive(Default, Clone, Debug)]
struct Denials {
    count: u64,
    addresses: HashMap<IpAddr, u64>,
}

impl Denials {
    fn add(&mut self, ip: IpAddr, n: u64) {
        self.count += n;
        if self.addresses.len() < MAX_ADDRESSES_PER_ENTRY || self.addresses.contains_key(&ip) {
            *self.addresses.entry(ip).or_insert(0) += n;
        }
    }

    fn merge(&mut self, other: Denials) {
        let unnamed = other.count - other.addresses.values().sum::<u64>();
        for (ip, n) in other.addresses {
            self.add(ip, n);
        }
        self.count += unnamed;
    }

    /// How many denials the named addresses account for.
    fn top_count(&self) -> u64 {
        let mut counts: Vec<u64> = self.addresses.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts.into_iter().take(TOP_ADDRESSES).sum()
    }

    /// The busiest addresses, for the audit row.
    fn top(&self) -> Vec<serde_json::Value> {
        let mut list: Vec<(&IpAddr, &u64)> = self.addresses.iter().collect();
        list.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        list.into_iter()
            .take(TOP_ADDRESSES)
            .map(|(ip, n)| json!({ "ip": ip.to_string(), "count": n }))
            .collect()
    }
}

#[derive(Default)]
struct State {
    last_used: HashMap<Uuid, DateTime<Utc>>,
    /// The `last_used_at` last handed to the database per key: a use within
    /// `LAST_USED_PRECISION` of it is not worth another write.
    written: HashMap<Uuid, DateTime<Utc>>,
    denied: HashMap<(Option<Uuid>, &'static str), Denials>,
    denied_since: Option<DateTime<Utc>>,
    counts: HashMap<CountKey, u64>,
}

impl State {
    fn count(&mut self, key: CountKey, n: u64) {
        if let Some(c) = self.counts.get_mut(&key) {
            *c += n;
        } else if self.counts.len() < MAX_COUNT_ENTRIES {
            self.counts.insert(key, n);
        } else {
            telemetry::usage_dropped(n);
        }
    }
}

/// In-memory usage, flushed on an interval and at shutdown.
#[derive(Default)]
pub struct UsageLog {
    state: Mutex<State>,
}

impl UsageLog {
    /// Notes a successful exchange.
    pub fn used(&self, id: Uuid, at: DateTime<Utc>) {
        if let Ok(mut s) = self.state.lock() {
            s.count((id, hour_of(at), ISSUED), 1);
            if s.written
                .get(&id)
                .is_some_and(|w| at - *w < LAST_USED_PRECISION)
            {
                return;
            }
            let slot = s.last_used.entry(id).or_insert(at);
            if *slot < at {
                *slot = at;
            }
        }
    }

    /// Notes a denied (or rate-limited) exchange and where it came from.
    pub fn denied(&self, key: Option<Uuid>, reason: &'static str, ip: IpAddr) {
        if let Ok(mut s) = self.state.lock() {
            let now = Utc::now();
            if let Some(id) = key {
                s.count((id, hour_of(now), reason), 1);
            }
            s.denied_since.get_or_insert(now);
            let entry =
                if s.denied.len() >= MAX_DENIED_ENTRIES && !s.denied.contains_key(&(key, reason)) {
                    (None, reason)
                } else {
                    (key, reason)
                };
            s.denied.entry(entry).or_default().add(ip, 1);
        }
    }

    /// Takes what is pending (the denied counts only with `with_denied`).
    fn take(&self, with_denied: bool) -> Batch {
        let Ok(mut s) = self.state.lock() else {
            return Batch::default();
        };
        let used = std::mem::take(&mut s.last_used);
        let counts = std::mem::take(&mut s.counts);
        let horizon = Utc::now() - LAST_USED_PRECISION;
        s.written.retain(|_, w| *w > horizon);
        for (id, at) in &used {
            s.written.insert(*id, *at);
        }
        if !with_denied {
            return Batch {
                used,
                counts,
                ..Batch::default()
            };
        }
        Batch {
            used,
            counts,
            denied: std::mem::take(&mut s.denied),
            since: s.denied_since.take(),
        }
    }

    /// Puts back a batch that could not be written.
    fn restore(&self, batch: Batch) {
        let Ok(mut s) = self.state.lock() else { return };
        for (id, at) in batch.used {
            let slot = s.last_used.entry(id).or_insert(at);
            if *slot < at {
                *slot = at;
            }
        }
        for (k, d) in batch.denied {
            s.denied.entry(k).or_default().merge(d);
        }
        for (k, n) in batch.counts {
            s.count(k, n);
        }
        if let Some(t) = batch.since {
            s.denied_since.get_or_insert(t);
        }
    }

    /// Writes what is pending on `conn` (blocking), in one transaction; on
    /// failure it is kept for the next flush.
    pub fn flush_on(&self, conn: &mut DbConnection, with_denied: bool) -> Result<(), DbError> {
        let batch = self.take(with_denied);
        if batch.used.is_empty() && batch.denied.is_empty() && batch.counts.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let result = write_transaction(conn, |conn| batch.write(conn));
        telemetry::usage_flush(started.elapsed().as_secs_f64(), result.is_ok());
        if result.is_err() {
            self.restore(batch);
        }
        result
    }

    /// Like [`flush_on`](Self::flush_on), on a pooled connection off the
    /// async workers.
    pub async fn flush(self: &Arc<Self>, db: &Db, with_denied: bool) -> Result<(), DbError> {
        let this = self.clone();
        db.run(move |conn| this.flush_on(conn, with_denied)).await
    }
}

/// Pending usage, taken out of the log for writing.
#[derive(Default)]
struct Batch {
    used: HashMap<Uuid, DateTime<Utc>>,
    counts: HashMap<CountKey, u64>,
    denied: HashMap<(Option<Uuid>, &'static str), Denials>,
    since: Option<DateTime<Utc>>,
}

impl Batch {
    fn write(&self, conn: &mut DbConnection) -> Result<(), DbError> {
        let used: Vec<(Uuid, DateTime<Utc>)> = self.used.iter().map(|(k, v)| (*k, *v)).collect();
        store::touch_last_used_many(conn, &used)?;
        let counts: Vec<Count> = self
            .counts
            .iter()
            .filter_map(|((key, hour, outcome), n)| {
                Some(Count {
                    api_key_id: *key,
                    hour: DateTime::from_timestamp(hour.checked_mul(3600)?, 0)?,
                    outcome,
                    count: i64::try_from(*n).ok()?,
                })
            })
            .collect();
        usage_store::add(conn, &counts)?;
        let now = now_micros();
        let actor = Actor {
            id: "token_endpoint".into(),
            ip: None,
            request_id: None,
        };
        for ((key, reason), d) in &self.denied {
            let details = json!({
                "reason": reason,
                "count": d.count,
                "since": self.since,
                "addresses": d.top(),
                "other_addresses": d.count - d.top_count(),
            });
            audit::record(
                conn,
                &actor,
                action::EXCHANGE_DENIED,
                *key,
                Some(details),
                now,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_name_the_busiest_addresses_within_bounds() {
        let mut d = Denials::default();
        let ip = |i: u8| IpAddr::from([203, 0, 113, i]);
        for i in 0..40u8 {
            d.add(ip(i), u64::from(i) + 1);
        }
        assert_eq!(d.count, (1..=40).sum::<u64>());
        assert_eq!(d.addresses.len(), MAX_ADDRESSES_PER_ENTRY);
        let top = d.top();
        assert_eq!(top.len(), TOP_ADDRESSES);
        assert_eq!(top[0]["ip"], "203.0.113.31");
        assert_eq!(top[0]["count"], 32);
        let mut restored = Denials::default();
        restored.add(ip(1), 1);
        restored.merge(d.clone());
        assert_eq!(restored.count, d.count + 1);
        assert_eq!(restored.addresses[&ip(1)], 3);
    }

    #[test]
    fn every_exchange_is_counted_by_hour_and_a_failed_write_keeps_them() {
        let log = UsageLog::default();
        let key = Uuid::new_v4();
        let t = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        // The second use is too close to be worth a last_used_at write, but
        // it still counts; the third falls in the next hour.
        log.used(key, t);
        let batch = log.take(false);
        log.used(key, t + chrono::Duration::seconds(1));
        log.used(key, t + chrono::Duration::hours(1));
        log.denied(Some(key), "wrong_secret", IpAddr::from([127, 0, 0, 1]));
        log.denied(None, "unknown_key", IpAddr::from([127, 0, 0, 1]));
        assert_eq!(batch.counts[&(key, hour_of(t), ISSUED)], 1);
        log.restore(batch);
        let batch = log.take(true);
        assert_eq!(batch.counts[&(key, hour_of(t), ISSUED)], 2);
        assert_eq!(batch.counts[&(key, hour_of(t) + 1, ISSUED)], 1);
        assert_eq!(batch.counts[&(key, hour_of(Utc::now()), "wrong_secret")], 1);
        // Denials of no known key are audited, not counted per key.
        assert_eq!(batch.counts.len(), 3);
        assert!(log.take(true).counts.is_empty());
    }
}
