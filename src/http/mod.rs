//! HTTP: routes, the request-context middleware, and helpers shared by the
//! handlers. Handlers are thin: extract, authorise, call the domain, respond.

pub mod admin;
pub mod auth;
pub mod cached;
pub mod introspect;
pub mod ops;
pub mod token;
pub mod well_known;

use std::net::IpAddr;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use ipnet::IpNet;

use crate::error::{ApiError, REQUEST_ID};

/// Largest body any endpoint reads.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The request id, stored in the request's extensions by the middleware.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An incoming id is kept only if it is 1–128 of `[A-Za-z0-9._-]`.
fn valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Gives every request an id (echoed or fresh), puts it on the response and
/// into error bodies, and logs one line per request: method, path (never the
/// query), status, latency. Never a header or a body.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method_label = crate::telemetry::method_label(req.method());
    // Owned copies for the log line only when it will be written.
    let log = tracing::enabled!(tracing::Level::INFO)
        .then(|| (req.method().to_string(), req.path().to_owned()));
    let started = Instant::now();
    let mut res = REQUEST_ID.scope(id.clone(), next.call(req)).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, v);
    }
    let status = res.status().as_u16();
    let micros = started.elapsed().as_micros() as u64;
    crate::telemetry::observe_http(method_label, status, micros);
    if let Some((method, path)) = log {
        tracing::info!(request_id = %id, %method, %path, status, latency_us = micros, "request");
    }
    Ok(res)
}

/// The request's id (always set by the middleware).
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// The client's address: the socket peer, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` entry that is not itself trusted.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> IpAddr {
    let peer = req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| {
        crate::net::canonical_ip(a.ip())
    });
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Walk from the nearest hop outwards; the first one that is not a trusted
    // proxy is the client. A hop that does not parse means the chain cannot
    // be trusted past it: the client is then "unknown" (0.0.0.0), which
    // matches no allow-list, never the proxy's own address.
    let unknown = IpAddr::from([0, 0, 0, 0]);
    let mut values: Vec<&str> = Vec::new();
    for value in req.headers().get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(text) => values.push(text),
            Err(_) => return unknown,
        }
    }
    let hops = values.iter().flat_map(|v| v.split(',')).collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let ip = crate::net::canonical_ip(ip);
                if !is_trusted(&ip) {
                    return ip;
                }
            }
            Err(_) => return unknown,
        }
    }
    peer
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Broken,
}

/// Reads a body of at most `limit` bytes.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads the body of an OAuth endpoint (at most 8 KiB), with its errors in
/// the RFC 6749 shape.
pub async fn read_oauth_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<web::Bytes, crate::error::OAuthError> {
    use crate::error::OAuthError;
    read_body(req, payload, MAX_BODY_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => OAuthError::TooLarge,
            BodyError::Broken => OAuthError::InvalidRequest("the body could not be read".into()),
        })
}

/// The media type of the request, lower-cased, without parameters.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Reads a JSON body for the admin API: 415 for another media type, 413 when
/// too large, 400 when not JSON. An empty body reads as `{}`.
pub async fn json_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<serde_json::Value, ApiError> {
    let body = read_body(req, payload, 64 * 1024)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => ApiError::TooLarge,
            BodyError::Broken => ApiError::BadRequest("the body could not be read".into()),
        })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    match media_type(req).as_deref() {
        Some("application/json") => {}
        Some(t) if t.ends_with("+json") => {}
        _ => return Err(ApiError::UnsupportedMediaType),
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
}

/// Every route, mounted by `crate::app` for the server and the tests alike.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/token").route(web::post().to(token::exchange_token)))
        .service(
            web::resource("/auth/introspect").route(web::post().to(introspect::introspect_token)),
        )
        .service(
            web::resource("/auth/revocations").route(web::get().to(introspect::list_revocations)),
        )
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(well_known::jwks)))
        .service(
            web::resource("/.well-known/oauth-authorization-server")
                .route(web::get().to(well_known::discovery)),
        )
        .service(
            web::resource("/.well-known/openid-configuration")
                .route(web::get().to(well_known::discovery)),
        )
        .service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(web::resource("/metrics").route(web::get().to(ops::metrics)))
        .service(web::resource("/openapi.json").route(web::get().to(ops::openapi)))
        .service(
            web::scope("/v1")
                .service(
                    web::resource("/api-keys")
                        .route(web::post().to(admin::create_key))
                        .route(web::get().to(admin::list_keys)),
                )
                .service(
                    web::resource("/api-keys/{id}")
                        .route(web::get().to(admin::get_key))
                        .route(web::patch().to(admin::update_key))
                        .route(web::delete().to(admin::revoke_key)),
                )
                .service(
                    web::resource("/api-keys/{id}/rotate").route(web::post().to(admin::rotate_key)),
                )
                .service(
                    web::resource("/audit-events").route(web::get().to(admin::list_audit_events)),
                ),
        )
        .default_service(web::to(ops::not_found));
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn request_ids_are_checked() {
        assert!(valid_request_id("abc-123_X.y"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id(&"a".repeat(129)));
        assert!(!valid_request_id("<script>"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let direct = TestRequest::default()
            .peer_addr("203.0.113.9:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "1.2.3.4"))
            .to_http_request();
        assert_eq!(client_ip(&direct, &trusted).to_string(), "203.0.113.9");
        let proxied = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.3"))
            .to_http_request();
        assert_eq!(client_ip(&proxied, &trusted).to_string(), "198.51.100.7");
        let garbage = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "nonsense"))
            .to_http_request();
        assert_eq!(client_ip(&garbage, &trusted).to_string(), "0.0.0.0");
        // A junk hop anywhere in the chain stops the walk: never the proxy.
        let junk_then_real = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "x, 203.0.113.9, 10.0.0.7"))
            .to_http_request();
        assert_eq!(
            client_ip(&junk_then_real, &trusted).to_string(),
            "203.0.113.9"
        );
        let only_junk = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "203.0.113.9, x"))
            .to_http_request();
        assert_eq!(client_ip(&only_junk, &trusted).to_string(), "0.0.0.0");
        // A trusted peer without the header is the client itself.
        let bare = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .to_http_request();
        assert_eq!(client_ip(&bare, &trusted).to_string(), "10.0.0.2");
    }
}
