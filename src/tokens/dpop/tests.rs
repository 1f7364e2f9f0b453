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
fn junk_is_refused_before_any_signature_work() {
    let checker = DpopChecker::new("http://t/auth/token".into());
    for proof in ["", "a.b", "a.b.c.d", "!!.??.**"] {
        assert!(checker.check(proof, "POST", 0).is_err(), "{proof:.20}");
    }
    let big = format!("{}.e30.sig", "e".repeat(MAX_PROOF_BYTES));
    assert_eq!(
        checker.check(&big, "POST", 0),
        Err(InvalidProof("the proof is too large"))
    );
}
