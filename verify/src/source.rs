//! How the verifier gets documents from the issuer: a small trait, so the
//! cache logic needs no network and applications can bring their own client.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The future a [`JwksSource`] returns.
///
/// `Send`, so verification can run on any multi-threaded runtime (axum,
/// tower) as well as on actix-web's per-thread ones.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + 'a>>;

/// Fetches a JSON document from the issuer with an HTTP `GET`: the JWKS,
/// and the revocation list when revocation polling is on.
///
/// Implementations should bound the time (a few seconds) and the body size
/// (a JWKS is a few KiB), and may use `etag` for a conditional request.
pub trait JwksSource: Send + Sync + 'static {
    /// `GET url`. `etag` is the `ETag` of the copy the verifier holds: a
    /// source may send it as `If-None-Match` and answer
    /// [`Fetched::NotModified`] on `304`, or ignore it. Any status other than
    /// `200`/`304` is an error.
    fn fetch<'a>(&'a self, url: &'a str, etag: Option<&'a str>) -> FetchFuture<'a>;
}

/// A successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// `200` with a body.
    Body {
        /// The raw body (JSON).
        body: Vec<u8>,
        /// The response's `ETag`, if any.
        etag: Option<String>,
        /// From `Cache-Control`, see [`max_age_from_cache_control`].
        max_age: Option<Duration>,
    },
    /// `304`: the copy the verifier holds is still current.
    NotModified {
        /// From `Cache-Control`, see [`max_age_from_cache_control`].
        max_age: Option<Duration>,
    },
}

impl Fetched {
    /// A plain `200` body without caching headers.
    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        Self::Body {
            body: body.into(),
            etag: None,
            max_age: None,
        }
    }
}

/// Why a fetch failed (unreachable, timeout, unexpected status, too big).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// How long a response may be cached according to its `Cache-Control`:
/// `max-age=N` gives `N` seconds, `no-cache`/`no-store` give zero, and
/// anything else `None` (the verifier then uses its own interval). The
/// verifier clamps the answer to its configured bounds, so a hostile or
/// buggy header can neither pin stale keys for days nor make it fetch on
/// every request.
pub fn max_age_from_cache_control(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            max_age = secs
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        let secs = |s: &str| max_age_from_cache_control(s).map(|d| d.as_secs());
        assert_eq!(secs("public, max-age=300"), Some(300));
        assert_eq!(secs("Max-Age=5"), Some(5));
        assert_eq!(secs("max-age=\"60\""), Some(60));
        assert_eq!(secs("no-store"), Some(0));
        assert_eq!(secs("max-age=300, no-cache"), Some(0));
        assert_eq!(secs("public"), None);
        assert_eq!(secs("max-age=soon"), None);
        assert_eq!(secs("s-maxage=10"), None);
    }
}
