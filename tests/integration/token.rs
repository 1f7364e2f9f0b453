//! `POST /auth/token`: the happy paths and the token's contents.

use base64::Engine;
use serde_json::json;

use crate::both_backends;
use crate::common::client::jwt_parts;
use crate::common::{Backend, TestApp};

both_backends!(
    json_exchange_issues_a_token_with_the_spec_claims,
    oauth_forms_with_basic_and_body_credentials_work,
    scope_narrowing_follows_the_key,
    audiences_are_limited_to_the_key,
    key_ttl_claims_and_expiry_shape_the_token,
    allowed_ips_use_the_socket_or_trusted_proxies,
    rotation_grace_keeps_the_old_secret_for_a_while,
);

async fn json_exchange_issues_a_token_with_the_spec_claims(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app
        .key()
        .scopes(&["orders:read", "orders:write"])
        .create()
        .await;
    let r = app.exchange(&key, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "orders:read orders:write");
    let (header, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let signer = app
        .state
        .issuer
        .ring()
        .signer(std::time::SystemTime::now())
        .unwrap()
        .kid
        .clone();
    assert_eq!(header["kid"], signer.as_str());
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["aud"], app.base.as_str());
    assert_eq!(claims["sub"], key.id.as_str());
    assert_eq!(claims["client_id"], key.api_key.as_str());
    assert_eq!(claims["scope"], "orders:read orders:write");
    assert_eq!(claims["env"], "live");
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    // The token verifies with our own rules.
    let token = body["access_token"].as_str().unwrap();
    let verified = tokenmint::tokens::verify::verify(
        &app.state.issuer.ring(),
        token,
        &app.base,
        Some(&app.base),
    )
    .unwrap();
    assert_eq!(verified.client_id, key.api_key);
}

