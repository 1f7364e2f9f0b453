//! Fetching the JWKS with awc, actix's HTTP client.

use std::time::Duration;

use awc::http::StatusCode;
use awc::http::header::{ACCEPT, CACHE_CONTROL, ETAG, IF_NONE_MATCH};

use crate::source::{FetchError, FetchFuture, Fetched, JwksSource, max_age_from_cache_control};

/// Default request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS is a few KiB and the revocation list rarely more; anything much
/// bigger is not what we asked for.
const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// Fetches with [awc](https://docs.rs/awc). Must run on an actix (or tokio
/// `LocalSet`) runtime, which actix-web handlers always do.
///
/// Built without TLS: for an `https://` issuer, enable a TLS feature of awc
/// in your own `Cargo.toml`, e.g.
/// `awc = { version = "3", features = ["rustls-0_23-webpki-roots"] }`
/// (or `openssl`), or implement [`JwksSource`] with the client you already
/// use. Redirects are not followed: keys come from the configured URL only.
#[derive(Debug, Clone)]
pub struct AwcSource {
    timeout: Duration,
    max_body: usize,
}

impl Default for AwcSource {
    fn default() -> Self {
        Self::new()
    }
}

impl AwcSource {
    /// A source with a 5 s timeout and a 256 KiB body limit.
    pub fn new() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Sets the timeout of one fetch.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the largest body accepted, in bytes.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

impl JwksSource for AwcSource {
    fn fetch<'a>(&'a self, url: &'a str, etag: Option<&'a str>) -> FetchFuture<'a> {
        Box::pin(async move {
            let fail = |why: String| FetchError(format!("GET {url}: {why}"));
            // awc::Client is neither Send nor Sync, so it cannot live in the
            // shared verifier; fetches are rare enough that a fresh client
            // (and connection) per fetch costs nothing that matters.
            let client = awc::Client::builder()
                .timeout(self.timeout)
                .disable_redirects()
                .finish();
            let mut request = client.get(url).insert_header((ACCEPT, "application/json"));
            if let Some(tag) = etag {
                request = request.insert_header((IF_NONE_MATCH, tag));
            }
            let mut response = request.send().await.map_err(|e| fail(e.to_string()))?;
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let max_age = header(CACHE_CONTROL).and_then(|v| max_age_from_cache_control(&v));
            let etag = header(ETAG);
            match response.status() {
                StatusCode::NOT_MODIFIED => Ok(Fetched::NotModified { max_age }),
                StatusCode::OK => {
                    let body = response
                        .body()
                        .limit(self.max_body)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    Ok(Fetched::Body {
                        body: body.to_vec(),
                        etag,
                        max_age,
                    })
                }
                status => Err(fail(format!("status {status}"))),
            }
        })
    }
}
