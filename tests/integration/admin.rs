//! The admin API: lifecycle, authorisation, forged tokens, validation,
//! pagination under concurrent inserts, concurrent rotation, audit trail.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Created, TestApp};

both_backends!(
    full_lifecycle_over_http,
    authentication_and_scopes,
    a_revoked_admin_key_loses_access_at_once,
    forged_tokens_are_refused,
    validation_errors_name_each_field,
    pagination_visits_every_key_once_during_inserts,
    concurrent_rotations_leave_no_unreturned_secret,
    concurrent_patches_and_deletes_lose_nothing,
    audit_trail_records_every_change,
    the_list_finds_keys_by_part_of_their_name,
);

fn key_path(id: &str) -> String {
    format!("/v1/api-keys/{id}")
}

async fn full_lifecycle_over_http(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let r = app
        .post_json(
            "/v1/api-keys",
            &json!({ "name": "billing", "scopes": ["invoices:read", "invoices:read", "invoices:write"], "environment": "test", "metadata": { "team": "fin" } }),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["api_key"].as_str().unwrap().starts_with("tm_test_"));
    assert!(
        created["api_secret"]
            .as_str()
            .unwrap()
            .starts_with("tms_test_")
    );
    assert_eq!(
        created["scopes"],
        json!(["invoices:read", "invoices:write"])
    );
    assert_eq!(created["subject"], id.as_str());
    assert_eq!(created["status"], "active");
    assert!(created.get("secret_hash").is_none());
    // GET never shows the secret.
    let got = app.get(&key_path(&id), Some(&admin)).await;
    assert_eq!(got.status, 200);
    assert!(got.json().get("api_secret").is_none());
    assert!(!got.text().contains("argon2"));
    assert_eq!(got.json()["metadata"]["team"], "fin");
    // PATCH.
    let r = app
        .json_call("PATCH", &key_path(&id), &json!({ "name": "billing-v2", "rate_limit_per_minute": 100, "expires_at": "2099-01-01T00:00:00Z" }), Some(&admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "billing-v2");
    assert_eq!(r.json()["rate_limit_per_minute"], 100);
    assert_eq!(r.json()["expires_at"], "2099-01-01T00:00:00Z");
    let r = app
        .json_call(
            "PATCH",
            &key_path(&id),
            &json!({ "expires_at": null, "rate_limit_per_minute": null }),
            Some(&admin),
        )
        .await;
    assert!(r.json()["expires_at"].is_null());
    assert!(r.json()["rate_limit_per_minute"].is_null());
    assert_eq!(r.json()["name"], "billing-v2", "absent fields are kept");
    // Rotate.
    let r = app
        .post_json(
            &format!("{}/rotate", key_path(&id)),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated = r.json();
    assert_ne!(rotated["api_secret"], created["api_secret"]);
    assert!(rotated["previous_secret_expires_at"].is_null());
    // Revoke, twice.
    let auth = format!("Bearer {admin}");
    let first = app
        .send("DELETE", &key_path(&id), &[("authorization", &auth)], None)
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json()["status"], "revoked");
    let second = app
        .send("DELETE", &key_path(&id), &[("authorization", &auth)], None)
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(first.json()["revoked_at"], second.json()["revoked_at"]);
    // A revoked key cannot be changed or rotated.
    app.json_call(
        "PATCH",
        &key_path(&id),
        &json!({ "name": "x" }),
        Some(&admin),
    )
    .await
    .assert_problem(409);
    app.post_json(
        &format!("{}/rotate", key_path(&id)),
        &json!({}),
        Some(&admin),
    )
    .await
    .assert_problem(409);
    // Unknown and malformed ids are 404.
    for bad in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        app.get(&key_path(&bad), Some(&admin))
            .await
            .assert_problem(404);
        app.send("DELETE", &key_path(&bad), &[("authorization", &auth)], None)
            .await
            .assert_problem(404);
        app.post_json(
            &format!("{}/rotate", key_path(&bad)),
            &json!({}),
            Some(&admin),
        )
        .await
        .assert_problem(404);
    }
    // Filters.
    let list = app
        .get("/v1/api-keys?status=revoked", Some(&admin))
        .await
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let list = app
        .get("/v1/api-keys?environment=test", Some(&admin))
        .await
        .json();
    assert_eq!(list["data"][0]["id"], id.as_str());
    let list = app
        .get("/v1/api-keys?status=active", Some(&admin))
        .await
        .json();
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] == "active")
    );
    let expired = app.key().expired().create().await;
    let list = app
        .get("/v1/api-keys?status=expired", Some(&admin))
        .await
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], expired.id.as_str());
    let subject = app.key().subject("svc-42").create().await;
    let list = app
        .get("/v1/api-keys?subject=svc-42", Some(&admin))
        .await
        .json();
    assert_eq!(list["data"][0]["id"], subject.id.as_str());
}

