//! The key ring: one snapshot of the keys folder with each key's timeline on
//! this replica, which says at any instant which key signs and which keys
//! are published. The timeline itself is decided by [`super::Schedule`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{Schedule, SigningKey, Timing};

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

/// When a key was published, signs, and stops signing, on this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// When this replica first put the key in its JWKS.
    pub published: SystemTime,
    /// When it may sign: `published` plus the publication delay, or earlier
    /// when it had to sign at once (first start, emergency revocation).
    pub activates: SystemTime,
    /// When a newer key took over signing, if one did or will.
    pub stops: Option<SystemTime>,
}

/// Where a key stands at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// In the JWKS, signing from the given instant.
    Pending { activates: SystemTime },
    /// Signs new tokens.
    Active,
    /// Superseded; stays in the JWKS until the given instant.
    Retiring { until: SystemTime },
    /// Superseded more than a token lifetime ago: out of the JWKS.
    Retired,
}

impl KeyState {
    /// The name `signing-key list` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending { .. } => "pending",
            Self::Active => "active",
            Self::Retiring { .. } => "retiring",
            Self::Retired => "retired",
        }
    }

    /// Whether the key is in the JWKS.
    pub fn published(self) -> bool {
        !matches!(self, Self::Retired)
    }
}

/// The keys of the folder, newest first, each with its timeline.
pub struct KeyRing {
    keys: Vec<(SigningKey, Timeline)>,
    jwks_cache: Mutex<Option<(usize, Arc<JwksJson>)>>,
    /// How long a superseded key keeps verifying: the longest token lifetime
    /// plus clock leeway.
    retire_after: Duration,
}

impl KeyRing {
    /// A ring of `keys` (newest first) whose newest key signs at once, as on
    /// a first start with no publication delay.
    pub fn new(keys: Vec<SigningKey>, token_ttl: Duration) -> Self {
        Schedule::new(Timing::new(Duration::ZERO, token_ttl)).ring(keys, SystemTime::now())
    }

    /// Assembles a ring; [`Schedule::ring`] computes the timelines.
    pub(super) fn from_parts(keys: Vec<(SigningKey, Timeline)>, retire_after: Duration) -> Self {
        Self {
            keys,
            jwks_cache: Mutex::new(None),
            retire_after,
        }
    }

    /// Where `timeline`'s key stands at `now`.
    pub fn state_of(&self, timeline: &Timeline, now: SystemTime) -> KeyState {
        match timeline.stops {
            Some(stops) if stops <= now => {
                let until = stops + self.retire_after;
                if until > now {
                    KeyState::Retiring { until }
                } else {
                    KeyState::Retired
                }
            }
            _ if timeline.activates <= now => KeyState::Active,
            _ => KeyState::Pending {
                activates: timeline.activates,
            },
        }
    }

    /// The key that signs new tokens at `now`.
    pub fn signer(&self, now: SystemTime) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|(_, t)| self.state_of(t, now) == KeyState::Active)
            .map(|(k, _)| k)
    }

    /// Keys that may verify a live token at `now`: pending keys, the signer,
    /// and superseded keys until one token lifetime after they stopped.
    pub fn published(&self, now: SystemTime) -> impl Iterator<Item = &SigningKey> {
        self.keys
            .iter()
            .filter(move |(_, t)| self.state_of(t, now).published())
            .map(|(k, _)| k)
    }

    /// A published key by `kid`.
    pub fn find(&self, kid: &str, now: SystemTime) -> Option<&SigningKey> {
        self.published(now).find(|k| k.kid == kid)
    }

    /// The JWKS document.
    pub fn jwks(&self, now: SystemTime) -> Value {
        json!({ "keys": self.published(now).map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// The JWKS, serialised once per published set (within one ring the set
    /// only shrinks as superseded keys retire, so its size identifies it).
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

    /// Every key in the folder, newest first, with its timeline.
    pub fn all(&self) -> impl Iterator<Item = (&SigningKey, &Timeline)> {
        self.keys.iter().map(|(k, t)| (k, t))
    }

    /// Every key with where it stands at `now`, newest first.
    pub fn states(&self, now: SystemTime) -> impl Iterator<Item = (&SigningKey, KeyState)> {
        self.all().map(move |(k, t)| (k, self.state_of(t, now)))
    }
}
