//! A tiny actix-web service that only answers holders of a tokenmint token
//! with the scope `orders:read`, bearer or DPoP-bound (`axum_service` is the
//! same with axum and the tower layer).
//!
//! Run it against a local tokenmint:
//!
//! ```text
//! # terminal 1: the issuer, on 127.0.0.1:8080
//! cargo run --release
//! # make a key that may read orders (prints api_key and api_secret once)
//! cargo run --release -- api-key create --name demo --scope orders:read
//!
//! # terminal 2: this service, on 127.0.0.1:8081
//! TOKENMINT_ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:8080 \
//!   cargo run -p tokenmint-verify --features actix --example actix_service
//!
//! # terminal 3: swap the key for a token, then call the service
//! TOKEN=$(curl -s http://127.0.0.1:8080/auth/token -H 'content-type: application/json' \
//!   -d '{"api_key":"tm_live_…","api_secret":"tms_live_…"}' | jq -r .access_token)
//! curl -i http://127.0.0.1:8081/orders -H "authorization: Bearer $TOKEN"   # 200
//! curl -i http://127.0.0.1:8081/orders                                     # 401
//! ```
//!
//! Environment: `TOKENMINT_ISSUER` (required), `AUDIENCE` (default: the
//! issuer, tokenmint's default audience), `BIND` (default `127.0.0.1:8081`),
//! `REVOCATION_POLL_SECONDS` (optional: refuse revoked keys' tokens within
//! that many seconds), `PUBLIC_ORIGIN` (the URL clients use, when it is not
//! what the service sees, e.g. behind a TLS proxy; DPoP proofs name it).

mod common;

use actix_web::{App, HttpResponse, HttpServer, get, web};
use serde_json::json;
use tokenmint_verify::{RequiredScope, Scoped};

/// The scope `GET /orders` requires.
struct OrdersRead;

impl RequiredScope for OrdersRead {
    const SCOPES: &'static [&'static str] = &["orders:read"];
}

/// Only reached with a valid token carrying `orders:read`; everyone else
/// got a 401 or 403 from the extractor.
#[get("/orders")]
async fn list_orders(auth: Scoped<OrdersRead>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "caller": auth.sub,
        "client_id": auth.client_id,
        "orders": [{"id": 1, "total": "12.50"}],
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let (verifier, bind) = common::verifier_from_env().await;
    let verifier = web::Data::new(verifier);
    HttpServer::new(move || App::new().app_data(verifier.clone()).service(list_orders))
        .bind(bind)?
        .run()
        .await
}
