//! HTTP: routes, the request-context middleware, and helpers shared by the
//! handlers. Handlers are thin: extract, authorise, call the domain, respond.

pub mod admin;
pub mod auth;
pub mod cached;
pub mod docs;
pub mod extract;
pub mod introspect;
pub mod openapi;
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
use ipnet::IpNet;
use tracing::Instrument;

use crate::AppState;
use crate::error::REQUEST_ID;

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

/// Gives every request an id (echoed or fresh), puts it on the response, into
/// error bodies and into a tracing span around the request (so every log
/// line of the request carries it), and logs one line per request: method,
/// path (never the query), status, latency. Never a header or a body.
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
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = REQUEST_ID
        .scope(id.clone(), next.call(req))
        .instrument(span.clone())
        .await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, v);
    }
    let status = res.status().as_u16();
    let micros = started.elapsed().as_micros() as u64;
    crate::telemetry::observe_http(method_label, status, micros);
    if let Some((method, path)) = log {
        span.in_scope(|| {
            tracing::info!(%method, %path, status, latency_us = micros, "request");
        });
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

/// Every route and the app data the handlers need, mounted by `crate::app`
/// for the server and the tests alike.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    cfg.app_data(web::Data::new(well_known::Discovery::new(&state.config)))
        .app_data(web::Data::new(openapi::OpenApiJson(openapi::document_for(
            &state.config,
        ))));
    for resource in openapi::resources() {
        cfg.service(resource);
    }
    cfg.default_service(web::to(ops::not_found));
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
