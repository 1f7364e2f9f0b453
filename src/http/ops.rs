//! Health, readiness, metrics, the OpenAPI document, and the fallback 404.

use std::time::SystemTime;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::db::{DbError, ping};
use crate::error::ApiError;

/// The process is up.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// Whether the server can serve: database and signing key.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `ok` or `unavailable`.
    pub database: &'static str,
    /// `ok` or `missing`.
    pub signing_key: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Ready when the database answers and a signing key is loaded.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db_ok = state.db.run::<_, DbError, _>(ping).await.is_ok();
    let key_ok = state.issuer.ring().signer(SystemTime::now()).is_some();
    let body = Readiness {
        status: if db_ok && key_ok {
            "ready"
        } else {
            "not_ready"
        },
        database: if db_ok { "ok" } else { "unavailable" },
        signing_key: if key_ok { "ok" } else { "missing" },
    };
    if db_ok && key_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition",
        body = String, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.db.pool().state();
    crate::telemetry::set_pool(pool.connections, pool.idle_connections);
    let now = SystemTime::now();
    let ring = state.issuer.ring();
    crate::telemetry::set_signing_keys(ring.states(now).map(|(_, s)| s.as_str()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::telemetry::render())
}

/// This document: OpenAPI 3.1 of every endpoint, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi(doc: web::Data<super::openapi::OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

/// Any unknown path.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
