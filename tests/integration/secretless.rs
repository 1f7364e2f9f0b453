//! `private_key_jwt` (RFC 7523 §2.2, SPEC §10.1): a key holds public keys
//! instead of a secret, its client proves itself with a signed assertion,
//! and every way of getting the assertion wrong is one `invalid_client`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::client::jwt_parts;
use crate::common::dpop::DpopKey;
use crate::common::jwt::{
    ClientKey, assert_create_refused, assert_invalid_field, assertion_claims, assertion_form,
    create_key, exchange_assertion, form, hs256_jwt, patched, sign_jwt, token_endpoint,
    unsigned_jwt,
};
use crate::common::{Backend, Created, Resp, TestApp};

both_backends!(
    an_assertion_gets_the_keys_token,
    every_broken_assertion_is_invalid_client,
    an_assertion_is_good_once,
);

fn key_path(id: &str) -> String {
    format!("/v1/api-keys/{id}")
}

fn basic(client_id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    )
}

/// A `private_key_jwt` key holding the public halves of `clients`.
async fn assertion_key(app: &TestApp, admin: &str, clients: &[&ClientKey]) -> Created {
    let keys: Vec<Value> = clients.iter().map(|c| c.jwk()).collect();
    create_key(
        app,
        admin,
        json!({"name": "batch job", "credential_type": "private_key_jwt",
               "jwks": {"keys": keys}, "scopes": ["orders:read", "orders:write"]}),
    )
    .await
}

/// Asserts the server stored every member of each sent JWK (it may add
/// members, such as `alg`, but must not drop or change one).
fn assert_stored(stored: &Value, sent: &Value) {
    let stored_keys = stored["keys"].as_array().unwrap();
    let sent_keys = sent["keys"].as_array().unwrap();
    assert_eq!(stored_keys.len(), sent_keys.len(), "{stored}");
    for (s, k) in stored_keys.iter().zip(sent_keys) {
        for (name, value) in k.as_object().unwrap() {
            assert_eq!(&s[name], value, "member {name} of {s}");
        }
    }
}

/// Asserts the exchange failed as a client authentication failure.
fn assert_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    assert_eq!(r.json()["error"], "invalid_client", "{what}");
    assert!(r.json().get("access_token").is_none(), "{what}");
}

async fn an_assertion_gets_the_keys_token(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let client = ClientKey::new(DpopKey::es256(), Some("ci-2026-01"));
    let jwks = json!({"keys": [client.jwk()]});
    let key = create_key(
        &app,
        &admin,
        json!({"name": "nightly export", "credential_type": "private_key_jwt", "jwks": jwks,
               "scopes": ["orders:read", "orders:write"], "claims": {"tenant": "acme"}}),
    )
    .await;
    // Nothing secret to show: no api_secret member at all.
    assert!(key.body.get("api_secret").is_none(), "{}", key.body);
    assert_eq!(key.body["credential_type"], "private_key_jwt");
    assert_eq!(key.body["federation"], json!([]));
    assert_stored(&key.body["jwks"], &jwks);
    let read = app.get(&key_path(&key.id), Some(&admin)).await.json();
    assert_eq!(read["credential_type"], "private_key_jwt");
    assert_eq!(read["jwks"], key.body["jwks"]);

    // `aud` may be the issuer or the token endpoint, alone or in an array;
    // `typ` in the header is optional.
    let issuer = app.state.config.issuer.clone();
    for (aud, header) in [
        (json!(issuer), client.header()),
        (json!(token_endpoint(&app)), client.header()),
        (
            json!(["https://other.example", issuer]),
            patched(client.header(), json!({"typ": "JWT"})),
        ),
        (json!([token_endpoint(&app)]), client.header()),
    ] {
        let claims = patched(
            assertion_claims(&app, &key.api_key),
            json!({ "aud": aud.clone() }),
        );
        let r = exchange_assertion(&app, &client.sign(header, claims), &[]).await;
        assert_eq!(r.status, 200, "aud {aud}: {}", r.text());
    }

    // With a matching client_id and a narrower scope.
    let r = exchange_assertion(
        &app,
        &client.assertion(&app, &key.api_key),
        &[("client_id", &key.api_key), ("scope", "orders:read")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "orders:read");
    let token = body["access_token"].as_str().unwrap();
    let (_, claims) = jwt_parts(token);
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["sub"], key.id.as_str());
    assert_eq!(claims["client_id"], key.api_key.as_str());
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["tenant"], "acme");
    let i = app
        .introspect(token, Some(&format!("Bearer {admin}")))
        .await
        .json();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], key.api_key.as_str());
}

