//! JWTs signed by keys that are not tokenmint's: client assertions
//! (RFC 7523) and tokens of external identity providers (RFC 8693). The
//! signer's public JWKs come from the client's registration or the issuer's
//! JWKS; [`PublicJwk`] decides which algorithms each may verify, so the key
//! pins the algorithm and a token can never pick `none`, HMAC or another
//! key type.
//!
//! Claims are returned unchecked: the caller knows which rules apply.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};

use crate::rules::MAX_KID_LEN;

/// The signature algorithms accepted from foreign signers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwsAlg {
    Es256,
    Rs256,
    Ps256,
    EdDsa,
}

/// Every `alg` name accepted, `Ed25519` (RFC 9864) as a synonym of `EdDSA`:
/// what discovery lists.
pub const ALG_NAMES: &[&str] = &["ES256", "RS256", "PS256", "EdDSA", "Ed25519"];

impl JwsAlg {
    /// The algorithm a JOSE `alg` names, if we accept it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "EdDSA" | "Ed25519" => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// Why a JWK is refused; the text names the problem for an admin (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwkError(pub &'static str);

/// JWK members only a private key has (RFC 7518 §6), and `k` (symmetric).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const MIN_RSA_BITS: usize = 2048;
// What aws-lc verifies (RSA_*_2048_8192).
const MAX_RSA_BITS: usize = 8192;
/// A JWT larger than this is not read.
pub const MAX_JWT_BYTES: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Material {
    /// The uncompressed SEC1 point.
    P256(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// A public signing key from a JWK: EC P-256, RSA of 2048–8192 bits or
/// Ed25519.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicJwk {
    kid: Option<String>,
    alg: Option<JwsAlg>,
    material: Material,
}

impl PublicJwk {
    /// Parses one JWK. Refused: private or symmetric material, other key
    /// types and curves, RSA under 2048 bits, an `alg` that does not fit
    /// the key type, a `use` other than `sig`, `key_ops` without `verify`.
    pub fn from_json(jwk: &Value) -> Result<Self, JwkError> {
        let obj = jwk.as_object().ok_or(JwkError("a JWK must be an object"))?;
        if obj.get("kty").and_then(Value::as_str) == Some("oct") {
            return Err(JwkError(
                "symmetric (oct) keys are refused: a shared secret is not a public key",
            ));
        }
        if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
            return Err(JwkError(
                "a JWK holds private or symmetric key material; register public keys only",
            ));
        }
        let text = |name: &str| obj.get(name).and_then(Value::as_str);
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_LEN => Some(k.clone()),
            Some(_) => return Err(JwkError("a JWK's kid must be a string of 1-256 characters")),
        };
        if obj.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
            return Err(JwkError("a JWK's use must be sig"));
        }
        if let Some(ops) = obj.get("key_ops") {
            let ops = ops
                .as_array()
                .ok_or(JwkError("a JWK's key_ops must be an array"))?;
            if !ops.iter().any(|o| o.as_str() == Some("verify")) {
                return Err(JwkError("a JWK's key_ops must include verify"));
            }
        }
        let bytes = |name: &str| -> Result<Vec<u8>, JwkError> {
            text(name)
                .and_then(|v| B64.decode(v).ok())
                .ok_or(JwkError("a JWK member is missing or not base64url"))
        };
        let material = match (text("kty"), text("crv")) {
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwkError("a P-256 JWK needs 32-byte x and y"));
                }
                // A point off the curve is kept but never verifies.
                Material::P256([&[4u8][..], &x, &y].concat())
            }
            (Some("RSA"), _) => {
                let n = strip_zeros(bytes("n")?);
                let e = strip_zeros(bytes("e")?);
                let bits = n
                    .first()
                    .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
                if bits < MIN_RSA_BITS {
                    return Err(JwkError("RSA keys must have at least 2048 bits"));
                }
                // aws-lc verifies with exponents of up to 33 bits.
                if bits > MAX_RSA_BITS || e.is_empty() || e.len() > 4 {
                    return Err(JwkError(
                        "RSA keys must have at most 8192 bits and a valid exponent",
                    ));
                }
                Material::Rsa { n, e }
            }
            (Some("OKP"), Some("Ed25519")) => {
                let x = bytes("x")?;
                if x.len() != 32 {
                    return Err(JwkError("an Ed25519 JWK needs a 32-byte x"));
                }
                Material::Ed25519(x)
            }
            _ => {
                return Err(JwkError(
                    "unsupported key: use EC P-256, RSA (2048 bits or more) or OKP Ed25519",
                ));
            }
        };
        let alg = match obj.get("alg") {
            None => None,
            Some(a) => {
                let alg = a
                    .as_str()
                    .and_then(JwsAlg::from_name)
                    .ok_or(JwkError("a JWK's alg must be ES256, RS256, PS256 or EdDSA"))?;
                if !fits(&material, alg) {
                    return Err(JwkError("a JWK's alg does not fit its key type"));
                }
                Some(alg)
            }
        };
        Ok(Self { kid, alg, material })
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether a token signed with `alg` may be checked with this key: the
    /// JWK's own `alg` when it names one, else what its type implies (RSA:
    /// RS256 or PS256).
    pub fn accepts(&self, alg: JwsAlg) -> bool {
        match self.alg {
            Some(own) => own == alg,
            None => fits(&self.material, alg),
        }
    }

    /// Checks `signature` over `message` with `alg`, which must be one the
    /// key [accepts](Self::accepts).
    pub fn verify(&self, alg: JwsAlg, message: &[u8], signature: &[u8]) -> bool {
        if !self.accepts(alg) {
            return false;
        }
        match (&self.material, alg) {
            (Material::P256(point), JwsAlg::Es256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Material::Rsa { n, e }, JwsAlg::Rs256 | JwsAlg::Ps256) => {
                let params = if alg == JwsAlg::Rs256 {
                    &RSA_PKCS1_2048_8192_SHA256
                } else {
                    &RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (Material::Ed25519(x), JwsAlg::EdDsa) => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature)
                .is_ok(),
            _ => false,
        }
    }
}

