//! The binary itself: the bootstrap path of README (a fresh data folder,
//! `api-key create`, `serve`, an exchange over HTTP) and start-up errors.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::replicas::{start_server, tokenmint};

#[actix_web::test]
async fn bootstrap_an_admin_key_from_a_fresh_folder_and_exchange_it() {
    let dir = tempfile::tempdir().unwrap();
    // The documented command, on the default SQLite file and keys folder.
    let out = tokenmint(
        dir.path(),
        &[
            "api-key",
            "create",
            "--name",
            "root",
            "--scope",
            "tokenmint:admin",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value =
        serde_json::from_slice(&out.stdout).expect("stdout is the JSON of the key");
    assert_eq!(created["scopes"], json!(["tokenmint:admin"]));
    assert!(dir.path().join("data/tokenmint.db").exists());
    let (_server, base) = start_server(dir.path(), &[]).await;
    let client = awc::Client::default();
    let mut r = client
        .post(format!("{base}/auth/token"))
        .send_json(&json!({ "api_key": created["api_key"], "api_secret": created["api_secret"] }))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let token: Value = r.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();
    // The new admin can use the admin API.
    let mut r = client
        .get(format!("{base}/v1/api-keys"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], created["id"]);
    // The key files: one PEM, mode 0600 (beside the lock file replicas take
    // before generating a first key).
    let pems: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
        .collect();
    assert_eq!(pems.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            pems[0].metadata().unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The CLI sees the key and revokes it; the audit says `cli`.
    let out = tokenmint(dir.path(), &["api-key", "list"], &[])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["id"], created["id"]);
    let id = created["id"].as_str().unwrap();
    let out = tokenmint(dir.path(), &["api-key", "revoke", id], &[])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut r = client
        .get(format!("{base}/v1/api-keys"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "{:?}", r.body().await);
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("TOKENMINT_TOKEN_TTL_SECONDS", "soon"),
        ("DATABASE_URL", "mysql://db"),
        ("TOKENMINT_SIGNING_ALG", "none"),
        ("TOKENMINT_BIND", "everywhere"),
    ] {
        let out = tokenmint(dir.path(), &["migrate"], &[(var, value)])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
}

#[test]
fn cli_failures_are_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokenmint(
        dir.path(),
        &["api-key", "create", "--name", "x", "--scope", "bad\"scope"],
        &[],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.trim().lines().last().unwrap_or("");
    assert!(last.contains("scopes"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn signing_key_generate_and_list() {
    let dir = tempfile::tempdir().unwrap();
    for alg in ["ES256", "EdDSA", "RS256"] {
        let out = tokenmint(dir.path(), &["signing-key", "generate", "--alg", alg], &[])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let made: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(made["alg"], alg);
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = tokenmint(dir.path(), &["signing-key", "list"], &[])
        .output()
        .unwrap();
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 3);
    assert_eq!(keys[0]["alg"], "RS256");
    // None has been published for the delay: the newest signs at once.
    assert_eq!(keys[0]["state"], "active");
    assert!(keys[0]["until"].is_null());
    assert!(keys[0]["created_at"].is_string());
    let out = tokenmint(
        dir.path(),
        &["signing-key", "generate", "--alg", "HS256"],
        &[],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
}

#[actix_web::test]
async fn sigterm_stops_cleanly_and_flushes_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokenmint(dir.path(), &["api-key", "create", "--name", "svc"], &[])
        .output()
        .unwrap();
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (mut server, base) = start_server(dir.path(), &[]).await;
    let client = awc::Client::default();
    let r = client
        .post(format!("{base}/auth/token"))
        .send_json(&json!({ "api_key": created["api_key"], "api_secret": created["api_secret"] }))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "no exit within 10 s of SIGTERM"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    // last_used_at is batched in memory and written at shutdown.
    let out = tokenmint(dir.path(), &["api-key", "list"], &[])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
}

#[test]
fn api_key_create_can_require_dpop() {
    let dir = tempfile::tempdir().unwrap();
    let created = |extra: &[&str]| -> Value {
        let mut args = vec!["api-key", "create", "--name", "svc"];
        args.extend_from_slice(extra);
        let out = tokenmint(dir.path(), &args, &[]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(created(&["--require-dpop"])["require_dpop"], true);
    assert_eq!(created(&[])["require_dpop"], false);
}

/// Keys without a secret from the CLI: public keys or federation rules come
/// from files, no `api_secret` is printed, and a bad file is one line.
#[test]
fn api_key_create_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = "https://token.actions.githubusercontent.com";
    let vars = [("TOKENMINT_FEDERATION_ISSUERS", issuer)];
    let jwks = dir.path().join("jwks.json");
    let jwk = crate::common::dpop::DpopKey::ed25519().jwk();
    std::fs::write(&jwks, json!({ "keys": [jwk] }).to_string()).unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        json!([{"issuer": issuer, "subject": "repo:o/r:ref:refs/heads/main"}]).to_string(),
    )
    .unwrap();
    let run = |args: &[&str]| tokenmint(dir.path(), args, &vars).output().unwrap();
    let jwks_arg = jwks.display().to_string();
    let out = run(&[
        "api-key",
        "create",
        "--name",
        "pkjwt",
        "--credential-type",
        "private_key_jwt",
        "--jwks",
        &jwks_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["credential_type"], "private_key_jwt");
    assert_eq!(created["jwks"]["keys"][0]["x"], jwk["x"]);
    assert!(created.get("api_secret").is_none(), "{created}");

    let rules_arg = rules.display().to_string();
    let out = run(&[
        "api-key",
        "create",
        "--name",
        "ci",
        "--credential-type",
        "federated",
        "--federation",
        &rules_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["federation"][0]["issuer"], issuer);
    assert!(created.get("api_secret").is_none(), "{created}");

    // A private key in the file is refused, naming the field, in one line.
    let mut private = crate::common::dpop::DpopKey::es256().jwk();
    private["d"] = json!("AAAA");
    std::fs::write(&jwks, json!({ "keys": [private] }).to_string()).unwrap();
    let out = run(&[
        "api-key",
        "create",
        "--name",
        "bad",
        "--credential-type",
        "private_key_jwt",
        "--jwks",
        &jwks_arg,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jwks"), "{err}");
    let out = run(&[
        "api-key",
        "create",
        "--name",
        "bad",
        "--jwks",
        "/nonexistent.json",
    ]);
    assert!(!out.status.success());
}
