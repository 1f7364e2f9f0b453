//! What exchanges leave behind, batched so no exchange writes to the
//! database: `last_used_at` per key, and denied exchanges counted per key and
//! reason, written as one aggregated audit row per pair and window. An
//! attacker can therefore add at most one row per key and reason per window,
//! and the map itself is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, action};
use crate::db::{Db, DbConnection, DbError, write_transaction};
use crate::keys::{now_micros, store};

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
            s.denied_since.get_or_insert_with(Utc::now);
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
        let horizon = Utc::now() - LAST_USED_PRECISION;
        s.written.retain(|_, w| *w > horizon);
        for (id, at) in &used {
            s.written.insert(*id, *at);
        }
        if !with_denied {
            return Batch {
                used,
                ..Batch::default()
            };
        }
        Batch {
            used,
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
        if let Some(t) = batch.since {
            s.denied_since.get_or_insert(t);
        }
    }

    /// Writes what is pending on `conn` (blocking), in one transaction; on
    /// failure it is kept for the next flush.
    pub fn flush_on(&self, conn: &mut DbConnection, with_denied: bool) -> Result<(), DbError> {
        let batch = self.take(with_denied);
        if batch.used.is_empty() && batch.denied.is_empty() {
            return Ok(());
        }
        let result = write_transaction(conn, |conn| batch.write(conn));
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
    denied: HashMap<(Option<Uuid>, &'static str), Denials>,
    since: Option<DateTime<Utc>>,
}

impl Batch {
    fn write(&self, conn: &mut DbConnection) -> Result<(), DbError> {
        let used: Vec<(Uuid, DateTime<Utc>)> = self.used.iter().map(|(k, v)| (*k, *v)).collect();
        store::touch_last_used_many(conn, &used)?;
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
}
