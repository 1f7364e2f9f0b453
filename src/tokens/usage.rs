//! What exchanges leave behind, batched so no exchange writes to the
//! database: `last_used_at` per key, and denied exchanges counted per key and
//! reason, written as one aggregated audit row per pair and window. An
//! attacker can therefore add at most one row per key and reason per window,
//! and the map itself is bounded.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, action};
use crate::db::{Db, DbError, write_transaction};
use crate::keys::{now_micros, store};

/// Most distinct (key, reason) pairs held between flushes; the rest are
/// counted under "no key".
const MAX_DENIED_ENTRIES: usize = 10_000;

#[derive(Default)]
struct State {
    last_used: HashMap<Uuid, DateTime<Utc>>,
    denied: HashMap<(Option<Uuid>, &'static str), u64>,
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
            let slot = s.last_used.entry(id).or_insert(at);
            if *slot < at {
                *slot = at;
            }
        }
    }

    /// Notes a denied exchange.
    pub fn denied(&self, key: Option<Uuid>, reason: &'static str) {
        if let Ok(mut s) = self.state.lock() {
            s.denied_since.get_or_insert_with(Utc::now);
            let entry =
                if s.denied.len() >= MAX_DENIED_ENTRIES && !s.denied.contains_key(&(key, reason)) {
                    (None, reason)
                } else {
                    (key, reason)
                };
            *s.denied.entry(entry).or_insert(0) += 1;
        }
    }

    /// Writes `last_used_at` values, and with `with_denied` the denied
    /// counts. What fails to write is put back for the next flush.
    pub async fn flush(&self, db: &Db, with_denied: bool) -> Result<(), DbError> {
        let (used, denied, since) = {
            let Ok(mut s) = self.state.lock() else {
                return Ok(());
            };
            let used = std::mem::take(&mut s.last_used);
            let (denied, since) = if with_denied {
                (std::mem::take(&mut s.denied), s.denied_since.take())
            } else {
                (HashMap::new(), None)
            };
            (used, denied, since)
        };
        if used.is_empty() && denied.is_empty() {
            return Ok(());
        }
        let (u, d) = (used.clone(), denied.clone());
        let result = db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    for (id, at) in &u {
                        store::touch_last_used(conn, *id, *at)?;
                    }
                    let now = now_micros();
                    let actor = Actor {
                        id: "token_endpoint".into(),
                        ip: None,
                        request_id: None,
                    };
                    for ((key, reason), count) in &d {
                        let details = json!({ "reason": reason, "count": count, "since": since });
                        audit::record(
                            conn,
                            &actor,
                            action::EXCHANGE_DENIED,
                            *key,
                            Some(details),
                            now,
                        )?;
                    }
                    Ok::<_, DbError>(())
                })
            })
            .await;
        if result.is_err() {
            if let Ok(mut s) = self.state.lock() {
                for (id, at) in used {
                    let slot = s.last_used.entry(id).or_insert(at);
                    if *slot < at {
                        *slot = at;
                    }
                }
                for (k, c) in denied {
                    *s.denied.entry(k).or_insert(0) += c;
                }
                if let Some(t) = since {
                    s.denied_since.get_or_insert(t);
                }
            }
        }
        result
    }
}
