//! [`Verifier`]: checks tokens offline against the issuer's cached JWKS.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::{Cached, Document, KeySet, Policy, Revoked, VerifyKey, parse_revocations};
use crate::dpop::ProofChecker;
use crate::rules::{self, ALGORITHMS, AccessClaims, VerifyError};
use crate::source::JwksSource;

/// Default [`VerifierBuilder::min_refresh_interval`].
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Default [`VerifierBuilder::max_cache_age`]: tokenmint's own JWKS `max-age`.
pub const DEFAULT_MAX_CACHE_AGE: Duration = Duration::from_secs(300);
/// Default poll interval of [`VerifierBuilder::revocation_polling`].
pub const DEFAULT_REVOCATION_POLL_INTERVAL: Duration = Duration::from_secs(10);

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Verifies tokenmint access tokens offline.
///
/// Cheap to clone (one `Arc`); share one per process (actix-web's
/// `app_data`, axum's state, the tower layer), so all workers use one key
/// cache and one DPoP replay window. Its futures are `Send`.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    jwks_url: String,
    policy: Policy,
    source: Box<dyn JwksSource>,
    keys: Document<KeySet>,
    revocations: Option<(String, Document<Revoked>)>,
    public_origin: Option<String>,
    proofs: ProofChecker,
    clock: Clock,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Verifier")
            .field("issuer", &i.issuer)
            .field("audience", &i.audience)
            .field("jwks_url", &i.jwks_url)
            .field("policy", &i.policy)
            .field("revocation_url", &i.revocations.as_ref().map(|r| &r.0))
            .finish_non_exhaustive()
    }
}

/// Configures a [`Verifier`]; see [`Verifier::builder`].
#[must_use]
pub struct VerifierBuilder {
    issuer: String,
    audience: String,
    jwks_url: Option<String>,
    min_interval: Duration,
    max_age: Duration,
    revocation_url: Option<String>,
    revocation_interval: Option<Duration>,
    public_origin: Option<String>,
    clock: Clock,
}

impl VerifierBuilder {
    /// The origin clients reach this service at, e.g.
    /// `https://orders.example.com` (a trailing `/` is ignored). DPoP proofs
    /// name the URL the client used (`htu`); behind a TLS-terminating proxy
    /// or load balancer the service cannot see it, so set this. Without it
    /// the URL is rebuilt from the request: its scheme as the server sees
    /// it and its `Host` header.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into().trim_end_matches('/').to_owned());
        self
    }

    /// The JWKS location [default: `{issuer}/.well-known/jwks.json`].
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The least time between two JWKS fetches, whatever triggers them
    /// [default: 10 s]. This is what stops a flood of tokens with random
    /// `kid`s from turning into a flood of requests to the issuer.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// The longest a fetched JWKS is used before it is fetched again
    /// [default: 300 s]. A shorter `Cache-Control: max-age` from the issuer
    /// is honoured down to [`Self::min_refresh_interval`].
    pub fn max_cache_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Turns on revocation checking: the list of recently revoked
    /// `client_id`s is fetched from `{issuer}/auth/revocations` at most once
    /// per `interval`, by the first verification that finds it older, and
    /// tokens of a listed `client_id` are refused with
    /// [`VerifyError::Revoked`].
    pub fn revocation_polling(mut self, interval: Duration) -> Self {
        self.revocation_interval = Some(interval);
        self
    }

    /// Turns on revocation checking against `url` instead of the default
    /// location (poll interval 10 s unless set by
    /// [`Self::revocation_polling`]).
    pub fn revocation_url(mut self, url: impl Into<String>) -> Self {
        self.revocation_url = Some(url.into());
        self
    }

    #[cfg(test)]
    pub(crate) fn clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the verifier, fetching through `source` (e.g.
    /// `ReqwestSource::new()` with the `reqwest` feature). Nothing is fetched yet;
    /// call [`Verifier::warm_up`] to fail fast at start-up.
    pub fn build(self, source: impl JwksSource) -> Verifier {
        let policy = Policy::new(self.min_interval, self.max_age);
        let jwks_url = self
            .jwks_url
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", self.issuer));
        let revocations = match (self.revocation_url, self.revocation_interval) {
            (None, None) => None,
            (url, interval) => {
                let every = interval.unwrap_or(DEFAULT_REVOCATION_POLL_INTERVAL);
                let url = url.unwrap_or_else(|| format!("{}/auth/revocations", self.issuer));
                let policy = Policy::new(every, every);
                Some((url, Document::new(policy)))
            }
        };
        Verifier {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audience: self.audience,
                jwks_url,
                policy,
                source: Box::new(source),
                keys: Document::new(policy),
                revocations,
                public_origin: self.public_origin,
                proofs: ProofChecker::new(),
                clock: self.clock,
            }),
        }
    }
}

