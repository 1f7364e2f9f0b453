//! The attack review's findings (issue 12), each performed against the real
//! server: budgets under concurrency, a revocation racing argon2, proxy
//! hops, folder permissions, input hygiene, non-canonical signatures, flood
//! traces, slow bodies and the connection cap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::common::replicas::{free_port, start_server, tokenmint};
use crate::common::{Backend, Resp, TestApp};

/// Wrong but well-formed credentials: `key`'s id with `other`'s secret (the
/// checksum is valid, so argon2 runs).
fn wrong_pair(key: &crate::common::Created, other: &crate::common::Created) -> Value {
    json!({ "api_key": key.api_key, "api_secret": other.api_secret })
}

fn statuses(rs: &[Resp]) -> (usize, usize, Vec<u16>) {
    let unauthorized = rs.iter().filter(|r| r.status == 401).count();
    let limited = rs.iter().filter(|r| r.status == 429).count();
    let other = rs
        .iter()
        .map(|r| r.status)
        .filter(|s| *s != 401 && *s != 429)
        .collect();
    (unauthorized, limited, other)
}

#[actix_web::test]
async fn failure_budget_holds_under_a_concurrent_flood() {
    // argon2 slow enough that many requests are in flight together.
    let app = TestApp::builder(Backend::Sqlite)
        .var("TOKENMINT_FAILED_AUTH_PER_MINUTE", "10")
        .var("TOKENMINT_ARGON2_M_KIB", "8192")
        .var("TOKENMINT_ARGON2_T", "2")
        .build()
        .await;
    let key = app.key().create().await;
    let other = app.key().create().await;
    let body = wrong_pair(&key, &other);
    let flood = (0..60).map(|_| app.post_json("/auth/token", &body, None));
    let rs = join_all(flood).await;
    let (verified, limited, other_statuses) = statuses(&rs);
    // Each 401 is one argon2 verify spent on the flood; the budget is 10 a
    // minute (burst 10), plus at most one unit refilled while the test runs.
    assert!(
        verified <= 11,
        "{verified} argon2 verifies for a budget of 10"
    );
    assert_eq!(
        verified + limited,
        60,
        "unexpected answers: {other_statuses:?}"
    );
    assert!(
        rs.iter()
            .filter(|r| r.status == 429)
            .all(|r| r.header("retry-after").is_some())
    );
}

#[actix_web::test]
async fn one_address_holds_only_its_share_of_the_argon2_pool() {
    let app = TestApp::builder(Backend::Sqlite)
        .var("TOKENMINT_FAILED_AUTH_PER_MINUTE", "100000")
        .var("TOKENMINT_ARGON2_M_KIB", "65536")
        .var("TOKENMINT_ARGON2_T", "2")
        .build()
        .await;
    let key = app.key().create().await;
    let other = app.key().create().await;
    let body = wrong_pair(&key, &other);
    let rs = join_all((0..20).map(|_| app.post_json("/auth/token", &body, None))).await;
    let (verified, limited, other_statuses) = statuses(&rs);
    assert!(other_statuses.is_empty(), "{other_statuses:?}");
    // Requests beyond the address's share are turned away at once, not queued.
    assert!(
        limited >= 10,
        "{limited} of 20 turned away, {verified} verified"
    );
    // The pool is still there for a legitimate client afterwards.
    app.exchange(&key, json!({})).await;
    let ok = app.exchange(&other, json!({})).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
}

async fn revocation_during_argon2_wins(b: Backend) {
    // ~0.5 s per verify: the revoke lands while the exchange is inside argon2.
    let app = TestApp::builder(b)
        .var("TOKENMINT_ARGON2_M_KIB", "131072")
        .var("TOKENMINT_ARGON2_T", "3")
        .build()
        .await;
    let admin = app.admin_token().await;
    let key = app.key().create().await;
    let exchange = app.exchange(&key, json!({}));
    let revoke = async {
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
        app.revoke(&key.id, &admin).await
    };
    let (exchanged, revoked) = futures_util::future::join(exchange, revoke).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    exchanged.assert_oauth_error(401, "invalid_client");
}

crate::both_backends!(revocation_during_argon2_wins, input_hygiene);

