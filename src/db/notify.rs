//! Cross-replica cache invalidation over PostgreSQL LISTEN/NOTIFY.
//!
//! Every key change sends `NOTIFY tokenmint_keys, '<api_key>'` inside its own
//! transaction, so the notice goes out exactly when the change commits. Each
//! server keeps one dedicated connection listening; when that connection is
//! lost, everything cached is flushed (notices may have been missed) and it
//! reconnects.
//!
//! SQLite has no such channel; there `crate::background` polls the
//! `updated_at` index for keys changed by another process (the CLI, say).

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, RunQueryDsl};

use super::{DbConnection, DbError};
use crate::worker::Worker;

/// The channel name.
pub const CHANNEL: &str = "tokenmint_keys";

/// Announces a change of `api_key` to every replica (Postgres only; a no-op
/// on SQLite). Call it inside the transaction that makes the change.
pub fn key_changed(conn: &mut DbConnection, api_key: &str) -> Result<(), DbError> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(api_key)
            .execute(pg)?;
    }
    Ok(())
}

/// How often the listener polls for notices, and checks its connection.
const POLL: Duration = Duration::from_millis(50);
const PING: Duration = Duration::from_secs(5);

/// Starts a thread that calls `on_change(api_key)` for each notice and
/// `on_lost()` whenever notices may have been missed (at every (re)connect).
pub fn listen(
    url: String,
    on_change: impl Fn(&str) + Send + 'static,
    on_lost: impl Fn() + Send + 'static,
) -> std::io::Result<Worker> {
    let url = super::with_connect_timeout(&url);
    Worker::spawn("pg-listen", move |stop| {
        let mut backoff = Duration::from_millis(200);
        while !stop.requested() {
            let mut conn = match PgConnection::establish(&url).and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {CHANNEL}"))
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(c)
            }) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cache invalidation listener cannot connect; retrying");
                    on_lost();
                    stop.sleep(backoff);
                    // Capped so the listener is back within ~2 s of the
                    // database (SPEC §9.4: full service within 5 s).
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            // Anything may have changed while we were not listening.
            on_lost();
            let mut last_ping = Instant::now();
            'connected: while !stop.requested() {
                for notice in conn.notifications_iter() {
                    match notice {
                        Ok(n) => on_change(&n.payload),
                        Err(e) => {
                            tracing::warn!(error = %e, "cache invalidation listener lost its connection");
                            break 'connected;
                        }
                    }
                }
                if last_ping.elapsed() >= PING {
                    if let Err(e) = conn.batch_execute("SELECT 1") {
                        tracing::warn!(error = %e, "cache invalidation listener lost its connection");
                        break 'connected;
                    }
                    last_ping = Instant::now();
                }
                stop.sleep(POLL);
            }
            on_lost();
        }
    })
}
