//! `POST /auth/introspect` and `GET /auth/revocations`.

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, TestApp};

both_backends!(
    introspection_answers_by_rfc7662,
    revocations_list_recently_revoked_keys
);

async fn introspection_answers_by_rfc7662(b: Backend) {
    let app = TestApp::start(b).await;
    let caller = app.token(&["tokenmint:introspect"]).await;
    let auth = format!("Bearer {caller}");
    let key = app.key().scopes(&["x"]).create().await;
    let token = app.token_for(&key).await;
    let r = app.introspect(&token, Some(&auth)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], key.api_key.as_str());
    assert_eq!(body["scope"], "x");
    assert_eq!(body["token_type"], "Bearer");
    for field in ["sub", "aud", "iss", "exp", "iat", "nbf", "jti", "env"] {
        assert!(!body[field].is_null(), "missing {field}");
    }
    // Garbage and tampered tokens are inactive, with nothing else said.
    // Flip one character in the middle of the signature (not the last one,
    // whose padding bits a strict base64 decoder would reject on its own).
    let sig_start = token.rfind('.').unwrap() + 1;
    let mid = sig_start + (token.len() - sig_start) / 2;
    let flipped = if &token[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &token[..mid], &token[mid + 1..]);
    for t in ["garbage", tampered.as_str()] {
        let r = app.introspect(t, Some(&auth)).await;
        assert_eq!(r.json(), json!({ "active": false }));
    }
    // After revocation the same token is inactive.
    let admin = app.admin_token().await;
    app.revoke(&key.id, &admin).await;
    let r = app.introspect(&token, Some(&auth)).await;
    assert_eq!(r.json(), json!({ "active": false }));
    // Expired key: inactive.
    let exp = app.key().create().await;
    let exp_token = app.token_for(&exp).await;
    app.expire_in_database(&exp.id).await;
    let r = app.introspect(&exp_token, Some(&auth)).await;
    assert_eq!(r.json(), json!({ "active": false }));
    // Callers: none → 401, without the scope → 403, admin → allowed.
    app.post_form("/auth/introspect", &format!("token={token}"), &[])
        .await
        .assert_problem(401);
    let plain = app.token(&["x"]).await;
    app.post_form(
        "/auth/introspect",
        &format!("token={token}"),
        &[("authorization", &format!("Bearer {plain}"))],
    )
    .await
    .assert_problem(403);
    let r = app
        .post_form(
            "/auth/introspect",
            &format!("token={caller}"),
            &[("authorization", &format!("Bearer {admin}"))],
        )
        .await;
    assert_eq!(r.json()["active"], true);
    // Missing token parameter.
    app.post_form("/auth/introspect", "", &[("authorization", &auth)])
        .await
        .assert_oauth_error(400, "invalid_request");
}

async fn revocations_list_recently_revoked_keys(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let key = app.key().create().await;
    let r = app.get("/auth/revocations", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"], json!([]));
    app.revoke(&key.id, &admin).await;
    let r = app.get("/auth/revocations", None).await.json();
    assert_eq!(r["data"][0]["client_id"], key.api_key.as_str());
    assert!(r["data"][0]["revoked_at"].is_string());
}
