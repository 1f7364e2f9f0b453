//! HTTP: routes, the request-context middleware, and helpers shared by the
//! handlers. Handlers are thin: extract, authorise, call the domain, respond.

pub mod admin;
pub mod auth;
pub mod cached;
pub mod console;
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

/// An `X-Forwarded-For` hop (from a trusted proxy) that is not an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadForwardedHop;

/// One `X-Forwarded-For` hop as proxies write it: `1.2.3.4`, `1.2.3.4:5678`,
/// `2001:db8::5`, `[2001:db8::5]` or `[2001:db8::5]:443`, optionally quoted.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok
            .then(|| inside.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))
            .flatten();
    }
    hop.parse::<std::net::SocketAddrV4>()
        .ok()
        .map(|a| IpAddr::V4(*a.ip()))
}

/// The client's address: the socket peer, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` hop that is not itself trusted.
/// A hop that does not parse is refused (the caller answers 400) rather than
/// guessed at: mapping junk to one shared "unknown" address would let one
/// sender exhaust everyone's failure budget, and mapping it per string would
/// let a sender escape its own (docs/SECURITY.md).
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Result<IpAddr, BadForwardedHop> {
    let peer = req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| {
        crate::net::canonical_ip(a.ip())
    });
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Ok(peer);
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in req.headers().get_all("x-forwarded-for") {
        let text = value.to_str().map_err(|_| BadForwardedHop)?;
        hops.extend(text.split(','));
    }
    // Walk from the nearest hop outwards; the first one that is not a
    // trusted proxy is the client.
    for hop in hops.into_iter().rev() {
        let ip = crate::net::canonical_ip(parse_hop(hop).ok_or(BadForwardedHop)?);
        if !is_trusted(&ip) {
            return Ok(ip);
        }
    }
    Ok(peer)
}

/// The operations routes alone, for the `TOKENMINT_OPS_BIND` listener.
pub fn configure_ops(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .default_service(web::to(ops::not_found));
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
    console::configure(cfg);
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

    fn from(peer: &str, xff: Option<&str>) -> Result<String, BadForwardedHop> {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(v) = xff {
            req = req.insert_header(("x-forwarded-for", v));
        }
        client_ip(&req.to_http_request(), &trusted).map(|ip| ip.to_string())
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        assert_eq!(
            from("203.0.113.9:5000", Some("1.2.3.4")).unwrap(),
            "203.0.113.9"
        );
        assert_eq!(
            from("10.0.0.2:5000", Some("6.6.6.6, 198.51.100.7, 10.0.0.3")).unwrap(),
            "198.51.100.7"
        );
        // A trusted peer without the header is the client itself.
        assert_eq!(from("10.0.0.2:5000", None).unwrap(), "10.0.0.2");
    }

    #[test]
    fn hops_with_ports_and_brackets_parse() {
        for (hop, want) in [
            ("5.6.7.8:6666", "5.6.7.8"),
            ("[2001:db8::5]:443", "2001:db8::5"),
            ("[2001:db8::5]", "2001:db8::5"),
            ("2001:db8::5", "2001:db8::5"),
            ("\"198.51.100.1\"", "198.51.100.1"),
            (" ::ffff:192.0.2.1 ", "192.0.2.1"),
        ] {
            assert_eq!(from("10.0.0.2:1", Some(hop)).unwrap(), want, "{hop}");
        }
    }

    #[test]
    fn junk_hops_are_refused_not_guessed() {
        for xff in [
            "nonsense",
            "203.0.113.9, x",
            "203.0.113.9, x, 10.0.0.7",
            "1.2.3.4:99999",
            "[2001:db8::5",
            "[1.2.3.4]:80",
            "",
        ] {
            assert_eq!(
                from("10.0.0.2:1", Some(xff)),
                Err(BadForwardedHop),
                "{xff:?}"
            );
        }
        // What lies beyond the first untrusted hop was written by the client
        // and is never read, junk or not.
        assert_eq!(
            from("10.0.0.2:1", Some("x, 203.0.113.9, 10.0.0.7")).unwrap(),
            "203.0.113.9"
        );
        // Junk from an untrusted peer is simply ignored.
        assert_eq!(from("203.0.113.9:1", Some("junk")).unwrap(), "203.0.113.9");
    }
}
