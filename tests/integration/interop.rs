//! Interop: an independent JWT library (Python PyJWT with PyJWKClient) fetches
//! our JWKS over HTTP and verifies tokens we issued, for each algorithm.
//! CI sets TOKENMINT_REQUIRE_INTEROP=1 so a missing PyJWT fails instead of
//! skipping.

use std::process::Command;

use serde_json::json;

use crate::common::{Backend, TestApp};

fn pyjwt_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TOKENMINT_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("TOKENMINT_REQUIRE_INTEROP=1 but python3 with PyJWT[crypto] is missing");
        }
        eprintln!(
            "\n*** INTEROP TEST SKIPPED: python3 with PyJWT[crypto] not found (pip install 'pyjwt[crypto]') ***\n"
        );
    }
    ok
}

#[actix_web::test]
async fn pyjwt_verifies_our_tokens_via_jwks() {
    if !pyjwt_available() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/verify_pyjwt.py");
    for alg in ["ES256", "RS256", "EdDSA"] {
        let app = TestApp::builder(Backend::Sqlite)
            .var("TOKENMINT_SIGNING_ALG", alg)
            .build()
            .await;
        let key = app
            .key()
            .scopes(&["orders:read"])
            .claims(json!({ "tenant": "acme" }))
            .create()
            .await;
        let token = app.token_for(&key).await;
        let jwks = format!("{}/.well-known/jwks.json", app.base);
        // The script blocks on HTTP to our server, so run it off this thread.
        let args = vec![
            script.to_owned(),
            jwks,
            token,
            app.base.clone(),
            app.base.clone(),
            alg.to_owned(),
        ];
        let out = actix_web::web::block(move || Command::new("python3").args(&args).output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.status.success(),
            "{alg}: PyJWT refused our token:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(claims["client_id"], key.api_key.as_str());
        assert_eq!(claims["tenant"], "acme");
        assert_eq!(claims["scope"], "orders:read");
    }
}
