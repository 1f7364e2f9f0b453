//! DPoP at the token endpoint (RFC 9449, SPEC §10.3): a proof binds the
//! token to its key, and every way of getting a proof wrong is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::dpop::DpopKey;
use crate::common::{Backend, Created, Resp, TestApp, client::jwt_parts};

both_backends!(
    a_proof_binds_the_token_to_its_key,
    every_broken_proof_is_refused,
    a_proof_is_good_once,
    a_key_can_require_a_proof
);

fn token_endpoint(app: &TestApp) -> String {
    format!("{}/auth/token", app.state.config.issuer)
}

async fn exchange_with(app: &TestApp, key: &Created, proofs: &[&str]) -> Resp {
    let body = json!({"api_key": key.api_key, "api_secret": key.api_secret}).to_string();
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(proofs.iter().map(|p| ("dpop", *p)));
    app.send("POST", "/auth/token", &headers, Some(body.into_bytes()))
        .await
}

async fn a_proof_binds_the_token_to_its_key(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().scopes(&["orders:read"]).create().await;
    let htu = token_endpoint(&app);
    let admin = app.admin_token().await;
    for dpop in [
        DpopKey::es256(),
        DpopKey::ed25519(),
        DpopKey::rsa(false),
        DpopKey::rsa(true),
    ] {
        let r = exchange_with(&app, &key, &[&dpop.proof(&htu)]).await;
        assert_eq!(r.status, 200, "{}: {}", dpop.alg(), r.text());
        assert_eq!(r.json()["token_type"], "DPoP", "{}", dpop.alg());
        let token = r.json()["access_token"].as_str().unwrap().to_owned();
        let (_, claims) = jwt_parts(&token);
        assert_eq!(
            claims["cnf"],
            json!({"jkt": dpop.thumbprint()}),
            "{}",
            dpop.alg()
        );
        let i = app
            .introspect(&token, Some(&format!("Bearer {admin}")))
            .await;
        assert_eq!(i.json()["active"], true);
        assert_eq!(i.json()["token_type"], "DPoP");
        assert_eq!(i.json()["cnf"]["jkt"], dpop.thumbprint().as_str());
    }
    // The OAuth form with Basic takes a proof too; its query is ignored in htu.
    let dpop = DpopKey::es256();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", key.api_key, key.api_secret))
    );
    let proof = dpop.proof(&format!("{htu}?ignored=1"));
    let r = app
        .post_form(
            "/auth/token",
            "grant_type=client_credentials",
            &[("authorization", &basic), ("dpop", &proof)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    // Without a proof: a plain bearer token, no cnf.
    let r = app.exchange(&key, json!({})).await;
    assert_eq!(r.json()["token_type"], "Bearer");
    let (_, claims) = jwt_parts(r.json()["access_token"].as_str().unwrap());
    assert!(claims.get("cnf").is_none());
    let discovery = app
        .get("/.well-known/oauth-authorization-server", None)
        .await
        .json();
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["ES256", "RS256", "PS256", "EdDSA", "Ed25519"])
    );
}

/// A proof signed as `alg` with a key that is not what its header says.
fn forged(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(signature)
    )
}

