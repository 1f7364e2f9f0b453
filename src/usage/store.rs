//! The `key_usage` table: exchanges per key, hour and outcome. Rows are only
//! ever added to (by the batched flush) and deleted by age (retention).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::key_usage::dsl;
use crate::db::{DbConnection, DbError};

/// The outcome of a successful exchange; denials use their audit reason.
pub const ISSUED: &str = "issued";

/// Exchanges to add to one (key, hour, outcome) row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count<'a> {
    pub api_key_id: Uuid,
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    pub outcome: &'a str,
    pub count: i64,
}

/// Adds the counts, creating rows as needed. Replicas add to the same rows
/// concurrently, so this is an upsert rather than read-modify-write.
pub fn add(conn: &mut DbConnection, counts: &[Count<'_>]) -> Result<(), DbError> {
    use diesel::sql_types::{Array, BigInt, Text, Timestamp};
    if counts.is_empty() {
        return Ok(());
    }
    match conn {
        DbConnection::Postgres(pg) => {
            // One statement for the whole batch, however many keys were busy.
            let ids: Vec<String> = counts.iter().map(|c| c.api_key_id.to_string()).collect();
            let hours: Vec<NaiveDateTime> = counts.iter().map(|c| c.hour.naive_utc()).collect();
            let outcomes: Vec<&str> = counts.iter().map(|c| c.outcome).collect();
            let ns: Vec<i64> = counts.iter().map(|c| c.count).collect();
            diesel::sql_query(
                "INSERT INTO key_usage (api_key_id, hour, outcome, count) \
                 SELECT * FROM unnest($1::text[], $2::timestamp[], $3::text[], $4::bigint[]) \
                 ON CONFLICT (api_key_id, hour, outcome) \
                 DO UPDATE SET count = key_usage.count + excluded.count",
            )
            .bind::<Array<Text>, _>(ids)
            .bind::<Array<Timestamp>, _>(hours)
            .bind::<Array<Text>, _>(outcomes)
            .bind::<Array<BigInt>, _>(ns)
            .execute(pg)?;
        }
        DbConnection::Sqlite(lite) => {
            // In the flush's transaction: local statements, no round trips.
            for c in counts {
                diesel::sql_query(
                    "INSERT INTO key_usage (api_key_id, hour, outcome, count) \
                     VALUES (?, ?, ?, ?) \
                     ON CONFLICT (api_key_id, hour, outcome) \
                     DO UPDATE SET count = key_usage.count + excluded.count",
                )
                .bind::<Text, _>(c.api_key_id.to_string())
                .bind::<Timestamp, _>(c.hour.naive_utc())
                .bind::<Text, _>(c.outcome)
                .bind::<BigInt, _>(c.count)
                .execute(lite)?;
            }
        }
    }
    Ok(())
}

/// `(hour, outcome, count)` rows of one key with `from <= hour < to`.
pub fn between(
    conn: &mut DbConnection,
    key: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, String, i64)>, DbError> {
    let rows = dsl::key_usage
        .select((dsl::hour, dsl::outcome, dsl::count))
        .filter(dsl::api_key_id.eq(key.to_string()))
        .filter(dsl::hour.ge(from.naive_utc()))
        .filter(dsl::hour.lt(to.naive_utc()))
        .load::<(NaiveDateTime, String, i64)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(hour, outcome, n)| (hour.and_utc(), outcome, n))
        .collect())
}

/// Deletes the rows of hours before `cutoff`; returns how many.
pub fn delete_before(conn: &mut DbConnection, cutoff: DateTime<Utc>) -> Result<usize, DbError> {
    Ok(diesel::delete(dsl::key_usage.filter(dsl::hour.lt(cutoff.naive_utc()))).execute(conn)?)
}
