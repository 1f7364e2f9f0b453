//! The verifier against forged, altered and misdirected tokens, with an
//! in-memory issuer (no network).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_lc_rs::hmac;
use common::*;
use serde_json::{Value, json};
use tokenmint_verify::{Verifier, VerifyError};

fn setup(keys: &[&TestKey]) -> (Verifier, FakeSource) {
    let source = FakeSource::new(jwks(keys));
    let verifier = Verifier::builder(ISSUER, AUDIENCE).build(source.clone());
    (verifier, source)
}

fn is_invalid(r: Result<tokenmint_verify::AccessClaims, VerifyError>, why: &str) {
    match r {
        Err(VerifyError::Invalid(reason)) => assert_eq!(reason, why),
        other => panic!("expected Invalid({why}), got {other:?}"),
    }
}

#[tokio::test]
async fn valid_tokens_of_every_algorithm_verify() {
    let (es, rs, ed) = (TestKey::es256(), TestKey::rs256(), TestKey::ed25519());
    let (v, source) = setup(&[&es, &rs, &ed]);
    for key in [&es, &rs, &ed] {
        let c = v.verify(&key.token(&claims())).await.unwrap();
        assert_eq!(c.iss, ISSUER);
        assert_eq!(c.aud, AUDIENCE);
        assert_eq!(c.client_id, CLIENT_ID);
        assert_eq!(c.env, "live");
        assert_eq!(c.extra["tenant"], "acme", "static claims come through");
        assert!(c.has_scope("orders:read"));
    }
    assert_eq!(source.jwks_fetches(), 1);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let key = TestKey::es256();
    let (v, _) = setup(&[&key]);
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": key.kid});
        let token = compact(&header, &claims(), b"");
        let err = v.verify(&token).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::Malformed | VerifyError::Invalid(_)),
            "{alg}: {err:?}"
        );
        // Also without the trailing dot's empty signature.
        let bare = token.trim_end_matches('.');
        assert!(v.verify(bare).await.is_err());
    }
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let key = TestKey::es256();
    let (v, _) = setup(&[&key]);
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": key.kid});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    // Whatever form of the public key an attacker guesses we would use as
    // an HMAC secret, the key's own algorithm (ES256) decides.
    let guesses: Vec<Vec<u8>> = vec![
        key.jwk.to_string().into_bytes(),
        key.jwk["x"].as_str().unwrap().as_bytes().to_vec(),
        jwks(&[&key]).to_string().into_bytes(),
    ];
    for secret in guesses {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        let token = format!("{input}.{}", b64(tag.as_ref()));
        is_invalid(v.verify(&token).await, "unsupported algorithm");
    }
}

#[tokio::test]
async fn hmac_keys_published_in_the_jwks_are_never_used() {
    let es = TestKey::es256();
    let secret = b"an HMAC secret that is public now";
    let mut doc = jwks(&[&es]);
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "k": b64(secret), "kid": "hmac", "alg": "HS256"}));
    let source = FakeSource::new(doc);
    let v = Verifier::builder(ISSUER, AUDIENCE).build(source.clone());
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hmac"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    let token = format!("{input}.{}", b64(tag.as_ref()));
    is_invalid(v.verify(&token).await, "unsupported algorithm");
    // Claiming a supported algorithm does not make the oct key usable.
    let as_es = compact(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "hmac"}),
        &claims(),
        tag.as_ref(),
    );
    assert_eq!(v.verify(&as_es).await.unwrap_err(), VerifyError::UnknownKey);
    v.verify(&es.token(&claims())).await.unwrap();
}

#[tokio::test]
async fn algorithm_substitution_between_our_own_key_types_is_refused() {
    let (es, rs, ed) = (TestKey::es256(), TestKey::rs256(), TestKey::ed25519());
    let (v, _) = setup(&[&es, &rs, &ed]);
    // A real RS256 signature presented under the EC key's kid.
    let forged = rs.sign_with(
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": es.kid}),
        &claims(),
    );
    is_invalid(v.verify(&forged).await, "algorithm mismatch");
    // An EdDSA signature labelled ES256 under the Ed25519 key's kid.
    let forged = ed.sign_with(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": ed.kid}),
        &claims(),
    );
    is_invalid(v.verify(&forged).await, "algorithm mismatch");
}

