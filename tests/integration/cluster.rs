//! SPEC §9 with real processes: `tokenmint serve` replicas on one
//! PostgreSQL database, one keys folder and one Redis, with TCP proxies the
//! tests cut to take Redis or PostgreSQL away (the shared servers are never
//! stopped).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::cluster::{Cluster, eventually};
use crate::common::proxy::Proxy;
use crate::common::{postgres_available, redis_available};

const REDIS: &str = "127.0.0.1:6379";

fn redis_prefix() -> String {
    format!("tokenmint-test:{}:", uuid::Uuid::new_v4().simple())
}

/// Both shared services, or a loud skip (CI has both and never skips).
fn services() -> bool {
    postgres_available() && redis_available()
}

/// Spreads `n` exchanges round-robin over the replicas; counts the 200s
/// and checks every refusal is a 429 with `Retry-After`.
async fn admitted(c: &Cluster, n: usize, key: &str, secret: &str, ip: &str) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let a = c.exchange(i % c.replicas.len(), key, secret, ip).await;
        match a.status.as_u16() {
            200 => ok += 1,
            429 => assert!(a.retry_after.is_some(), "429 without Retry-After"),
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    ok
}

#[actix_web::test]
async fn three_replicas_share_keys_changes_budgets_and_verified_secrets() {
    if !services() {
        return;
    }
    let prefix = redis_prefix();
    let c = Cluster::start(
        &[
            ("TOKENMINT_REDIS_URL", "redis://127.0.0.1:6379"),
            ("TOKENMINT_REDIS_PREFIX", &prefix),
            ("TOKENMINT_FAILED_AUTH_PER_MINUTE", "6"),
        ],
        3,
    )
    .await;
    let admin = c.admin_token(0).await;

    // A key created on one replica exchanges on the others, and costs one
    // argon2 verify for the whole cluster, not one per replica.
    let argon2 = "tokenmint_argon2_verify_seconds_count";
    let (id, key, secret) = c
        .create_key(
            0,
            &admin,
            json!({ "name": "svc", "scopes": ["read", "write"] }),
        )
        .await;
    let before = c.metric_sum(argon2).await;
    for i in 0..9 {
        let a = c.exchange(i % 3, &key, &secret, "192.0.2.1").await;
        assert_eq!(a.status, 200, "replica {}: {}", i % 3, a.body);
    }
    assert_eq!(
        c.metric_sum(argon2).await - before,
        1.0,
        "one argon2 verify for three replicas"
    );

    // A PATCH through replica 1 is seen by every replica within 1 s.
    let a = c
        .call(
            1,
            "PATCH",
            &format!("/v1/api-keys/{id}"),
            Some(&admin),
            json!({ "scopes": ["read"] }),
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    for r in 0..3 {
        let took = eventually(Duration::from_secs(1), "PATCH seen", || async {
            c.exchange(r, &key, &secret, "192.0.2.1").await.body["scope"] == "read"
        })
        .await;
        eprintln!("replica {r} saw the PATCH after {took:?}");
    }

    // Rotation with grace: both secrets work everywhere within 1 s.
    let a = c
        .call(
            2,
            "POST",
            &format!("/v1/api-keys/{id}/rotate"),
            Some(&admin),
            json!({ "grace_period_seconds": 300 }),
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let new_secret = a.body["api_secret"].as_str().unwrap().to_owned();
    for r in 0..3 {
        for s in [&secret, &new_secret] {
            eventually(Duration::from_secs(1), "both secrets accepted", || async {
                c.exchange(r, &key, s, "192.0.2.1").await.status == 200
            })
            .await;
        }
    }

    // A revocation through replica 2 is honoured by all within 1 s.
    let a = c
        .call(
            2,
            "DELETE",
            &format!("/v1/api-keys/{id}"),
            Some(&admin),
            Value::Null,
            &[],
        )
        .await;
    assert!(a.status.is_success(), "{}", a.body);
    for r in 0..3 {
        eventually(Duration::from_secs(1), "revocation seen", || async {
            c.exchange(r, &key, &new_secret, "192.0.2.1").await.status == 401
        })
        .await;
    }

    // A budget of N a minute, spread round-robin over three replicas,
    // admits at most N + replicas (with Redis: N).
    let budget = 10;
    let (_, limited, limited_secret) = c
        .create_key(
            1,
            &admin,
            json!({ "name": "budget", "rate_limit_per_minute": budget }),
        )
        .await;
    let ok = admitted(&c, 3 * budget, &limited, &limited_secret, "192.0.2.2").await;
    eprintln!("key budget {budget}: {ok} admitted by 3 replicas");
    assert!((budget..=budget + 3).contains(&ok), "admitted {ok}");
    // The headers report the cluster's state.
    let a = c.exchange(0, &limited, &limited_secret, "192.0.2.2").await;
    assert_eq!(a.status, 429);
    assert_eq!(a.remaining, Some(0));

    // The failure budget of one address likewise (6 a minute).
    let mut failures = 0;
    for i in 0..18 {
        let a = c
            .exchange(i % 3, &key, "tm_live_wrong", "203.0.113.9")
            .await;
        match a.status.as_u16() {
            401 => failures += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    eprintln!("failure budget 6: {failures} failures let through by 3 replicas");
    assert!(
        (6..=9).contains(&failures),
        "{failures} failures let through"
    );
}

#[actix_web::test]
async fn a_redis_outage_never_fails_an_exchange() {
    if !services() {
        return;
    }
    let proxy = Proxy::start(REDIS.parse().unwrap());
    let prefix = redis_prefix();
    let redis_url = format!("redis://{}", proxy.addr);
    let c = Cluster::start(
        &[
            ("TOKENMINT_REDIS_URL", &redis_url),
            ("TOKENMINT_REDIS_PREFIX", &prefix),
        ],
        2,
    )
    .await;
    let admin = c.admin_token(0).await;
    let (_, key, secret) = c
        .create_key(
            0,
            &admin,
            json!({ "name": "budgeted", "rate_limit_per_minute": 100000 }),
        )
        .await;
    let (_, cold, cold_secret) = c.create_key(0, &admin, json!({ "name": "cold" })).await;
    assert_eq!(c.exchange(0, &key, &secret, "192.0.2.1").await.status, 200);
    assert_eq!(c.metric(0, "tokenmint_redis_up").await, 1.0);

    proxy.set_open(false);
    let started = Instant::now();
    for i in 0..40 {
        let a = c.exchange(i % 2, &key, &secret, "192.0.2.1").await;
        assert_eq!(a.status, 200, "exchange {i} during the outage: {}", a.body);
    }
    // A secret never verified before still verifies (argon2, locally).
    let a = c.exchange(1, &cold, &cold_secret, "192.0.2.1").await;
    assert_eq!(a.status, 200, "{}", a.body);
    eprintln!(
        "40 warm + 1 cold exchanges without Redis in {:?}",
        started.elapsed()
    );
    for r in 0..2 {
        assert_eq!(c.metric(r, "tokenmint_redis_up").await, 0.0);
        let ready = c.call(r, "GET", "/readyz", None, Value::Null, &[]).await;
        assert_eq!(ready.status, 200, "/readyz does not depend on Redis");
    }

    // Back: cluster-wide state resumes without a restart.
    proxy.set_open(true);
    for r in 0..2 {
        eventually(Duration::from_secs(20), "redis_up back to 1", || async {
            c.exchange(r, &key, &secret, "192.0.2.1").await.status == 200
                && c.metric(r, "tokenmint_redis_up").await == 1.0
        })
        .await;
    }
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_host(Some(&addr.ip().to_string())).unwrap();
    u.set_port(Some(addr.port())).unwrap();
    u.to_string()
}

fn upstream(url: &str) -> SocketAddr {
    let u = url::Url::parse(url).unwrap();
    (u.host_str().unwrap(), u.port().unwrap_or(5432))
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}

#[actix_web::test]
async fn a_postgres_outage_keeps_warm_exchanges_and_recovers() {
    if !postgres_available() {
        return;
    }
    let mut c = Cluster::prepare(&[]);
    let proxy = Proxy::start(upstream(&c.database_url));
    let proxied = through(&c.database_url, proxy.addr);
    // Replica 0 reaches the database through the proxy, replica 1 directly.
    c.add_replicas(1, &[("DATABASE_URL", &proxied)]).await;
    c.add_replicas(1, &[]).await;
    let admin = c.admin_token(1).await;
    let admin0 = c.admin_token(0).await;
    let (warm_id, warm, warm_secret) = c.create_key(1, &admin, json!({ "name": "warm" })).await;
    let (_, cold, cold_secret) = c.create_key(1, &admin, json!({ "name": "cold" })).await;
    // Let the creation notices reach replica 0 first: a notice drops the
    // record it names, and a record dropped is never served stale.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let a = c.exchange(0, &warm, &warm_secret, "192.0.2.1").await;
    assert_eq!(a.status, 200, "{}", a.body);

    proxy.set_open(false);
    // Warm exchanges go on from memory.
    for _ in 0..20 {
        let a = c.exchange(0, &warm, &warm_secret, "192.0.2.1").await;
        assert_eq!(a.status, 200, "warm exchange during the outage: {}", a.body);
    }
    // What needs the database answers 503 within 1 s (the pool waits
    // 0.8 s for a connection; the bound here leaves room for a loaded CI
    // machine, the printed times are the measure).
    let timed = |what: &'static str, started: Instant| {
        let took = started.elapsed();
        eprintln!("{what}: 503 after {took:?}");
        assert!(took < Duration::from_millis(1500), "{what} took {took:?}");
    };
    let t = Instant::now();
    let a = c.exchange(0, &cold, &cold_secret, "192.0.2.1").await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.body["error"], "temporarily_unavailable");
    assert!(a.retry_after.is_some());
    timed("cold exchange", t);
    let t = Instant::now();
    let a = c
        .call(0, "GET", "/v1/api-keys", Some(&admin0), Value::Null, &[])
        .await;
    assert_eq!(a.status, 503, "{}", a.body);
    timed("admin list", t);
    let t = Instant::now();
    let a = c
        .call(
            0,
            "POST",
            "/v1/api-keys",
            Some(&admin0),
            json!({ "name": "written-during-the-outage" }),
            &[],
        )
        .await;
    assert_eq!(a.status, 503, "{}", a.body);
    timed("admin create", t);
    let t = Instant::now();
    let ready = c.call(0, "GET", "/readyz", None, Value::Null, &[]).await;
    assert_eq!(ready.status, 503);
    timed("/readyz", t);
    let health = c.call(0, "GET", "/healthz", None, Value::Null, &[]).await;
    assert_eq!(health.status, 200);
    // Meanwhile the key is revoked through the other replica.
    let a = c
        .call(
            1,
            "DELETE",
            &format!("/v1/api-keys/{warm_id}"),
            Some(&admin),
            Value::Null,
            &[],
        )
        .await;
    assert!(a.status.is_success(), "{}", a.body);

    proxy.set_open(true);
    let back = Instant::now();
    let took = eventually(Duration::from_secs(5), "full service", || async {
        c.call(0, "GET", "/readyz", None, Value::Null, &[])
            .await
            .status
            == 200
            && c.exchange(0, &cold, &cold_secret, "192.0.2.1").await.status == 200
            && c.exchange(0, &warm, &warm_secret, "192.0.2.1").await.status == 401
    })
    .await;
    eprintln!("full service (revocation honoured) {took:?} after the database returned");
    assert!(back.elapsed() < Duration::from_secs(6));
    // Nothing half-written: the refused create left no key.
    let a = c
        .call(
            1,
            "GET",
            "/v1/api-keys?limit=100",
            Some(&admin),
            Value::Null,
            &[],
        )
        .await;
    assert_eq!(a.status, 200);
    let names: Vec<&str> = a.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(!names.contains(&"written-during-the-outage"), "{names:?}");
}