async fn every_broken_assertion_is_invalid_client(b: Backend) {
    // Many failures from one address: keep them clear of its failure budget.
    let app = TestApp::builder(b)
        .var("TOKENMINT_FAILED_AUTH_PER_MINUTE", "1000")
        .build()
        .await;
    let admin = app.admin_token().await;
    let client = ClientKey::new(DpopKey::es256(), Some("k1"));
    let key = assertion_key(&app, &admin, &[&client]).await;
    let other_client = ClientKey::new(DpopKey::es256(), Some("k1"));
    let other = assertion_key(&app, &admin, &[&other_client]).await;
    let plain = app.key().create().await;
    let good = || assertion_claims(&app, &key.api_key);
    let with = |patch: Value| client.sign(client.header(), patched(good(), patch));
    let now = chrono::Utc::now().timestamp();
    let stored_jwk = key.body["jwks"]["keys"][0].clone();
    let x = client.jwk()["x"].as_str().unwrap().to_owned();
    let hs256_header = json!({"alg": "HS256", "kid": "k1"});

    let assertions: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            with(json!({"aud": "https://elsewhere.example"})),
        ),
        (
            "aud of another endpoint",
            with(json!({"aud": format!("{}/auth/introspect", app.state.config.issuer)})),
        ),
        (
            "aud array without us",
            with(json!({"aud": ["https://elsewhere.example"]})),
        ),
        ("no aud", with(json!({"aud": null}))),
        ("expired", with(json!({"iat": now - 600, "exp": now - 120}))),
        (
            "lives longer than 5 min",
            with(json!({"iat": now, "exp": now + 600})),
        ),
        (
            "exp - iat over 300 s, exp near",
            with(json!({"iat": now - 200, "exp": now + 200})),
        ),
        ("no exp", with(json!({"exp": null}))),
        ("no jti", with(json!({"jti": null}))),
        (
            "signed by a key not in the JWKS",
            sign_jwt(&DpopKey::es256(), client.header(), good()),
        ),
        (
            "signed by another key's client",
            other_client.sign(other_client.header(), good()),
        ),
        (
            "alg none",
            unsigned_jwt(json!({"alg": "none", "kid": "k1"}), good()),
        ),
        (
            "HS256 keyed with the JWK JSON",
            hs256_jwt(
                hs256_header.clone(),
                good(),
                stored_jwk.to_string().as_bytes(),
            ),
        ),
        (
            "HS256 keyed with x",
            hs256_jwt(hs256_header.clone(), good(), x.as_bytes()),
        ),
        (
            "HS256 keyed with x decoded",
            hs256_jwt(hs256_header, good(), &B64.decode(&x).unwrap()),
        ),
        (
            "alg not the key's",
            client.sign(json!({"alg": "EdDSA", "kid": "k1"}), good()),
        ),
        (
            "unknown kid",
            client.sign(json!({"alg": "ES256", "kid": "k2"}), good()),
        ),
        ("iss is not sub", with(json!({"sub": other.api_key}))),
        (
            "another key's iss and sub",
            with(json!({"iss": other.api_key, "sub": other.api_key})),
        ),
        (
            "unknown key",
            with(json!({"iss": "tm_live_AAAAAAAAAAAAAAAAAAAAAAAA",
                        "sub": "tm_live_AAAAAAAAAAAAAAAAAAAAAAAA"})),
        ),
        (
            "for a secret key",
            with(json!({"iss": plain.api_key, "sub": plain.api_key})),
        ),
        ("tampered claims", {
            let signed = client.assertion(&app, &key.api_key);
            let mut parts: Vec<&str> = signed.split('.').collect();
            let longer =
                B64.encode(patched(jwt_parts(&signed).1, json!({"exp": now + 290})).to_string());
            parts[1] = &longer;
            parts.join(".")
        }),
        ("not a JWT", "not.a.jwt".into()),
    ];
    for (what, assertion) in &assertions {
        assert_refused(&exchange_assertion(&app, assertion, &[]).await, what);
    }
    // client_id must name the assertion's key.
    let r = exchange_assertion(
        &app,
        &client.assertion(&app, &key.api_key),
        &[("client_id", &other.api_key)],
    )
    .await;
    assert_refused(&r, "client_id of another key");
    // The key has no secret: none is accepted for it, by body or by Basic.
    let r = app
        .post_form(
            "/auth/token",
            &form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &key.api_key),
                ("client_secret", &plain.api_secret),
            ]),
            &[],
        )
        .await;
    assert_refused(&r, "client_secret for a private_key_jwt key");
    let r = app
        .post_form(
            "/auth/token",
            "grant_type=client_credentials",
            &[("authorization", &basic(&key.api_key, &plain.api_secret))],
        )
        .await;
    assert_refused(&r, "Basic for a private_key_jwt key");
    let r = app
        .post_json(
            "/auth/token",
            &json!({"api_key": key.api_key, "api_secret": plain.api_secret}),
            None,
        )
        .await;
    assert_refused(&r, "JSON secret for a private_key_jwt key");

    // Two ways of authenticating at once is a malformed request (§8).
    let r = exchange_assertion(
        &app,
        &client.assertion(&app, &key.api_key),
        &[("client_secret", &plain.api_secret)],
    )
    .await;
    r.assert_oauth_error(400, "invalid_request");
    let r = app
        .post_form(
            "/auth/token",
            &assertion_form(&client.assertion(&app, &key.api_key), &[]),
            &[("authorization", &basic(&plain.api_key, &plain.api_secret))],
        )
        .await;
    r.assert_oauth_error(400, "invalid_request");

    // None of that cost the key anything; once revoked, its assertions fail.
    let r = exchange_assertion(&app, &client.assertion(&app, &key.api_key), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(app.revoke(&key.id, &admin).await.status, 200);
    let r = exchange_assertion(&app, &client.assertion(&app, &key.api_key), &[]).await;
    assert_refused(&r, "revoked key");
}

