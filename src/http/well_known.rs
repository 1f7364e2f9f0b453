//! The JWKS and the RFC 8414 discovery document, with `ETag`s.

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::AppState;
use crate::http::cached::CachedBody;
use crate::keys::scope::RESERVED;

/// How long verifiers may cache the JWKS. They refetch on an unknown `kid`,
/// so a new signing key is picked up at once regardless.
const JWKS_MAX_AGE: u32 = 300;

/// Answers `304` when the client already has this body.
fn cached_json(req: &HttpRequest, cached: &CachedBody, max_age: u32) -> HttpResponse {
    let etag = &cached.etag;
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == etag.as_str() || t.trim() == "*")
        });
    let mut res = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .insert_header((header::ETAG, etag.clone()));
    if matches {
        res.finish()
    } else {
        res.content_type("application/json")
            .body(cached.body.clone())
    }
}

/// `GET /.well-known/jwks.json`
pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    cached_json(
        &req,
        &CachedBody::jwks(&state.issuer.ring().jwks_json(SystemTime::now())),
        JWKS_MAX_AGE,
    )
}

/// The discovery document (RFC 8414), built from the configuration.
pub fn discovery_document(state: &AppState) -> Value {
    let base = &state.config.issuer;
    let mut doc = json!({
        "issuer": base,
        "token_endpoint": format!("{base}/auth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{base}/auth/introspect"),
        "revocation_list_uri": format!("{base}/auth/revocations"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "response_types_supported": [],
        "token_endpoint_auth_signing_alg_values_supported": [],
        "access_token_signing_alg_values_supported": [state.config.signing_alg.as_str()],
    });
    if let Some(catalog) = &state.config.allowed_scopes {
        let mut scopes: Vec<&str> = catalog.iter().map(String::as_str).collect();
        scopes.extend(RESERVED.iter().filter(|r| !catalog.iter().any(|c| c == *r)));
        doc["scopes_supported"] = json!(scopes);
    }
    doc
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`
pub async fn discovery(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    cached_json(&req, &state.discovery, 3600)
}
