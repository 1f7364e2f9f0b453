//! Signing keys: PKCS#8 PEM files in the keys folder, parsed once, each named
//! by its RFC 7638 thumbprint. The newest file signs; older ones stay in the
//! JWKS until every token they could have signed has expired.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Value, json};

/// Algorithms we sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlg {
    Es256,
    Rs256,
    EdDsa,
}

impl SigningAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The matching jsonwebtoken algorithm (for verification).
    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

impl std::str::FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ES256" => Ok(Self::Es256),
            "RS256" => Ok(Self::Rs256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(format!("expected ES256, RS256 or EdDSA, got {other:?}")),
        }
    }
}

enum Pair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// One signing key, parsed once.
pub struct SigningKey {
    /// RFC 7638 thumbprint, base64url without padding.
    pub kid: String,
    pub alg: SigningAlg,
    /// The public JWK (with `kid`, `alg`, `use`).
    pub jwk: Value,
    /// When the file was written; orders keys and times retirement.
    pub created: SystemTime,
    pub path: PathBuf,
    pair: Pair,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Problems with the keys folder.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{path}: {why}")]
    BadKey { path: String, why: String },
    #[error("keys folder {path}: {why}")]
    Io { path: String, why: String },
    #[error("signing failed")]
    Sign,
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(members: &[(&str, &str)]) -> String {
    let canonical = Value::Object(
        members
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect(),
    );
    // serde_json's Map is a BTreeMap here, so keys serialise sorted.
    b64(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.to_string().as_bytes())
            .as_ref(),
    )
}

impl SigningKey {
    /// Parses a PKCS#8 private key of any supported algorithm.
    pub fn from_pkcs8(
        der: &[u8],
        path: PathBuf,
        created: SystemTime,
    ) -> Result<Self, SigningError> {
        let bad = |why: &str| SigningError::BadKey {
            path: path.display().to_string(),
            why: why.to_owned(),
        };
        let (pair, alg, members, decoding): (Pair, SigningAlg, Vec<(&str, String)>, DecodingKey) =
            if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
                let point = k.public_key().as_ref();
                if point.len() != 65 {
                    return Err(bad("unexpected P-256 public key encoding"));
                }
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                let decoding =
                    DecodingKey::from_ec_components(&x, &y).map_err(|_| bad("bad EC key"))?;
                let m = vec![
                    ("crv", "P-256".to_owned()),
                    ("kty", "EC".to_owned()),
                    ("x", x),
                    ("y", y),
                ];
                (Pair::Es256(k), SigningAlg::Es256, m, decoding)
            } else if let Ok(k) = Ed25519KeyPair::from_pkcs8(der) {
                let x = b64(k.public_key().as_ref());
                let decoding =
                    DecodingKey::from_ed_components(&x).map_err(|_| bad("bad Ed25519 key"))?;
                let m = vec![
                    ("crv", "Ed25519".to_owned()),
                    ("kty", "OKP".to_owned()),
                    ("x", x),
                ];
                (Pair::EdDsa(k), SigningAlg::EdDsa, m, decoding)
            } else if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
                if k.public_modulus_len() < 256 {
                    return Err(bad("RSA keys must be at least 2048 bits"));
                }
                let public = k.public_key();
                let n = b64(public.modulus().big_endian_without_leading_zero());
                let e = b64(public.exponent().big_endian_without_leading_zero());
                let decoding =
                    DecodingKey::from_rsa_components(&n, &e).map_err(|_| bad("bad RSA key"))?;
                let m = vec![("e", e), ("kty", "RSA".to_owned()), ("n", n)];
                (Pair::Rs256(k), SigningAlg::Rs256, m, decoding)
            } else {
                return Err(bad("not a PKCS#8 P-256, Ed25519 or RSA private key"));
            };
        let borrowed: Vec<(&str, &str)> = members.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let kid = thumbprint(&borrowed);
        let mut jwk = serde_json::Map::new();
        for (k, v) in members {
            jwk.insert(k.to_owned(), Value::String(v));
        }
        jwk.insert("kid".into(), json!(kid));
        jwk.insert("alg".into(), json!(alg.as_str()));
        jwk.insert("use".into(), json!("sig"));
        Ok(Self {
            kid,
            alg,
            jwk: Value::Object(jwk),
            created,
            path,
            pair,
            decoding,
        })
    }

    /// Signs a JWS signing input (`b64(header).b64(claims)`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Es256(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SigningError::Sign),
            Pair::EdDsa(k) => Ok(k.sign(message).as_ref().to_vec()),
            Pair::Rs256(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| SigningError::Sign)?;
                Ok(sig)
            }
        }
    }

    /// The public key for verification.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// Generates a new private key as PKCS#8 DER.
