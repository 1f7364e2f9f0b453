//! Interop: independent JWT libraries against the real server. Python PyJWT
//! (PyJWKClient) fetches our JWKS and verifies tokens we issued, for each
//! algorithm; jwcrypto makes DPoP proofs and checks the bound token's
//! `cnf.jkt` against its own RFC 7638 thumbprint. CI sets
//! TOKENMINT_REQUIRE_INTEROP=1 so a missing library fails instead of
//! skipping.

use std::process::Command;

use serde_json::json;

use crate::common::{Backend, TestApp};

/// Whether python3 can import `modules`; fails the test under
/// TOKENMINT_REQUIRE_INTEROP=1, else says loudly that it is skipped.
fn python_has(modules: &str, install: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TOKENMINT_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("TOKENMINT_REQUIRE_INTEROP=1 but python3 cannot import {modules}");
        }
        eprintln!(
            "\n*** INTEROP TEST SKIPPED: python3 cannot import {modules} (pip install {install}) ***\n"
        );
    }
    ok
}

/// Runs a Python script (off this thread: it calls our server back) and
/// returns the JSON it prints; fails the test with its output otherwise.
async fn python(script: &str, args: Vec<String>, what: &str) -> serde_json::Value {
    let script = script.to_owned();
    let out =
        actix_web::web::block(move || Command::new("python3").arg(script).args(&args).output())
            .await
            .unwrap()
            .unwrap();
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn pyjwt_available() -> bool {
    python_has("jwt, cryptography", "'pyjwt[crypto]'")
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
        let claims = python(
            script,
            vec![
                jwks,
                token,
                app.base.clone(),
                app.base.clone(),
                alg.to_owned(),
            ],
            &format!("{alg}: PyJWT refused our token"),
        )
        .await;
        assert_eq!(claims["client_id"], key.api_key.as_str());
        assert_eq!(claims["tenant"], "acme");
        assert_eq!(claims["scope"], "orders:read");
    }
}

#[actix_web::test]
async fn jwcrypto_binds_tokens_to_its_proof_keys() {
    if !python_has("jwcrypto", "jwcrypto") {
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/dpop_jwcrypto.py"
    );
    let app = TestApp::start(Backend::Sqlite).await;
    let key = app.key().create().await;
    for alg in ["ES256", "RS256", "PS256", "EdDSA"] {
        let args = vec![
            format!("{}/auth/token", app.base),
            format!("{}/.well-known/jwks.json", app.base),
            key.api_key.clone(),
            key.api_secret.clone(),
            alg.to_owned(),
        ];
        let what = format!("{alg}: jwcrypto's DPoP exchange failed");
        let claims = python(script, args, &what).await;
        assert_eq!(claims["client_id"], key.api_key.as_str());
    }
}
