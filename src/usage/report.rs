//! Usage reports (SPEC §11.1): the buckets of a window, every one present
//! (zeros included), oldest first, and the counts that fall in each.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::store::ISSUED;
use crate::keys::request::FieldError;

/// Most buckets one report holds: 31 days of hours, and one for a window
/// that does not start on the hour.
pub const MAX_BUCKETS: i64 = 745;

/// The width of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    fn step(self) -> Duration {
        match self {
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
        }
    }

    /// How far back `from` lies when only `to` is known.
    fn default_span(self) -> Duration {
        match self {
            Self::Hour => Duration::hours(24),
            Self::Day => Duration::days(30),
        }
    }

    /// The start of the bucket `t` falls in (UTC hours and days).
    fn floor(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        t.duration_trunc(self.step()).ok()
    }
}

/// A checked report window: `from` (on a bucket boundary) inclusive, `to`
/// exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub granularity: Granularity,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

fn invalid(field: &str, message: &str) -> Vec<FieldError> {
    vec![FieldError {
        field: field.into(),
        message: message.into(),
    }]
}

impl Window {
    /// The window of a request: `to` defaults to `now`, `from` to `to` less a
    /// day (hours) or 30 days (days); `from` is moved back to the start of
    /// its bucket.
    pub fn new(
        granularity: Granularity,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let to = to.unwrap_or(now);
        let from = match from {
            Some(f) => f,
            None => to
                .checked_sub_signed(granularity.default_span())
                .ok_or_else(|| invalid("to", "is too far in the past"))?,
        };
        if from >= to {
            return Err(invalid("from", "must be before `to`"));
        }
        let from = granularity
            .floor(from)
            .ok_or_else(|| invalid("from", "is out of range"))?;
        let window = Self {
            granularity,
            from,
            to,
        };
        if window.len() > MAX_BUCKETS {
            return Err(invalid(
                "to",
                &format!("the window holds more than {MAX_BUCKETS} buckets"),
            ));
        }
        Ok(window)
    }

    /// How many buckets the window holds.
    pub fn len(&self) -> i64 {
        let step = self.granularity.step().num_seconds();
        let span = (self.to - self.from).num_seconds();
        (span + step - 1) / step
    }

    /// Whether the window holds no bucket (never, once checked).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The start of the bucket holding `t`, if it is in the window.
    fn index(&self, t: DateTime<Utc>) -> Option<usize> {
        if t < self.from || t >= self.to {
            return None;
        }
        let step = self.granularity.step().num_seconds();
        usize::try_from((t - self.from).num_seconds() / step).ok()
    }
}

/// One bucket of a usage report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageBucket {
    /// Start of the bucket (UTC).
    pub start: DateTime<Utc>,
    /// Tokens issued.
    pub issued: u64,
    /// Denied exchanges by reason (as in the audit's `token.exchange_denied`);
    /// reasons with none are left out.
    pub denied: BTreeMap<String, u64>,
}

/// Exchanges of one key over a window (`GET /v1/api-keys/{id}/usage`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageReport {
    /// Every bucket of the window, zeros included, oldest first.
    pub data: Vec<UsageBucket>,
    pub granularity: Granularity,
}

impl UsageReport {
    /// Sums hourly `(hour, outcome, count)` rows into the window's buckets.
    pub fn build(window: &Window, rows: Vec<(DateTime<Utc>, String, i64)>) -> Self {
        let step = window.granularity.step();
        let mut data: Vec<UsageBucket> = (0..window.len())
            .filter_map(|i| {
                Some(UsageBucket {
                    start: window
                        .from
                        .checked_add_signed(step * i32::try_from(i).ok()?)?,
                    issued: 0,
                    denied: BTreeMap::new(),
                })
            })
            .collect();
        for (hour, outcome, n) in rows {
            let Some(bucket) = window.index(hour).and_then(|i| data.get_mut(i)) else {
                continue;
            };
            let n = u64::try_from(n).unwrap_or(0);
            if outcome == ISSUED {
                bucket.issued += n;
            } else {
                *bucket.denied.entry(outcome).or_insert(0) += n;
            }
        }
        Self {
            data,
            granularity: window.granularity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn defaults_cover_a_day_of_hours_or_thirty_days() {
        let now = at("2026-12-02T21:40:10Z");
        let w = Window::new(Granularity::Hour, None, None, now).expect("window");
        assert_eq!(w.from, at("2026-12-01T21:00:00Z"));
        assert_eq!(w.to, now);
        assert_eq!(w.len(), 25);
        let w = Window::new(Granularity::Day, None, None, now).expect("window");
        assert_eq!(w.from, at("2026-11-02T00:00:00Z"));
        assert_eq!(w.len(), 31);
    }

    #[test]
    fn bad_windows_name_the_field() {
        let now = at("2026-12-02T00:00:00Z");
        let err = Window::new(Granularity::Hour, Some(now), Some(now), now).unwrap_err();
        assert_eq!(err[0].field, "from");
        let err = Window::new(
            Granularity::Hour,
            Some(at("2026-10-01T00:00:00Z")),
            Some(now),
            now,
        )
        .unwrap_err();
        assert_eq!(err[0].field, "to");
        // 745 hours fit, 746 do not.
        let from = at("2026-11-01T00:00:00Z");
        let ok = Window::new(
            Granularity::Hour,
            Some(from),
            Some(from + Duration::hours(745)),
            now,
        );
        assert_eq!(ok.expect("745 buckets").len(), 745);
        let too_many = Window::new(
            Granularity::Hour,
            Some(from),
            Some(from + Duration::hours(746)),
            now,
        );
        assert!(too_many.is_err());
    }

    #[test]
    fn rows_land_in_their_buckets_and_gaps_are_zero() {
        let now = at("2026-12-02T12:00:00Z");
        let w = Window::new(
            Granularity::Day,
            Some(at("2026-11-29T05:00:00Z")),
            Some(now),
            now,
        )
        .expect("window");
        assert_eq!(w.from, at("2026-11-29T00:00:00Z"));
        let rows = vec![
            (at("2026-11-29T00:00:00Z"), ISSUED.to_owned(), 2),
            (at("2026-11-29T23:00:00Z"), ISSUED.to_owned(), 3),
            (at("2026-12-01T10:00:00Z"), "wrong_secret".to_owned(), 4),
            (at("2026-12-02T11:00:00Z"), "revoked".to_owned(), 1),
            // Outside the window: ignored.
            (at("2026-12-02T12:00:00Z"), ISSUED.to_owned(), 100),
        ];
        let r = UsageReport::build(&w, rows);
        let issued: Vec<u64> = r.data.iter().map(|b| b.issued).collect();
        assert_eq!(issued, vec![5, 0, 0, 0]);
        assert_eq!(r.data[2].denied["wrong_secret"], 4);
        assert_eq!(r.data[3].start, at("2026-12-02T00:00:00Z"));
        assert_eq!(r.data[3].denied["revoked"], 1);
        assert!(r.data[1].denied.is_empty());
    }
}
