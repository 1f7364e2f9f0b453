use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use serde_json::json;

use super::*;

fn b64json(v: &Value) -> String {
    B64.encode(v.to_string())
}

/// A signed token and the signer's public JWK.
fn signed(kind: &str, header: Value) -> (String, Value) {
    let h = b64json(&header);
    let p = b64json(&json!({"sub": "me"}));
    let message = format!("{h}.{p}");
    let rng = SystemRandom::new();
    let (sig, jwk) = match kind {
        "EC" => {
            let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            let pt = k.public_key().as_ref();
            let jwk = json!({"kty": "EC", "crv": "P-256",
                             "x": B64.encode(&pt[1..33]), "y": B64.encode(&pt[33..])});
            (
                k.sign(&rng, message.as_bytes()).unwrap().as_ref().to_vec(),
                jwk,
            )
        }
        "OKP" => {
            let k = Ed25519KeyPair::generate().unwrap();
            let jwk = json!({"kty": "OKP", "crv": "Ed25519",
                             "x": B64.encode(k.public_key().as_ref())});
            (k.sign(message.as_bytes()).as_ref().to_vec(), jwk)
        }
        _ => {
            let k = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
            let pss = header["alg"] == "PS256";
            let mut sig = vec![0; k.public_modulus_len()];
            let pad = if pss {
                &RSA_PSS_SHA256
            } else {
                &RSA_PKCS1_SHA256
            };
            k.sign(pad, &rng, message.as_bytes(), &mut sig).unwrap();
            let p = k.public_key();
            let jwk = json!({"kty": "RSA",
                "n": B64.encode(p.modulus().big_endian_without_leading_zero()),
                "e": B64.encode(p.exponent().big_endian_without_leading_zero())});
            (sig, jwk)
        }
    };
    (format!("{message}.{}", B64.encode(sig)), jwk)
}

#[test]
fn each_key_type_verifies_its_algorithms() {
    for (kty, alg) in [
        ("EC", "ES256"),
        ("OKP", "EdDSA"),
        ("OKP", "Ed25519"),
        ("RSA", "RS256"),
        ("RSA", "PS256"),
    ] {
        let (token, jwk) = signed(kty, json!({"alg": alg}));
        let key = PublicJwk::from_json(&jwk).unwrap();
        let claims = UnverifiedJwt::parse(&token).unwrap().verify(&key).unwrap();
        assert_eq!(claims["sub"], "me", "{alg}");
        // A changed payload no longer verifies.
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = b64json(&json!({"sub": "you"}));
        parts[1] = &other;
        let forged = parts.join(".");
        assert!(UnverifiedJwt::parse(&forged).unwrap().verify(&key).is_err());
    }
}

#[test]
fn the_key_pins_the_algorithm() {
    let (token, mut jwk) = signed("RSA", json!({"alg": "PS256"}));
    jwk["alg"] = json!("RS256");
    let key = PublicJwk::from_json(&jwk).unwrap();
    assert_eq!(
        UnverifiedJwt::parse(&token).unwrap().verify(&key),
        Err(JwsError("the key does not allow this alg"))
    );
    // An EC key never checks an RSA-named token, whatever its bytes.
    let (ec_token, _) = signed("EC", json!({"alg": "ES256"}));
    let (_, rsa_jwk) = signed("RSA", json!({"alg": "RS256"}));
    let rsa = PublicJwk::from_json(&rsa_jwk).unwrap();
    assert!(
        UnverifiedJwt::parse(&ec_token)
            .unwrap()
            .verify(&rsa)
            .is_err()
    );
}

#[test]
fn none_and_hmac_are_refused_unread() {
    for alg in ["none", "HS256", "ES384", ""] {
        let token = format!(
            "{}.{}.",
            b64json(&json!({"alg": alg})),
            b64json(&json!({"sub": "me"}))
        );
        assert!(UnverifiedJwt::parse(&token).is_err(), "{alg}");
    }
    let crit = format!(
        "{}.{}.AA",
        b64json(&json!({"alg": "ES256", "crit": ["b64"]})),
        b64json(&json!({}))
    );
    assert!(UnverifiedJwt::parse(&crit).is_err());
    assert!(UnverifiedJwt::parse("a.b").is_err());
    let array_payload = format!(
        "{}.{}.AA",
        b64json(&json!({"alg": "ES256"})),
        b64json(&json!([1]))
    );
    assert!(UnverifiedJwt::parse(&array_payload).is_err());
}

#[test]
fn registration_refuses_what_is_not_a_public_signing_key() {
    let (_, ec) = signed("EC", json!({"alg": "ES256"}));
    let refused = |v: Value| PublicJwk::from_json(&v).unwrap_err().0;
    let mut private = ec.clone();
    private["d"] = json!(B64.encode([1u8; 32]));
    assert!(refused(private).contains("private"));
    assert!(refused(json!({"kty": "oct", "k": "c2VjcmV0"})).contains("oct"));
    let short = json!({"kty": "RSA", "n": B64.encode([0xc3u8; 128]), "e": "AQAB"});
    assert!(refused(short).contains("2048"));
    let p384 = json!({"kty": "EC", "crv": "P-384", "x": B64.encode([1u8; 48]), "y": B64.encode([2u8; 48])});
    assert!(refused(p384).contains("unsupported"));
    let mut wrong_alg = ec.clone();
    wrong_alg["alg"] = json!("RS256");
    assert!(refused(wrong_alg).contains("fit"));
    let mut enc = ec.clone();
    enc["use"] = json!("enc");
    assert!(refused(enc).contains("use"));
    let mut short_x = ec.clone();
    short_x["x"] = json!(B64.encode([1u8; 31]));
    assert!(refused(short_x).contains("32-byte"));
    assert!(PublicJwk::from_json(&ec).is_ok());
}

#[test]
fn keys_are_selected_by_kid_or_alone() {
    let (_, a) = signed("EC", json!({"alg": "ES256"}));
    let mut with_kid = a.clone();
    with_kid["kid"] = json!("a");
    let one = vec![PublicJwk::from_json(&a).unwrap()];
    assert!(select(&one, None).is_some());
    assert!(select(&one, Some("a")).is_none());
    let two = vec![
        PublicJwk::from_json(&with_kid).unwrap(),
        PublicJwk::from_json(&a).unwrap(),
    ];
    assert_eq!(select(&two, Some("a")).and_then(PublicJwk::kid), Some("a"));
    assert!(
        select(&two, None).is_none(),
        "no guessing among several keys"
    );
}