fn fits(material: &Material, alg: JwsAlg) -> bool {
    matches!(
        (material, alg),
        (Material::P256(_), JwsAlg::Es256)
            | (Material::Rsa { .. }, JwsAlg::Rs256 | JwsAlg::Ps256)
            | (Material::Ed25519(_), JwsAlg::EdDsa)
    )
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    v.drain(..start);
    v
}

/// Why a JWT is refused. Deliberately coarse: callers answer with one
/// undistinguished error, and the reason goes to logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwsError(pub &'static str);

/// A compact JWS whose header has been read and whose signature is not yet
/// checked.
#[derive(Debug)]
pub struct UnverifiedJwt<'a> {
    alg: JwsAlg,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signed: &'a str,
    signature: Vec<u8>,
}

impl<'a> UnverifiedJwt<'a> {
    /// Splits and decodes `token`. Refused before any key is looked up: an
    /// `alg` we do not accept (`none`, `HS*`, …), a `crit` header, a
    /// payload that is not a JSON object.
    pub fn parse(token: &'a str) -> Result<Self, JwsError> {
        if token.len() > MAX_JWT_BYTES {
            return Err(JwsError("too large"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError("not a compact JWS"));
        };
        let object = |part: &str| match B64.decode(part).ok().map(|b| serde_json::from_slice(&b)) {
            Some(Ok(Value::Object(m))) => Ok(m),
            _ => Err(JwsError("a part is not a base64url JSON object")),
        };
        let header = object(h)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(JwsAlg::from_name)
            .ok_or(JwsError("alg is not an accepted asymmetric algorithm"))?;
        if header.contains_key("crit") {
            return Err(JwsError("critical header parameters are not supported"));
        }
        let signature = B64
            .decode(s)
            .map_err(|_| JwsError("the signature is not base64url"))?;
        Ok(Self {
            alg,
            header,
            claims: object(p)?,
            signed: &token[..h.len() + 1 + p.len()],
            signature,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> JwsAlg {
        self.alg
    }

    /// The header's `kid`, if a string.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The header, unverified.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims, unverified: use them only to find the key.
    pub fn unverified_claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The claims, if `key` accepts the token's `alg` and its signature
    /// verifies.
    pub fn verify(self, key: &PublicJwk) -> Result<Map<String, Value>, JwsError> {
        if !key.accepts(self.alg) {
            return Err(JwsError("the key does not allow this alg"));
        }
        if !key.verify(self.alg, self.signed.as_bytes(), &self.signature) {
            return Err(JwsError("bad signature"));
        }
        Ok(self.claims)
    }
}

/// Picks the key of `keys` that a token names: by `kid`, or, for a token
/// without one, the only key there is.
pub fn select<'k>(keys: &'k [PublicJwk], kid: Option<&str>) -> Option<&'k PublicJwk> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

#[cfg(test)]
mod tests;
