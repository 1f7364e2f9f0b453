use serde_json::json;

use super::*;

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn the_thumbprint_is_rfc_7638s_own_example() {
    // RFC 7638 §3.1: this RSA key's SHA-256 thumbprint.
    let jwk = object(json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }));
    assert_eq!(
        thumbprint(&jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn thumbprints_take_only_the_required_members() {
    let ec = json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b"});
    let mut with_extras = ec.clone();
    with_extras["kid"] = json!("k1");
    with_extras["use"] = json!("sig");
    assert_eq!(
        thumbprint(&object(ec)).unwrap(),
        thumbprint(&object(with_extras)).unwrap()
    );
    assert!(thumbprint(&object(json!({"kty": "oct", "k": "x"}))).is_err());
    assert!(thumbprint(&object(json!({"kty": "EC", "crv": "P-256", "x": "a"}))).is_err());
}

#[test]
fn htu_is_compared_without_query_or_fragment() {
    assert_eq!(
        without_query("https://a/auth/token?x=1"),
        "https://a/auth/token"
    );
    assert_eq!(
        without_query("https://a/auth/token#f"),
        "https://a/auth/token"
    );
    assert_eq!(
        without_query("https://a/auth/token"),
        "https://a/auth/token"
    );
}

#[test]
fn htu_matches_after_rfc_3986_normalisation() {
    let same = |a, b| same_resource(a, b);
    assert!(same(
        "https://API.example/orders",
        "https://api.example/orders"
    ));
    assert!(same(
        "HTTPS://api.example:443/orders",
        "https://api.example/orders"
    ));
    assert!(same(
        "http://api.example:80/a/../orders?x=1#f",
        "http://api.example/orders"
    ));
    assert!(same("https://api.example", "https://api.example/"));
    assert!(!same(
        "https://api.example/orders",
        "http://api.example/orders"
    ));
    assert!(!same(
        "https://api.example:8443/orders",
        "https://api.example/orders"
    ));
    assert!(!same(
        "https://api.example/orders/",
        "https://api.example/orders"
    ));
    assert!(!same(
        "https://api.example/Orders",
        "https://api.example/orders"
    ));
    assert!(!same(
        "https://u@api.example/orders",
        "https://api.example/orders"
    ));
    assert!(!same(
        "ftp://api.example/orders",
        "ftp://api.example/orders"
    ));
    assert!(!same("orders", "orders"));
}

#[test]
fn ath_is_the_base64url_sha256_of_the_token() {
    // RFC 9449 §7.1's example token and its ath.
    assert_eq!(
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn junk_is_refused_before_any_signature_work() {
    let checker = ProofChecker::new();
    let expected = Expected {
        method: "POST",
        url: "http://t/auth/token",
        now: 0,
        access_token: None,
        jkt: None,
    };
    for proof in ["", "a.b", "a.b.c.d", "!!.??.**"] {
        assert!(checker.check(proof, &expected).is_err(), "{proof:.20}");
    }
    let big = format!("{}.e30.sig", "e".repeat(MAX_PROOF_BYTES));
    assert_eq!(
        checker.check(&big, &expected),
        Err(InvalidProof("the proof is too large"))
    );
}
