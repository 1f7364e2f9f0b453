//! Background work of a server: writing batched usage, limiter housekeeping,
//! and keeping the key cache honest about changes made elsewhere: LISTEN/
//! NOTIFY on PostgreSQL; on SQLite, a poll of the `updated_at` index for keys
//! changed by another process (the CLI, say). Every change path (create,
//! PATCH, rotate, revoke) moves `updated_at`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::DatabaseUrl;
use crate::db::Db;
use crate::db::notify;
use crate::keys::cache::KeyCache;
use crate::keys::store;
use crate::tokens::limits::Limits;
use crate::usage::UsageLog;
use crate::worker::Worker;

/// How often batched `last_used_at` values are written.
pub const USAGE_FLUSH: Duration = Duration::from_secs(5);
/// Denied-exchange counts are written every this many usage flushes (1 min).
const DENIED_EVERY: u32 = 12;
/// Usage older than the retention period is deleted every this many usage
/// flushes (1 h), and at the first.
const EXPIRE_EVERY: u32 = 720;

/// Running background threads; they stop when this is dropped.
pub struct Background {
    _workers: Vec<Worker>,
}

impl Background {
    /// Adds another worker that stops with these.
    pub fn with(mut self, worker: Worker) -> Self {
        self._workers.push(worker);
        self
    }
}

/// How often a SQLite server looks for keys changed by another process.
pub const SQLITE_POLL: Duration = Duration::from_millis(250);
/// How far back each poll looks: covers a writer whose `updated_at` was taken
/// a while before its commit (SQLite's busy timeout is 5 s).
const SQLITE_WINDOW: Duration = Duration::from_secs(10);

/// Invalidates cached records of keys whose `updated_at` moved, each once.
fn poll_changes(db: &Db, cache: &KeyCache, seen: &mut HashMap<String, DateTime<Utc>>) {
    let window = chrono::Duration::from_std(SQLITE_WINDOW).unwrap_or_default();
    let since = Utc::now() - window;
    let changed = match db
        .get()
        .map(|mut conn| store::changed_since(&mut conn, since))
    {
        Ok(Ok(rows)) => rows,
        _ => {
            // Blind for a moment: assume anything may have changed.
            cache.invalidate_all();
            return;
        }
    };
    for (api_key, at) in changed {
        if seen.get(&api_key) != Some(&at) {
            cache.invalidate(&api_key);
            seen.insert(api_key, at);
        }
    }
    seen.retain(|_, at| *at > since);
}

/// Starts the background work for this database.
pub fn start(
    url: &DatabaseUrl,
    db: Db,
    usage: Arc<UsageLog>,
    cache: Arc<KeyCache>,
    limits: Arc<Limits>,
    retention_days: u32,
) -> std::io::Result<Background> {
    let flush_db = db.clone();
    let flusher = Worker::periodic("usage-flush", USAGE_FLUSH, move |n| {
        match flush_db.get() {
            Ok(mut conn) => {
                if let Err(e) = usage.flush_on(&mut conn, n % DENIED_EVERY == 0) {
                    tracing::warn!(error = %e, "could not write usage data; will retry");
                }
                if n % EXPIRE_EVERY == 1 {
                    match crate::usage::expire(&mut conn, retention_days, Utc::now()) {
                        Ok(0) => {}
                        Ok(rows) => tracing::info!(rows, "expired old usage rows"),
                        Err(e) => tracing::warn!(error = %e, "could not expire old usage rows"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "usage flush: no database connection; will retry"),
        }
        limits.housekeeping();
    })?;
    let watcher = match url {
        DatabaseUrl::Postgres(pg) => {
            let (on_change, on_lost) = (cache.clone(), cache);
            notify::listen(
                pg.clone(),
                move |api_key| on_change.invalidate(api_key),
                move || on_lost.invalidate_all(),
            )?
        }
        DatabaseUrl::Sqlite(_) => {
            let mut seen = HashMap::new();
            Worker::periodic("key-changes", SQLITE_POLL, move |_| {
                poll_changes(&db, &cache, &mut seen)
            })?
        }
    };
    Ok(Background {
        _workers: vec![flusher, watcher],
    })
}