async fn authentication_and_scopes(b: Backend) {
    let app = TestApp::start(b).await;
    let none = app.get("/v1/api-keys", None).await;
    none.assert_problem(401);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    app.get("/v1/api-keys", Some("not.a.token"))
        .await
        .assert_problem(401);
    let reader = app.token(&["tokenmint:keys:read"]).await;
    let plain = app.token(&["orders:read"]).await;
    let admin = app.admin_token().await;
    assert_eq!(app.get("/v1/api-keys", Some(&reader)).await.status, 200);
    assert_eq!(app.get("/v1/audit-events", Some(&reader)).await.status, 200);
    app.get("/v1/api-keys", Some(&plain))
        .await
        .assert_problem(403);
    // A read-only admin can change nothing.
    let victim = app.key().create().await;
    app.post_json("/v1/api-keys", &json!({ "name": "x" }), Some(&reader))
        .await
        .assert_problem(403);
    app.json_call(
        "PATCH",
        &key_path(&victim.id),
        &json!({ "name": "x" }),
        Some(&reader),
    )
    .await
    .assert_problem(403);
    app.post_json(
        &format!("{}/rotate", key_path(&victim.id)),
        &json!({}),
        Some(&reader),
    )
    .await
    .assert_problem(403);
    app.send(
        "DELETE",
        &key_path(&victim.id),
        &[("authorization", &format!("Bearer {reader}"))],
        None,
    )
    .await
    .assert_problem(403);
    assert_eq!(
        app.exchange(&victim, json!({})).await.status,
        200,
        "the victim is untouched"
    );
    assert_eq!(
        app.get(&key_path(&victim.id), Some(&admin)).await.json()["name"],
        "test key"
    );
}

async fn a_revoked_admin_key_loses_access_at_once(b: Backend) {
    let app = TestApp::start(b).await;
    let root = app.admin_token().await;
    let second = app.key().scopes(&["tokenmint:admin"]).create().await;
    let token = app.token_for(&second).await;
    assert_eq!(app.get("/v1/api-keys", Some(&token)).await.status, 200);
    app.send(
        "DELETE",
        &key_path(&second.id),
        &[("authorization", &format!("Bearer {root}"))],
        None,
    )
    .await;
    app.get("/v1/api-keys", Some(&token))
        .await
        .assert_problem(401);
    // Taking the admin scope away from a key takes effect at once, too.
    let third = app.key().scopes(&["tokenmint:admin"]).create().await;
    let token = app.token_for(&third).await;
    assert_eq!(app.get("/v1/api-keys", Some(&token)).await.status, 200);
    let r = app
        .json_call(
            "PATCH",
            &key_path(&third.id),
            &json!({ "scopes": ["orders:read"] }),
            Some(&root),
        )
        .await;
    assert_eq!(r.status, 200);
    app.get("/v1/api-keys", Some(&token))
        .await
        .assert_problem(403);
}

fn sign_hs256(header: &Value, claims: &Value, key: &[u8]) -> String {
    let msg = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        msg.as_bytes(),
    );
    format!("{msg}.{}", B64.encode(tag.as_ref()))
}

