//! [`IssuerKeys`]: the signing keys of an external OpenID issuer, found
//! through its discovery document and cached like tokenmint's own JWKS (the
//! same [`Document`] cache: single-flight, rate-limited, last good copy kept
//! through an outage). tokenmint uses it to check tokens of the identity
//! providers it trusts (RFC 8693 token exchange).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cache::{Document, MAX_KEYS, Policy};
use crate::jws::PublicJwk;
use crate::source::JwksSource;

/// Least time between two fetches of one issuer's documents: an unknown
/// `kid` refetches at most this often.
pub const ISSUER_MIN_REFRESH: Duration = Duration::from_secs(10);
/// A fetched copy is fresh for the response's `max-age` within these
/// bounds, or [`ISSUER_DEFAULT_AGE`] without one.
pub const ISSUER_MIN_AGE: Duration = Duration::from_secs(60);
/// See [`ISSUER_MIN_AGE`].
pub const ISSUER_MAX_AGE: Duration = Duration::from_secs(3600);
/// See [`ISSUER_MIN_AGE`].
pub const ISSUER_DEFAULT_AGE: Duration = Duration::from_secs(600);
/// How long past its freshness a key set is still used while refetches
/// fail. Bounded, so that a key the issuer withdrew (after a compromise,
/// say) does not stay trusted for as long as someone can block our fetch.
pub const ISSUER_MAX_STALE: Duration = Duration::from_secs(3600);

/// Why no key was found for a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerKeyError {
    /// The issuer's key set has no key with this `kid` (or, for a token
    /// without `kid`, not exactly one key).
    #[error("no such key at the issuer")]
    UnknownKey,
    /// No key set could be fetched yet.
    #[error("the issuer's keys are unavailable: {0}")]
    Unavailable(String),
}

/// The usable keys of an issuer's JWKS.
#[derive(Debug, Default)]
struct IssuerKeySet {
    keys: Vec<Arc<PublicJwk>>,
}

impl IssuerKeySet {
    /// Keeps the keys we can use (public, of an accepted type); others, such
    /// as encryption keys, are skipped rather than failing the set.
    fn parse(body: &[u8]) -> Result<Self, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("JWKS: {e}"))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("JWKS without a keys array")?;
        let keys = list
            .iter()
            .take(MAX_KEYS)
            .filter_map(|k| PublicJwk::from_json(k).ok())
            .map(Arc::new)
            .collect();
        Ok(Self { keys })
    }

    fn find(&self, kid: Option<&str>) -> Option<Arc<PublicJwk>> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid() == Some(kid)).cloned(),
            None if self.keys.len() == 1 => self.keys.first().cloned(),
            None => None,
        }
    }
}

/// The `jwks_uri` of a discovery document whose `issuer` is the one we
/// asked about (OpenID Connect Discovery §4.3): anything else could hand
/// us another issuer's keys. It must be `https`, or `http` when the issuer
/// itself is (loopback development).
fn parse_discovery(issuer: &str, body: &[u8]) -> Result<String, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("discovery: {e}"))?;
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err("the discovery document names another issuer".into());
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("the discovery document has no jwks_uri")?;
    let url = url::Url::parse(uri).map_err(|_| "the jwks_uri is not a URL")?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let dev = issuer.starts_with("http://") && url.scheme() == "http" && loopback;
    if url.scheme() != "https" && !dev {
        return Err("the jwks_uri is not https".into());
    }
    Ok(uri.to_owned())
}

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The keys of one issuer: `{issuer}/.well-known/openid-configuration`
/// gives the `jwks_uri`, whose keys are cached for the response's
/// `max-age` (1 min to 1 h, 10 min without one). A token naming an unknown
/// `kid` triggers a refetch at most once per 10 s, so a flood of invented
/// `kid`s cannot turn into a flood of requests to the issuer. Nothing else
/// is fetched. Cheap to clone.
#[derive(Clone)]
pub struct IssuerKeys {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    discovery_url: String,
    source: Arc<dyn JwksSource>,
    discovery: Document<String>,
    keys: Document<IssuerKeySet>,
    clock: Clock,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

impl IssuerKeys {
    /// The keys of `issuer` (its exact URL, as tokens carry it in `iss`),
    /// fetched through `source`. Nothing is fetched until the first lookup.
    pub fn new(issuer: impl Into<String>, source: Arc<dyn JwksSource>) -> Self {
        Self::with_clock(issuer.into(), source, Arc::new(Instant::now))
    }

    pub(crate) fn with_clock(issuer: String, source: Arc<dyn JwksSource>, clock: Clock) -> Self {
        let policy = Policy {
            min_interval: ISSUER_MIN_REFRESH,
            min_age: ISSUER_MIN_AGE,
            default_age: ISSUER_DEFAULT_AGE,
            max_age: ISSUER_MAX_AGE,
        };
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        Self {
            inner: Arc::new(Inner {
                issuer,
                discovery_url,
                source,
                discovery: Document::new(policy),
                keys: Document::new(policy),
                clock,
            }),
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The key a token names by `kid` (or the only key, for a token
    /// without one). Fetches when there is no copy, when it is stale, or
    /// for an unknown `kid`, within the rate limit; a stale key is used
    /// while a refetch is not allowed or fails, for at most
    /// [`ISSUER_MAX_STALE`] past its freshness.
    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<PublicJwk>, IssuerKeyError> {
        let inner = &*self.inner;
        let now = (inner.clock)();
        let (found, stale) = inner.keys.read(|c| {
            let found = c.value.as_ref().and_then(|s| s.find(kid));
            (found, c.is_stale(now))
        });
        if let Some(key) = found.as_ref().filter(|_| !stale) {
            return Ok(key.clone());
        }
        self.refresh().await;
        let now = (inner.clock)();
        inner.keys.read(|c| match &c.value {
            Some(_) if c.fresh_until.is_some_and(|t| now > t + ISSUER_MAX_STALE) => {
                Err(IssuerKeyError::Unavailable(format!(
                    "keys stale for over an hour: {}",
                    c.why_missing()
                )))
            }
            None if inner.discovery.read(|d| d.value.is_none()) => Err(
                IssuerKeyError::Unavailable(inner.discovery.read(|d| d.why_missing())),
            ),
            None => Err(IssuerKeyError::Unavailable(c.why_missing())),
            Some(set) => set.find(kid).ok_or(IssuerKeyError::UnknownKey),
        })
    }

    async fn refresh(&self) {
        let inner = &*self.inner;
        let clock = &*inner.clock;
        if inner.discovery.read(|c| c.is_stale(clock())) {
            let issuer = inner.issuer.clone();
            inner
                .discovery
                .refresh(&*inner.source, clock, &inner.discovery_url, |body| {
                    parse_discovery(&issuer, body)
                })
                .await;
        }
        let Some(jwks_uri) = inner.discovery.read(|c| c.value.clone()) else {
            return;
        };
        inner
            .keys
            .refresh(&*inner.source, clock, &jwks_uri, IssuerKeySet::parse)
            .await;
    }
}

#[cfg(test)]
mod tests;