pub fn generate_pkcs8(alg: SigningAlg) -> Result<Vec<u8>, SigningError> {
    let fail = || SigningError::BadKey {
        path: "(generated)".into(),
        why: "key generation failed".into(),
    };
    Ok(match alg {
        SigningAlg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| fail())?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDsa => Ed25519KeyPair::generate()
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| fail())?
            .as_ref()
            .to_vec(),
        SigningAlg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .and_then(|k| k.as_der())
            .map_err(|_| fail())?
            .as_ref()
            .to_vec(),
    })
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> SigningError {
    SigningError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// Writes a new key into `dir` (mode 0600, never overwriting) and returns it.
pub fn generate_into(dir: &Path, alg: SigningAlg) -> Result<SigningKey, SigningError> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let der = generate_pkcs8(alg)?;
    let probe = SigningKey::from_pkcs8(&der, PathBuf::new(), SystemTime::now())?;
    let path = dir.join(format!("{}.pem", probe.kid));
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.clone()));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&path).map_err(|e| io_err(&path, e))?;
    file.write_all(pem.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| io_err(&path, e))?;
    let created = file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    SigningKey::from_pkcs8(&der, path, created)
}

/// Every key in the folder, newest first.
pub fn load_dir(dir: &Path) -> Result<Vec<SigningKey>, SigningError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_err(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pem") {
            continue;
        }
        let meta = fs::metadata(&path).map_err(|e| io_err(&path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "signing key is readable by group or others; chmod 600 it");
            }
        }
        let text = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let parsed = pem::parse(&text).map_err(|e| SigningError::BadKey {
            path: path.display().to_string(),
            why: format!("not PEM: {e}"),
        })?;
        if parsed.tag() != "PRIVATE KEY" {
            return Err(SigningError::BadKey {
                path: path.display().to_string(),
                why: format!(
                    "expected a PKCS#8 \"PRIVATE KEY\" block, got {:?}",
                    parsed.tag()
                ),
            });
        }
        let created = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        keys.push(SigningKey::from_pkcs8(parsed.contents(), path, created)?);
    }
    keys.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.path.cmp(&a.path)));
    keys.dedup_by(|a, b| a.kid == b.kid);
    Ok(keys)
}

/// A JSON body served with an `ETag`, serialised once.
#[derive(Debug)]
pub struct CachedBody {
    pub body: String,
    pub etag: String,
}

impl CachedBody {
    /// Wraps a body and computes its strong `ETag`.
    pub fn new(body: String) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
        let etag = format!("\"{}\"", b64(&digest.as_ref()[..16]));
        Self { body, etag }
    }
}

/// The loaded keys: the newest signs, the rest only verify until retired.
pub struct KeyRing {
    keys: Vec<SigningKey>,
    jwks_cache: Mutex<Option<(usize, Arc<CachedBody>)>>,
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
    /// as superseded keys retire), with its `ETag`.
    pub fn jwks_body(&self, now: SystemTime) -> Arc<CachedBody> {
        let count = self.published(now).count();
        if let Ok(cache) = self.jwks_cache.lock() {
            if let Some((n, body)) = cache.as_ref() {
                if *n == count {
                    return body.clone();
                }
            }
        }
        let body = Arc::new(CachedBody::new(self.jwks(now).to_string()));
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
    fn every_algorithm_round_trips_through_the_folder() {
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256] {
            let dir = tempfile::tempdir().unwrap();
            let made = generate_into(dir.path(), alg).unwrap();
            let loaded = load_dir(dir.path()).unwrap();
            assert_eq!(loaded.len(), 1);
            assert_eq!(loaded[0].kid, made.kid);
            assert_eq!(loaded[0].alg, alg);
            assert_eq!(
                made.path.file_name().unwrap().to_str().unwrap(),
                format!("{}.pem", made.kid)
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    fs::metadata(&made.path).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let tp = thumbprint(&[("e", "AQAB"), ("kty", "RSA"), ("n", n)]);
        assert_eq!(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

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

    #[test]
    fn a_non_pkcs8_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("junk.pem"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("junk.pem"), "{err}");
    }
}
