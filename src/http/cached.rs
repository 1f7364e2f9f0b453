//! Bodies served with a strong `ETag`, computed once per body rather than
//! per request.

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::tokens::signing::JwksJson;

/// A JSON body served with an `ETag`, serialised once.
#[derive(Debug)]
pub struct CachedBody {
    /// The JSON text.
    pub body: String,
    /// The quoted strong tag, ready for the `ETag` header.
    pub etag: String,
}

impl CachedBody {
    /// Wraps a body and computes its strong `ETag`.
    pub fn new(body: String) -> Self {
        let etag = etag_of(body.as_bytes());
        Self { body, etag }
    }

    /// The published JWKS; the key ring already hashed it, so this only
    /// formats the tag.
    pub fn jwks(jwks: &JwksJson) -> Self {
        Self {
            body: jwks.json.clone(),
            etag: etag(&jwks.sha256),
        }
    }
}

/// The strong `ETag` of any body.
pub fn etag_of(body: &[u8]) -> String {
    etag(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body).as_ref())
}

/// Whether the request's `If-None-Match` names this tag (or `*`).
pub fn client_has(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// The tag of a body with this SHA-256: 128 bits are plenty to tell versions
/// apart, and keep the header short.
fn etag(sha256: &[u8]) -> String {
    format!("\"{}\"", B64.encode(&sha256[..16]))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::tokens::signing::{KeyRing, SigningAlg, generate_into};

    #[test]
    fn the_jwks_tag_is_the_tag_of_its_body() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        let ring = KeyRing::new(vec![key], Duration::from_secs(60));
        let from_ring = CachedBody::jwks(&ring.jwks_json(SystemTime::now()));
        let rehashed = CachedBody::new(from_ring.body.clone());
        assert_eq!(from_ring.etag, rehashed.etag);
        assert_eq!(from_ring.etag.len(), 24);
    }
}
