//! The `actix_service` example with axum: `GET /orders` behind the tower
//! [`AuthLayer`] (requires `orders:read`), and `GET /me` with the axum
//! extractor, which takes the verifier from the router's state. Both accept
//! bearer and DPoP-bound tokens and refuse a bound token sent as bearer.
//!
//! ```text
//! TOKENMINT_ISSUER=http://127.0.0.1:8080 \
//!   cargo run -p tokenmint-verify --features axum,tower --example axum_service
//! curl -i http://127.0.0.1:8081/orders -H "authorization: Bearer $TOKEN"   # 200
//! curl -i http://127.0.0.1:8081/me -H "authorization: Bearer $TOKEN"       # 200
//! ```
//!
//! Same environment as `actix_service`.

mod common;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokenmint_verify::{AuthLayer, Authenticated};

/// Reached only through the layer: a valid token with `orders:read`.
async fn list_orders(Extension(auth): Extension<Authenticated>) -> Json<Value> {
    Json(json!({
        "caller": auth.sub,
        "client_id": auth.client_id,
        "orders": [{"id": 1, "total": "12.50"}],
    }))
}

/// The extractor: any valid token.
async fn me(auth: Authenticated) -> Json<Value> {
    Json(json!({"sub": auth.sub, "scope": auth.scope, "bound": auth.cnf.is_some()}))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (verifier, bind) = common::verifier_from_env().await;
    let orders = Router::new()
        .route("/orders", get(list_orders))
        .layer(AuthLayer::new(verifier.clone()).require_scopes(&["orders:read"]));
    let app = Router::new()
        .route("/me", get(me))
        .with_state(verifier)
        .merge(orders);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    axum::serve(listener, app).await
}