#[tokio::test]
async fn wrong_or_missing_typ_is_refused() {
    let key = TestKey::ed25519();
    let (v, _) = setup(&[&key]);
    for typ in [
        json!("JWT"),
        json!("at+JWT "),
        json!("id_token"),
        Value::Null,
    ] {
        let mut header = key.header();
        if typ.is_null() {
            header.as_object_mut().unwrap().remove("typ");
        } else {
            header["typ"] = typ;
        }
        let token = key.sign_with(&header, &claims());
        assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::WrongType);
    }
}

#[tokio::test]
async fn missing_kid_is_refused_without_a_fetch() {
    let key = TestKey::es256();
    let (v, source) = setup(&[&key]);
    let token = key.sign_with(&json!({"alg": "ES256", "typ": "at+jwt"}), &claims());
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::UnknownKey);
    let token = key.sign_with(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": ""}),
        &claims(),
    );
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::UnknownKey);
    assert_eq!(source.jwks_fetches(), 0);
}

#[tokio::test]
async fn unknown_kid_triggers_one_refresh_then_none_within_the_interval() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let v = Verifier::builder(ISSUER, AUDIENCE)
        .min_refresh_interval(Duration::from_millis(400))
        .build(source.clone());
    v.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(source.jwks_fetches(), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;

    let first = TestKey::es256();
    assert_eq!(
        v.verify(&first.token(&claims())).await.unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(source.jwks_fetches(), 2, "exactly one refresh");
    let second = TestKey::ed25519();
    assert_eq!(
        v.verify(&second.token(&claims())).await.unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(source.jwks_fetches(), 2, "none within the interval");
}

#[tokio::test]
async fn key_rotation_is_picked_up_by_refresh() {
    let old = TestKey::es256();
    let source = FakeSource::new(jwks(&[&old]));
    let v = Verifier::builder(ISSUER, AUDIENCE)
        .min_refresh_interval(Duration::from_millis(200))
        .build(source.clone());
    v.verify(&old.token(&claims())).await.unwrap();

    let new = TestKey::rs256();
    source.set_jwks(jwks(&[&new, &old]));
    tokio::time::sleep(Duration::from_millis(250)).await;
    v.verify(&new.token(&claims())).await.unwrap();
    v.verify(&old.token(&claims())).await.unwrap();
    assert_eq!(source.jwks_fetches(), 2);
}

#[tokio::test]
async fn header_supplied_keys_and_key_urls_are_ignored() {
    let ours = TestKey::es256();
    let attacker = TestKey::es256();
    let (v, source) = setup(&[&ours]);
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": attacker.kid,
                        "jwk": attacker.jwk, "jku": "https://evil.example/jwks.json"});
    let token = attacker.sign_with(&header, &claims());
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::UnknownKey);
    assert_eq!(source.fetches("evil.example/jwks.json"), 0);
    // Even naming our kid, the attacker's signature does not verify.
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": ours.kid, "jwk": attacker.jwk});
    let token = attacker.sign_with(&header, &claims());
    is_invalid(v.verify(&token).await, "bad signature");
}

#[tokio::test]
async fn expiry_and_not_before_use_a_30_second_leeway() {
    let key = TestKey::ed25519();
    let (v, _) = setup(&[&key]);
    let t = now();
    let expired = claims_with(json!({"iat": t - 7200, "nbf": t - 7200, "exp": t - 3600}));
    is_invalid(v.verify(&key.token(&expired)).await, "expired");
    let just_past = claims_with(json!({"iat": t - 3610, "nbf": t - 3610, "exp": t - 10}));
    v.verify(&key.token(&just_past)).await.unwrap();
    let past_leeway = claims_with(json!({"exp": t - 45}));
    is_invalid(v.verify(&key.token(&past_leeway)).await, "expired");

    let future = claims_with(json!({"nbf": t + 120}));
    is_invalid(v.verify(&key.token(&future)).await, "not yet valid");
    let skewed = claims_with(json!({"nbf": t + 10}));
    v.verify(&key.token(&skewed)).await.unwrap();
}