async fn every_broken_proof_is_refused(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().create().await;
    let htu = token_endpoint(&app);
    let dpop = DpopKey::es256();
    let other = DpopKey::es256();
    let now = chrono::Utc::now().timestamp();
    let with = |patch: Value| {
        let mut c = dpop.claims(&htu);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let mut private = dpop.jwk();
    private["d"] = json!(B64.encode([7u8; 32]));
    let hmac_secret = dpop.jwk().to_string();
    let hs256 = {
        let header = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": B64.encode(&hmac_secret)}});
        let c = dpop.claims(&htu);
        let signed = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(c.to_string())
        );
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, hmac_secret.as_bytes()),
            signed.as_bytes(),
        );
        format!("{signed}.{}", B64.encode(tag.as_ref()))
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong htu",
            dpop.proof_with(
                json!({}),
                with(json!({"htu": "https://elsewhere.example/auth/token"})),
            ),
        ),
        (
            "another path",
            dpop.proof_with(json!({}), with(json!({"htu": format!("{htu}/x")}))),
        ),
        (
            "wrong htm",
            dpop.proof_with(json!({}), with(json!({"htm": "GET"}))),
        ),
        (
            "stale iat",
            dpop.proof_with(json!({}), with(json!({"iat": now - 62}))),
        ),
        (
            "future iat",
            dpop.proof_with(json!({}), with(json!({"iat": now + 62}))),
        ),
        (
            "iat at i64::MIN",
            dpop.proof_with(json!({}), with(json!({"iat": i64::MIN}))),
        ),
        (
            "empty jti",
            dpop.proof_with(json!({}), with(json!({"jti": ""}))),
        ),
        (
            "jti over 256",
            dpop.proof_with(json!({}), with(json!({"jti": "j".repeat(257)}))),
        ),
        (
            "crit header",
            dpop.proof_with(json!({"crit": ["exp"]}), dpop.claims(&htu)),
        ),
        (
            "ES384 alg",
            dpop.proof_with(json!({"alg": "ES384"}), dpop.claims(&htu)),
        ),
        (
            "no iat",
            dpop.proof_with(json!({}), with(json!({"iat": null}))),
        ),
        (
            "no jti",
            dpop.proof_with(json!({}), with(json!({"jti": null}))),
        ),
        (
            "wrong typ",
            dpop.proof_with(json!({"typ": "JWT"}), dpop.claims(&htu)),
        ),
        (
            "no jwk",
            dpop.proof_with(json!({"jwk": null}), dpop.claims(&htu)),
        ),
        (
            "private key in jwk",
            dpop.proof_with(json!({"jwk": private}), dpop.claims(&htu)),
        ),
        (
            "another key's jwk",
            dpop.proof_with(json!({"jwk": other.jwk()}), dpop.claims(&htu)),
        ),
        (
            "jwk of another kty",
            dpop.proof_with(json!({"jwk": DpopKey::ed25519().jwk()}), dpop.claims(&htu)),
        ),
        (
            "alg none",
            forged(
                json!({"typ": "dpop+jwt", "alg": "none", "jwk": dpop.jwk()}),
                &dpop.claims(&htu),
                b"",
            ),
        ),
        ("HS256 keyed with the public JWK", hs256),
        ("not a JWT", "not.a.jwt".into()),
        ("tampered claims", {
            let good = dpop.proof(&htu);
            let mut parts: Vec<&str> = good.split('.').collect();
            let changed = B64.encode(with(json!({"htm": "POST", "jti": "other"})).to_string());
            parts[1] = &changed;
            parts.join(".")
        }),
    ];
    for (what, proof) in &cases {
        let r = exchange_with(&app, &key, &[proof]).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "invalid_dpop_proof", "{what}");
        assert!(r.json().get("access_token").is_none());
    }
    // (Two DPoP headers: http::token's unit tests; this client merges them.)
    // None of that cost the key anything: a good proof still works.
    let r = exchange_with(&app, &key, &[&dpop.proof(&htu)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn a_proof_is_good_once(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().create().await;
    let dpop = DpopKey::ed25519();
    let proof = dpop.proof(&token_endpoint(&app));
    assert_eq!(exchange_with(&app, &key, &[&proof]).await.status, 200);
    let replay = exchange_with(&app, &key, &[&proof]).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.json()["error"], "invalid_dpop_proof");
    assert!(
        replay.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("jti")
    );
    // A replay with other credentials is refused as well: the jti is spent.
    let other = app.key().create().await;
    assert_eq!(exchange_with(&app, &other, &[&proof]).await.status, 400);
    // Copies of one fresh proof sent at the same moment: exactly one wins.
    let proof = dpop.proof(&token_endpoint(&app));
    let one = [proof.as_str()];
    let copies = (0..8).map(|_| exchange_with(&app, &key, &one));
    let statuses: Vec<u16> = futures_util::future::join_all(copies)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    crate::common::client::assert_one_wins(&statuses, 400);
    // Within the 60 s window either way, proofs are good.
    let now = chrono::Utc::now().timestamp();
    for iat in [now - 58, now + 58] {
        let mut c = dpop.claims(&token_endpoint(&app));
        c["iat"] = json!(iat);
        let r = exchange_with(&app, &key, &[&dpop.proof_with(json!({}), c)]).await;
        assert_eq!(r.status, 200, "iat {}: {}", iat - now, r.text());
    }
}

async fn a_key_can_require_a_proof(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let created = app
        .post_json(
            "/v1/api-keys",
            &json!({"name": "bound-only", "require_dpop": true}),
            Some(&admin),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["require_dpop"], true);
    let key = Created {
        id: created.json()["id"].as_str().unwrap().to_owned(),
        api_key: created.json()["api_key"].as_str().unwrap().to_owned(),
        api_secret: created.json()["api_secret"].as_str().unwrap().to_owned(),
        body: created.json(),
    };
    // No proof: refused, whatever the form.
    let bare = app.exchange(&key, json!({})).await;
    bare.assert_oauth_error(400, "invalid_dpop_proof");
    assert!(bare.text().contains("requires a DPoP proof"));
    // A wrong secret still reads as a failed authentication: the requirement
    // is told only to whoever proved the secret.
    let wrong = app
        .post_json(
            "/auth/token",
            &json!({"api_key": key.api_key, "api_secret": app.key().create().await.api_secret}),
            None,
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let dpop = DpopKey::es256();
    let bound = exchange_with(&app, &key, &[&dpop.proof(&token_endpoint(&app))]).await;
    assert_eq!(bound.status, 200, "{}", bound.text());
    assert_eq!(bound.json()["token_type"], "DPoP");
    // Switched off by PATCH (audited), plain bearer exchanges work again.
    let patched = app
        .json_call(
            "PATCH",
            &format!("/v1/api-keys/{}", key.id),
            &json!({"require_dpop": false}),
            Some(&admin),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["require_dpop"], false);
    assert_eq!(app.exchange(&key, json!({})).await.status, 200);
    let audit = app.audit_text(&key.id, &admin).await;
    assert!(audit.contains("require_dpop"), "{audit}");
    // Not a boolean: a type error (400, as for every member), naming the field.
    for bad in [json!("yes"), json!(1)] {
        let r = app
            .post_json(
                "/v1/api-keys",
                &json!({"name": "x", "require_dpop": bad}),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.text().contains("require_dpop"), "{}", r.text());
    }
    // Default: not required.
    assert_eq!(app.key().create().await.body["require_dpop"], false);
}

/// With Redis, a proof spent at one replica is refused at every other.
/// Without it, or while it is unreachable, each replica remembers its own
/// and exchanges go on; when it is back, sharing resumes without a restart.
#[actix_web::test]
async fn replicas_share_spent_proofs_through_redis() {
    use crate::common::proxy::Proxy;
    if !crate::common::redis_available() {
        return;
    }
    let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap());
    let url = format!("redis://{}", proxy.addr);
    // A prefix of this run's own: tests never see each other's keys.
    let prefix = format!("tokenmint-test-{}:", uuid::Uuid::new_v4());
    let a = TestApp::builder(Backend::Sqlite)
        .var("TOKENMINT_REDIS_URL", &url)
        .var("TOKENMINT_REDIS_PREFIX", &prefix)
        .build()
        .await;
    let b = a
        .replica_builder()
        .var("TOKENMINT_REDIS_URL", &url)
        .var("TOKENMINT_REDIS_PREFIX", &prefix)
        .build()
        .await;
    let alone = a.replica().await;
    let key = a.key().create().await;
    let dpop = DpopKey::es256();
    let htu = token_endpoint(&a);
    let metric = |text: String| {
        text.lines()
            .find(|l| l.starts_with("tokenmint_redis_up "))
            .map(str::to_owned)
    };

    let proof = dpop.proof(&htu);
    assert_eq!(exchange_with(&a, &key, &[&proof]).await.status, 200);
    let replay = exchange_with(&b, &key, &[&proof]).await;
    replay.assert_oauth_error(400, "invalid_dpop_proof");
    assert!(replay.text().contains("used before"), "{}", replay.text());
    assert_eq!(
        metric(a.get("/metrics", None).await.text()).as_deref(),
        Some("tokenmint_redis_up 1")
    );
    // A replica without Redis knows only its own proofs: the control case.
    assert_eq!(exchange_with(&alone, &key, &[&proof]).await.status, 200);

    // Redis gone: exchanges go on, replay protection per replica, metric 0.
    proxy.set_open(false);
    for _ in 0..3 {
        let proof = dpop.proof(&htu);
        let started = std::time::Instant::now();
        let r = exchange_with(&a, &key, &[&proof]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        exchange_with(&a, &key, &[&proof])
            .await
            .assert_oauth_error(400, "invalid_dpop_proof");
    }
    assert_eq!(
        metric(a.get("/metrics", None).await.text()).as_deref(),
        Some("tokenmint_redis_up 0")
    );

    // Back: sharing resumes by itself within a few seconds.
    proxy.set_open(true);
    let mut shared = false;
    for _ in 0..50 {
        let proof = dpop.proof(&htu);
        assert_eq!(exchange_with(&a, &key, &[&proof]).await.status, 200);
        if exchange_with(&b, &key, &[&proof]).await.status == 400 {
            shared = true;
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        shared,
        "replicas did not share proofs again after Redis came back"
    );
    assert_eq!(
        metric(a.get("/metrics", None).await.text()).as_deref(),
        Some("tokenmint_redis_up 1")
    );
}
