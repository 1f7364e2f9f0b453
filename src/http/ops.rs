//! Health, readiness, metrics, and the fallback 404.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::AppState;
use crate::db::{DbError, ping};
use crate::error::ApiError;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers and a signing key is loaded.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db_ok = state.db.run::<_, DbError, _>(ping).await.is_ok();
    let key_ok = state.issuer.ring().signer().is_some();
    let body = json!({
        "status": if db_ok && key_ok { "ready" } else { "not_ready" },
        "database": if db_ok { "ok" } else { "unavailable" },
        "signing_key": if key_ok { "ok" } else { "missing" },
    });
    if db_ok && key_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.db.pool().state();
    crate::telemetry::set_pool(pool.connections, pool.idle_connections);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::telemetry::render())
}

/// The OpenAPI 3.1 description of every endpoint (kept beside the routes;
/// a test checks that each route appears in it).
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /openapi.json`
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// Any unknown path.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
