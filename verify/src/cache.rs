//! What the verifier remembers between fetches, and when it may fetch
//! again. Pure: every decision takes `now`, so it is tested without clocks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

use crate::rules::decoding_key_from_jwk;
use crate::source::{Fetched, JwksSource};

/// A JWKS larger than this many keys is cut; tokenmint publishes a handful.
pub(crate) const MAX_KEYS: usize = 64;

/// How often a document may be fetched and how long a copy is trusted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// No two fetches closer together than this, whatever triggers them.
    pub min_interval: Duration,
    /// A copy is fresh at least this long, whatever `max-age` says.
    pub min_age: Duration,
    /// How long a copy is fresh when the response gives no `max-age`.
    pub default_age: Duration,
    /// A copy is refetched once older than this, whatever `max-age` says.
    pub max_age: Duration,
}

impl Policy {
    /// Refetch no more than every `min_interval`, keep a copy at most
    /// `max_age` (also the default): the verifier's policy.
    pub fn new(min_interval: Duration, max_age: Duration) -> Self {
        let max_age = max_age.max(min_interval);
        Self {
            min_interval,
            min_age: min_interval,
            default_age: max_age,
            max_age,
        }
    }

    /// How long a fetched copy is fresh: the server's `max-age` when given,
    /// kept within our bounds.
    fn freshness(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.default_age)
            .clamp(self.min_age, self.max_age.max(self.min_age))
    }
}

/// The last good copy of a document and the bookkeeping around it.
#[derive(Debug)]
pub(crate) struct Cached<T> {
    pub value: Option<Arc<T>>,
    pub etag: Option<String>,
    pub fresh_until: Option<Instant>,
    pub last_attempt: Option<Instant>,
    pub last_error: Option<String>,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Self {
            value: None,
            etag: None,
            fresh_until: None,
            last_attempt: None,
            last_error: None,
        }
    }
}

impl<T> Cached<T> {
    /// Whether the copy has outlived its freshness (or there is none).
    pub fn is_stale(&self, now: Instant) -> bool {
        self.fresh_until.is_none_or(|t| now >= t)
    }

    /// Whether the rate limit allows a fetch now. Failed attempts count too,
    /// so an unreachable issuer is not retried in a tight loop.
    pub fn may_fetch(&self, now: Instant, policy: &Policy) -> bool {
        self.last_attempt
            .is_none_or(|t| now.saturating_duration_since(t) >= policy.min_interval)
    }

    /// Records the outcome of a fetch started at `started`. A failure keeps
    /// the previous copy: a brief outage of the issuer must not stop the
    /// verification of tokens signed with keys we already know.
    pub fn record(
        &mut self,
        started: Instant,
        policy: &Policy,
        outcome: Result<Fetched, String>,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) {
        self.last_attempt = Some(started);
        let result = match outcome {
            Ok(Fetched::Body {
                body,
                etag,
                max_age,
            }) => parse(&body).map(|value| {
                self.value = Some(Arc::new(value));
                self.etag = etag;
                max_age
            }),
            Ok(Fetched::NotModified { max_age }) if self.value.is_some() => Ok(max_age),
            Ok(Fetched::NotModified { .. }) => Err("304 Not Modified without a cached copy".into()),
            Err(e) => Err(e),
        };
        match result {
            Ok(max_age) => {
                self.fresh_until = Some(started + policy.freshness(max_age));
                self.last_error = None;
            }
            Err(e) => self.last_error = Some(e),
        }
    }

    /// Why there is no copy, for the error returned to callers.
    pub fn why_missing(&self) -> String {
        self.last_error
            .clone()
            .unwrap_or_else(|| "not fetched yet".into())
    }
}

/// A cached document plus the lock that makes its refresh single-flight.
pub(crate) struct Document<T> {
    cached: RwLock<Cached<T>>,
    refreshing: Mutex<()>,
    pub policy: Policy,
}