#[actix_web::test]
async fn forwarded_hops_with_ports_parse_and_junk_is_refused_before_any_work() {
    let app = TestApp::builder(Backend::Sqlite)
        .var("TOKENMINT_TRUSTED_PROXIES", "127.0.0.1/32")
        .var("TOKENMINT_FAILED_AUTH_PER_MINUTE", "3")
        .build()
        .await;
    let key = app
        .key()
        .allowed_ips(&["5.6.7.8/32", "2001:db8::5/128"])
        .create()
        .await;
    let other = app.key().create().await;
    let pair = json!({ "api_key": key.api_key, "api_secret": key.api_secret });
    let from = |hop: &'static str| {
        let body = serde_json::to_vec(&pair).unwrap();
        let app = &app;
        async move {
            app.send(
                "POST",
                "/auth/token",
                &[
                    ("content-type", "application/json"),
                    ("x-forwarded-for", hop),
                ],
                Some(body),
            )
            .await
        }
    };
    for hop in [
        "5.6.7.8:6666",
        "[2001:db8::5]:443",
        "[2001:db8::5]",
        "2001:db8::5",
    ] {
        assert_eq!(from(hop).await.status, 200, "{hop}");
    }
    // Junk: refused outright, many times, without touching anyone's budget.
    for _ in 0..10 {
        from("garbage")
            .await
            .assert_oauth_error(400, "invalid_request");
        from("5.6.7.8:99999")
            .await
            .assert_oauth_error(400, "invalid_request");
    }
    assert_eq!(from("5.6.7.8:1").await.status, 200);
    // A real address that fails spends its own budget only.
    let wrong = serde_json::to_vec(&wrong_pair(&key, &other)).unwrap();
    for _ in 0..5 {
        app.send(
            "POST",
            "/auth/token",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", "198.51.100.9:4000"),
            ],
            Some(wrong.clone()),
        )
        .await;
    }
    let blocked = app
        .send(
            "POST",
            "/auth/token",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", "198.51.100.9"),
            ],
            Some(serde_json::to_vec(&pair).unwrap()),
        )
        .await;
    assert_eq!(blocked.status, 429);
    assert_eq!(from("[2001:db8::5]:1").await.status, 200);
}

