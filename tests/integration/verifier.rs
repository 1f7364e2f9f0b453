//! The verifier crate in three frameworks against a live tokenmint: one
//! protected `/orders` route (scope `orders:read`) behind the actix-web
//! extractor, the axum extractor and the tower layer, each with a verifier
//! of its own that fetches our JWKS and revocation feed over HTTP
//! (`ReqwestSource`). Every case, bearer and DPoP, each with its attack,
//! must get the same answer from all three.

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokenmint_verify::{
    AccessClaims, AuthLayer, Authenticated, RequiredScope, ReqwestSource, Scoped, Verifier,
};

use crate::common::client::request;
use crate::common::dpop::DpopKey;
use crate::common::{Backend, Created, TestApp};

struct OrdersRead;
impl RequiredScope for OrdersRead {
    const SCOPES: &'static [&'static str] = &["orders:read"];
}

fn answer(claims: &AccessClaims) -> Value {
    json!({"client_id": claims.client_id, "bound": claims.cnf.is_some()})
}

async fn actix_orders(auth: Scoped<OrdersRead>) -> HttpResponse {
    HttpResponse::Ok().json(answer(&auth))
}

async fn axum_orders(auth: Scoped<OrdersRead>) -> Json<Value> {
    Json(answer(&auth))
}

async fn tower_orders(Extension(auth): Extension<Authenticated>) -> Json<Value> {
    Json(answer(&auth))
}

fn verifier(app: &TestApp) -> Verifier {
    Verifier::builder(&app.base, &app.base)
        .revocation_polling(Duration::from_secs(1))
        .build(ReqwestSource::new())
}

async fn local_listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/orders", listener.local_addr().unwrap());
    (listener, url)
}

/// Starts the three services; returns their names and `/orders` URLs.
async fn services(app: &TestApp) -> Vec<(&'static str, String)> {
    let data = web::Data::new(verifier(app));
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
            "/orders",
            web::route()
                .guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Post()))
                .to(actix_orders),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let actix_url = format!("http://{}/orders", server.addrs()[0]);
    actix_web::rt::spawn(server.run());

    let (listener, axum_url) = local_listener().await;
    let router = Router::new()
        .route("/orders", get(axum_orders).post(axum_orders))
        .with_state(verifier(app));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let (listener, tower_url) = local_listener().await;
    let router = Router::new()
        .route("/orders", get(tower_orders).post(tower_orders))
        .layer(AuthLayer::new(verifier(app)).require_scopes(&["orders:read"]));
    tokio::spawn(async move { axum::serve(listener, router).await });

    vec![
        ("actix", actix_url),
        ("axum", axum_url),
        ("tower", tower_url),
    ]
}

