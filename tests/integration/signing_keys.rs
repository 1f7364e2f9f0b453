//! Signing keys without restarts (SPEC §9.3), on the real binary: servers
//! pick up keys the CLI generates and revokes, replicas share one folder,
//! and a rotation under load fails no request and no downstream verifier.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::common::cluster::eventually;
use crate::common::replicas::{Server, spawn_server, start_server, tokenmint, wait_ready};

/// A short publication delay, so a new key signs within the test.
const FAST: [(&str, &str); 1] = [("TOKENMINT_SIGNING_KEY_PUBLISH_SECONDS", "2")];

/// Runs a CLI command that must succeed; its JSON output.
fn cli(dir: &Path, args: &[&str]) -> Value {
    let out = tokenmint(dir, args, &FAST).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `signing-key list`, as `kid → row`.
fn listed(dir: &Path, kid: &str) -> Value {
    let rows = cli(dir, &["signing-key", "list"]);
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["kid"] == kid)
        .cloned()
        .unwrap_or_else(|| panic!("{kid} not in {rows}"))
}

/// An API key that may introspect, created with the CLI.
fn api_key(dir: &Path) -> Value {
    cli(
        dir,
        &[
            "api-key",
            "create",
            "--name",
            "svc",
            "--scope",
            "tokenmint:introspect",
        ],
    )
}

