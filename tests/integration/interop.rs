//! Interop: independent JWT libraries against the real server. Python PyJWT
//! (PyJWKClient) fetches our JWKS and verifies tokens we issued, for each
//! algorithm; jwcrypto makes DPoP proofs and checks the bound token's
//! `cnf.jkt` against its own RFC 7638 thumbprint. Node's openid-client
//! (panva's) discovers the server, does a client_credentials grant with its
//! own DPoP keys and proofs, and jose checks the bound token. CI sets
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
    interop_available(
        ok,
        &format!("python3 cannot import {modules} (pip install {install})"),
    )
}

/// `ok`, or: fails the test under TOKENMINT_REQUIRE_INTEROP=1, else says
/// loudly that it is skipped because of `missing`.
fn interop_available(ok: bool, missing: &str) -> bool {
    if !ok {
        if std::env::var("TOKENMINT_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("TOKENMINT_REQUIRE_INTEROP=1 but {missing}");
        }
        eprintln!("\n*** INTEROP TEST SKIPPED: {missing} ***\n");
    }
    ok
}

/// Where the Node interop scripts and their `node_modules` live.
const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");

/// Whether node can import `packages` from tests/interop/node_modules; fails
/// the test under TOKENMINT_REQUIRE_INTEROP=1, else says loudly that it is
/// skipped.
fn node_has(packages: &[&str]) -> bool {
    let imports: String = packages
        .iter()
        .map(|p| format!("await import('{p}');"))
        .collect();
    let ok = Command::new("node")
        .current_dir(NODE_DIR)
        .args(["--input-type=module", "-e", &imports])
        .output()
        .is_ok_and(|o| o.status.success());
    interop_available(
        ok,
        &format!(
            "node cannot import {} (cd tests/interop && npm ci)",
            packages.join(", ")
        ),
    )
}

/// Runs a Node script from tests/interop; see [`json_output`].
async fn node(script: &str, args: Vec<String>, what: &str) -> serde_json::Value {
    let mut command = Command::new("node");
    command
        .current_dir(NODE_DIR)
        .arg(format!("{NODE_DIR}/{script}"))
        .args(args);
    json_output(command, what).await
}

/// Runs a Python script; see [`json_output`].
async fn python(script: &str, args: Vec<String>, what: &str) -> serde_json::Value {
    let mut command = Command::new("python3");
    command.arg(script).args(args);
    json_output(command, what).await
}

/// Runs `command` off this thread (it calls our server back) and returns
/// the JSON it prints; fails the test with its output otherwise.
async fn json_output(mut command: Command, what: &str) -> serde_json::Value {
    let out = actix_web::web::block(move || command.output())
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

#[actix_web::test]
async fn openid_client_does_dpop_client_credentials() {
    if !node_has(&["openid-client", "jose"]) {
        return;
    }
    let app = TestApp::start(Backend::Sqlite).await;
    let key = app
        .key()
        .scopes(&["orders:read", "orders:write"])
        .create()
        .await;
    let algs = ["ES256", "RS256", "PS256", "EdDSA"];
    let mut args = vec![
        app.base.clone(),
        key.api_key.clone(),
        key.api_secret.clone(),
        "orders:read".to_owned(),
    ];
    args.extend(algs.iter().map(|a| (*a).to_owned()));
    let report = node(
        "dpop_openid_client.mjs",
        args,
        "openid-client's DPoP client_credentials grant failed",
    )
    .await;
    let results = report["results"].as_array().unwrap();
    for alg in algs {
        for (discovery, auth) in [
            ("oidc", "client_secret_basic"),
            ("oauth2", "client_secret_post"),
        ] {
            let r = results
                .iter()
                .find(|r| r["alg"] == alg && r["discovery"] == discovery && r["auth"] == auth)
                .unwrap_or_else(|| panic!("{alg} via {discovery} with {auth} not exercised"));
            // openid-client signs Ed25519 proofs as the fully-specified
            // "Ed25519" (RFC 9864), not "EdDSA"; both are in our discovery.
            let proof_alg = if alg == "EdDSA" { "Ed25519" } else { alg };
            assert_eq!(r["proof_alg"], proof_alg);
            assert_eq!(r["token_type"], "DPoP");
            assert_eq!(r["claims"]["client_id"], key.api_key.as_str());
            assert_eq!(r["claims"]["scope"], "orders:read");
            assert_eq!(r["claims"]["iss"], app.base.as_str());
            assert_eq!(r["claims"]["cnf"]["jkt"], r["jkt"]);
            assert!(r["jkt"].as_str().is_some_and(|j| j.len() == 43));
        }
    }
    assert_eq!(results.len(), algs.len() * 2);
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2);
    for r in refused {
        assert_eq!(r["error"], "invalid_client");
        assert_eq!(r["status"], 401);
    }
}
