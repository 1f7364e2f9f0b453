//! The algorithms we sign with, and one parsed key: its JWK and its RFC 7638
//! thumbprint, which is also its `kid`.

use std::path::PathBuf;
use std::time::SystemTime;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Value, json};

use super::SigningError;

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
            Pair::Es256(k) => {
                let mut sig = k
                    .sign(&rng, message)
                    .map(|s| s.as_ref().to_vec())
                    .map_err(|_| SigningError::Sign)?;
                // Verifiers (ours included) accept only the low-s form.
                tokenmint_verify::rules::ecdsa::normalize_s(&mut sig);
                Ok(sig)
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let tp = thumbprint(&[("e", "AQAB"), ("kty", "RSA"), ("n", n)]);
        assert_eq!(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