async fn forged_tokens_are_refused(b: Backend) {
    let app = TestApp::start(b).await;
    let real = app.admin_token().await;
    let mut parts = real.split('.');
    let (header, claims) = (parts.next().unwrap(), parts.next().unwrap());
    let header: Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(claims).unwrap()).unwrap();
    let mut forged = Vec::new();
    // alg none.
    let none = json!({ "alg": "none", "typ": "at+jwt", "kid": header["kid"] });
    forged.push(format!(
        "{}.{}.",
        B64.encode(none.to_string()),
        B64.encode(claims.to_string())
    ));
    // HS256 keyed with the published public key (JWK JSON and raw x).
    let jwks = app.get("/.well-known/jwks.json", None).await.json();
    let jwk = jwks["keys"][0].clone();
    let hs = json!({ "alg": "HS256", "typ": "at+jwt", "kid": header["kid"] });
    forged.push(sign_hs256(&hs, &claims, jwk.to_string().as_bytes()));
    forged.push(sign_hs256(
        &hs,
        &claims,
        jwk["x"].as_str().unwrap().as_bytes(),
    ));
    // A token from another issuer with its own key (same claims, other kid).
    let other = TestApp::start(b).await;
    let foreign = other.admin_token().await;
    forged.push(foreign);
    // Tampered claims with the original signature.
    let mut elevated = claims.clone();
    elevated["sub"] = json!("someone-else");
    let sig = real.rsplit('.').next().unwrap();
    forged.push(format!(
        "{}.{}.{sig}",
        B64.encode(header.to_string()),
        B64.encode(elevated.to_string())
    ));
    // Our key, but expired, wrong audience, wrong issuer, wrong typ: sign with the real signer.
    let ring = app.state.issuer.ring();
    let signer = ring.signer(std::time::SystemTime::now()).unwrap();
    let sign_real = |h: &Value, c: &Value| {
        let msg = format!(
            "{}.{}",
            B64.encode(h.to_string()),
            B64.encode(c.to_string())
        );
        let sig = signer.sign(msg.as_bytes()).unwrap();
        format!("{msg}.{}", B64.encode(sig))
    };
    assert_eq!(
        app.get("/v1/api-keys", Some(&sign_real(&header, &claims)))
            .await
            .status,
        200,
        "control: re-signed original works"
    );
    let now = chrono::Utc::now().timestamp();
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    forged.push(sign_real(&header, &expired));
    let mut future = claims.clone();
    future["nbf"] = json!(now + 3600);
    forged.push(sign_real(&header, &future));
    let mut aud = claims.clone();
    aud["aud"] = json!("https://elsewhere.example.com");
    forged.push(sign_real(&header, &aud));
    let mut iss = claims.clone();
    iss["iss"] = json!("https://evil.example.com");
    forged.push(sign_real(&header, &iss));
    let mut jwt_typ = header.clone();
    jwt_typ["typ"] = json!("JWT");
    forged.push(sign_real(&jwt_typ, &claims));
    let mut no_kid = header.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    forged.push(sign_real(&no_kid, &claims));
    for (i, token) in forged.iter().enumerate() {
        let r = app.get("/v1/api-keys", Some(token)).await;
        assert_eq!(r.status, 401, "forgery #{i} was accepted: {}", r.text());
    }
}

async fn validation_errors_name_each_field(b: Backend) {
    let app = TestApp::builder(b)
        .var("TOKENMINT_ALLOWED_SCOPES", "orders:read orders:write")
        .build()
        .await;
    let admin = app.admin_token().await;
    let r = app
        .post_json(
            "/v1/api-keys",
            &json!({
                "name": "x".repeat(101),
                "scopes": ["payments:refund", "bad scope"],
                "allowed_ips": ["10.0.0.0/40"],
                "expires_at": "2000-01-01T00:00:00Z",
                "rate_limit_per_minute": 0,
                "metadata": { "blob": "y".repeat(4100) },
                "claims": { "iss": "me" },
                "token_ttl_seconds": 999999,
                "audiences": ["no-scheme"],
                "environment": "prod",
                "surprise": true
            }),
            Some(&admin),
        )
        .await;
    r.assert_problem(422);
    let mut fields: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "allowed_ips",
            "audiences",
            "claims",
            "environment",
            "expires_at",
            "metadata",
            "name",
            "rate_limit_per_minute",
            "scopes",
            "surprise",
            "token_ttl_seconds"
        ]
    );
    // Missing name is 422; malformed JSON and wrong types are 400.
    let missing = app
        .post_json(
            "/v1/api-keys",
            &json!({ "scopes": ["orders:read"] }),
            Some(&admin),
        )
        .await;
    missing.assert_problem(422);
    assert_eq!(missing.json()["errors"][0]["field"], "name");
    let auth = format!("Bearer {admin}");
    let garbage = app
        .send(
            "POST",
            "/v1/api-keys",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(b"{nope".to_vec()),
        )
        .await;
    garbage.assert_problem(400);
    app.post_json("/v1/api-keys", &json!({ "name": 42 }), Some(&admin))
        .await
        .assert_problem(400);
    app.post_json("/v1/api-keys", &json!(["name"]), Some(&admin))
        .await
        .assert_problem(400);
    let xml = app
        .send(
            "POST",
            "/v1/api-keys",
            &[
                ("authorization", &auth),
                ("content-type", "application/xml"),
            ],
            Some(b"<a/>".to_vec()),
        )
        .await;
    xml.assert_problem(415);
    // PATCH: a field that cannot change, a past expiry.
    let key = app.key().create().await;
    let r = app
        .json_call(
            "PATCH",
            &key_path(&key.id),
            &json!({ "subject": "other", "expires_at": "2001-01-01T00:00:00Z" }),
            Some(&admin),
        )
        .await;
    r.assert_problem(422);
    assert_eq!(r.json()["errors"].as_array().unwrap().len(), 2);
    // Rotation grace beyond 7 days.
    app.post_json(
        &format!("{}/rotate", key_path(&key.id)),
        &json!({ "grace_period_seconds": 604801 }),
        Some(&admin),
    )
    .await
    .assert_problem(422);
    // Listing parameters.
    for q in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "status=gone",
        "cursor=%%%",
        "colour=red",
    ] {
        app.get(&format!("/v1/api-keys?{q}"), Some(&admin))
            .await
            .assert_problem(422);
    }
    // Nothing was half-written: only the admin key and `key` exist.
    let all = app.get("/v1/api-keys", Some(&admin)).await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
}