#[cfg(unix)]
#[test]
fn folders_are_private_under_umask_000_and_writable_keys_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("DATABASE_URL", "sqlite://data/t.db"),
        ("TOKENMINT_KEYS_DIR", "keys"),
    ];
    let run = |args: &[&str]| {
        let mut cmd = tokenmint(dir.path(), args, &vars);
        // SAFETY: umask is async-signal-safe; set in the child only.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
        cmd.output().unwrap()
    };
    let made = run(&["api-key", "create", "--name", "x"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let generated = run(&["signing-key", "generate"]);
    assert!(generated.status.success());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&dir.path().join("keys")), 0o700);
    let kid: Value = serde_json::from_slice(&generated.stdout).unwrap();
    let key_file = std::path::PathBuf::from(kid["path"].as_str().unwrap());
    let key_file = dir.path().join(key_file);
    assert_eq!(mode(&key_file), 0o600);
    assert!(run(&["signing-key", "list"]).status.success());

    // A folder others can write to: any local user could plant the signer.
    let keys = dir.path().join("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o777)).unwrap();
    let refused = run(&["signing-key", "list"]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("writable by group or others"), "{why}");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();

    // A key file others can write to.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(!run(&["signing-key", "list"]).status.success());
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A symbolic link (how a Kubernetes secret mount looks) is followed.
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.pem");
    std::fs::rename(&key_file, &target).unwrap();
    std::os::unix::fs::symlink(&target, &key_file).unwrap();
    let listed = run(&["signing-key", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
}

async fn input_hygiene(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.admin_token().await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move { app.post_json("/v1/api-keys", &body, Some(admin)).await }
    };
    let field_of = |r: &Resp| r.json()["errors"][0]["field"].as_str().unwrap().to_owned();
    for claim in [
        "roles",
        "groups",
        "entitlements",
        "scp",
        "at_hash",
        " Sub ",
        "ISS",
        "Client_ID",
    ] {
        let r = create(json!({ "name": "c", "claims": { claim: "x" } })).await;
        r.assert_problem(422);
        assert_eq!(field_of(&r), "claims", "{claim:?}");
    }
    assert_eq!(
        create(json!({ "name": "c", "claims": { "tenant": "acme" } }))
            .await
            .status,
        201
    );
    for name in [
        "evil\u{202E}txt.exe",
        "zero\u{200B}width",
        "\u{FEFF}bom",
        "iso\u{2066}late",
    ] {
        let r = create(json!({ "name": name })).await;
        r.assert_problem(422);
        assert_eq!(field_of(&r), "name", "{name:?}");
    }
    let r = create(json!({ "name": "s", "subject": "svc\u{202D}" })).await;
    r.assert_problem(422);
    assert_eq!(field_of(&r), "subject");
    for aud in [
        "ftp://files.example.com",
        "mailto:a@example.com",
        "file:///etc/passwd",
        "javascript:x",
    ] {
        let r = create(json!({ "name": "a", "audiences": [aud] })).await;
        r.assert_problem(422);
        assert_eq!(field_of(&r), "audiences", "{aud}");
    }
    assert_eq!(
        create(json!({ "name": "a", "audiences": ["https://a.example", "http://b.example", "urn:billing"] }))
            .await
            .status,
        201
    );
    // Repeated members, at the top and deeper down.
    let auth = format!("Bearer {admin}");
    for raw in [
        r#"{"name": "a", "name": "b"}"#,
        r#"{"name": "a", "metadata": {"x": 1, "x": 2}}"#,
    ] {
        app.send(
            "POST",
            "/v1/api-keys",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(raw.as_bytes().to_vec()),
        )
        .await
        .assert_problem(400);
    }
    // Nothing was written by any of the refused calls.
    let listed = app.get("/v1/api-keys?limit=200", Some(&admin)).await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
}

/// `n − s` for a P-256 signature's `s` (big-endian, 32 bytes): the other,
/// equally valid signature.
fn flip_s(sig: &mut [u8]) {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let s = &mut sig[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        s[i] = (d.rem_euclid(256)) as u8;
        borrow = i16::from(d < 0);
    }
}

#[actix_web::test]
async fn a_high_s_token_is_refused_everywhere() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let (head, sig) = admin.rsplit_once('.').unwrap();
    let mut raw = B64.decode(sig).unwrap();
    assert!(
        tokenmint_verify::rules::ecdsa::is_low_s(&raw),
        "we sign low-s"
    );
    flip_s(&mut raw);
    let twin = format!("{head}.{}", B64.encode(&raw));
    // The twin is a cryptographically valid signature of the same token.
    let kid = tokenmint_verify::rules::read_header(&admin)
        .unwrap()
        .kid
        .unwrap();
    let ring = app.state.issuer.ring();
    let key = ring.find(&kid, std::time::SystemTime::now()).unwrap();
    let mut lax = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    lax.validate_aud = false;
    assert!(jsonwebtoken::decode::<Value>(&twin, key.decoding_key(), &lax).is_ok());
    // Our rules (server and verifier crate alike) refuse it.
    assert!(
        tokenmint_verify::rules::decode_claims(
            &twin,
            key.decoding_key(),
            jsonwebtoken::Algorithm::ES256,
            app.state.issuer.issuer(),
            None
        )
        .is_err()
    );
    app.get("/v1/api-keys", Some(&twin))
        .await
        .assert_problem(401);
    let introspector = app.token(&["tokenmint:introspect"]).await;
    let r = app
        .introspect(&twin, Some(&format!("Bearer {introspector}")))
        .await;
    assert_eq!(r.json(), json!({ "active": false }));
    let r = app
        .introspect(&admin, Some(&format!("Bearer {introspector}")))
        .await;
    assert_eq!(r.json()["active"], true);
}

