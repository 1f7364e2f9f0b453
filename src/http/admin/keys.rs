//! `/v1/api-keys`: create, list, read, change, rotate and revoke keys.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{KeyPage, Paging, page};
use crate::AppState;
use crate::error::ApiError;
use crate::http::auth::{AdminRead, AdminWrite};
use crate::http::docs::{AuthErrors, BodyErrors, Conflict, NotFound, QueryErrors};
use crate::http::extract::{StrictQuery, json_body};
use crate::keys::request::{CreateKeyRequest, RotateKeyRequest, UpdateKeyRequest};
use crate::keys::store::{KeyFilter, Position};
use crate::keys::{ApiKey, ApiKeyView, ApiKeyWithSecret, Environment, KeyStatus, now_micros};

/// Any id that is not a known key, malformed ones included, is a 404.
fn key_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

/// A key with its new secret: shown this once, never cached.
fn with_secret(
    status: actix_web::http::StatusCode,
    key: &ApiKey,
    secret: Option<&secrecy::SecretString>,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ApiKeyWithSecret {
            key: key.view(now_micros()),
            api_secret: secret.map(|s| s.expose_secret().to_owned()),
        })
}

/// Create a key. The answer holds its secret, shown this once.
#[utoipa::path(
    post, path = "/v1/api-keys", tag = "api-keys",
    security(("bearer" = [])),
    request_body(content = CreateKeyRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The key, with its secret", body = ApiKeyWithSecret,
         headers(("Location" = String, description = "The key's URL"))),
        AuthErrors, BodyErrors,
    )
)]
pub async fn create_key(
    admin: AdminWrite,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = now_micros();
    let body: CreateKeyRequest = json_body(&req, payload).await?;
    let new = body.validate_into(&state.keys.rules(now))?;
    let (key, secret) = state.keys.create(new, admin.caller.actor, now).await?;
    let mut res = with_secret(actix_web::http::StatusCode::CREATED, &key, secret.as_ref());
    if let Ok(location) = header::HeaderValue::from_str(&format!("/v1/api-keys/{}", key.id)) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// List keys, newest first, one page at a time.
#[utoipa::path(
    get, path = "/v1/api-keys", tag = "api-keys",
    security(("bearer" = [])),
    params(
        ("status" = Option<KeyStatus>, Query, description = "Only keys in this state now"),
        ("environment" = Option<Environment>, Query, description = "Only keys of this environment"),
        ("subject" = Option<String>, Query, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "Only keys with this subject (empty: any)"),
        ("name" = Option<String>, Query, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "Only keys whose name contains this, in any case (empty: any)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Page size [50]"),
        ("cursor" = Option<String>, Query, pattern = r"^[0-9]{1,16}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "One page of keys", body = KeyPage), AuthErrors, QueryErrors)
)]
pub async fn list_keys(
    _: AdminRead,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut q = StrictQuery::parse(
        &req,
        &[
            "status",
            "environment",
            "subject",
            "name",
            "limit",
            "cursor",
        ],
    )?;
    let mut filter = KeyFilter::default();
    if let Some(s) = q.get("status") {
        filter.status = KeyStatus::parse(&s);
        if filter.status.is_none() {
            q.invalid("status", "must be active, expired or revoked");
        }
    }
    if let Some(e) = q.get("environment") {
        filter.environment = Environment::parse(&e);
        if filter.environment.is_none() {
            q.invalid("environment", "must be live or test");
        }
    }
    filter.subject = q.text("subject");
    filter.name = q.text("name");
    let paging = Paging::read(&mut q);
    q.finish()?;
    let after = paging
        .after
        .map(|(created_at, id)| Position { created_at, id });
    let keys = state.keys.list(filter, after, paging.limit + 1).await?;
    let now = now_micros();
    let rows = page(keys, paging.limit, |k| (k.created_at, k.id.to_string()));
    Ok(HttpResponse::Ok().json(KeyPage {
        data: rows.data.iter().map(|k| k.view(now)).collect(),
        next_cursor: rows.next_cursor,
    }))
}

/// Read one key (never its secret).
#[utoipa::path(
    get, path = "/v1/api-keys/{id}", tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "The key", body = ApiKeyView), AuthErrors, NotFound)
)]
pub async fn get_key(
    _: AdminRead,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = state.keys.get(key_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(key.view(now_micros())))
}

/// Change a key. Absent members stay as they are.
#[utoipa::path(
    patch, path = "/v1/api-keys/{id}", tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    request_body(content = Option<UpdateKeyRequest>, content_type = "application/json",
        description = "The members to change; none (or no body) changes nothing"),
    responses((status = 200, description = "The changed key", body = ApiKeyView), AuthErrors, BodyErrors, NotFound, Conflict)
)]
pub async fn update_key(
    admin: AdminWrite,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = key_id(&path)?;
    let now = now_micros();
    let body: UpdateKeyRequest = json_body(&req, payload).await?;
    let update = body.validate_into(&state.keys.rules(now))?;
    let key = state
        .keys
        .update(id, update, admin.caller.actor, now)
        .await?;
    Ok(HttpResponse::Ok().json(key.view(now_micros())))
}

/// Issue a new secret; the current one may keep working for a grace period.
#[utoipa::path(
    post, path = "/v1/api-keys/{id}/rotate", tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    request_body(content = Option<RotateKeyRequest>, content_type = "application/json"),
    responses((status = 200, description = "The key, with its new secret", body = ApiKeyWithSecret), AuthErrors, BodyErrors, NotFound, Conflict)
)]
pub async fn rotate_key(
    admin: AdminWrite,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = key_id(&path)?;
    let body: RotateKeyRequest = json_body(&req, payload).await?;
    let grace = body.validate_into(&state.keys.rules(now_micros()))?;
    let (key, secret) = state.keys.rotate(id, grace, admin.caller.actor).await?;
    Ok(with_secret(
        actix_web::http::StatusCode::OK,
        &key,
        Some(&secret),
    ))
}

/// Revoke a key: its exchanges fail at once. Idempotent.
#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "The revoked key", body = ApiKeyView), AuthErrors, NotFound)
)]
pub async fn revoke_key(
    admin: AdminWrite,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = state
        .keys
        .revoke(key_id(&path)?, admin.caller.actor)
        .await?;
    Ok(HttpResponse::Ok().json(key.view(now_micros())))
}
