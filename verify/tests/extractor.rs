//! The actix-web extractors: what a protected route answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{App, HttpResponse, test, web};
use common::*;
use serde_json::{Value, json};
use tokenmint_verify::{AuthError, Authenticated, RequiredScope, Scoped, Verifier};

struct OrdersRead;
impl RequiredScope for OrdersRead {
    const SCOPES: &'static [&'static str] = &["orders:read"];
}

struct OrdersWrite;
impl RequiredScope for OrdersWrite {
    const SCOPES: &'static [&'static str] = &["orders:read", "orders:write"];
}

async fn me(auth: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!({"sub": auth.sub, "client_id": auth.claims().client_id}))
}

async fn read_orders(auth: Scoped<OrdersRead>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"sub": auth.sub}))
}

async fn write_orders(_auth: Scoped<OrdersWrite>) -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn invoices(auth: Authenticated) -> Result<HttpResponse, AuthError> {
    auth.require_scope("invoices:write")?;
    Ok(HttpResponse::Ok().finish())
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/me", web::get().to(me))
        .route("/orders", web::get().to(read_orders))
        .route("/orders", web::post().to(write_orders))
        .route("/invoices", web::post().to(invoices));
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

fn request(method: &str, path: &str, auth: Option<&str>) -> test::TestRequest {
    let req = match method {
        "POST" => test::TestRequest::post(),
        _ => test::TestRequest::get(),
    }
    .uri(path);
    match auth {
        Some(a) => req.insert_header((AUTHORIZATION, a)),
        None => req,
    }
}

async fn answer(res: actix_web::dev::ServiceResponse) -> Answer {
    let status = res.status();
    let challenge = res
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = test::read_body(res).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        challenge,
        body,
    }
}

/// Calls the app; a macro because the service type cannot be named
/// without depending on actix-http directly.
macro_rules! call {
    ($app:expr, $method:expr, $path:expr, $auth:expr) => {
        answer(test::call_service($app, request($method, $path, $auth).to_request()).await).await
    };
}

fn verifier(source: &FakeSource) -> Verifier {
    Verifier::builder(ISSUER, AUDIENCE)
        .revocation_polling(Duration::from_secs(60))
        .build(source.clone())
}

#[actix_web::test]
async fn valid_tokens_reach_the_handler() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(verifier(&source)))
            .configure(routes),
    )
    .await;
    let bearer = format!("Bearer {}", key.token(&claims()));
    let a = call!(&app, "GET", "/me", Some(&bearer));
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["client_id"], CLIENT_ID);
    let a = call!(&app, "GET", "/orders", Some(&bearer));
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["sub"], "svc-billing");
    // The scheme is case-insensitive (RFC 7235).
    let lower = format!("bearer {}", key.token(&claims()));
    assert_eq!(
        call!(&app, "GET", "/me", Some(&lower)).status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn missing_or_bad_tokens_get_401_with_a_bearer_challenge() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    source.set_revocations(revocations(&["tm_live_revoked"]));
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(verifier(&source)))
            .configure(routes),
    )
    .await;

    for auth in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer ")] {
        let a = call!(&app, "GET", "/orders", auth);
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            a.challenge.as_deref(),
            Some("Bearer"),
            "no error code without a token"
        );
    }

    let t = now();
    let stranger = TestKey::es256();
    let revoked = claims_with(json!({"client_id": "tm_live_revoked"}));
    let bad = [
        "not-a-jwt".to_owned(),
        key.token(&claims_with(
            json!({"exp": t - 3600, "iat": t - 7200, "nbf": t - 7200}),
        )),
        key.token(&claims_with(json!({"aud": "https://other.example"}))),
        key.token(&revoked),
        stranger.token(&claims()),
        compact(
            &json!({"alg": "none", "typ": "at+jwt", "kid": key.kid}),
            &claims(),
            b"",
        ),
    ];
    let mut bodies = Vec::new();
    for token in bad {
        let a = call!(&app, "GET", "/orders", Some(&format!("Bearer {token}")));
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            a.challenge.as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
        assert_eq!(a.body["error"], "invalid_token");
        bodies.push(a.body);
    }
    // Expired, revoked or forged: the caller cannot tell which.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[actix_web::test]
async fn missing_scopes_get_403_insufficient_scope() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(verifier(&source)))
            .configure(routes),
    )
    .await;
    let bearer = format!("Bearer {}", key.token(&claims()));

    let a = call!(&app, "POST", "/orders", Some(&bearer));
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        a.challenge.as_deref(),
        Some(r#"Bearer error="insufficient_scope", scope="orders:write""#)
    );
    assert_eq!(a.body["error"], "insufficient_scope");

    let a = call!(&app, "POST", "/invoices", Some(&bearer));
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.challenge.unwrap().contains(r#"scope="invoices:write""#));

    let no_scope = format!("Bearer {}", key.token(&claims_with(json!({"scope": ""}))));
    assert_eq!(
        call!(&app, "GET", "/orders", Some(&no_scope)).status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call!(&app, "GET", "/me", Some(&no_scope)).status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn an_unreachable_issuer_is_503_not_401() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    source.set_down(true);
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(verifier(&source)))
            .configure(routes),
    )
    .await;
    let bearer = format!("Bearer {}", key.token(&claims()));
    let a = call!(&app, "GET", "/me", Some(&bearer));
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.body["error"], "temporarily_unavailable");
    assert!(a.challenge.is_none());
}

#[actix_web::test]
async fn the_verifier_may_be_plain_app_data_and_its_absence_is_a_500() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let plain = test::init_service(App::new().app_data(verifier(&source)).configure(routes)).await;
    let bearer = format!("Bearer {}", key.token(&claims()));
    assert_eq!(
        call!(&plain, "GET", "/me", Some(&bearer)).status,
        StatusCode::OK
    );

    let bare = test::init_service(App::new().configure(routes)).await;
    let a = call!(&bare, "GET", "/me", Some(&bearer));
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
}