#[actix_web::test]
async fn a_flood_leaves_its_sources_in_the_audit_trail() {
    let app = TestApp::builder(Backend::Sqlite)
        .var("TOKENMINT_TRUSTED_PROXIES", "127.0.0.1/32")
        .var("TOKENMINT_FAILED_AUTH_PER_MINUTE", "3")
        .build()
        .await;
    let admin = app.admin_token().await;
    let key = app.key().create().await;
    let other = app.key().create().await;
    let wrong = serde_json::to_vec(&wrong_pair(&key, &other)).unwrap();
    for (ip, n) in [("203.0.113.7", 6), ("203.0.113.8", 2)] {
        for _ in 0..n {
            app.send(
                "POST",
                "/auth/token",
                &[
                    ("content-type", "application/json"),
                    ("x-forwarded-for", ip),
                ],
                Some(wrong.clone()),
            )
            .await;
        }
    }
    app.state.usage.flush(&app.state.db, true).await.unwrap();
    let events = app
        .get(
            "/v1/audit-events?action=token.exchange_denied",
            Some(&admin),
        )
        .await
        .json();
    let rows = events["data"].as_array().unwrap();
    let row = |reason: &str| {
        rows.iter()
            .find(|e| e["details"]["reason"] == reason)
            .unwrap_or_else(|| panic!("no {reason} row in {events}"))
    };
    let wrong_secret = row("wrong_secret");
    assert_eq!(wrong_secret["details"]["count"], 5);
    assert_eq!(
        wrong_secret["details"]["addresses"],
        json!([{ "ip": "203.0.113.7", "count": 3 }, { "ip": "203.0.113.8", "count": 2 }])
    );
    // The 429s are counted too, with their source (one row for the key the
    // first one named, one for those refused before any key was looked up).
    let limited: Vec<&Value> = rows
        .iter()
        .filter(|e| e["details"]["reason"] == "address_rate_limited")
        .collect();
    let count: u64 = limited
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, 3, "{events}");
    assert!(
        limited
            .iter()
            .all(|e| e["details"]["addresses"][0]["ip"] == "203.0.113.7")
    );
}

/// Sends `head` and part of a body, then waits for the server's answer.
fn trickle(addr: &str, head: &str, wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(b"{").unwrap();
    std::thread::sleep(wait);
    let mut answer = vec![0u8; 256];
    let n = s.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[actix_web::test]
async fn a_trickled_body_meets_its_deadline() {
    let app = TestApp::builder(Backend::Sqlite)
        .var("TOKENMINT_BODY_TIMEOUT_SECONDS", "1")
        .build()
        .await;
    let admin = app.admin_token().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let token = tokio_blocking(
        addr.clone(),
        "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n".to_owned(),
    )
    .await;
    assert!(token.starts_with("HTTP/1.1 408"), "{token}");
    let admin_call = tokio_blocking(addr, format!(
        "POST /v1/api-keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    ))
    .await;
    assert!(admin_call.starts_with("HTTP/1.1 408"), "{admin_call}");
    assert!(started.elapsed() < Duration::from_secs(8));
}

/// Runs [`trickle`] off the test's runtime (the server shares it).
async fn tokio_blocking(addr: String, head: String) -> String {
    actix_web::rt::task::spawn_blocking(move || trickle(&addr, &head, Duration::from_millis(1500)))
        .await
        .unwrap()
}

#[actix_web::test]
async fn healthz_answers_on_the_ops_listener_while_the_cap_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    let ops = format!("127.0.0.1:{}", free_port());
    let (_server, base) = start_server(
        dir.path(),
        &[
            ("TOKENMINT_MAX_CONNECTIONS", "4"),
            ("TOKENMINT_OPS_BIND", &ops),
            ("TOKENMINT_BODY_TIMEOUT_SECONDS", "3"),
        ],
    )
    .await;
    let addr = base.trim_start_matches("http://").to_owned();
    // Fill the cap with bodies that never finish.
    let mut held = Vec::new();
    for _ in 0..8 {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.write_all(
                b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            );
            held.push(s);
        }
    }
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(2))
        .finish();
    let started = Instant::now();
    let health = client
        .get(format!("http://{ops}/healthz"))
        .send()
        .await
        .expect("the ops listener answers");
    assert_eq!(health.status().as_u16(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    let metrics = client
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    // The ops listener serves nothing else.
    let other = client
        .get(format!("http://{ops}/v1/api-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    // Once the body deadline frees the slots, the main listener serves again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().as_u16() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "main listener never recovered");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    drop(held);
}
