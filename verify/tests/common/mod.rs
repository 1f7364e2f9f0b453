//! Test helpers shared by the integration tests and the crate's unit tests:
//! real keys from aws-lc-rs, tokens signed by hand, and a fake source.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use tokenmint_verify::{FetchError, FetchFuture, Fetched, JwksSource};

pub const ISSUER: &str = "https://id.example";
pub const AUDIENCE: &str = "https://orders.example";
pub const CLIENT_ID: &str = "tm_live_4Fq9abc";

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid claims for `ISSUER`/`AUDIENCE`, issued now, for an hour.
pub fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER, "sub": "svc-billing", "aud": AUDIENCE, "client_id": CLIENT_ID,
        "scope": "orders:read invoices:read", "env": "live",
        "iat": now, "nbf": now, "exp": now + 3600,
        "jti": "0b6f1c52-6a39-4c43-9d2c-6a2a0f7b1d11", "tenant": "acme"
    })
}

/// `claims()` with `changes` merged in.
pub fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Joins already-made parts into a compact JWS.
pub fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

enum Pair {
    Es(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rs(RsaKeyPair),
}

/// A signing key and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    pub jwk: Value,
    pair: Pair,
}

/// RFC 7638 thumbprint, as tokenmint computes its `kid`s.
fn thumbprint(members: Value) -> String {
    // serde_json's Map is sorted, which is the canonical member order.
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, members.to_string().as_bytes());
    b64(d.as_ref())
}

impl TestKey {
    pub fn es256() -> Self {
        let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = k.public_key().as_ref().to_vec();
        let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
        let kid = thumbprint(json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}));
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid,
                         "alg": "ES256", "use": "sig"});
        Self {
            kid,
            alg: "ES256",
            jwk,
            pair: Pair::Es(k),
        }
    }

    pub fn ed25519() -> Self {
        let k = Ed25519KeyPair::generate().unwrap();
        let x = b64(k.public_key().as_ref());
        let kid = thumbprint(json!({"crv": "Ed25519", "kty": "OKP", "x": x}));
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid,
                         "alg": "EdDSA", "use": "sig"});
        Self {
            kid,
            alg: "EdDSA",
            jwk,
            pair: Pair::Ed(k),
        }
    }

    /// RSA generation is slow, so every RS256 key in a test binary is the
    /// same 2048-bit key.
    pub fn rs256() -> Self {
        static DER: OnceLock<Vec<u8>> = OnceLock::new();
        let der = DER.get_or_init(|| {
            use aws_lc_rs::encoding::AsDer;
            let k = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
            k.as_der().unwrap().as_ref().to_vec()
        });
        let k = RsaKeyPair::from_pkcs8(der).unwrap();
        let public = k.public_key();
        let n = b64(public.modulus().big_endian_without_leading_zero());
        let e = b64(public.exponent().big_endian_without_leading_zero());
        let kid = thumbprint(json!({"e": e, "kty": "RSA", "n": n}));
        let jwk = json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "alg": "RS256", "use": "sig"});
        Self {
            kid,
            alg: "RS256",
            jwk,
            pair: Pair::Rs(k),
        }
    }

    /// The header tokenmint puts on its tokens.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg, "typ": "at+jwt", "kid": self.kid})
    }

    /// Signs `b64(header).b64(claims)` with this key, whatever the header says.
    pub fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Es(k) => {
                let mut sig = k.sign(&rng, message).unwrap().as_ref().to_vec();
                // The canonical (low-s) form, as tokenmint signs.
                tokenmint_verify::rules::ecdsa::normalize_s(&mut sig);
                sig
            }
            Pair::Ed(k) => k.sign(message).as_ref().to_vec(),
            Pair::Rs(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A well-formed token with these claims.
    pub fn token(&self, claims: &Value) -> String {
        self.sign_with(&self.header(), claims)
    }
}

/// A JWKS document of these keys.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

/// A revocation list document.
pub fn revocations(client_ids: &[&str]) -> Value {
    let data: Vec<Value> = client_ids
        .iter()
        .map(|c| json!({"client_id": c, "revoked_at": "2026-11-01T12:00:00Z"}))
        .collect();
    json!({ "data": data, "window_seconds": 3660 })
}

#[derive(Default)]
struct FakeState {
    jwks: Value,
    revocations: Value,
    down: bool,
    fetched: Vec<String>,
    max_age: Option<Duration>,
    delay: Duration,
}

/// An in-memory issuer: serves whatever JWKS and revocation list the test
/// sets, and records every fetch.
#[derive(Clone, Default)]
pub struct FakeSource(Arc<Mutex<FakeState>>);

impl FakeSource {
    pub fn new(jwks: Value) -> Self {
        let s = Self::default();
        s.set_jwks(jwks);
        s.set_revocations(revocations(&[]));
        s
    }
    pub fn set_jwks(&self, jwks: Value) {
        self.0.lock().unwrap().jwks = jwks;
    }
    pub fn set_revocations(&self, list: Value) {
        self.0.lock().unwrap().revocations = list;
    }
    pub fn set_down(&self, down: bool) {
        self.0.lock().unwrap().down = down;
    }
    /// Makes every fetch take this long, so concurrent callers overlap.
    pub fn set_delay(&self, delay: Duration) {
        self.0.lock().unwrap().delay = delay;
    }
    pub fn set_max_age(&self, max_age: Option<Duration>) {
        self.0.lock().unwrap().max_age = max_age;
    }
    /// How many fetches of URLs ending in `suffix` happened.
    pub fn fetches(&self, suffix: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .fetched
            .iter()
            .filter(|u| u.ends_with(suffix))
            .count()
    }
    pub fn jwks_fetches(&self) -> usize {
        self.fetches("/jwks.json")
    }
}

impl JwksSource for FakeSource {
    fn fetch<'a>(&'a self, url: &'a str, _etag: Option<&'a str>) -> FetchFuture<'a> {
        let mut s = self.0.lock().unwrap();
        s.fetched.push(url.to_owned());
        let result = if s.down {
            Err(FetchError("connection refused".into()))
        } else if url.ends_with("/.well-known/openid-configuration") {
            let issuer = url.trim_end_matches("/.well-known/openid-configuration");
            let doc = json!({"issuer": issuer,
                             "jwks_uri": format!("{issuer}/.well-known/jwks.json")});
            Ok(Fetched::json(doc.to_string()))
        } else if url.ends_with("/.well-known/jwks.json") {
            Ok(Fetched::Body {
                body: s.jwks.to_string().into_bytes(),
                etag: None,
                max_age: s.max_age,
            })
        } else if url.ends_with("/auth/revocations") {
            Ok(Fetched::json(s.revocations.to_string()))
        } else {
            Err(FetchError(format!("404 for {url}")))
        };
        let delay = s.delay;
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            result
        })
    }
}