async fn an_assertion_is_good_once(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let client = ClientKey::new(DpopKey::ed25519(), Some("edge"));
    let key = assertion_key(&app, &admin, &[&client]).await;
    let assertion = client.assertion(&app, &key.api_key);
    let r = exchange_assertion(&app, &assertion, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_refused(&exchange_assertion(&app, &assertion, &[]).await, "replay");
    // A refusal after authentication (a scope the key lacks) spends nothing:
    // the client may retry with the same assertion.
    let retry = client.assertion(&app, &key.api_key);
    let r = exchange_assertion(&app, &retry, &[("scope", "not:granted")]).await;
    r.assert_oauth_error(400, "invalid_scope");
    let r = exchange_assertion(&app, &retry, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Copies of one fresh assertion sent at the same moment: exactly one wins.
    let assertion = client.assertion(&app, &key.api_key);
    let copies = (0..8).map(|_| exchange_assertion(&app, &assertion, &[]));
    let statuses: Vec<u16> = join_all(copies).await.iter().map(|r| r.status).collect();
    crate::common::client::assert_one_wins(&statuses, 401);
    // The jti is what is spent: the same claims with a new one pass.
    let again = patched(
        jwt_parts(&assertion).1,
        json!({"jti": uuid::Uuid::new_v4().to_string()}),
    );
    let r = exchange_assertion(&app, &client.sign(client.header(), again), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// ES256, RS256, PS256 and EdDSA keys all sign assertions; an RSA JWK
/// without `alg` takes either RSA algorithm, one with `alg` only that one.
#[actix_web::test]
async fn every_algorithm_signs_assertions() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    for client in [
        ClientKey::new(DpopKey::es256(), Some("p256")),
        ClientKey::new(DpopKey::rsa(false), None),
        ClientKey::new(DpopKey::rsa(true), Some("pss")),
        ClientKey::new(DpopKey::ed25519(), None),
    ] {
        let alg = client.key.alg();
        let key = assertion_key(&app, &admin, &[&client]).await;
        let r = exchange_assertion(&app, &client.assertion(&app, &key.api_key), &[]).await;
        assert_eq!(r.status, 200, "{alg}: {}", r.text());
        assert_eq!(
            jwt_parts(r.json()["access_token"].as_str().unwrap()).1["client_id"],
            key.api_key.as_str()
        );
        if matches!(client.key, DpopKey::Rsa(..)) {
            let other = if alg == "RS256" { "PS256" } else { "RS256" };
            let header = patched(client.header(), json!({ "alg": other }));
            let claims = assertion_claims(&app, &key.api_key);
            let r = exchange_assertion(&app, &client.sign(header, claims), &[]).await;
            assert_eq!(r.status, 200, "{alg} key signing {other}: {}", r.text());
        }
    }
    // The RFC 9864 name of EdDSA over Ed25519 is accepted as a synonym.
    let ed = ClientKey::new(DpopKey::ed25519(), None);
    let key = assertion_key(&app, &admin, &[&ed]).await;
    let header = json!({"alg": "Ed25519"});
    let r = exchange_assertion(
        &app,
        &ed.sign(header, assertion_claims(&app, &key.api_key)),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A JWK that says `alg` pins it: PS256 passes, RS256 by the same key fails.
    let pinned = ClientKey::new(DpopKey::rsa(true), Some("pinned"));
    let mut jwk = pinned.jwk();
    jwk["alg"] = json!("PS256");
    let key = create_key(
        &app,
        &admin,
        json!({"name": "pinned", "credential_type": "private_key_jwt", "jwks": {"keys": [jwk]}}),
    )
    .await;
    assert_eq!(key.body["jwks"]["keys"][0]["alg"], "PS256");
    let r = exchange_assertion(&app, &pinned.assertion(&app, &key.api_key), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rs256 = patched(pinned.header(), json!({"alg": "RS256"}));
    let r = exchange_assertion(
        &app,
        &pinned.sign(rs256, assertion_claims(&app, &key.api_key)),
        &[],
    )
    .await;
    assert_refused(&r, "RS256 under a PS256 JWK");
    let es = ClientKey::new(DpopKey::es256(), Some("es"));
    let mut jwk = es.jwk();
    jwk["alg"] = json!("ES256");
    let key = create_key(
        &app,
        &admin,
        json!({"name": "es", "credential_type": "private_key_jwt", "jwks": {"keys": [jwk]}}),
    )
    .await;
    assert_eq!(key.body["jwks"]["keys"][0]["alg"], "ES256");
    let r = exchange_assertion(&app, &es.assertion(&app, &key.api_key), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// With several keys the assertion's `kid` picks one, and only that one
/// may have signed it.
#[actix_web::test]
async fn several_keys_are_told_apart_by_kid() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let a = ClientKey::new(DpopKey::es256(), Some("a"));
    let b = ClientKey::new(DpopKey::ed25519(), Some("b"));
    let c = ClientKey::new(DpopKey::rsa(false), Some("c"));
    let key = assertion_key(&app, &admin, &[&a, &b, &c]).await;
    for client in [&a, &b, &c] {
        let r = exchange_assertion(&app, &client.assertion(&app, &key.api_key), &[]).await;
        assert_eq!(r.status, 200, "kid {:?}: {}", client.kid, r.text());
    }
    let claims = || assertion_claims(&app, &key.api_key);
    let cases = [
        (
            "kid a, signed by b",
            b.sign(json!({"alg": "EdDSA", "kid": "a"}), claims()),
        ),
        (
            "kid a, another ES256 key",
            sign_jwt(&DpopKey::es256(), a.header(), claims()),
        ),
        (
            "no kid among several keys",
            a.sign(json!({"alg": "ES256"}), claims()),
        ),
        (
            "unknown kid",
            a.sign(json!({"alg": "ES256", "kid": "d"}), claims()),
        ),
    ];
    for (what, assertion) in &cases {
        assert_refused(&exchange_assertion(&app, assertion, &[]).await, what);
    }
}

/// PATCH `jwks` is the rotation of a `private_key_jwt` key: the old key
/// stops working at once, the new one works at once, and it is audited.
#[actix_web::test]
async fn patching_jwks_replaces_the_keys_at_once() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let old = ClientKey::new(DpopKey::es256(), Some("2026-01"));
    let new = ClientKey::new(DpopKey::rsa(true), Some("2026-02"));
    let key = assertion_key(&app, &admin, &[&old]).await;
    let r = exchange_assertion(&app, &old.assertion(&app, &key.api_key), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new_jwks = json!({"keys": [new.jwk()]});
    let patched_key = app
        .json_call(
            "PATCH",
            &key_path(&key.id),
            &json!({ "jwks": new_jwks }),
            Some(&admin),
        )
        .await;
    assert_eq!(patched_key.status, 200, "{}", patched_key.text());
    assert_stored(&patched_key.json()["jwks"], &new_jwks);
    assert!(patched_key.json().get("api_secret").is_none());
    let r = exchange_assertion(&app, &old.assertion(&app, &key.api_key), &[]).await;
    assert_refused(&r, "the replaced key");
    let r = exchange_assertion(&app, &new.assertion(&app, &key.api_key), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let audit = app.audit_text(&key.id, &admin).await;
    assert!(audit.contains("jwks"), "{audit}");
    // A bad replacement is refused whole and changes nothing.
    let mut private = DpopKey::es256().jwk();
    private["d"] = json!(B64.encode([7u8; 32]));
    let r = app
        .json_call(
            "PATCH",
            &key_path(&key.id),
            &json!({"jwks": {"keys": [private]}}),
            Some(&admin),
        )
        .await;
    assert_invalid_field(&r, "jwks");
    // `null` would leave a key with nothing to check: refused, not ignored.
    for (field, body) in [
        ("jwks", json!({"jwks": null})),
        ("federation", json!({"federation": null})),
    ] {
        let r = app
            .json_call("PATCH", &key_path(&key.id), &body, Some(&admin))
            .await;
        assert_invalid_field(&r, field);
    }
    let r = exchange_assertion(&app, &new.assertion(&app, &key.api_key), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Each way a `jwks` can be unfit is a 422 naming `jwks`.
#[actix_web::test]
async fn jwks_are_validated() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let es = || DpopKey::es256().jwk();
    let with_kid = |mut jwk: Value, kid: &str| {
        jwk["kid"] = json!(kid);
        jwk
    };
    let mut ec_private = es();
    ec_private["d"] = json!(B64.encode([7u8; 32]));
    let mut okp_private = DpopKey::ed25519().jwk();
    okp_private["d"] = json!(B64.encode([9u8; 32]));
    // A 1024-bit modulus: top bit set, odd.
    let mut n = vec![0xC3u8; 128];
    n[127] = 0x01;
    let rsa_1024 = json!({"kty": "RSA", "n": B64.encode(&n), "e": "AQAB"});
    let p384 = json!({"kty": "EC", "crv": "P-384",
                      "x": B64.encode([1u8; 48]), "y": B64.encode([2u8; 48])});
    let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": B64.encode([3u8; 32])});
    let six: Vec<Value> = (0..6).map(|i| with_kid(es(), &format!("k{i}"))).collect();
    let cases: Vec<(&str, Value)> = vec![
        ("private EC key", json!({"keys": [ec_private]})),
        ("private OKP key", json!({"keys": [okp_private]})),
        (
            "oct key",
            json!({"keys": [{"kty": "oct", "k": B64.encode([5u8; 32])}]}),
        ),
        ("RSA under 2048 bits", json!({"keys": [rsa_1024]})),
        ("more than 5 keys", json!({ "keys": six })),
        ("two keys without kid", json!({"keys": [es(), es()]})),
        (
            "one key of two without kid",
            json!({"keys": [with_kid(es(), "a"), es()]}),
        ),
        (
            "duplicate kid",
            json!({"keys": [with_kid(es(), "a"), with_kid(es(), "a")]}),
        ),
        ("EC P-384", json!({ "keys": [p384] })),
        ("OKP X25519", json!({ "keys": [x25519] })),
        ("unknown kty", json!({"keys": [{"kty": "foo", "x": "AA"}]})),
    ];
    for (what, jwks) in &cases {
        assert_create_refused(
            &app,
            &admin,
            json!({"name": what, "credential_type": "private_key_jwt", "jwks": jwks}),
            "jwks",
        )
        .await;
    }
    // Missing on a private_key_jwt key; present on the other types.
    assert_create_refused(
        &app,
        &admin,
        json!({"name": "no jwks", "credential_type": "private_key_jwt"}),
        "jwks",
    )
    .await;
    assert_create_refused(
        &app,
        &admin,
        json!({"name": "secret", "jwks": {"keys": [es()]}}),
        "jwks",
    )
    .await;
    // Nothing was written: only the admin key exists.
    let all = app.get("/v1/api-keys", Some(&admin)).await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
    // At the limits: five keys with distinct kids, an RSA 2048 key.
    let five: Vec<Value> = (0..5).map(|i| with_kid(es(), &format!("k{i}"))).collect();
    let rsa = DpopKey::rsa(false).jwk();
    for jwks in [json!({ "keys": five }), json!({"keys": [rsa]})] {
        let key = create_key(
            &app,
            &admin,
            json!({"name": "edge", "credential_type": "private_key_jwt", "jwks": jwks}),
        )
        .await;
        assert_stored(&key.body["jwks"], &jwks);
    }
}

/// A key's credential type is fixed at creation: PATCH cannot change it,
/// a key without a secret cannot be rotated, and `jwks` belongs to
/// `private_key_jwt` keys only. The default is `secret`.
#[actix_web::test]
async fn the_credential_type_is_fixed() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let client = ClientKey::new(DpopKey::es256(), Some("k"));
    let key = assertion_key(&app, &admin, &[&client]).await;
    let plain = create_key(&app, &admin, json!({"name": "plain"})).await;
    assert_eq!(plain.body["credential_type"], "secret");
    assert!(plain.body["jwks"].is_null(), "{}", plain.body);
    assert_eq!(plain.body["federation"], json!([]));
    assert!(plain.api_secret.starts_with("tms_"), "{}", plain.body);
    for (id, to) in [(&key.id, "secret"), (&plain.id, "private_key_jwt")] {
        let r = app
            .json_call(
                "PATCH",
                &key_path(id),
                &json!({ "credential_type": to }),
                Some(&admin),
            )
            .await;
        assert_invalid_field(&r, "credential_type");
    }
    let r = app
        .json_call(
            "PATCH",
            &key_path(&plain.id),
            &json!({"jwks": {"keys": [client.jwk()]}}),
            Some(&admin),
        )
        .await;
    assert_invalid_field(&r, "jwks");
    let r = app
        .post_json(
            &format!("{}/rotate", key_path(&key.id)),
            &json!({}),
            Some(&admin),
        )
        .await;
    r.assert_problem(409);
    // Both keys still work as they were made to.
    assert_eq!(app.exchange(&plain, json!({})).await.status, 200);
    let r = exchange_assertion(&app, &client.assertion(&app, &key.api_key), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Discovery tells clients they may authenticate with an assertion, with
/// which algorithms, and that they may exchange an external token (offered
/// only where an issuer is trusted).
#[actix_web::test]
async fn discovery_lists_assertions_and_token_exchange() {
    let app = TestApp::builder(Backend::Sqlite)
        .var(
            "TOKENMINT_FEDERATION_ISSUERS",
            "https://token.actions.githubusercontent.com",
        )
        .build()
        .await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let d = app.get(path, None).await.json();
        let list = |name: &str| -> Vec<String> {
            d[name]
                .as_array()
                .unwrap_or_else(|| panic!("{path}: no {name}: {d}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        assert!(
            list("token_endpoint_auth_methods_supported").contains(&"private_key_jwt".into()),
            "{path}: {d}"
        );
        let algs = list("token_endpoint_auth_signing_alg_values_supported");
        for alg in ["ES256", "RS256", "PS256", "EdDSA"] {
            assert!(
                algs.contains(&alg.into()),
                "{path}: {alg} missing: {algs:?}"
            );
        }
        // Exactly what is accepted: nothing symmetric, nothing unsigned.
        for alg in &algs {
            assert!(
                ["ES256", "RS256", "PS256", "EdDSA", "Ed25519"].contains(&alg.as_str()),
                "{path}: {alg} advertised"
            );
        }
        assert!(
            list("grant_types_supported")
                .contains(&"urn:ietf:params:oauth:grant-type:token-exchange".into()),
            "{path}: {d}"
        );
        assert!(list("grant_types_supported").contains(&"client_credentials".into()));
    }
}

/// With Redis, an assertion spent at one replica is refused at every other.
#[actix_web::test]
async fn replicas_share_spent_assertions_through_redis() {
    if !crate::common::redis_available() {
        return;
    }
    // A prefix of this run's own: tests never see each other's keys.
    let prefix = format!("tokenmint-test-{}:", uuid::Uuid::new_v4());
    let redis = "redis://127.0.0.1:6379";
    let a = TestApp::builder(Backend::Sqlite)
        .var("TOKENMINT_REDIS_URL", redis)
        .var("TOKENMINT_REDIS_PREFIX", &prefix)
        .build()
        .await;
    let b = a
        .replica_builder()
        .var("TOKENMINT_REDIS_URL", redis)
        .var("TOKENMINT_REDIS_PREFIX", &prefix)
        .build()
        .await;
    let admin = a.admin_token().await;
    let client = ClientKey::new(DpopKey::es256(), Some("shared"));
    let key = assertion_key(&a, &admin, &[&client]).await;
    for (first, second) in [(&a, &b), (&b, &a)] {
        // Both replicas have the same issuer, so one assertion fits both.
        let assertion = client.assertion(&a, &key.api_key);
        let r = exchange_assertion(first, &assertion, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_refused(
            &exchange_assertion(second, &assertion, &[]).await,
            "replayed at another replica",
        );
    }
}