impl Verifier {
    /// Starts configuring a verifier for tokens of `issuer` (tokenmint's
    /// base URL, a trailing `/` is ignored as the server drops it too)
    /// minted for `audience` (tokenmint's default audience is its issuer).
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> VerifierBuilder {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        VerifierBuilder {
            issuer,
            audience: audience.into(),
            jwks_url: None,
            min_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            max_age: DEFAULT_MAX_CACHE_AGE,
            revocation_url: None,
            revocation_interval: None,
            public_origin: None,
            clock: Arc::new(Instant::now),
        }
    }

    /// The expected `iss`.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The expected `aud`.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The origin DPoP proofs are checked against, if configured.
    pub fn public_origin(&self) -> Option<&str> {
        self.inner.public_origin.as_deref()
    }

    pub(crate) fn proofs(&self) -> &ProofChecker {
        &self.inner.proofs
    }

    /// Checks signature, header and claims, and (when on) the revocation
    /// list. Fetches the JWKS when it has none, when the cached copy is
    /// stale, or once for an unknown `kid`, never more often than the
    /// minimum refresh interval.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let inner = &*self.inner;
        let header = rules::read_header(token)?;
        // Cheap refusals before the key lookup, so that tokens which can
        // never be valid do not spend the refresh budget.
        if header.typ.as_deref() != Some(rules::TOKEN_TYPE) {
            return Err(VerifyError::WrongType);
        }
        if !ALGORITHMS.contains(&header.alg) {
            return Err(VerifyError::Invalid("unsupported algorithm".into()));
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        if kid.is_empty() || kid.len() > rules::MAX_KID_LEN {
            return Err(VerifyError::UnknownKey);
        }
        let key = self.key(kid).await?;
        rules::check_header(&header, key.alg)?;
        let claims = rules::decode_claims(
            token,
            &key.key,
            key.alg,
            &inner.issuer,
            Some(&inner.audience),
        )?;
        self.check_revocation(&claims.client_id).await?;
        Ok(claims)
    }

    /// [`Self::verify`], then requires every scope in `scopes`
    /// ([`VerifyError::MissingScope`] names the first one missing).
    pub async fn verify_with_scopes(
        &self,
        token: &str,
        scopes: &[&str],
    ) -> Result<AccessClaims, VerifyError> {
        let claims = self.verify(token).await?;
        match claims.missing_scope(scopes) {
            Some(missing) => Err(VerifyError::MissingScope(missing.to_owned())),
            None => Ok(claims),
        }
    }

    /// Fetches the JWKS (and the revocation list, when on) unless they were
    /// fetched within their interval, and fails if there is still none: call
    /// it at start-up to find a wrong issuer URL before the first request.
    pub async fn warm_up(&self) -> Result<(), VerifyError> {
        let inner = &*self.inner;
        self.refresh(&inner.keys, &inner.jwks_url, KeySet::parse)
            .await;
        if inner.keys.read(|c| c.value.is_none()) {
            return Err(VerifyError::Jwks(inner.keys.read(Cached::why_missing)));
        }
        if let Some((url, doc)) = &inner.revocations {
            self.refresh(doc, url, parse_revocations).await;
            if doc.read(|c| c.value.is_none()) {
                return Err(VerifyError::Revocations(doc.read(Cached::why_missing)));
            }
        }
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<Arc<VerifyKey>, VerifyError> {
        let keys = &self.inner.keys;
        let now = (self.inner.clock)();
        let (found, stale) = keys.read(|c| {
            let found = c.value.as_ref().and_then(|s| s.keys.get(kid).cloned());
            (found, c.is_stale(now))
        });
        if let Some(key) = found.as_ref().filter(|_| !stale) {
            return Ok(key.clone());
        }
        // Stale copy or unknown kid: refresh if the rate limit allows. When
        // it does not, a stale key is still better than none.
        self.refresh(keys, &self.inner.jwks_url, KeySet::parse)
            .await;
        keys.read(|c| match &c.value {
            None => Err(VerifyError::Jwks(c.why_missing())),
            Some(set) => set.keys.get(kid).cloned().ok_or(VerifyError::UnknownKey),
        })
    }

    async fn check_revocation(&self, client_id: &str) -> Result<(), VerifyError> {
        let Some((url, doc)) = &self.inner.revocations else {
            return Ok(());
        };
        let now = (self.inner.clock)();
        if doc.read(|c| c.is_stale(now)) {
            self.refresh(doc, url, parse_revocations).await;
        }
        doc.read(|c| match &c.value {
            None => Err(VerifyError::Revocations(c.why_missing())),
            Some(ids) if ids.contains(client_id) => Err(VerifyError::Revoked),
            Some(_) => Ok(()),
        })
    }

    /// Fetches `url` into `doc` if the rate limit allows (single-flight).
    async fn refresh<T>(
        &self,
        doc: &Document<T>,
        url: &str,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) {
        doc.refresh(&*self.inner.source, &*self.inner.clock, url, parse)
            .await;
    }
}

#[cfg(test)]
mod tests;
