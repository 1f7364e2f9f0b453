//! `/v1/api-keys/{id}/usage`: a key's exchanges per hour or day.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::http::auth::AdminRead;
use crate::http::docs::{AuthErrors, NotFound, QueryErrors};
use crate::http::extract::StrictQuery;
use crate::keys::now_micros;
use crate::usage::{self, Granularity, UsageReport, Window};

/// An RFC 3339 instant from the query, or a recorded error.
fn instant(q: &mut StrictQuery, name: &str) -> Option<DateTime<Utc>> {
    let raw = q.get(name)?;
    match DateTime::parse_from_rfc3339(&raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            q.invalid(
                name,
                "must be an RFC 3339 date-time, e.g. 2026-12-01T00:00:00Z",
            );
            None
        }
    }
}

/// Exchanges of one key per hour or day: every bucket of the window, zeros
/// included, oldest first. Counts are written in batches, so the newest may
/// be a few seconds behind.
#[utoipa::path(
    get, path = "/v1/api-keys/{id}/usage", tag = "api-keys",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The key's id"),
        ("from" = Option<String>, Query, format = DateTime, description = "Start (inclusive; moved back to the start of its bucket) [to − 24 h for hours, to − 30 days for days]"),
        ("to" = Option<String>, Query, format = DateTime, description = "End (exclusive) [now]"),
        ("granularity" = Option<Granularity>, Query, description = "Bucket width [hour]; at most 745 buckets"),
    ),
    responses((status = 200, description = "The key's usage", body = UsageReport), AuthErrors, QueryErrors, NotFound)
)]
pub async fn key_usage(
    _: AdminRead,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&path).map_err(|_| ApiError::NotFound)?;
    let mut q = StrictQuery::parse(&req, &["from", "to", "granularity"])?;
    let granularity = match q.get("granularity") {
        None => Some(Granularity::Hour),
        Some(g) => {
            let parsed = Granularity::parse(&g);
            if parsed.is_none() {
                q.invalid("granularity", "must be hour or day");
            }
            parsed
        }
    };
    let (from, to) = (instant(&mut q, "from"), instant(&mut q, "to"));
    q.finish()?;
    let granularity = granularity.unwrap_or(Granularity::Hour);
    let window = Window::new(granularity, from, to, now_micros()).map_err(ApiError::Validation)?;
    // The key must exist (revoked and expired keys keep their history).
    state.keys.get(id).await?;
    let report = usage::report(&state.db, id, window).await?;
    Ok(HttpResponse::Ok().json(report))
}
