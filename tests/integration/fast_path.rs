//! The warm path and its promises: cached keys and secrets never outlive a
//! change, on one server or across replicas; rate limits.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Created, TestApp};

both_backends!(
    changes_take_effect_at_once_despite_the_cache,
    warm_exchanges_skip_argon2,
    per_key_budget_answers_429_with_headers,
    failures_block_the_address_not_the_key,
    last_used_at_is_written_in_batches,
);

async fn last_used_at_is_written_in_batches(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let keys = [
        app.key().create().await,
        app.key().create().await,
        app.key().create().await,
    ];
    for key in &keys {
        assert_eq!(app.exchange(key, json!({})).await.status, 200);
        let view = app
            .get(&format!("/v1/api-keys/{}", key.id), Some(&admin))
            .await
            .json();
        assert!(view["last_used_at"].is_null(), "no write per exchange");
    }
    app.state.usage.flush(&app.state.db, false).await.unwrap();
    for key in &keys {
        let view = app
            .get(&format!("/v1/api-keys/{}", key.id), Some(&admin))
            .await
            .json();
        assert!(view["last_used_at"].is_string(), "{view}");
    }
}

async fn changes_take_effect_at_once_despite_the_cache(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let key = app.key().scopes(&["a", "b"]).create().await;
    // Warm the caches.
    for _ in 0..2 {
        assert_eq!(app.exchange(&key, json!({})).await.status, 200);
    }
    // PATCH: new scopes apply to the very next exchange.
    let r = app
        .json_call(
            "PATCH",
            &format!("/v1/api-keys/{}", key.id),
            &json!({ "scopes": ["a"] }),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.exchange(&key, json!({})).await.json()["scope"], "a");
    // Rotation without grace: the cached old secret stops at once.
    let r = app
        .post_json(
            &format!("/v1/api-keys/{}/rotate", key.id),
            &json!({}),
            Some(&admin),
        )
        .await;
    let new = Created {
        api_secret: r.json()["api_secret"].as_str().unwrap().to_owned(),
        ..key.clone()
    };
    app.exchange(&key, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(app.exchange(&new, json!({})).await.status, 200);
    // Revocation: at once.
    app.revoke(&key.id, &admin).await;
    app.exchange(&new, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
    // A key created after a "no such key" answer is found at once.
    let ghost = Created {
        api_key: "tm_live_AAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ..new.clone()
    };
    app.exchange(&ghost, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
    let fresh = app.key().create().await;
    assert_eq!(app.exchange(&fresh, json!({})).await.status, 200);
}

async fn warm_exchanges_skip_argon2(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().create().await;
    let before = app.state.hashes.verifications();
    for _ in 0..5 {
        assert_eq!(app.exchange(&key, json!({})).await.status, 200);
    }
    assert_eq!(
        app.state.hashes.verifications() - before,
        1,
        "only the first exchange runs argon2"
    );
    // A wrong secret is never let through by the cache: it goes to argon2.
    let other = app.key().create().await;
    let wrong = Created {
        api_secret: other.api_secret.clone(),
        ..key.clone()
    };
    app.exchange(&wrong, json!({}))
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(app.state.hashes.verifications() - before, 2);
}

async fn per_key_budget_answers_429_with_headers(b: Backend) {
    let app = TestApp::start(b).await;
    let key = app.key().rate_limit_per_minute(2).create().await;
    for remaining in ["1", "0"] {
        let r = app.exchange(&key, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("ratelimit-limit").as_deref(), Some("2"));
        assert_eq!(r.header("ratelimit-remaining").as_deref(), Some(remaining));
        assert!(r.header("ratelimit-reset").is_some());
    }
    let r = app.exchange(&key, json!({})).await;
    r.assert_oauth_error(429, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.header("ratelimit-remaining").as_deref(), Some("0"));
    // The server default applies to keys without their own limit.
    let strict = TestApp::builder(b)
        .var("TOKENMINT_RATE_LIMIT_PER_MINUTE", "1")
        .build()
        .await;
    let k = strict.key().create().await;
    assert_eq!(strict.exchange(&k, json!({})).await.status, 200);
    strict
        .exchange(&k, json!({}))
        .await
        .assert_oauth_error(429, "rate_limited");
}

async fn failures_block_the_address_not_the_key(b: Backend) {
    let app = TestApp::builder(b)
        .var("TOKENMINT_FAILED_AUTH_PER_MINUTE", "3")
        .var("TOKENMINT_TRUSTED_PROXIES", "127.0.0.1")
        .build()
        .await;
    let key = app.key().create().await;
    let other = app.key().create().await;
    let wrong = Created {
        api_secret: other.api_secret.clone(),
        ..key.clone()
    };
    let body = |c: &Created| {
        json!({ "api_key": c.api_key, "api_secret": c.api_secret })
            .to_string()
            .into_bytes()
    };
    let from = |ip: &'static str| {
        [
            ("content-type", "application/json"),
            ("x-forwarded-for", ip),
        ]
    };
    let mut statuses = vec![];
    for _ in 0..6 {
        statuses.push(
            app.send(
                "POST",
                "/auth/token",
                &from("198.51.100.66"),
                Some(body(&wrong)),
            )
            .await
            .status,
        );
    }
    assert_eq!(&statuses[..3], &[401, 401, 401], "{statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    // The attacker's address is stopped even with the right secret...
    let r = app
        .send(
            "POST",
            "/auth/token",
            &from("198.51.100.66"),
            Some(body(&key)),
        )
        .await;
    r.assert_oauth_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    // ...but the key itself is not locked: its owner elsewhere gets through.
    let r = app
        .send(
            "POST",
            "/auth/token",
            &from("203.0.113.5"),
            Some(body(&key)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Across replicas on one PostgreSQL database, a revoke, rotation or PATCH on
/// one server is honoured by the other within a second.
#[actix_web::test]
async fn changes_reach_other_replicas_within_a_second() {
    if !crate::common::postgres_available() {
        return;
    }
    let a = TestApp::start(Backend::Postgres).await;
    let b = a.replica().await;
    let admin = a.admin_token().await;
    let key = a.key().scopes(&["x", "y"]).create().await;
    // Warm replica B's caches.
    assert_eq!(b.exchange(&key, json!({})).await.status, 200);
    assert_eq!(b.exchange(&key, json!({})).await.json()["scope"], "x y");
    a.json_call(
        "PATCH",
        &format!("/v1/api-keys/{}", key.id),
        &json!({ "scopes": ["x"] }),
        Some(&admin),
    )
    .await;
    let started = Instant::now();
    loop {
        if b.exchange(&key, json!({})).await.json()["scope"] == "x" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "PATCH not seen by the replica within 1 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    a.send(
        "DELETE",
        &format!("/v1/api-keys/{}", key.id),
        &[("authorization", &format!("Bearer {admin}"))],
        None,
    )
    .await;
    let started = Instant::now();
    loop {
        if b.exchange(&key, json!({})).await.status == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "revocation not seen by the replica within 1 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// On SQLite, a revocation by the CLI (another process) reaches the running
/// server's cache within a second.
#[actix_web::test]
async fn sqlite_cli_revocation_reaches_the_cache_within_a_second() {
    let app = TestApp::start(Backend::Sqlite).await;
    let key = app.key().create().await;
    assert_eq!(app.exchange(&key, json!({})).await.status, 200);
    assert_eq!(app.exchange(&key, json!({})).await.status, 200);
    let url = app.database_url.clone();
    let keys = app.dir.path().join("keys").display().to_string();
    let id = key.id.clone();
    let out = actix_web::web::block(move || {
        crate::common::replicas::tokenmint(
            std::path::Path::new("/"),
            &["api-key", "revoke", &id],
            &[
                ("DATABASE_URL", url.as_str()),
                ("TOKENMINT_KEYS_DIR", keys.as_str()),
            ],
        )
        .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    loop {
        let r = app.exchange(&key, json!({})).await;
        if r.status == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "CLI revocation not seen within 1 s: {}",
            r.status
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}