#[tokio::test]
async fn wrong_issuer_or_audience_is_refused() {
    let key = TestKey::es256();
    let (v, _) = setup(&[&key]);
    for iss in [
        "https://evil.example",
        "https://id.example/",
        "HTTPS://ID.EXAMPLE",
    ] {
        let c = claims_with(json!({ "iss": iss }));
        is_invalid(v.verify(&key.token(&c)).await, "wrong issuer");
    }
    let c = claims_with(json!({"aud": "https://payments.example"}));
    is_invalid(v.verify(&key.token(&c)).await, "wrong audience");
    // tokenmint's aud is one string; a list smuggling ours in is not one of
    // its tokens.
    let c = claims_with(json!({"aud": [AUDIENCE, "https://payments.example"]}));
    assert!(matches!(
        v.verify(&key.token(&c)).await,
        Err(VerifyError::Invalid(_))
    ));
}

#[tokio::test]
async fn missing_claims_are_refused() {
    let key = TestKey::es256();
    let (v, _) = setup(&[&key]);
    for claim in [
        "exp",
        "nbf",
        "iat",
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "jti",
    ] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(claim);
        let r = v.verify(&key.token(&c)).await;
        assert!(
            matches!(r, Err(VerifyError::Invalid(_))),
            "without {claim}: {r:?}"
        );
    }
    let c = claims_with(json!({"exp": "tomorrow"}));
    assert!(v.verify(&key.token(&c)).await.is_err());
}

#[tokio::test]
async fn tampering_with_any_part_is_detected() {
    let key = TestKey::es256();
    let (v, _) = setup(&[&key]);
    let token = key.token(&claims());
    let parts: Vec<&str> = token.split('.').collect();

    let escalated = claims_with(json!({"scope": "orders:read tokenmint:admin"}));
    let payload = b64(escalated.to_string().as_bytes());
    let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
    is_invalid(v.verify(&forged).await, "bad signature");

    let other_sub = claims_with(json!({"sub": "someone-else"}));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(other_sub.to_string().as_bytes()),
        parts[2]
    );
    is_invalid(v.verify(&forged).await, "bad signature");

    let mut sig = parts[2].as_bytes().to_vec();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    );
    is_invalid(v.verify(&forged).await, "bad signature");

    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid, "x": "1"});
    let forged = format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    is_invalid(v.verify(&forged).await, "bad signature");
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let key = TestKey::es256();
    let (v, _) = setup(&[&key]);
    let token = key.token(&claims());
    for bad in [
        String::new(),
        "a.b".into(),
        format!("{token}.extra"),
        "e30.e30.".into(),
        format!("{}.{}", "e".repeat(20_000), "a.b"),
    ] {
        assert!(v.verify(&bad).await.is_err(), "{bad:.40}");
    }
}

#[tokio::test]
async fn critical_header_extensions_are_refused() {
    let key = TestKey::es256();
    let (v, _) = setup(&[&key]);
    let mut header = key.header();
    header["crit"] = json!(["exp"]);
    let token = key.sign_with(&header, &claims());
    is_invalid(v.verify(&token).await, "unsupported critical header");
}

#[tokio::test]
async fn revoked_client_ids_are_refused() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    source.set_revocations(revocations(&[CLIENT_ID]));
    let v = Verifier::builder(ISSUER, AUDIENCE)
        .revocation_polling(Duration::from_secs(5))
        .build(source.clone());
    assert_eq!(
        v.verify(&key.token(&claims())).await.unwrap_err(),
        VerifyError::Revoked
    );
    let other = claims_with(json!({"client_id": "tm_live_other"}));
    v.verify(&key.token(&other)).await.unwrap();
    assert_eq!(source.fetches("/auth/revocations"), 1);
}

#[tokio::test]
async fn required_scopes_are_enforced() {
    let key = TestKey::es256();
    let (v, _) = setup(&[&key]);
    let token = key.token(&claims());
    v.verify_with_scopes(&token, &["orders:read"])
        .await
        .unwrap();
    v.verify_with_scopes(&token, &["orders:read", "invoices:read"])
        .await
        .unwrap();
    v.verify_with_scopes(&token, &[]).await.unwrap();
    assert_eq!(
        v.verify_with_scopes(&token, &["orders:read", "orders:write"])
            .await
            .unwrap_err(),
        VerifyError::MissingScope("orders:write".into())
    );
    // A prefix is not a scope.
    assert_eq!(
        v.verify_with_scopes(&token, &["orders"]).await.unwrap_err(),
        VerifyError::MissingScope("orders".into())
    );
    let none = key.token(&claims_with(json!({"scope": ""})));
    assert!(v.verify(&none).await.unwrap().scopes().next().is_none());
}
