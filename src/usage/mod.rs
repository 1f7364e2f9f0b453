//! Per-key usage: exchanges counted in memory on the hot path ([`UsageLog`]),
//! written in batches by the background flush, kept for a retention period
//! ([`store`]) and read back as reports ([`report`]).

pub mod log;
pub mod report;
pub mod store;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use log::UsageLog;
pub use report::{Granularity, UsageReport, Window};

use crate::db::{Db, DbError};

/// The report of one key over a checked window (the key's existence is the
/// caller's to check).
pub async fn report(db: &Db, key: Uuid, window: Window) -> Result<UsageReport, DbError> {
    let rows = db
        .run(move |conn| store::between(conn, key, window.from, window.to))
        .await?;
    Ok(UsageReport::build(&window, rows))
}

/// Deletes usage older than `days` before `now` (blocking; the background
/// flush calls it). Returns how many rows went.
pub fn expire(
    conn: &mut crate::db::DbConnection,
    days: u32,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let cutoff = now - chrono::Duration::days(i64::from(days));
    store::delete_before(conn, cutoff)
}