impl<T> Document<T> {
    pub fn new(policy: Policy) -> Self {
        Self {
            cached: RwLock::new(Cached::default()),
            refreshing: Mutex::new(()),
            policy,
        }
    }

    /// Reads the state. Nothing panics while holding the lock, but if
    /// something ever did, the data is still consistent: every write is
    /// a single assignment sequence without awaits.
    pub fn read<R>(&self, f: impl FnOnce(&Cached<T>) -> R) -> R {
        f(&self.cached.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Fetches `url` if the rate limit allows. Single-flight: concurrent
    /// callers wait for the one fetch in progress and then see its result
    /// instead of fetching again.
    pub async fn refresh(
        &self,
        source: &dyn JwksSource,
        clock: &(dyn Fn() -> Instant + Send + Sync),
        url: &str,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) {
        if !self.read(|c| c.may_fetch(clock(), &self.policy)) {
            return;
        }
        let seen = self.read(|c| c.last_attempt);
        let _flight = self.refreshing.lock().await;
        let started = clock();
        let etag = {
            let c = self.cached.read().unwrap_or_else(PoisonError::into_inner);
            if c.last_attempt != seen || !c.may_fetch(started, &self.policy) {
                // Someone fetched while we waited for the lock.
                return;
            }
            c.etag.clone()
        };
        let outcome = source.fetch(url, etag.as_deref()).await.map_err(|e| e.0);
        self.cached
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .record(started, &self.policy, outcome, parse);
    }
}

/// One verification key.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The usable keys of a JWKS, by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    pub keys: HashMap<String, Arc<VerifyKey>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

impl KeySet {
    /// Parses `{"keys": [...]}`, keeping only keys
    /// [`decoding_key_from_jwk`] accepts. A document without a `keys` array
    /// is an error (the old set stays); one with no usable key is a valid,
    /// empty set.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("JWKS: {e}"))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("JWKS without a keys array")?;
        let mut keys = HashMap::new();
        for (kid, alg, key) in list.iter().take(MAX_KEYS).filter_map(decoding_key_from_jwk) {
            // kids are thumbprints, so a repeat is the same key: keep the first.
            keys.entry(kid)
                .or_insert_with(|| Arc::new(VerifyKey { alg, key }));
        }
        Ok(Self { keys })
    }
}

/// The body of `GET /auth/revocations`.
#[derive(Deserialize)]
struct RevocationList {
    data: Vec<Revocation>,
}

#[derive(Deserialize)]
struct Revocation {
    client_id: String,
}

/// The revoked `client_id`s.
pub(crate) type Revoked = HashSet<String>;

/// Parses `{"data": [{"client_id": ..., "revoked_at": ...}], ...}`.
pub(crate) fn parse_revocations(body: &[u8]) -> Result<Revoked, String> {
    let list: RevocationList =
        serde_json::from_slice(body).map_err(|e| format!("revocation list: {e}"))?;
    Ok(list.data.into_iter().map(|r| r.client_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY: Policy = Policy {
        min_interval: Duration::from_secs(10),
        min_age: Duration::from_secs(10),
        default_age: Duration::from_secs(300),
        max_age: Duration::from_secs(300),
    };

    fn body(v: Value) -> Result<Fetched, String> {
        Ok(Fetched::Body {
            body: v.to_string().into_bytes(),
            etag: Some("\"e1\"".into()),
            max_age: None,
        })
    }

    fn parse_len(b: &[u8]) -> Result<usize, String> {
        Ok(b.len())
    }

    #[test]
    fn freshness_follows_max_age_within_bounds() {
        let s = Duration::from_secs;
        assert_eq!(POLICY.freshness(None), s(300));
        assert_eq!(POLICY.freshness(Some(s(60))), s(60));
        assert_eq!(
            POLICY.freshness(Some(s(0))),
            s(10),
            "no-store cannot force a fetch per request"
        );
        assert_eq!(
            POLICY.freshness(Some(s(86_400))),
            s(300),
            "nor pin keys for a day"
        );
    }

    #[test]
    fn rate_limit_counts_failed_attempts() {
        let t0 = Instant::now();
        let mut c = Cached::<usize>::default();
        assert!(c.is_stale(t0) && c.may_fetch(t0, &POLICY));
        c.record(t0, &POLICY, Err("down".into()), parse_len);
        assert!(c.value.is_none());
        assert_eq!(c.why_missing(), "down");
        assert!(!c.may_fetch(t0 + Duration::from_secs(9), &POLICY));
        assert!(c.may_fetch(t0 + Duration::from_secs(10), &POLICY));
    }

    #[test]
    fn failures_and_304_keep_the_copy() {
        let t0 = Instant::now();
        let mut c = Cached::<usize>::default();
        c.record(t0, &POLICY, body(json!({})), parse_len);
        assert_eq!(c.value.as_deref(), Some(&2));
        assert_eq!(c.etag.as_deref(), Some("\"e1\""));
        assert!(!c.is_stale(t0 + Duration::from_secs(299)));
        assert!(c.is_stale(t0 + Duration::from_secs(300)));

        let t1 = t0 + Duration::from_secs(400);
        c.record(t1, &POLICY, Err("down".into()), parse_len);
        assert_eq!(
            c.value.as_deref(),
            Some(&2),
            "outage keeps the last good copy"
        );
        assert!(c.is_stale(t1), "but it stays stale, so we try again");

        let t2 = t1 + Duration::from_secs(10);
        let not_modified = Ok(Fetched::NotModified {
            max_age: Some(Duration::from_secs(60)),
        });
        c.record(t2, &POLICY, not_modified, parse_len);
        assert!(!c.is_stale(t2 + Duration::from_secs(59)));
        assert_eq!(c.last_error, None);

        let mut bad = Cached::<usize>::default();
        bad.record(
            t0,
            &POLICY,
            Ok(Fetched::NotModified { max_age: None }),
            parse_len,
        );
        assert!(bad.value.is_none() && bad.last_error.is_some());
    }

    #[test]
    fn unparsable_documents_keep_the_previous_set() {
        let t0 = Instant::now();
        let mut c = Cached::<KeySet>::default();
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "kid": "a",
                        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        c.record(t0, &POLICY, body(json!({"keys": [ed]})), KeySet::parse);
        let t1 = t0 + Duration::from_secs(20);
        c.record(t1, &POLICY, body(json!({"nope": []})), KeySet::parse);
        c.record(t1, &POLICY, Ok(Fetched::json("<html>")), KeySet::parse);
        assert!(c.value.as_ref().is_some_and(|s| s.keys.contains_key("a")));
        assert!(c.last_error.is_some());
    }

    #[test]
    fn keyset_skips_unusable_keys_and_caps_size() {
        let hmac = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256"});
        let ed = |kid: String| {
            json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                                      "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
        };
        let set = KeySet::parse(
            json!({"keys": [hmac, ed("e".into())]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys["e"].alg, Algorithm::EdDSA);
        let many: Vec<Value> = (0..200).map(|i| ed(format!("k{i}"))).collect();
        let set = KeySet::parse(json!({ "keys": many }).to_string().as_bytes()).unwrap();
        assert_eq!(set.keys.len(), MAX_KEYS);
        let empty = KeySet::parse(br#"{"keys": []}"#).unwrap();
        assert!(empty.keys.is_empty());
    }

    #[test]
    fn revocation_list_parses_client_ids() {
        let body = json!({"data": [{"client_id": "tm_live_a", "revoked_at": "2026-01-01T00:00:00Z"}],
                          "window_seconds": 3660});
        let set = parse_revocations(body.to_string().as_bytes()).unwrap();
        assert!(set.contains("tm_live_a"));
        assert!(parse_revocations(b"[]").is_err());
    }
}
