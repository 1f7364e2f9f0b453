//! `/v1/api-keys` and `/v1/audit-events`: the admin API.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use super::auth::{Need, authorize};
use super::json_body;
use crate::AppState;
use crate::audit::{self, AuditFilter};
use crate::error::ApiError;
use crate::keys::input::FieldError;
use crate::keys::store::{KeyFilter, Position};
use crate::keys::{ApiKey, ApiKeyWithSecret, Environment, KeyStatus, now_micros};

/// Default and largest page sizes.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// Any id that is not a known key, malformed ones included, is a 404.
fn key_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

fn with_secret(key: &ApiKey, secret: &secrecy::SecretString) -> ApiKeyWithSecret {
    ApiKeyWithSecret {
        key: key.view(now_micros()),
        api_secret: secret.expose_secret().to_owned(),
    }
}

/// Keyset cursor: opaque to clients, `(timestamp µs, id)` inside.
fn encode_cursor(at: DateTime<Utc>, id: &str) -> String {
    B64.encode(format!("{}|{id}", at.timestamp_micros()))
}

fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, String)> {
    let text = String::from_utf8(B64.decode(raw).ok()?).ok()?;
    let (micros, id) = text.split_once('|')?;
    // Every id we page over is a uuid; anything else was not made by us.
    let id = Uuid::parse_str(id).ok()?.to_string();
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id))
}

/// Given `limit + 1` rows, keeps `limit` and returns the cursor of the next
/// page (none when the extra row was not there).
fn next_page<T>(
    rows: &mut Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> (DateTime<Utc>, String),
) -> Option<String> {
    if rows.len() as i64 <= limit {
        return None;
    }
    rows.truncate(limit as usize);
    rows.last().map(|row| {
        let (at, id) = position(row);
        encode_cursor(at, &id)
    })
}

/// Query parameters, each at most once, only the known ones.
struct Query {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl Query {
    fn parse(req: &HttpRequest, known: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
        let mut errors = Vec::new();
        for (i, (name, value)) in pairs.iter().enumerate() {
            let message = if !known.contains(&name.as_str()) {
                "unknown query parameter"
            } else if value.len() > 256 || value.chars().any(char::is_control) {
                "must be at most 256 characters without control characters"
            } else if pairs[..i].iter().any(|(n, _)| n == name) {
                "repeated query parameter"
            } else {
                continue;
            };
            errors.push(FieldError {
                field: name.clone(),
                message: message.into(),
            });
        }
        Ok(Self { pairs, errors })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn invalid(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn limit(&mut self) -> i64 {
        match self.get("limit").map(str::parse::<i64>) {
            None => DEFAULT_LIMIT,
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                self.invalid("limit", "must be a whole number from 1 to 200");
                DEFAULT_LIMIT
            }
        }
    }

    fn cursor(&mut self) -> Option<(DateTime<Utc>, String)> {
        let raw = self.get("cursor")?.to_owned();
        let decoded = decode_cursor(&raw);
        if decoded.is_none() {
            self.invalid("cursor", "is not a cursor returned by this API");
        }
        decoded
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// `POST /v1/api-keys`
pub async fn create_key(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &state, Need::Write).await?;
    let body = json_body(&req, payload).await?;
    let (key, secret) = state.keys.create(body, caller.actor).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, format!("/v1/api-keys/{}", key.id)))
        .json(with_secret(&key, &secret)))
}

/// `GET /v1/api-keys`
pub async fn list_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state, Need::Read).await?;
    let mut q = Query::parse(
        &req,
        &["status", "environment", "subject", "limit", "cursor"],
    )?;
    let mut filter = KeyFilter::default();
    if let Some(s) = q.get("status") {
        filter.status = KeyStatus::parse(s);
        if filter.status.is_none() {
            q.invalid("status", "must be active, expired or revoked");
        }
    }
    if let Some(e) = q.get("environment") {
        filter.environment = Environment::parse(e);
        if filter.environment.is_none() {
            q.invalid("environment", "must be live or test");
        }
    }
    filter.subject = q.get("subject").map(str::to_owned);
    let limit = q.limit();
    let after = q
        .cursor()
        .map(|(created_at, id)| Position { created_at, id });
    q.finish()?;
    let mut keys = state.keys.list(filter, after, limit + 1).await?;
    let next_cursor = next_page(&mut keys, limit, |k| (k.created_at, k.id.to_string()));
    let now = now_micros();
    let data: Vec<_> = keys.iter().map(|k| k.view(now)).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "next_cursor": next_cursor })))
}

/// `GET /v1/api-keys/{id}`
pub async fn get_key(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state, Need::Read).await?;
    let key = state.keys.get(key_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(key.view(now_micros())))
}

/// `PATCH /v1/api-keys/{id}`
pub async fn update_key(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &state, Need::Write).await?;
    let id = key_id(&path)?;
    let body = json_body(&req, payload).await?;
    let key = state.keys.update(id, body, caller.actor).await?;
    Ok(HttpResponse::Ok().json(key.view(now_micros())))
}

/// `POST /v1/api-keys/{id}/rotate`
pub async fn rotate_key(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &state, Need::Write).await?;
    let id = key_id(&path)?;
    let body = json_body(&req, payload).await?;
    let (key, secret) = state.keys.rotate(id, body, caller.actor).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(with_secret(&key, &secret)))
}

/// `DELETE /v1/api-keys/{id}`
pub async fn revoke_key(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &state, Need::Write).await?;
    let key = state.keys.revoke(key_id(&path)?, caller.actor).await?;
    Ok(HttpResponse::Ok().json(key.view(now_micros())))
}

/// `GET /v1/audit-events`
pub async fn list_audit_events(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state, Need::Read).await?;
    let mut q = Query::parse(&req, &["api_key_id", "action", "limit", "cursor"])?;
    let api_key_id = q.get("api_key_id").map(str::to_owned);
    if api_key_id
        .as_deref()
        .is_some_and(|id| Uuid::parse_str(id).is_err())
    {
        q.invalid("api_key_id", "must be a key id (uuid)");
    }
    let filter = AuditFilter {
        api_key_id,
        action: q.get("action").map(str::to_owned),
    };
    let limit = q.limit();
    let after = q.cursor();
    q.finish()?;
    let mut events = state
        .db
        .run(move |conn| audit::list(conn, &filter, after, limit + 1))
        .await?;
    let next_cursor = next_page(&mut events, limit, |e| (e.occurred_at, e.id.clone()));
    Ok(HttpResponse::Ok().json(json!({ "data": events, "next_cursor": next_cursor })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4().to_string();
        let c = encode_cursor(at, &id);
        assert_eq!(decode_cursor(&c), Some((at, id)));
        assert_eq!(decode_cursor(&encode_cursor(at, "abc\u{0}")), None);
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor(&B64.encode("nope")), None);
    }
}
