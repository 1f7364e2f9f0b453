//! The JWKS and the RFC 8414 discovery document, with `ETag`s.

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::config::Config;
use crate::http::cached::{CachedBody, client_has};
use crate::keys::scope::RESERVED;
use crate::tokens::federation::TOKEN_EXCHANGE;
use crate::tokens::signing::JWKS_MAX_AGE_SECONDS;
use tokenmint_verify::dpop::PROOF_ALGS;
use tokenmint_verify::jws::ALG_NAMES;

/// How long verifiers may cache the JWKS. Some refetch on an unknown `kid`;
/// for the others a new key signs only after this long (SPEC §9.3).
const JWKS_MAX_AGE: u32 = JWKS_MAX_AGE_SECONDS;

/// Answers `304` when the client already has this body.
fn cached_json(req: &HttpRequest, cached: &CachedBody, max_age: u32) -> HttpResponse {
    let etag = &cached.etag;
    let matches = client_has(req, etag);
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

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    /// Public keys (`kid`, `kty`, `alg`, `use: sig`, and the key's members).
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

/// Every public key that may still verify a live token.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "discovery",
    responses(
        (status = 200, description = "The key set", body = Jwks,
         headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the given `If-None-Match`"),
    )
)]
pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    cached_json(
        &req,
        &CachedBody::jwks(&state.issuer.ring().jwks_json(SystemTime::now())),
        JWKS_MAX_AGE,
    )
}

/// Authorization server metadata (RFC 8414).
#[derive(Serialize, ToSchema)]
pub struct DiscoveryDocument {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    /// `GET` it for the keys revoked within the last token lifetime.
    pub revocation_list_uri: String,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    /// What a DPoP proof at the token endpoint may be signed with (RFC 9449 §5.1).
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// The scope catalog and the reserved scopes, when a catalog is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
}

impl DiscoveryDocument {
    /// The document of a server with this configuration.
    pub fn new(config: &Config) -> Self {
        let base = &config.issuer;
        Self {
            issuer: base.clone(),
            token_endpoint: format!("{base}/auth/token"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            introspection_endpoint: format!("{base}/auth/introspect"),
            revocation_list_uri: format!("{base}/auth/revocations"),
            // The token exchange only where an issuer is trusted: without
            // one every such request would fail.
            grant_types_supported: if config.federation_issuers.is_empty() {
                vec!["client_credentials"]
            } else {
                vec!["client_credentials", TOKEN_EXCHANGE]
            },
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            introspection_endpoint_auth_methods_supported: vec!["bearer"],
            response_types_supported: vec![],
            token_endpoint_auth_signing_alg_values_supported: ALG_NAMES.to_vec(),
            access_token_signing_alg_values_supported: vec![config.signing_alg.as_str()],
            dpop_signing_alg_values_supported: PROOF_ALGS.to_vec(),
            scopes_supported: config.allowed_scopes.as_ref().map(|catalog| {
                let mut scopes = catalog.clone();
                scopes.extend(
                    RESERVED
                        .iter()
                        .filter(|r| !catalog.iter().any(|c| c == *r))
                        .map(|r| (*r).to_owned()),
                );
                scopes
            }),
        }
    }
}

/// The discovery document, serialised once per worker.
pub struct Discovery(pub CachedBody);

impl Discovery {
    /// Serialises the document of this configuration.
    pub fn new(config: &Config) -> Self {
        let body = serde_json::to_string(&DiscoveryDocument::new(config)).unwrap_or_default();
        Self(CachedBody::new(body))
    }
}

/// The server's metadata (RFC 8414).
#[utoipa::path(
    get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses(
        (status = 200, description = "The metadata", body = DiscoveryDocument,
         headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the given `If-None-Match`"),
    )
)]
pub async fn discovery(req: HttpRequest, doc: web::Data<Discovery>) -> HttpResponse {
    cached_json(&req, &doc.0, 3600)
}

/// The same metadata at the OpenID Connect location.
#[utoipa::path(
    get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses(
        (status = 200, description = "The metadata", body = DiscoveryDocument,
         headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the given `If-None-Match`"),
    )
)]
pub async fn openid_configuration(req: HttpRequest, doc: web::Data<Discovery>) -> HttpResponse {
    cached_json(&req, &doc.0, 3600)
}