async fn pagination_visits_every_key_once_during_inserts(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let mut before = vec![];
    for i in 0..23 {
        before.push(app.key().name(&format!("k{i}")).create().await.id);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/api-keys?limit=5&cursor={c}"),
            None => "/v1/api-keys?limit=5".to_owned(),
        };
        let page = app.get(&path, Some(&admin)).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap().to_owned()),
        );
        // New keys arrive while we page; they sort before the cursor.
        app.key().name("late").create().await;
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 50, "pagination does not end");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a key was listed twice");
    for id in &before {
        assert!(seen.contains(id), "key {id} was skipped");
    }
}

async fn concurrent_rotations_leave_no_unreturned_secret(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    for grace in [0, 600] {
        let key = app.key().create().await;
        let path = format!("{}/rotate", key_path(&key.id));
        let body = json!({ "grace_period_seconds": grace });
        let calls = (0..4).map(|_| app.post_json(&path, &body, Some(&admin)));
        let results = futures_util::future::join_all(calls).await;
        let secrets: Vec<String> = results
            .iter()
            .map(|r| {
                assert_eq!(r.status, 200, "{}", r.text());
                r.json()["api_secret"].as_str().unwrap().to_owned()
            })
            .collect();
        let mut working = 0;
        for s in secrets.iter().chain(std::iter::once(&key.api_secret)) {
            let c = Created {
                api_secret: s.clone(),
                ..key.clone()
            };
            if app.exchange(&c, json!({})).await.status == 200 {
                working += 1;
            }
        }
        let expected = if grace == 0 { 1 } else { 2 };
        assert_eq!(working, expected, "grace {grace}: secrets that work");
    }
}

async fn audit_trail_records_every_change(b: Backend) {
    let app = TestApp::start(b).await;
    let admin_key = app.key().scopes(&["tokenmint:admin"]).create().await;
    let admin = app.token_for(&admin_key).await;
    let auth = format!("Bearer {admin}");
    let r = app
        .send(
            "POST",
            "/v1/api-keys",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("x-request-id", "req-create-1"),
            ],
            Some(br#"{"name":"audited"}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-request-id").as_deref(), Some("req-create-1"));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    app.json_call(
        "PATCH",
        &key_path(&id),
        &json!({ "name": "renamed" }),
        Some(&admin),
    )
    .await;
    app.post_json(
        &format!("{}/rotate", key_path(&id)),
        &json!({}),
        Some(&admin),
    )
    .await;
    app.send("DELETE", &key_path(&id), &[("authorization", &auth)], None)
        .await;
    app.send("DELETE", &key_path(&id), &[("authorization", &auth)], None)
        .await;
    let events = app
        .get(&format!("/v1/audit-events?api_key_id={id}"), Some(&admin))
        .await
        .json();
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "api_key.revoked",
            "api_key.rotated",
            "api_key.updated",
            "api_key.created"
        ]
    );
    let created = &events["data"][3];
    assert_eq!(created["actor"], admin_key.id.as_str());
    assert_eq!(created["request_id"], "req-create-1");
    assert_eq!(created["ip"], "127.0.0.1");
    // CLI-made keys are attributed to `cli`, with no ip or request id.
    let cli_key = app.key().create().await;
    let events = app
        .get(
            &format!(
                "/v1/audit-events?api_key_id={}&action=api_key.created",
                cli_key.id
            ),
            Some(&admin),
        )
        .await
        .json();
    assert_eq!(events["data"][0]["actor"], "cli");
    assert!(events["data"][0]["ip"].is_null());
    assert!(events["data"][0]["request_id"].is_null());
    // Paging through audit events.
    let page = app
        .get("/v1/audit-events?limit=2", Some(&admin))
        .await
        .json();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().unwrap();
    let page2 = app
        .get(
            &format!("/v1/audit-events?limit=2&cursor={next}"),
            Some(&admin),
        )
        .await
        .json();
    assert_ne!(page["data"][0]["id"], page2["data"][0]["id"]);
    // Denied exchanges are aggregated, not one row each.
    let c = Created {
        api_secret: app.key().create().await.api_secret,
        ..cli_key.clone()
    };
    for _ in 0..5 {
        app.exchange(&c, json!({}))
            .await
            .assert_oauth_error(401, "invalid_client");
    }
    app.state.usage.flush(&app.state.db, true).await.unwrap();
    let denied = app
        .get(
            &format!(
                "/v1/audit-events?action=token.exchange_denied&api_key_id={}",
                cli_key.id
            ),
            Some(&admin),
        )
        .await
        .json();
    let rows = denied["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{denied}");
    assert_eq!(rows[0]["details"]["count"], 5);
    assert_eq!(rows[0]["details"]["reason"], "wrong_secret");
}

