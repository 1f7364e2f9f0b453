//! `ReqwestSource` against a real HTTP issuer on 127.0.0.1: JWKS with ETag and
//! max-age, rotation, revocation polling, and failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH, LOCATION};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use common::*;
use serde_json::{Value, json};
use tokenmint_verify::{ReqwestSource, Verifier, VerifyError};

#[derive(Default)]
struct Issuer {
    jwks: Value,
    version: u32,
    revoked: Vec<String>,
    max_age: u64,
    jwks_hits: usize,
    not_modified: usize,
    revocation_hits: usize,
}

type Shared = web::Data<Mutex<Issuer>>;

impl Issuer {
    fn set_jwks(&mut self, jwks: Value) {
        self.jwks = jwks;
        self.version += 1;
    }
}

async fn jwks_doc(req: HttpRequest, state: Shared) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.jwks_hits += 1;
    let etag = format!("\"v{}\"", s.version);
    let cache = format!("public, max-age={}", s.max_age);
    let sent = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if sent == Some(etag.as_str()) {
        s.not_modified += 1;
        return HttpResponse::NotModified()
            .insert_header((CACHE_CONTROL, cache))
            .insert_header((ETAG, etag))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, cache))
        .insert_header((ETAG, etag))
        .json(&s.jwks)
}

async fn revocation_list(state: Shared) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.revocation_hits += 1;
    let ids: Vec<&str> = s.revoked.iter().map(String::as_str).collect();
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "max-age=5"))
        .json(revocations(&ids))
}

async fn broken() -> HttpResponse {
    HttpResponse::InternalServerError().body("boom")
}

async fn moved() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((LOCATION, "/.well-known/jwks.json"))
        .finish()
}

async fn huge() -> HttpResponse {
    let filler = "x".repeat(300 * 1024);
    HttpResponse::Ok().json(json!({ "keys": [], "filler": filler }))
}

/// Starts an issuer; returns its base URL, its state and its handle.
async fn start(issuer: Issuer) -> (String, Shared, ServerHandle) {
    let state: Shared = web::Data::new(Mutex::new(issuer));
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/.well-known/jwks.json", web::get().to(jwks_doc))
            .route("/auth/revocations", web::get().to(revocation_list))
            .route("/broken", web::get().to(broken))
            .route("/moved", web::get().to(moved))
            .route("/huge", web::get().to(huge))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), state, handle)
}

fn issued_by(base: &str) -> Value {
    claims_with(json!({ "iss": base }))
}

#[actix_web::test]
async fn verifies_tokens_of_every_algorithm_over_http() {
    let (es, rs, ed) = (TestKey::es256(), TestKey::rs256(), TestKey::ed25519());
    let mut issuer = Issuer {
        max_age: 300,
        ..Issuer::default()
    };
    issuer.set_jwks(jwks(&[&es, &rs, &ed]));
    let (base, state, handle) = start(issuer).await;

    let v = Verifier::builder(format!("{base}/"), AUDIENCE).build(ReqwestSource::new());
    v.warm_up().await.unwrap();
    for key in [&es, &rs, &ed] {
        let claims = v.verify(&key.token(&issued_by(&base))).await.unwrap();
        assert_eq!(claims.iss, base);
    }
    // Wrong issuer: same keys, tokens of another iss.
    let err = v.verify(&es.token(&claims())).await.unwrap_err();
    assert_eq!(err, VerifyError::Invalid("wrong issuer".into()));
    assert_eq!(state.lock().unwrap().jwks_hits, 1);
    handle.stop(true).await;
}

#[actix_web::test]
async fn rotation_and_conditional_refresh() {
    let old = TestKey::es256();
    let mut issuer = Issuer {
        max_age: 1,
        ..Issuer::default()
    };
    issuer.set_jwks(jwks(&[&old]));
    let (base, state, handle) = start(issuer).await;
    let v = Verifier::builder(&base, AUDIENCE)
        .min_refresh_interval(Duration::from_millis(200))
        .build(ReqwestSource::with_timeout(Duration::from_secs(2)));
    v.verify(&old.token(&issued_by(&base))).await.unwrap();

    // Past max-age=1 the copy is revalidated with its ETag: 304, still valid.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&old.token(&issued_by(&base))).await.unwrap();
    {
        let s = state.lock().unwrap();
        assert_eq!((s.jwks_hits, s.not_modified), (2, 1));
    }

    // The issuer rotates: a token with the new kid makes us refetch.
    let new = TestKey::ed25519();
    state.lock().unwrap().set_jwks(jwks(&[&new, &old]));
    tokio::time::sleep(Duration::from_millis(250)).await;
    v.verify(&new.token(&issued_by(&base))).await.unwrap();
    v.verify(&old.token(&issued_by(&base))).await.unwrap();
    assert_eq!(state.lock().unwrap().jwks_hits, 3);
    handle.stop(true).await;
}

#[actix_web::test]
async fn revocations_are_polled_over_http() {
    let key = TestKey::es256();
    let mut issuer = Issuer {
        max_age: 300,
        ..Issuer::default()
    };
    issuer.set_jwks(jwks(&[&key]));
    let (base, state, handle) = start(issuer).await;
    let v = Verifier::builder(&base, AUDIENCE)
        .revocation_polling(Duration::from_millis(300))
        .build(ReqwestSource::new());
    let token = key.token(&issued_by(&base));
    v.verify(&token).await.unwrap();

    state.lock().unwrap().revoked.push(CLIENT_ID.into());
    // Within the poll interval the old list still applies...
    v.verify(&token).await.unwrap();
    // ...and after it the revocation is seen.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::Revoked);
    assert_eq!(state.lock().unwrap().revocation_hits, 2);
    handle.stop(true).await;
}

#[actix_web::test]
async fn fetch_failures_are_reported() {
    let (base, _state, handle) = start(Issuer::default()).await;
    let warm = |url: String| async move {
        Verifier::builder(base_of(&url), AUDIENCE)
            .jwks_url(url)
            .build(ReqwestSource::with_timeout(Duration::from_secs(2)))
            .warm_up()
            .await
    };
    let cases = [
        (format!("{base}/broken"), "500"),
        (format!("{base}/moved"), "302"),
        (format!("{base}/huge"), ""),
        (format!("{base}/missing"), "404"),
        ("http://127.0.0.1:1/jwks.json".to_owned(), ""),
        // A TLS handshake with a plain-HTTP server: an error, not a hang.
        (
            format!("{}/jwks.json", base.replace("http://", "https://")),
            "",
        ),
    ];
    for (url, needle) in cases {
        match warm(url.clone()).await {
            Err(VerifyError::Jwks(why)) => assert!(why.contains(needle), "{url}: {why}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    handle.stop(true).await;
}

fn base_of(url: &str) -> String {
    url.rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or_default()
}
