//! The admin API: `/v1/api-keys` (keys.rs) and `/v1/audit-events`
//! (audit.rs), with the keyset pagination they share.

pub mod audit;
pub mod keys;
pub mod usage;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::StrictQuery;

/// Default and largest page sizes.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// One page of keys, newest first.
#[derive(Serialize, ToSchema)]
pub struct KeyPage {
    pub data: Vec<crate::keys::ApiKeyView>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// One page of audit events, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<crate::audit::AuditEvent>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// Rows of one page and the cursor of the next.
struct Page<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

/// The form of a cursor, for the OpenAPI document: any string of this form
/// is a valid position, so generated clients and fuzzers can tell valid from
/// invalid without having been handed one.
pub const CURSOR_PATTERN: &str =
    "^[0-9]{1,16}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// Keyset cursor: `<timestamp µs>.<id>` of the last row of a page. Clients
/// pass it back as they got it.
fn encode_cursor(at: DateTime<Utc>, id: &str) -> String {
    format!("{}.{id}", at.timestamp_micros())
}

fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, String)> {
    let (micros, id) = raw.split_once('.')?;
    if micros.is_empty() || micros.len() > 16 || !micros.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Every id we page over is a lower-case hyphenated uuid.
    let parsed = Uuid::parse_str(id).ok()?.to_string();
    (parsed == id).then_some(())?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        parsed,
    ))
}

/// Given `limit + 1` rows, keeps `limit` and returns the page with the
/// cursor of the next one (none when the extra row was not there).
fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> (DateTime<Utc>, String),
) -> Page<T> {
    let mut next_cursor = None;
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        next_cursor = rows.last().map(|row| {
            let (at, id) = position(row);
            encode_cursor(at, &id)
        });
    }
    Page {
        data: rows,
        next_cursor,
    }
}

/// `limit` and `cursor`, shared by every listing.
struct Paging {
    limit: i64,
    after: Option<(DateTime<Utc>, String)>,
}

impl Paging {
    fn read(q: &mut StrictQuery) -> Self {
        let limit = match q.get("limit").map(|v| v.parse::<i64>()) {
            None => DEFAULT_LIMIT,
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                q.invalid("limit", "must be a whole number from 1 to 200");
                DEFAULT_LIMIT
            }
        };
        let after = q.get("cursor").and_then(|raw| {
            let decoded = decode_cursor(&raw);
            if decoded.is_none() {
                q.invalid("cursor", "is not a cursor returned by this API");
            }
            decoded
        });
        Self { limit, after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4().to_string();
        let c = encode_cursor(at, &id);
        assert_eq!(decode_cursor(&c), Some((at, id.clone())));
        assert_eq!(decode_cursor(&encode_cursor(at, "abc\u{0}")), None);
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(
            decode_cursor("-5.00000000-0000-0000-0000-000000000000"),
            None
        );
        assert_eq!(
            decode_cursor(&format!("1.{}", id.to_uppercase())),
            None,
            "one spelling per position"
        );
    }

    #[test]
    fn pages_carry_a_cursor_only_when_more_rows_exist() {
        let at = DateTime::from_timestamp_micros(1).unwrap();
        let id = Uuid::nil().to_string();
        let full = page(vec![1, 2, 3], 2, |_| (at, id.clone()));
        assert_eq!(full.data, [1, 2]);
        assert!(full.next_cursor.is_some());
        let last = page(vec![1, 2], 2, |_| (at, id.clone()));
        assert!(last.next_cursor.is_none());
    }
}