/// An exchange: the token, or the status it failed with.
async fn exchange(base: &str, key: &Value) -> Result<String, u16> {
    let mut r = awc::Client::default()
        .post(format!("{base}/auth/token"))
        .send_json(&json!({ "api_key": key["api_key"], "api_secret": key["api_secret"] }))
        .await
        .map_err(|_| 0u16)?;
    if r.status().as_u16() != 200 {
        return Err(r.status().as_u16());
    }
    let body: Value = r.json().await.map_err(|_| 1u16)?;
    Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn jwks_kids(base: &str) -> Vec<String> {
    let mut r = awc::Client::default()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let jwks: Value = r.json().await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn introspect(base: &str, caller: &str, token: &str) -> Value {
    let mut r = awc::Client::default()
        .post(format!("{base}/auth/introspect"))
        .bearer_auth(caller)
        .content_type("application/x-www-form-urlencoded")
        .send_body(format!("token={token}"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

const TEN_S: Duration = Duration::from_secs(10);

fn generate(dir: &Path) -> String {
    cli(dir, &["signing-key", "generate"])["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn a_generated_key_is_published_then_signs_and_a_revoked_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = api_key(dir.path());
    let (_server, base) = start_server(dir.path(), &FAST).await;
    let old_token = exchange(&base, &key).await.unwrap();
    let old = kid_of(&old_token);
    // The first key has been published for the whole delay before the next
    // one appears, so the CLI sees it active and the new one pending.
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let new = generate(dir.path());
    assert_eq!(listed(dir.path(), &new)["state"], "pending");
    assert_eq!(listed(dir.path(), &old)["state"], "active");
    eventually(TEN_S, "new key in the JWKS", || async {
        jwks_kids(&base).await.contains(&new)
    })
    .await;
    // After the delay the new key signs.
    eventually(TEN_S, "new key signs", || async {
        exchange(&base, &key).await.is_ok_and(|t| kid_of(&t) == new)
    })
    .await;
    let row = listed(dir.path(), &old);
    assert_eq!(row["state"], "retiring", "{row}");
    assert!(row["until"].is_string(), "{row}");
    assert_eq!(listed(dir.path(), &new)["state"], "active");
    let caller = exchange(&base, &key).await.unwrap();
    assert_eq!(introspect(&base, &caller, &old_token).await["active"], true);

    // Emergency: the old key goes, and its tokens with it.
    let revoked = cli(dir.path(), &["signing-key", "revoke", &old]);
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(listed(dir.path(), &old)["state"], "revoked");
    eventually(TEN_S, "old token refused", || async {
        introspect(&base, &caller, &old_token).await == json!({ "active": false })
    })
    .await;
    assert_eq!(jwks_kids(&base).await, std::slice::from_ref(&new));
    assert_eq!(introspect(&base, &caller, &caller).await["active"], true);

    // The last key, an unknown one and a revoked one are refused.
    for (kid, says) in [
        (new.as_str(), "last signing key"),
        ("nope", "no signing key"),
        (old.as_str(), "already revoked"),
    ] {
        let out = tokenmint(dir.path(), &["signing-key", "revoke", kid], &FAST)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{kid}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(jwks_kids(&base).await, [new]);
}

#[actix_web::test]
async fn revoking_the_active_key_makes_the_pending_one_sign_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = api_key(dir.path());
    let slow = [("TOKENMINT_SIGNING_KEY_PUBLISH_SECONDS", "3600")];
    let (_server, base) = start_server(dir.path(), &slow).await;
    let old = kid_of(&exchange(&base, &key).await.unwrap());
    let new = generate(dir.path());
    eventually(TEN_S, "new key in the JWKS", || async {
        jwks_kids(&base).await.contains(&new)
    })
    .await;
    assert_eq!(kid_of(&exchange(&base, &key).await.unwrap()), old);
    let out = tokenmint(dir.path(), &["signing-key", "revoke", &old], &slow)
        .output()
        .unwrap();
    assert!(out.status.success());
    eventually(TEN_S, "pending key signs at once", || async {
        exchange(&base, &key).await.is_ok_and(|t| kid_of(&t) == new)
    })
    .await;
}

/// Each replica on its own SQLite file, all on one keys folder.
fn replica_vars<'a>(db: &'a str, keys: &'a str) -> [(&'a str, &'a str); 2] {
    [("DATABASE_URL", db), ("TOKENMINT_KEYS_DIR", keys)]
}

#[actix_web::test]
async fn replicas_starting_together_on_an_empty_folder_make_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("shared-keys").display().to_string();
    let dbs: Vec<String> = (0..3).map(|i| format!("sqlite://data/{i}.db")).collect();
    let replicas: Vec<(Server, String)> = dbs
        .iter()
        .map(|db| spawn_server(dir.path(), &replica_vars(db, &keys)))
        .collect();
    for (_, base) in &replicas {
        wait_ready(base).await;
    }
    let pems: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
        .collect();
    assert_eq!(pems.len(), 1, "{pems:?}");
    let first = jwks_kids(&replicas[0].1).await;
    for (_, base) in &replicas[1..] {
        assert_eq!(jwks_kids(base).await, first);
    }
}

#[cfg(unix)]
#[actix_web::test]
async fn a_read_only_folder_with_a_key_serves() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = api_key(dir.path());
    let kid = generate(dir.path());
    let keys = dir.path().join("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o500)).unwrap();
    let before: Vec<_> = std::fs::read_dir(&keys).unwrap().flatten().collect();
    let (server, base) = start_server(dir.path(), &[]).await;
    let token = exchange(&base, &key).await;
    drop(server);
    let after: Vec<_> = std::fs::read_dir(&keys).unwrap().flatten().collect();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(kid_of(&token.unwrap()), kid);
    assert_eq!(before.len(), after.len(), "nothing written");
}

/// Verifies `tokens` with PyJWT's `PyJWKClient` against `base`'s JWKS.
async fn pyjwt_verifies(base: &str, tokens: &[String]) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/verify_many_pyjwt.py"
    );
    let input = dir_file(tokens);
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg(format!("{base}/.well-known/jwks.json"))
        .arg(base)
        .arg(base)
        .stdin(std::fs::File::open(input.path()).unwrap());
    crate::interop::json_output(command, "PyJWT over the rotation").await
}

fn dir_file(tokens: &[String]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), tokens.join("\n")).unwrap();
    file
}