async fn bound_token(app: &TestApp, key: &Created, dpop: &DpopKey) -> String {
    let body = json!({"api_key": key.api_key, "api_secret": key.api_secret}).to_string();
    let proof = dpop.proof(&format!("{}/auth/token", app.state.config.issuer));
    let headers = [("content-type", "application/json"), ("dpop", &proof)];
    let r = app
        .send("POST", "/auth/token", &headers, Some(body.into_bytes()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// What a case must get: status, the scheme and error of the first
/// challenge (`""`: no error), and the body's `error`.
struct Expect {
    status: u16,
    challenge: &'static str,
    error: &'static str,
}

const OK: Expect = Expect {
    status: 200,
    challenge: "",
    error: "",
};
const BAD_PROOF: Expect = Expect {
    status: 401,
    challenge: r#"DPoP error="invalid_dpop_proof""#,
    error: "invalid_dpop_proof",
};
const BAD_TOKEN_DPOP: Expect = Expect {
    status: 401,
    challenge: r#"DPoP error="invalid_token""#,
    error: "invalid_token",
};
const BAD_TOKEN_BEARER: Expect = Expect {
    status: 401,
    challenge: r#"Bearer error="invalid_token""#,
    error: "invalid_token",
};

const LACKS_SCOPE: Expect = Expect {
    status: 403,
    challenge: r#"Bearer error="insufficient_scope", scope="orders:read""#,
    error: "insufficient_scope",
};

async fn check(
    client: &awc::Client,
    service: &str,
    case: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    expect: &Expect,
) -> Value {
    let r = request(client, method, url, headers, None).await;
    let what = format!("{service}: {case}: {}", r.text());
    assert_eq!(r.status, expect.status, "{what}");
    let challenges: Vec<&str> = r
        .headers
        .get_all("www-authenticate")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if expect.status == 200 {
        assert!(challenges.is_empty(), "{what}");
        return r.json();
    }
    assert!(
        challenges
            .first()
            .is_some_and(|c| c.starts_with(expect.challenge)),
        "{what}: {challenges:?}"
    );
    if expect.challenge.starts_with("DPoP") {
        assert!(challenges[0].contains(r#"algs="ES256"#), "{what}");
    }
    assert_eq!(r.json()["error"], expect.error, "{what}");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    r.json()
}

#[actix_web::test]
async fn actix_axum_and_tower_agree_on_every_case() {
    let app = TestApp::start(Backend::Sqlite).await;
    let client = awc::Client::default();
    let plain_key = app.key().scopes(&["orders:read"]).create().await;
    let plain = app.token_for(&plain_key).await;
    let unscoped = app.token(&["invoices:read"]).await;
    let dpop = DpopKey::es256();
    let other = DpopKey::es256();
    let bound_key = app.key().scopes(&["orders:read"]).create().await;
    let bound = bound_token(&app, &bound_key, &dpop).await;
    let now = chrono::Utc::now().timestamp();

    let services = services(&app).await;
    for (service, url) in services.iter().cloned() {
        let check = |case: &'static str,
                     method: &'static str,
                     headers: Vec<(&'static str, String)>,
                     expect: &'static Expect| {
            let (client, url) = (&client, url.clone());
            async move {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                check(client, service, case, method, &url, &headers, expect).await
            }
        };
        let auth = |scheme: &str, token: &str| ("authorization", format!("{scheme} {token}"));
        let proof = |claims: Value| ("dpop", dpop.proof_with(json!({}), claims));
        let good = || dpop.resource_claims("GET", &url, &bound);
        let with = |changes: Value| {
            let mut c = good();
            for (k, v) in changes.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            c
        };

        // Without credentials both schemes are offered.
        let none = request(&client, "GET", &url, &[], None).await;
        assert_eq!(none.status, 401, "{service}");
        let offered: Vec<_> = none.headers.get_all("www-authenticate").collect();
        assert_eq!(offered.len(), 2, "{service}: {offered:?}");
        assert_eq!(offered[0], "Bearer");
        assert!(offered[1].to_str().unwrap().starts_with("DPoP algs=\""));

        // Bearer.
        let body = check("bearer", "GET", vec![auth("Bearer", &plain)], &OK).await;
        assert_eq!(
            body,
            json!({"client_id": plain_key.api_key, "bound": false})
        );
        check(
            "bearer without the scope",
            "GET",
            vec![auth("Bearer", &unscoped)],
            &LACKS_SCOPE,
        )
        .await;
        let forged = format!("{}x", &plain[..plain.len() - 1]);
        check(
            "forged bearer",
            "GET",
            vec![auth("Bearer", &forged)],
            &BAD_TOKEN_BEARER,
        )
        .await;

        // DPoP, with its proof, for GET and POST.
        let body = check(
            "dpop",
            "GET",
            vec![auth("DPoP", &bound), proof(good())],
            &OK,
        )
        .await;
        assert_eq!(body, json!({"client_id": bound_key.api_key, "bound": true}));
        let post = dpop.resource_claims("POST", &url, &bound);
        check(
            "dpop POST",
            "POST",
            vec![auth("dpop", &bound), proof(post)],
            &OK,
        )
        .await;

        // Every way of getting it wrong.
        let dpop_auth = || auth("DPoP", &bound);
        check(
            "bound token as Bearer",
            "GET",
            vec![auth("Bearer", &bound)],
            &BAD_TOKEN_DPOP,
        )
        .await;
        check(
            "bound token as Bearer with a proof",
            "GET",
            vec![auth("Bearer", &bound), proof(good())],
            &BAD_TOKEN_DPOP,
        )
        .await;
        check("no proof", "GET", vec![dpop_auth()], &BAD_PROOF).await;
        check(
            "two proofs",
            "GET",
            vec![dpop_auth(), proof(good()), proof(good())],
            &BAD_PROOF,
        )
        .await;
        let bad_claims = [
            ("wrong htm", json!({"htm": "POST"})),
            ("wrong htu path", json!({"htu": format!("{url}/other")})),
            (
                "htu of another service",
                json!({"htu": format!("{}/orders", app.base)}),
            ),
            ("stale iat", json!({"iat": now - 120})),
            ("future iat", json!({"iat": now + 120})),
            ("no jti", json!({"jti": null})),
            ("no ath", json!({"ath": null})),
            (
                "ath of another token",
                json!({"ath": dpop.resource_claims("GET", &url, &plain)["ath"]}),
            ),
        ];
        for (case, changes) in bad_claims {
            check(
                case,
                "GET",
                vec![dpop_auth(), proof(with(changes))],
                &BAD_PROOF,
            )
            .await;
        }
        let mut private = dpop.jwk();
        private["d"] = json!("AAAA");
        let bad_headers = [
            ("private key in jwk", json!({"jwk": private})),
            (
                "HMAC key in jwk",
                json!({"alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
            ),
            ("alg none", json!({"alg": "none"})),
            ("wrong typ", json!({"typ": "JWT"})),
            // Signed by `dpop`, but naming `other`'s key.
            (
                "signed by another key than its jwk",
                json!({"jwk": other.jwk()}),
            ),
        ];
        for (case, header) in bad_headers {
            let p = ("dpop", dpop.proof_with(header, good()));
            check(case, "GET", vec![dpop_auth(), p], &BAD_PROOF).await;
        }
        let unsigned = {
            let p = dpop.proof_with(json!({"alg": "none"}), good());
            format!("{}.", p.rsplit_once('.').unwrap().0)
        };
        check(
            "alg none, no signature",
            "GET",
            vec![dpop_auth(), ("dpop", unsigned)],
            &BAD_PROOF,
        )
        .await;
        // A valid proof, but of a key the token is not bound to.
        let foreign = other.proof_with(json!({}), other.resource_claims("GET", &url, &bound));
        check(
            "proof of another key than cnf.jkt",
            "GET",
            vec![dpop_auth(), ("dpop", foreign)],
            &BAD_PROOF,
        )
        .await;
        // An unbound token cannot be upgraded by a proof.
        let unbound = (
            "dpop",
            dpop.proof_with(json!({}), dpop.resource_claims("GET", &url, &plain)),
        );
        check(
            "unbound token as DPoP",
            "GET",
            vec![auth("DPoP", &plain), unbound],
            &BAD_TOKEN_DPOP,
        )
        .await;

        // A proof is good once.
        let once = dpop.proof_with(json!({}), good());
        check(
            "first use",
            "GET",
            vec![dpop_auth(), ("dpop", once.clone())],
            &OK,
        )
        .await;
        check(
            "replayed proof",
            "GET",
            vec![dpop_auth(), ("dpop", once)],
            &BAD_PROOF,
        )
        .await;
    }

    // The revocation feed, in all three: revoking the key stops its tokens
    // within the poll interval (1 s).
    let admin = app.admin_token().await;
    assert_eq!(app.revoke(&plain_key.id, &admin).await.status, 200);
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    for (service, url) in &services {
        let headers = [("authorization", format!("Bearer {plain}"))];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check(
            &client,
            service,
            "revoked",
            "GET",
            url,
            &headers,
            &BAD_TOKEN_BEARER,
        )
        .await;
    }
}