async fn concurrent_patches_and_deletes_lose_nothing(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let key = app.key().scopes(&["a", "b"]).create().await;
    let path = key_path(&key.id);
    let (scopes, ips) = (
        json!({ "scopes": ["a"] }),
        json!({ "allowed_ips": ["10.0.0.0/8"] }),
    );
    let (r1, r2) = futures_util::future::join(
        app.json_call("PATCH", &path, &scopes, Some(&admin)),
        app.json_call("PATCH", &path, &ips, Some(&admin)),
    )
    .await;
    assert_eq!((r1.status, r2.status), (200, 200));
    let now = app.get(&path, Some(&admin)).await.json();
    assert_eq!(
        now["scopes"],
        json!(["a"]),
        "a concurrent PATCH was lost: {now}"
    );
    assert_eq!(
        now["allowed_ips"],
        json!(["10.0.0.0/8"]),
        "a concurrent PATCH was lost: {now}"
    );
    // Concurrent DELETEs: one revocation, one audit event, same revoked_at.
    let auth = format!("Bearer {admin}");
    let headers = [("authorization", auth.as_str())];
    let dels = (0..3).map(|_| app.send("DELETE", &path, &headers, None));
    let answers = futures_util::future::join_all(dels).await;
    let stamps: Vec<Value> = answers
        .iter()
        .map(|r| r.json()["revoked_at"].clone())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] == w[1]), "{stamps:?}");
    let events = app
        .get(
            &format!(
                "/v1/audit-events?api_key_id={}&action=api_key.revoked",
                key.id
            ),
            Some(&admin),
        )
        .await
        .json();
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

async fn the_list_finds_keys_by_part_of_their_name(b: Backend) {
    let app = TestApp::start(b).await;
    let reader = app.token(&["tokenmint:keys:read"]).await;
    for name in ["Billing-Prod", "billing_dev", "search 100%", "searchX100"] {
        app.key().name(name).create().await;
    }
    let names = |r: crate::common::Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text());
        let mut v: Vec<String> = r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let list = |q: &str| format!("/v1/api-keys?name={q}");
    assert_eq!(
        names(app.get(&list("BILL"), Some(&reader)).await),
        ["Billing-Prod", "billing_dev"]
    );
    // LIKE wildcards in the search are plain characters.
    assert_eq!(
        names(app.get(&list("%25"), Some(&reader)).await),
        ["search 100%"]
    );
    assert_eq!(
        names(app.get(&list("g_d"), Some(&reader)).await),
        ["billing_dev"]
    );
    assert!(names(app.get(&list("h_1"), Some(&reader)).await).is_empty());
    // With another filter, and empty meaning any.
    assert_eq!(
        names(
            app.get("/v1/api-keys?name=search&status=active", Some(&reader))
                .await
        ),
        ["search 100%", "searchX100"]
    );
    assert_eq!(names(app.get(&list(""), Some(&reader)).await).len(), 5);
}