async fn oauth_forms_with_basic_and_body_credentials_work(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().scopes(&["a", "b"]).create().await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", key.api_key, key.api_secret))
    );
    let r = app
        .post_form(
            "/auth/token",
            "grant_type=client_credentials&scope=b",
            &[("authorization", &basic)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scope"], "b");
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        key.api_key, key.api_secret
    );
    let r = app.post_form("/auth/token", &form, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scope"], "a b");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    // A form content type with a charset parameter is still a form.
    let r = app
        .send(
            "POST",
            "/auth/token",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            Some(form.into_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn scope_narrowing_follows_the_key(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().scopes(&["a", "b", "c"]).create().await;
    for (asked, granted) in [("c a", "a c"), ("", "a b c"), ("b b", "b")] {
        let r = app.exchange(&key, json!({ "scope": asked })).await;
        assert_eq!(r.status, 200, "{asked}: {}", r.text());
        assert_eq!(r.json()["scope"], granted, "asked {asked:?}");
        let (_, claims) = jwt_parts(r.json()["access_token"].as_str().unwrap());
        assert_eq!(claims["scope"], granted);
    }
    app.exchange(&key, json!({ "scope": "a d" }))
        .await
        .assert_oauth_error(400, "invalid_scope");
    app.exchange(&key, json!({ "scope": "a\"" }))
        .await
        .assert_oauth_error(400, "invalid_scope");
    let bare = app.key().create().await;
    let r = app.exchange(&bare, json!({})).await;
    assert_eq!(r.json()["scope"], "");
    let (_, claims) = jwt_parts(r.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "");
    app.exchange(&bare, json!({ "scope": "a" }))
        .await
        .assert_oauth_error(400, "invalid_scope");
}

async fn audiences_are_limited_to_the_key(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app
        .key()
        .audiences(&["https://api.example.com", "urn:billing"])
        .create()
        .await;
    let r = app
        .exchange(&key, json!({ "audience": "urn:billing" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        jwt_parts(r.json()["access_token"].as_str().unwrap()).1["aud"],
        "urn:billing"
    );
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&resource=https%3A%2F%2Fapi.example.com",
        key.api_key, key.api_secret
    );
    let r = app.post_form("/auth/token", &form, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        jwt_parts(r.json()["access_token"].as_str().unwrap()).1["aud"],
        "https://api.example.com"
    );
    app.exchange(&key, json!({ "audience": "https://evil.example.com" }))
        .await
        .assert_oauth_error(400, "invalid_target");
    // Without a request the default audience is used.
    let r = app.exchange(&key, json!({})).await;
    assert_eq!(
        jwt_parts(r.json()["access_token"].as_str().unwrap()).1["aud"],
        app.base.as_str()
    );
    // A key without audiences may ask only for the default one.
    let plain = app.key().create().await;
    assert_eq!(
        app.exchange(&plain, json!({ "audience": app.base }))
            .await
            .status,
        200
    );
    app.exchange(&plain, json!({ "audience": "urn:billing" }))
        .await
        .assert_oauth_error(400, "invalid_target");
}

async fn key_ttl_claims_and_expiry_shape_the_token(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app
        .key()
        .token_ttl_seconds(600)
        .claims(json!({ "tenant": "acme", "tier": 3 }))
        .create()
        .await;
    let r = app.exchange(&key, json!({})).await;
    assert_eq!(r.json()["expires_in"], 600);
    let (_, claims) = jwt_parts(r.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["tier"], 3);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    // exp never passes the key's own expiry.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc3339();
    let short = app.key().expires_at(&soon).create().await;
    let r = app.exchange(&short, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let expires_in = r.json()["expires_in"].as_i64().unwrap();
    assert!((100..=120).contains(&expires_in), "expires_in {expires_in}");
    let (_, claims) = jwt_parts(r.json()["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        expires_in
    );
}

async fn allowed_ips_use_the_socket_or_trusted_proxies(b: Backend) {
    let app = TestApp::builder(b)
        .var("TOKENMINT_TRUSTED_PROXIES", "127.0.0.1/32")
        .build()
        .await;
    let office = app.key().allowed_ips(&["10.0.0.0/8"]).create().await;
    let local = app.key().allowed_ips(&["127.0.0.1"]).create().await;
    app.exchange(&office, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(app.exchange(&local, json!({})).await.status, 200);
    let body = json!({ "api_key": office.api_key, "api_secret": office.api_secret }).to_string();
    let r = app
        .send(
            "POST",
            "/auth/token",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", "10.1.2.3"),
            ],
            Some(body.clone().into_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Without a trusted proxy the header is ignored.
    let strict = TestApp::start(b).await;
    let office = strict.key().allowed_ips(&["10.0.0.0/8"]).create().await;
    let body = json!({ "api_key": office.api_key, "api_secret": office.api_secret }).to_string();
    let r = strict
        .send(
            "POST",
            "/auth/token",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", "10.1.2.3"),
            ],
            Some(body.into_bytes()),
        )
        .await;
    r.assert_oauth_error(401, "invalid_client");
}

async fn rotation_grace_keeps_the_old_secret_for_a_while(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let key = app.key().create().await;
    let r = app
        .post_json(
            &format!("/v1/api-keys/{}/rotate", key.id),
            &json!({ "grace_period_seconds": 3600 }),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json()["api_secret"].as_str().unwrap().to_owned();
    assert!(r.json()["previous_secret_expires_at"].is_string());
    let old = key.clone();
    let mut new = key.clone();
    new.api_secret = first.clone();
    assert_eq!(
        app.exchange(&old, json!({})).await.status,
        200,
        "old secret in grace"
    );
    assert_eq!(
        app.exchange(&new, json!({})).await.status,
        200,
        "new secret"
    );
    // A second rotation without grace ends the older grace at once.
    let r = app
        .post_json(
            &format!("/v1/api-keys/{}/rotate", key.id),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["previous_secret_expires_at"].is_null());
    let mut newest = key.clone();
    newest.api_secret = r.json()["api_secret"].as_str().unwrap().to_owned();
    app.exchange(&old, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
    app.exchange(&new, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(app.exchange(&newest, json!({})).await.status, 200);
}
