//! Which published keys we are willing to verify with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Longest `kid` we accept; tokenmint's are 43-character thumbprints, and
/// an unbounded one is only a way to make us allocate.
pub const MAX_KID_LEN: usize = 256;

const MIN_RSA_BITS: usize = 2048;
// aws-lc verifies RS256 only up to 8192 bits; refusing bigger moduli here
// keeps a useless key out of the cache instead of failing per token.
const MAX_RSA_BITS: usize = 8192;

/// Turns one JWK into a verification key, or `None` if we must not use it.
///
/// Accepted: `EC`/`P-256` as ES256, `RSA` (2048–8192-bit modulus) as RS256,
/// `OKP`/`Ed25519` as EdDSA. The algorithm is derived from the key type, and
/// a JWK whose own `alg` says otherwise is refused, as is one without a
/// `kid`, with a `use` other than `sig`, or whose `key_ops` exclude
/// `verify`. Symmetric (`oct`) keys are never used: an HMAC secret in a JWKS
/// is public, so anything signed with it proves nothing.
pub fn decoding_key_from_jwk(jwk: &Value) -> Option<(String, Algorithm, DecodingKey)> {
    let obj = jwk.as_object()?;
    let member = |name: &str| obj.get(name).and_then(Value::as_str);
    let kid = member("kid").filter(|k| !k.is_empty() && k.len() <= MAX_KID_LEN)?;
    if obj.contains_key("use") && member("use") != Some("sig") {
        return None;
    }
    if let Some(ops) = obj.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return None;
        }
    }
    let (alg, key) = match member("kty")? {
        "EC" if member("crv")? == "P-256" => {
            let (x, y) = (member("x")?, member("y")?);
            has_len(x, 32)?;
            has_len(y, 32)?;
            (
                Algorithm::ES256,
                DecodingKey::from_ec_components(x, y).ok()?,
            )
        }
        "RSA" => {
            let n = unsigned(member("n")?)?;
            let e = unsigned(member("e")?)?;
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) || e.len() > 8 {
                return None;
            }
            (
                Algorithm::RS256,
                DecodingKey::from_rsa_raw_components(&n, &e),
            )
        }
        "OKP" if member("crv")? == "Ed25519" => {
            let x = member("x")?;
            has_len(x, 32)?;
            (Algorithm::EdDSA, DecodingKey::from_ed_components(x).ok()?)
        }
        _ => return None,
    };
    if obj.contains_key("alg") && member("alg") != Some(alg_name(alg)) {
        return None;
    }
    Some((kid.to_owned(), alg, key))
}

/// The JOSE name of one of our three algorithms.
pub(crate) fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

/// `Some` if `b64` is unpadded base64url of exactly `len` bytes; the
/// jsonwebtoken constructors would take any length and fail only per token.
fn has_len(b64: &str, len: usize) -> Option<()> {
    B64.decode(b64).ok().filter(|v| v.len() == len).map(|_| ())
}

/// A base64url big-endian integer without its leading zero bytes; `None`
/// if it is not base64url or is zero.
fn unsigned(b64: &str) -> Option<Vec<u8>> {
    let raw = B64.decode(b64).ok()?;
    let start = raw.iter().position(|b| *b != 0)?;
    Some(raw[start..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(len: usize, fill: u8) -> String {
        B64.encode(vec![fill; len])
    }

    fn ec() -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": b64(32, 1), "y": b64(32, 2),
               "kid": "k1", "alg": "ES256", "use": "sig"})
    }

    #[test]
    fn accepts_the_three_key_types_with_their_algorithm() {
        let (kid, alg, _) = decoding_key_from_jwk(&ec()).unwrap();
        assert_eq!((kid.as_str(), alg), ("k1", Algorithm::ES256));
        let rsa = json!({"kty": "RSA", "n": b64(256, 0xc3), "e": "AQAB", "kid": "r"});
        assert_eq!(decoding_key_from_jwk(&rsa).unwrap().1, Algorithm::RS256);
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(32, 7), "kid": "e"});
        assert_eq!(decoding_key_from_jwk(&ed).unwrap().1, Algorithm::EdDSA);
    }

    #[test]
    fn refuses_hmac_and_unknown_key_types() {
        let oct = json!({"kty": "oct", "k": b64(32, 9), "kid": "h", "alg": "HS256"});
        assert!(decoding_key_from_jwk(&oct).is_none());
        let p384 =
            json!({"kty": "EC", "crv": "P-384", "x": b64(48, 1), "y": b64(48, 2), "kid": "p"});
        assert!(decoding_key_from_jwk(&p384).is_none());
        let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": b64(32, 1), "kid": "x"});
        assert!(decoding_key_from_jwk(&x25519).is_none());
        assert!(decoding_key_from_jwk(&json!("not an object")).is_none());
    }

    #[test]
    fn refuses_keys_whose_metadata_disagrees() {
        let mut k = ec();
        k["alg"] = json!("HS256");
        assert!(
            decoding_key_from_jwk(&k).is_none(),
            "alg must match the key type"
        );
        let mut k = ec();
        k["use"] = json!("enc");
        assert!(decoding_key_from_jwk(&k).is_none());
        let mut k = ec();
        k["key_ops"] = json!(["encrypt"]);
        assert!(decoding_key_from_jwk(&k).is_none());
        let mut k = ec();
        k["key_ops"] = json!(["verify"]);
        assert!(decoding_key_from_jwk(&k).is_some());
        let mut k = ec();
        k.as_object_mut().unwrap().remove("kid");
        assert!(
            decoding_key_from_jwk(&k).is_none(),
            "a key without kid is unreachable"
        );
        let mut k = ec();
        k["kid"] = json!("k".repeat(MAX_KID_LEN + 1));
        assert!(decoding_key_from_jwk(&k).is_none());
    }

    #[test]
    fn refuses_malformed_members() {
        let mut k = ec();
        k["x"] = json!(b64(31, 1));
        assert!(decoding_key_from_jwk(&k).is_none(), "short coordinate");
        let mut k = ec();
        k["y"] = json!("not base64!");
        assert!(decoding_key_from_jwk(&k).is_none());
        let mut k = ec();
        k["x"] = json!(format!("{}=", b64(32, 1)));
        assert!(decoding_key_from_jwk(&k).is_none(), "JWKs are unpadded");
    }

    #[test]
    fn refuses_short_or_huge_rsa_moduli() {
        let rsa = |n: String| json!({"kty": "RSA", "n": n, "e": "AQAB", "kid": "r"});
        assert!(
            decoding_key_from_jwk(&rsa(b64(128, 0xc3))).is_none(),
            "1024 bits"
        );
        // 2048 bytes of length but the top byte is small: fewer than 2048 bits.
        let mut short = vec![0xffu8; 256];
        short[0] = 0;
        assert!(decoding_key_from_jwk(&rsa(B64.encode(&short))).is_none());
        assert!(
            decoding_key_from_jwk(&rsa(b64(1025, 0xc3))).is_none(),
            "8200 bits"
        );
        assert!(
            decoding_key_from_jwk(&rsa(b64(512, 0xc3))).is_some(),
            "4096 bits"
        );
        let zero_e = json!({"kty": "RSA", "n": b64(256, 0xc3), "e": "AA", "kid": "r"});
        assert!(decoding_key_from_jwk(&zero_e).is_none());
    }
}