/// Exchanges on every replica in turn until `stop` is set; every token, by
/// the replica that issued it, and every failure.
async fn load(
    bases: Vec<String>,
    key: Value,
    stop: std::rc::Rc<std::cell::Cell<bool>>,
) -> (Vec<Vec<String>>, Vec<u16>) {
    let mut tokens = vec![Vec::new(); bases.len()];
    let mut failures = Vec::new();
    while !stop.get() {
        for (i, base) in bases.iter().enumerate() {
            match exchange(base, &key).await {
                Ok(t) => tokens[i].push(t),
                Err(status) => failures.push(status),
            }
        }
    }
    (tokens, failures)
}

#[actix_web::test]
async fn a_rotation_under_load_fails_no_exchange_and_no_verifier() {
    if !crate::interop::pyjwt_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = api_key(dir.path());
    let mut replicas = Vec::new();
    for _ in 0..2 {
        // Each replica's issuer and audience is its own address.
        // Tokens outlive the test: a refusal below is the revocation's.
        let vars = [FAST[0], ("TOKENMINT_TOKEN_TTL_SECONDS", "300")];
        replicas.push(start_server(dir.path(), &vars).await);
    }
    let bases: Vec<String> = replicas.iter().map(|(_, b)| b.clone()).collect();
    // A token of the old key from each replica (each is its own issuer).
    let mut old_tokens = Vec::new();
    for base in &bases {
        old_tokens.push(exchange(base, &key).await.unwrap());
    }
    let old = kid_of(&old_tokens[0]);
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;

    // Scheduled rotation under load: a new key, published, then signing.
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let running = actix_web::rt::spawn(load(bases.clone(), key.clone(), stop.clone()));
    let new = generate(dir.path());
    for base in &bases {
        eventually(Duration::from_secs(15), "new key signs", || async {
            exchange(base, &key).await.is_ok_and(|t| kid_of(&t) == new)
        })
        .await;
    }
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    stop.set(true);
    let (tokens, failures) = running.await.unwrap();
    assert!(failures.is_empty(), "failed exchanges: {failures:?}");
    for (base, issued) in bases.iter().zip(&tokens) {
        let kids: Vec<String> = issued.iter().map(|t| kid_of(t)).collect();
        assert!(
            kids.contains(&old) && kids.contains(&new),
            "{base}: {kids:?}"
        );
        let checked = pyjwt_verifies(base, issued).await;
        assert_eq!(checked["verified"], issued.len(), "{checked}");
    }

    // Emergency revocation of the old key under load: still no failure.
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let running = actix_web::rt::spawn(load(bases.clone(), key.clone(), stop.clone()));
    for (base, old_token) in bases.iter().zip(&old_tokens) {
        let caller = exchange(base, &key).await.unwrap();
        assert_eq!(introspect(base, &caller, old_token).await["active"], true);
    }
    cli(dir.path(), &["signing-key", "revoke", &old]);
    for base in &bases {
        eventually(TEN_S, "old key out of the JWKS", || async {
            !jwks_kids(base).await.contains(&old)
        })
        .await;
    }
    // ...and introspection on both replicas refuses its tokens.
    for (base, old_token) in bases.iter().zip(&old_tokens) {
        let caller = exchange(base, &key).await.unwrap();
        eventually(TEN_S, "revoked kid refused by introspection", || async {
            introspect(base, &caller, old_token).await == json!({ "active": false })
        })
        .await;
    }
    stop.set(true);
    let (tokens, failures) = running.await.unwrap();
    assert!(failures.is_empty(), "failed exchanges: {failures:?}");
    for (base, issued) in bases.iter().zip(&tokens) {
        let checked = pyjwt_verifies(base, issued).await;
        assert_eq!(checked["verified"], issued.len(), "{checked}");
        assert_eq!(checked["kids"].as_object().unwrap().len(), 1, "{checked}");
    }
}
