//! Discovery, JWKS, health, readiness, metrics, request ids, 404s.

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, TestApp};

both_backends!(
    jwks_and_discovery_documents,
    health_readiness_metrics_and_request_ids
);

async fn jwks_and_discovery_documents(b: Backend) {
    let app = TestApp::builder(b)
        .var("TOKENMINT_ALLOWED_SCOPES", "a,b")
        .build()
        .await;
    let r = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("cache-control").unwrap().contains("max-age="));
    let key = &r.json()["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(
        key["kid"],
        app.state
            .issuer
            .ring()
            .signer(std::time::SystemTime::now())
            .unwrap()
            .kid
            .as_str()
    );
    assert!(
        key.get("d").is_none(),
        "private part must never be published"
    );
    let etag = r.header("etag").unwrap();
    let again = app
        .send(
            "GET",
            "/.well-known/jwks.json",
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(again.status, 304);
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let d = app.get(path, None).await.json();
        assert_eq!(d["issuer"], app.base.as_str());
        assert_eq!(d["token_endpoint"], format!("{}/auth/token", app.base));
        assert_eq!(d["jwks_uri"], format!("{}/.well-known/jwks.json", app.base));
        assert_eq!(
            d["introspection_endpoint"],
            format!("{}/auth/introspect", app.base)
        );
        // No trusted issuer configured: no token exchange to offer.
        assert_eq!(d["grant_types_supported"], json!(["client_credentials"]));
        assert_eq!(
            d["token_endpoint_auth_methods_supported"],
            json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ])
        );
        assert_eq!(
            d["scopes_supported"],
            json!([
                "a",
                "b",
                "tokenmint:admin",
                "tokenmint:keys:read",
                "tokenmint:introspect"
            ])
        );
    }
}

async fn health_readiness_metrics_and_request_ids(b: Backend) {
    let app = TestApp::start(b).await;
    assert_eq!(app.get("/healthz", None).await.status, 200);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let key = app.key().create().await;
    app.exchange(&key, json!({})).await;
    let metrics = app.get("/metrics", None).await.text();
    for name in [
        "tokenmint_token_exchanges_total{outcome=\"issued\"}",
        "tokenmint_argon2_verify_seconds",
        "tokenmint_verify_cache_misses_total",
        "tokenmint_http_requests_total",
        "tokenmint_http_request_duration_seconds",
        "tokenmint_db_pool_connections{state=\"idle\"}",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}");
    }
    let echoed = app
        .send(
            "GET",
            "/healthz",
            &[("x-request-id", "abc.DEF-123_x")],
            None,
        )
        .await;
    assert_eq!(
        echoed.header("x-request-id").as_deref(),
        Some("abc.DEF-123_x")
    );
    for bad in ["has space", "<x>", &"a".repeat(129)] {
        let r = app
            .send("GET", "/healthz", &[("x-request-id", bad)], None)
            .await;
        let id = r.header("x-request-id").unwrap();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{bad:?} was not replaced: {id}"
        );
    }
    let missing = app.get("/nope", None).await;
    missing.assert_problem(404);
}

/// With the database gone, readiness says so and data calls answer 503.
#[actix_web::test]
async fn database_down_gives_503_not_500() {
    let app = TestApp::builder(Backend::Sqlite).build().await;
    let key = app.key().create().await;
    let admin = app.admin_token().await;
    // Point a second server at a database that refuses connections.
    let keys = app.dir.path().join("keys").display().to_string();
    let down = TestApp::builder(Backend::Sqlite)
        .var("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .var("TOKENMINT_KEYS_DIR", &keys)
        .var("TOKENMINT_ISSUER", &app.base)
        .build_unmigrated()
        .await;
    let started = std::time::Instant::now();
    let r = down.get("/readyz", None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(started.elapsed().as_secs() < 10);
    down.exchange(&key, json!({}))
        .await
        .assert_oauth_error(503, "temporarily_unavailable");
    down.get("/v1/api-keys", Some(&admin))
        .await
        .assert_problem(503);
    assert_eq!(down.get("/auth/revocations", None).await.status, 503);
    assert_eq!(down.get("/healthz", None).await.status, 200);
    assert_eq!(down.get("/.well-known/jwks.json", None).await.status, 200);
}

/// `/openapi.json` is OpenAPI 3.1 and every operation it documents is served.
#[actix_web::test]
async fn openapi_documents_the_served_endpoints() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let key = app.key().create().await;
    let doc = app.get("/openapi.json", None).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 14, "{} paths", paths.len());
    let auth = format!("Bearer {admin}");
    for (path, item) in paths {
        let concrete = path.replace("{id}", &key.id);
        for method in ["get", "post", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let body = if method == "get" || method == "delete" {
                None
            } else {
                Some(b"{}".to_vec())
            };
            let r = app
                .send(
                    &method.to_uppercase(),
                    &concrete,
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    body,
                )
                .await;
            assert_ne!(r.status, 405, "{method} {path} is not routed");
            if r.status == 404 {
                assert!(path.contains("{id}"), "{method} {path} is not routed");
            }
        }
    }
}

/// The other direction: on every documented path, a method the document does
/// not list is not served (405), and the document lists exactly the
/// operations the route table serves.
#[actix_web::test]
async fn nothing_is_served_that_is_not_documented() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc = app.get("/openapi.json", None).await.json();
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        tokenmint::http::openapi::endpoints().len(),
        "documented operations vs routed ones"
    );
    for (path, item) in paths {
        let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                continue;
            }
            let r = app.send(&method.to_uppercase(), &concrete, &[], None).await;
            assert_eq!(r.status, 405, "{method} {path} answers {}", r.status);
        }
    }
}
