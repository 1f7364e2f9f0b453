//! Interop: independent JWT libraries against the real server. Python PyJWT
//! (PyJWKClient) fetches our JWKS and verifies tokens we issued, for each
//! algorithm; jwcrypto makes DPoP proofs and checks the bound token's
//! `cnf.jkt` against its own RFC 7638 thumbprint. Node's openid-client
//! (panva's) discovers the server, does a client_credentials grant with its
//! own DPoP keys and proofs, and jose checks the bound token; it also
//! authenticates with `private_key_jwt`, signing its own client assertions
//! with ES256, RS256 and Ed25519 keys we registered. CI sets
//! TOKENMINT_REQUIRE_INTEROP=1 so a missing library fails instead of
//! skipping.

use std::process::Command;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::dpop::DpopKey;
use crate::common::jwt::{ClientKey, create_key};
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
pub(crate) async fn json_output(mut command: Command, what: &str) -> serde_json::Value {
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

pub(crate) fn pyjwt_available() -> bool {
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

/// A private key as the Node scripts import it: PKCS#8 v1 DER, base64.
fn pkcs8(key: &DpopKey) -> String {
    let der = match key {
        DpopKey::Es256(k) => k.to_pkcs8v1().unwrap().as_ref().to_vec(),
        DpopKey::EdDsa(k) => k.to_pkcs8v1().unwrap().as_ref().to_vec(),
        DpopKey::Rsa(k, _) => AsDer::<Pkcs8V1Der>::as_der(k).unwrap().as_ref().to_vec(),
    };
    STANDARD.encode(der)
}

/// A fresh key pair for `alg` (ES256, RS256 or EdDSA).
fn client_key(alg: &str, kid: Option<&str>) -> ClientKey {
    let key = match alg {
        "ES256" => DpopKey::es256(),
        "RS256" => DpopKey::rsa(false),
        "EdDSA" => DpopKey::ed25519(),
        _ => unreachable!("{alg}"),
    };
    ClientKey::new(key, kid)
}

/// How openid-client's own client is set up for one `private_key_jwt` key.
struct AssertionCase {
    name: &'static str,
    alg: &'static str,
    /// The `kid` openid-client puts in its assertions; without one, the
    /// key registers a single JWK and the server takes that one.
    kid: Option<&'static str>,
    /// The `alg` member of the registered JWK, if any.
    jwk_alg: Option<&'static str>,
    discovery: &'static str,
    dpop: bool,
}

/// The public JWK of `client` as registered, with `jwk_alg` as its `alg`.
fn registered_jwk(client: &ClientKey, jwk_alg: Option<&str>) -> Value {
    let mut jwk = client.jwk();
    if let Some(a) = jwk_alg {
        jwk["alg"] = json!(a);
    }
    jwk
}

#[actix_web::test]
async fn openid_client_authenticates_with_private_key_jwt() {
    if !node_has(&["openid-client", "jose"]) {
        return;
    }
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let cases = [
        AssertionCase {
            name: "es256",
            alg: "ES256",
            kid: Some("es-2026"),
            jwk_alg: None,
            discovery: "oidc",
            dpop: false,
        },
        AssertionCase {
            name: "rs256",
            alg: "RS256",
            kid: Some("rs-2026"),
            jwk_alg: Some("RS256"),
            discovery: "oauth2",
            dpop: false,
        },
        // openid-client signs Ed25519 keys as "Ed25519" (RFC 9864); the
        // JWK registered as "EdDSA" must take it as the same algorithm.
        AssertionCase {
            name: "eddsa",
            alg: "EdDSA",
            kid: None,
            jwk_alg: Some("EdDSA"),
            discovery: "oidc",
            dpop: false,
        },
        // FAPI 2.0's pairing: the assertion authenticates, DPoP binds.
        AssertionCase {
            name: "es256+dpop",
            alg: "ES256",
            kid: Some("es-dpop"),
            jwk_alg: Some("ES256"),
            discovery: "oauth2",
            dpop: true,
        },
    ];
    let mut clients = Vec::new();
    let mut keys = Vec::new();
    for case in &cases {
        let client = client_key(case.alg, case.kid);
        let mut registered = vec![registered_jwk(&client, case.jwk_alg)];
        if let Some(kid) = case.kid {
            // A retired key of the same kind beside it: the assertion's
            // `kid` must pick the right one.
            let retired = client_key(case.alg, Some(&format!("{kid}-retired")));
            registered.insert(0, registered_jwk(&retired, case.jwk_alg));
        }
        let key = create_key(
            &app,
            &admin,
            json!({"name": case.name, "credential_type": "private_key_jwt",
                   "jwks": {"keys": registered}, "scopes": ["orders:read", "orders:write"]}),
        )
        .await;
        // The same kind of key (and `kid`) registered for another client:
        // openid-client's assertion for it, signed with the first client's
        // private key, must not pass.
        let impostor = create_key(
            &app,
            &admin,
            json!({"name": format!("{} impostor", case.name), "credential_type": "private_key_jwt",
                   "jwks": {"keys": [registered_jwk(&client_key(case.alg, case.kid), case.jwk_alg)]},
                   "scopes": ["orders:read"]}),
        )
        .await;
        let private = pkcs8(&client.key);
        for (name, api_key, expect) in [
            (case.name.to_owned(), &key.api_key, "token"),
            (
                format!("{} impostor", case.name),
                &impostor.api_key,
                "invalid_client",
            ),
        ] {
            let mut c = json!({"name": name, "client_id": api_key, "alg": case.alg,
                               "pkcs8": private, "discovery": case.discovery,
                               "dpop": case.dpop, "expect": expect});
            if let Some(kid) = case.kid {
                c["kid"] = json!(kid);
            }
            clients.push(c);
        }
        keys.push(key);
    }
    let report = node(
        "private_key_jwt_openid_client.mjs",
        vec![
            app.base.clone(),
            "orders:read".to_owned(),
            Value::Array(clients).to_string(),
        ],
        "openid-client's private_key_jwt client_credentials grant failed",
    )
    .await;

    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len(), "{report}");
    let bearer = format!("Bearer {admin}");
    for (case, key) in cases.iter().zip(&keys) {
        let r = results
            .iter()
            .find(|r| r["name"] == case.name)
            .unwrap_or_else(|| panic!("{} not exercised: {report}", case.name));
        let signed_as = if case.alg == "EdDSA" {
            "Ed25519"
        } else {
            case.alg
        };
        assert_eq!(r["assertion_header"]["alg"], signed_as, "{r}");
        assert_eq!(r["assertion_header"]["kid"], json!(case.kid), "{r}");
        assert_eq!(r["assertion_claims"]["iss"], key.api_key.as_str());
        assert_eq!(r["assertion_claims"]["aud"], app.base.as_str());
        assert_eq!(
            r["token_type"],
            if case.dpop { "DPoP" } else { "Bearer" },
            "{r}"
        );
        assert_eq!(r["expires_in"], 3600);
        assert_eq!(r["scope"], "orders:read");
        assert_eq!(r["claims"]["client_id"], key.api_key.as_str());
        assert_eq!(r["claims"]["sub"], key.id.as_str());
        assert_eq!(r["claims"]["iss"], app.base.as_str());
        for token in [&r["access_token"], &r["second_access_token"]] {
            let i = app
                .introspect(token.as_str().unwrap(), Some(&bearer))
                .await
                .json();
            assert_eq!(i["active"], true, "{}: {i}", case.name);
            assert_eq!(i["client_id"], key.api_key.as_str(), "{i}");
            assert_eq!(i["sub"], key.id.as_str(), "{i}");
        }
    }
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), cases.len(), "{report}");
    for r in refused {
        assert_eq!(r["status"], 401, "{r}");
        assert_eq!(r["error"], "invalid_client", "{r}");
    }
}
