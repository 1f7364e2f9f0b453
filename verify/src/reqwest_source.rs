//! Fetching the JWKS and the revocation list with reqwest over rustls.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CACHE_CONTROL, ETAG, IF_NONE_MATCH};

use crate::source::{FetchError, FetchFuture, Fetched, JwksSource, max_age_from_cache_control};

/// Default request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS is a few KiB and the revocation list rarely more; anything much
/// bigger is not what we asked for.
const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// Fetches with [reqwest](https://docs.rs/reqwest): one pooled client,
/// TLS by rustls (aws-lc-rs) with the platform's trust store, a 5 s
/// timeout, a 256 KiB body limit, and no redirects (keys come from the
/// configured URL only). Runs on any tokio runtime, actix-web's included.
#[derive(Debug, Clone)]
pub struct ReqwestSource {
    client: Option<reqwest::Client>,
    why_not: Option<String>,
    max_body: usize,
}

impl Default for ReqwestSource {
    fn default() -> Self {
        Self::new()
    }
}

impl ReqwestSource {
    /// A source with a 5 s timeout and a 256 KiB body limit.
    pub fn new() -> Self {
        Self::with_timeout(DEFAULT_TIMEOUT)
    }

    /// A source whose fetches give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        let built = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build();
        // Building fails only when no TLS backend can start (e.g. no trust
        // store); every fetch then reports why instead of panicking here.
        let (client, why_not) = match built {
            Ok(client) => (Some(client), None),
            Err(e) => (None, Some(format!("HTTP client: {e}"))),
        };
        Self {
            client,
            why_not,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// A source on a client of your own (proxies, extra roots, mTLS).
    /// Configure it without redirects and with a timeout.
    pub fn with_client(client: reqwest::Client) -> Self {
        Self {
            client: Some(client),
            why_not: None,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Sets the largest body accepted, in bytes.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

impl JwksSource for ReqwestSource {
    fn fetch<'a>(&'a self, url: &'a str, etag: Option<&'a str>) -> FetchFuture<'a> {
        Box::pin(async move {
            let fail = |why: String| FetchError(format!("GET {url}: {why}"));
            let Some(client) = &self.client else {
                return Err(fail(self.why_not.clone().unwrap_or_default()));
            };
            let mut request = client.get(url).header(ACCEPT, "application/json");
            if let Some(tag) = etag {
                request = request.header(IF_NONE_MATCH, tag);
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
                    if response
                        .content_length()
                        .is_some_and(|n| n > self.max_body as u64)
                    {
                        return Err(fail("body too large".into()));
                    }
                    // Read chunk by chunk: a missing or lying Content-Length
                    // must not let the body grow past the limit.
                    let mut body = Vec::new();
                    while let Some(chunk) =
                        response.chunk().await.map_err(|e| fail(e.to_string()))?
                    {
                        if body.len() + chunk.len() > self.max_body {
                            return Err(fail("body too large".into()));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(Fetched::Body {
                        body,
                        etag,
                        max_age,
                    })
                }
                status => Err(fail(format!("status {status}"))),
            }
        })
    }
}
