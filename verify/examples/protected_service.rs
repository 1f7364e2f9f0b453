//! A tiny service that only answers holders of a tokenmint token with the
//! scope `orders:read`.
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
//!   cargo run -p tokenmint-verify --example protected_service
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
//! that many seconds). An `https://` issuer needs an awc TLS feature, see
//! the crate README.

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, get, web};
use serde_json::json;
use tokenmint_verify::{AwcSource, RequiredScope, Scoped, Verifier};

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
    let Ok(issuer) = std::env::var("TOKENMINT_ISSUER") else {
        eprintln!("TOKENMINT_ISSUER is required, e.g. http://127.0.0.1:8080");
        std::process::exit(2);
    };
    let audience = std::env::var("AUDIENCE").unwrap_or_else(|_| issuer.clone());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8081".into());

    let mut builder = Verifier::builder(&issuer, audience);
    if let Ok(secs) = std::env::var("REVOCATION_POLL_SECONDS") {
        let Ok(secs) = secs.parse::<u64>() else {
            eprintln!("REVOCATION_POLL_SECONDS must be a whole number of seconds");
            std::process::exit(2);
        };
        builder = builder.revocation_polling(Duration::from_secs(secs));
    }
    let verifier = builder.build(AwcSource::new());
    // Fail at start, not on the first request, if the issuer is wrong.
    if let Err(e) = verifier.warm_up().await {
        eprintln!("cannot reach the issuer's keys: {e}");
        std::process::exit(1);
    }
    eprintln!("protecting GET http://{bind}/orders with tokens of {issuer}");

    let verifier = web::Data::new(verifier);
    HttpServer::new(move || App::new().app_data(verifier.clone()).service(list_orders))
        .bind(bind)?
        .run()
        .await
}
