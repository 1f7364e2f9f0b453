//! `POST /auth/token` under bad input and attack: every case gets the right
//! RFC 6749 error, never a 500.

use base64::Engine;
use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Created, TestApp};

both_backends!(
    malformed_requests_get_invalid_request,
    credentials_failures_are_one_undistinguished_401,
    revoked_and_expired_keys_cannot_exchange,
    size_and_media_type_limits,
);

fn basic(key: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    )
}

async fn malformed_requests_get_invalid_request(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().create().await;
    let json_cases = [
        "not json",
        "[]",
        "{\"api_key\": 5, \"api_secret\": \"x\"}",
        "{\"api_key\": \"a\", \"api_key\": \"b\", \"api_secret\": \"x\"}",
        "{\"api_key\": null, \"api_secret\": {}}",
        "",
        "\u{0}\u{1}\u{2}",
    ];
    for body in json_cases {
        let r = app
            .send(
                "POST",
                "/auth/token",
                &[("content-type", "application/json")],
                Some(body.as_bytes().to_vec()),
            )
            .await;
        r.assert_oauth_error(400, "invalid_request");
    }
    let creds = format!("client_id={}&client_secret={}", key.api_key, key.api_secret);
    // Missing grant_type; a repeated parameter.
    app.post_form("/auth/token", &creds, &[])
        .await
        .assert_oauth_error(400, "invalid_request");
    app.post_form(
        "/auth/token",
        &format!("grant_type=client_credentials&scope=a&scope=b&{creds}"),
        &[],
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    // Wrong grant types.
    for grant in ["password", "authorization_code", "CLIENT_CREDENTIALS", ""] {
        let r = app
            .post_form("/auth/token", &format!("grant_type={grant}&{creds}"), &[])
            .await;
        if grant.is_empty() {
            r.assert_oauth_error(400, "invalid_request");
        } else {
            r.assert_oauth_error(400, "unsupported_grant_type");
        }
    }
    app.exchange(&key, json!({ "grant_type": "password" }))
        .await
        .assert_oauth_error(400, "unsupported_grant_type");
    // Basic and body credentials together (RFC 6749 §2.3).
    let auth = basic(&key.api_key, &key.api_secret);
    app.post_form(
        "/auth/token",
        &format!("grant_type=client_credentials&{creds}"),
        &[("authorization", &auth)],
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    // A broken Basic header, and another scheme.
    for header in ["Basic !!!", "Basic", "Bearer abc"] {
        app.post_form(
            "/auth/token",
            "grant_type=client_credentials",
            &[("authorization", header)],
        )
        .await
        .assert_oauth_error(400, "invalid_request");
    }
    // Audience and resource that disagree.
    app.exchange(&key, json!({ "audience": "urn:a", "resource": "urn:b" }))
        .await
        .assert_oauth_error(400, "invalid_request");
}

async fn credentials_failures_are_one_undistinguished_401(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().create().await;
    let other = app.key().create().await;
    let s = key.api_secret.clone();
    let mut typo = s.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'A' { b'B' } else { b'A' };
    let cases: Vec<(String, String)> = vec![
        (key.api_key.clone(), other.api_secret.clone()), // someone else's secret
        (key.api_key.clone(), s[..s.len() - 1].to_owned()), // truncated
        (key.api_key.clone(), String::from_utf8(typo).unwrap()), // mistyped
        (key.api_key.clone(), "tms_live_short".into()),  // malformed
        (
            "tm_live_AAAAAAAAAAAAAAAAAAAAAAAA".into(),
            key.api_secret.clone(),
        ), // unknown key
        ("garbage".into(), key.api_secret.clone()),
        (key.api_key.clone(), "x".repeat(5000)),
    ];
    let mut bodies = Vec::new();
    for (k, sec) in &cases {
        let c = Created {
            id: String::new(),
            api_key: k.clone(),
            api_secret: sec.clone(),
            body: json!({}),
        };
        let r = app.exchange(&c, json!({})).await;
        r.assert_oauth_error(401, "invalid_client");
        assert!(r.header("www-authenticate").is_none(), "no Basic was used");
        bodies.push(r.json());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every failure must read the same: {bodies:?}"
    );
    // No credentials at all.
    app.post_json("/auth/token", &json!({}), None)
        .await
        .assert_oauth_error(401, "invalid_client");
    app.post_form("/auth/token", "grant_type=client_credentials", &[])
        .await
        .assert_oauth_error(401, "invalid_client");
    app.post_form(
        "/auth/token",
        &format!("grant_type=client_credentials&client_id={}", key.api_key),
        &[],
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    // With Basic the 401 names the scheme.
    let r = app
        .post_form(
            "/auth/token",
            "grant_type=client_credentials",
            &[("authorization", &basic(&key.api_key, &other.api_secret))],
        )
        .await;
    r.assert_oauth_error(401, "invalid_client");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // The real pair still works: failures did not lock the key.
    assert_eq!(app.exchange(&key, json!({})).await.status, 200);
}

async fn revoked_and_expired_keys_cannot_exchange(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let key = app.key().create().await;
    assert_eq!(app.exchange(&key, json!({})).await.status, 200);
    let r = app
        .send(
            "DELETE",
            &format!("/v1/api-keys/{}", key.id),
            &[("authorization", &format!("Bearer {admin}"))],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.exchange(&key, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
    let expired = app.key().expired().create().await;
    app.exchange(&expired, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
}

async fn size_and_media_type_limits(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().create().await;
    let big =
        json!({ "api_key": key.api_key, "api_secret": key.api_secret, "pad": "x".repeat(9000) })
            .to_string();
    let r = app
        .send(
            "POST",
            "/auth/token",
            &[("content-type", "application/json")],
            Some(big.into_bytes()),
        )
        .await;
    r.assert_oauth_error(413, "invalid_request");
    for ct in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let r = app
            .send(
                "POST",
                "/auth/token",
                &[("content-type", ct)],
                Some(b"{}".to_vec()),
            )
            .await;
        r.assert_oauth_error(415, "invalid_request");
    }
    let r = app
        .send("POST", "/auth/token", &[], Some(b"{}".to_vec()))
        .await;
    r.assert_oauth_error(415, "invalid_request");
    // Only POST.
    assert_eq!(app.get("/auth/token", None).await.status, 405);
}
