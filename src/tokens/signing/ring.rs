//! The key ring: which key signs, which keys are still published, and the
//! JWKS document built from them.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{SigningAlg, SigningError, SigningKey, generate_into, load_dir};

/// The JWKS document as published: serialised once per key set, with a
/// digest of the bytes so a server can tag it without hashing per request.
#[derive(Debug)]
pub struct JwksJson {
    /// The compact JSON document.
    pub json: String,
    /// SHA-256 of `json`: equal documents (across restarts and replicas)
    /// have equal digests.
    pub sha256: [u8; 32],
}

impl JwksJson {
    fn new(json: String) -> Self {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, json.as_bytes()).as_ref(),
        );
        Self { json, sha256 }
    }
}

/// The loaded keys: the newest signs, the rest only verify until retired.
pub struct KeyRing {
    keys: Vec<SigningKey>,
    jwks_cache: Mutex<Option<(usize, Arc<JwksJson>)>>,
    /// When this ring was loaded: the key before the current signer may have
    /// kept signing until then (a new key signs only once picked up).
    loaded: SystemTime,
    /// How long a superseded key keeps verifying: the longest token lifetime
    /// plus clock leeway.
    retire_after: Duration,
}

impl KeyRing {
    /// Loads the folder, generating a first key if it holds none.
    pub fn load_or_generate(
        dir: &Path,
        alg: SigningAlg,
        token_ttl: Duration,
    ) -> Result<Self, SigningError> {
        let mut keys = load_dir(dir)?;
        if keys.is_empty() {
            let key = generate_into(dir, alg)?;
            tracing::info!(kid = %key.kid, alg = key.alg.as_str(), path = %key.path.display(), "generated a signing key");
            keys.push(key);
        }
        Ok(Self::new(keys, token_ttl))
    }

    /// Builds a ring from keys ordered newest first.
    pub fn new(keys: Vec<SigningKey>, token_ttl: Duration) -> Self {
        Self {
            keys,
            jwks_cache: Mutex::new(None),
            loaded: SystemTime::now(),
            retire_after: token_ttl + Duration::from_secs(60),
        }
    }

    /// The key that signs new tokens.
    pub fn signer(&self) -> Option<&SigningKey> {
        self.keys.first()
    }

    /// Keys that may still verify a live token at `now`: the signer, and each
    /// older key until `retire_after` has passed since its successor appeared.
    pub fn published(&self, now: SystemTime) -> impl Iterator<Item = &SigningKey> {
        let retire_after = self.retire_after;
        self.keys
            .iter()
            .enumerate()
            .filter(move |(i, _)| {
                let Some(successor) = i.checked_sub(1).and_then(|j| self.keys.get(j)) else {
                    return true; // the signer
                };
                // The previous signer signed until this ring was loaded, not
                // merely until its successor's file appeared.
                let superseded = if *i == 1 {
                    successor.created.max(self.loaded)
                } else {
                    successor.created
                };
                superseded + retire_after > now
            })
            .map(|(_, k)| k)
    }

    /// A published key by `kid`.
    pub fn find(&self, kid: &str, now: SystemTime) -> Option<&SigningKey> {
        self.published(now).find(|k| k.kid == kid)
    }

    /// The JWKS document.
    pub fn jwks(&self, now: SystemTime) -> Value {
        json!({ "keys": self.published(now).map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// The JWKS, serialised once per published set (the set only shrinks
    /// as superseded keys retire, so its size identifies it).
    pub fn jwks_json(&self, now: SystemTime) -> Arc<JwksJson> {
        let count = self.published(now).count();
        if let Ok(cache) = self.jwks_cache.lock()
            && let Some((n, body)) = cache.as_ref()
            && *n == count
        {
            return body.clone();
        }
        let body = Arc::new(JwksJson::new(self.jwks(now).to_string()));
        if let Ok(mut cache) = self.jwks_cache.lock() {
            *cache = Some((count, body.clone()));
        }
        body
    }

    /// Every key in the folder, newest first (for `signing-key list`).
    pub fn all(&self) -> &[SigningKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superseded_keys_leave_the_jwks_after_one_token_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let old = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        let mut new = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        new.created = old.created + Duration::from_secs(10);
        let old_kid = old.kid.clone();
        let ring = KeyRing::new(vec![new, old], Duration::from_secs(3600));
        assert_ne!(ring.signer().unwrap().kid, old_kid);
        let t = ring.signer().unwrap().created;
        assert!(ring.find(&old_kid, t + Duration::from_secs(3600)).is_some());
        assert!(ring.find(&old_kid, t + Duration::from_secs(3661)).is_none());
        assert_eq!(
            ring.jwks(t + Duration::from_secs(4000))["keys"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn the_jwks_is_serialised_once_per_published_set() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        let ring = KeyRing::new(vec![key], Duration::from_secs(60));
        let now = SystemTime::now();
        let first = ring.jwks_json(now);
        assert!(Arc::ptr_eq(&first, &ring.jwks_json(now)));
        assert_eq!(first.json, ring.jwks(now).to_string());
    }

    #[test]
    fn the_previous_signer_stays_published_for_a_lifetime_after_pickup() {
        // Key b was generated two hours ago but this server only now picks it
        // up: a kept signing until now, so its tokens must stay verifiable.
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let mut a = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        let mut b = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        let mut c = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        (a.created, b.created, c.created) = (now - hours(5), now - hours(4), now - hours(2));
        let (a_kid, b_kid) = (a.kid.clone(), b.kid.clone());
        let ring = KeyRing::new(vec![c, b, a], hours(1));
        assert!(ring.find(&b_kid, now + Duration::from_secs(1800)).is_some());
        assert!(ring.find(&b_kid, now + hours(2)).is_none());
        // Older keys were superseded long ago and stay retired.
        assert!(ring.find(&a_kid, now).is_none());
    }
}
