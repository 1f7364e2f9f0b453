//! The keys and request bodies of bench/secretless: tokenmint's two
//! secretless exchanges (SPEC §10.1, §10.2), prepared ahead so the load
//! generator only sends them.
//!
//! `keys`: inserts (through the tokenmint library, like `seed`) one
//! `private_key_jwt` key with an ES256 public key, and one `federated` key
//! whose rule trusts a fake GitHub-Actions-like issuer (ES256 keys, or RS256
//! as GitHub's own) for one subject; writes
//! that issuer's discovery document and JWKS into `--issuer-dir` (served as
//! files by the harness, `.well-known/openid-configuration` and
//! `.well-known/jwks`); keeps both private keys and the ids in `--state`.
//!
//! `bodies`: N ready form bodies, one a line, each usable once — `assertion`:
//! `client_credentials` with a fresh client assertion (`iss` = `sub` = the
//! api_key, `aud` = the token endpoint, 5 minutes, unique `jti`);
//! `federation`: a token exchange of a fresh external token (GitHub Actions
//! claims, unique `jti`, 5 minutes) for the federated key. Made just before
//! the case that sends them: an assertion lives at most 5 minutes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokenmint::config::DatabaseUrl;
use tokenmint::db::Db;
use tokenmint::keys::Environment;
use tokenmint::keys::credentials::{ClientJwks, CredentialType, FederationRule};
use tokenmint::keys::format::new_api_key;
use tokenmint_bench::{Alg, Flags, JwtKey, bench_key, encode_header, insert_keys};

const USAGE: &str = "\
secretless_seed keys --database-url URL --state DIR --issuer-dir DIR
                     --fake-issuer http://127.0.0.1:PORT --server-issuer URL
                     [--alg ES256|RS256] [--prefix tm] [--scopes \"read write\"]
secretless_seed bodies --state DIR --kind assertion|federation --count N --out FILE
                     [--threads N]";

/// The `sub` of the fake issuer's tokens (a push to main, as GitHub words it).
const SUBJECT: &str = "repo:octo-org/octo-repo:ref:refs/heads/main";
/// Lifetime of every assertion and external token (an assertion may live
/// at most 5 minutes; GitHub's tokens live about as long).
const LIFETIME_SECONDS: i64 = 300;
const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
const TOKEN_EXCHANGE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange";
const JWT_TOKEN_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt";

/// What `keys` leaves for `bodies` (`state.json`, beside the two keys).
struct State {
    alg: Alg,
    server_issuer: String,
    fake_issuer: String,
    client_key: String,
    federated_key: String,
}

fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn load_key(dir: &Path, name: &str, alg: Alg) -> anyhow::Result<JwtKey> {
    let path = state_path(dir, name);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    JwtKey::from_pkcs8(alg, &bytes)
}

fn load_state(dir: &Path) -> anyhow::Result<State> {
    let path = state_path(dir, "state.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).context("state.json")?;
    let field = |name: &str| {
        v[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("state.json has no {name}"))
    };
    Ok(State {
        alg: field("alg")?.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        server_issuer: field("server_issuer")?,
        fake_issuer: field("fake_issuer")?,
        client_key: field("client_key")?,
        federated_key: field("federated_key")?,
    })
}

/// The public JWK of `key` as a JWKS entry: `kid` (its thumbprint), `alg`, `use`.
fn published_jwk(key: &JwtKey) -> anyhow::Result<Value> {
    let mut jwk = key.public_jwk();
    jwk["kid"] = json!(key.thumbprint()?);
    jwk["alg"] = json!(key.alg().name());
    jwk["use"] = json!("sig");
    Ok(jwk)
}

/// The encoded JWT header for `key`: its `alg` and its thumbprint as `kid`.
fn header_for(key: &JwtKey) -> anyhow::Result<String> {
    Ok(encode_header(
        &json!({"typ": "JWT", "alg": key.alg().name(), "kid": key.thumbprint()?}),
    ))
}

fn keys(flags: &Flags) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(flags.required("database-url")?)
        .map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
    let state = PathBuf::from(flags.required("state")?);
    let issuer_dir = PathBuf::from(flags.required("issuer-dir")?);
    let fake_issuer = flags.required("fake-issuer")?.to_owned();
    let server_issuer = flags.required("server-issuer")?.to_owned();
    let prefix = flags.get("prefix").unwrap_or("tm");
    let scopes: Vec<String> = flags
        .get("scopes")
        .unwrap_or("read write")
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let alg: Alg = flags
        .get("alg")
        .unwrap_or("ES256")
        .parse()
        .map_err(|e| anyhow::anyhow!("--alg {e}"))?;
    let client = JwtKey::generate(alg)?;
    let issuer = JwtKey::generate(alg)?;

    let mut pkjwt = bench_key(
        "bench-private-key-jwt".into(),
        new_api_key(prefix, Environment::Live),
        &scopes,
        String::new(),
    );
    pkjwt.credential_type = CredentialType::PrivateKeyJwt;
    pkjwt.jwks = Some(
        ClientJwks::parse(&json!({ "keys": [published_jwk(&client)?] }))
            .map_err(|e| anyhow::anyhow!("the client JWKS: {e}"))?,
    );
    let mut federated = bench_key(
        "bench-federated".into(),
        new_api_key(prefix, Environment::Live),
        &scopes,
        String::new(),
    );
    federated.credential_type = CredentialType::Federated;
    federated.federation = vec![FederationRule {
        issuer: fake_issuer.clone(),
        subject: SUBJECT.into(),
        audience: None, // the server's issuer URL
        claims: serde_json::Map::new(),
    }];

    let db = Db::connect(&url)?;
    db.migrate()?;
    insert_keys(&db, [&pkjwt, &federated])?;

    // What GitHub publishes, at the same paths.
    let base = fake_issuer.trim_end_matches('/');
    let discovery = json!({
        "issuer": fake_issuer,
        "jwks_uri": format!("{base}/.well-known/jwks"),
        "subject_types_supported": ["public", "pairwise"],
        "response_types_supported": ["id_token"],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref",
            "repository", "repository_id", "repository_owner", "repository_owner_id",
            "run_id", "run_number", "run_attempt", "actor", "actor_id", "workflow",
            "event_name", "ref_type", "job_workflow_ref", "runner_environment"],
        "id_token_signing_alg_values_supported": [alg.name()],
        "scopes_supported": ["openid"],
    });
    write_file(
        &issuer_dir.join(".well-known/openid-configuration"),
        discovery.to_string().as_bytes(),
    )?;
    write_file(
        &issuer_dir.join(".well-known/jwks"),
        json!({ "keys": [published_jwk(&issuer)?] })
            .to_string()
            .as_bytes(),
    )?;

    write_file(&state_path(&state, "client.pk8"), client.pkcs8())?;
    write_file(&state_path(&state, "issuer.pk8"), issuer.pkcs8())?;
    let saved = json!({
        "alg": alg.name(),
        "server_issuer": server_issuer,
        "fake_issuer": fake_issuer,
        "client_key": pkjwt.api_key,
        "federated_key": federated.api_key,
    });
    write_file(
        &state_path(&state, "state.json"),
        saved.to_string().as_bytes(),
    )?;
    eprintln!(
        "secretless_seed: private_key_jwt key {} (ES256, kid {}), federated key {} (issuer {fake_issuer}, {}, sub {SUBJECT})",
        pkjwt.api_key,
        client.thumbprint()?,
        federated.api_key,
        alg.name()
    );
    Ok(())
}

/// Makes one form body (its `jti` is `jti`).
type Maker = Box<dyn Fn(&str, i64) -> anyhow::Result<String> + Sync>;

fn assertion_maker(state: &State, dir: &Path) -> anyhow::Result<Maker> {
    let key = load_key(dir, "client.pk8", state.alg)?;
    let header = header_for(&key)?;
    let api_key = state.client_key.clone();
    let aud = format!("{}/auth/token", state.server_issuer);
    Ok(Box::new(move |jti, now| {
        let claims = json!({
            "iss": api_key, "sub": api_key, "aud": aud,
            "iat": now, "exp": now + LIFETIME_SECONDS, "jti": jti,
        });
        let jwt = key.sign_jwt(&header, &claims)?;
        // base64url and dots need no form escaping.
        Ok(format!(
            "grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={jwt}"
        ))
    }))
}

fn federation_maker(state: &State, dir: &Path) -> anyhow::Result<Maker> {
    let key = load_key(dir, "issuer.pk8", state.alg)?;
    let header = header_for(&key)?;
    let (iss, aud, client_id) = (
        state.fake_issuer.clone(),
        state.server_issuer.clone(),
        state.federated_key.clone(),
    );
    Ok(Box::new(move |jti, now| {
        // The claims of a GitHub Actions OIDC token for a push to main, and
        // GitHub's timing: valid from 10 minutes before issue to 5 after.
        let claims = json!({
            "jti": jti,
            "sub": SUBJECT,
            "aud": aud,
            "ref": "refs/heads/main",
            "sha": "d6c6a7f4a0f1a1c9e2e0d3c9b9f7c3e1a5b2c4d6",
            "repository": "octo-org/octo-repo",
            "repository_owner": "octo-org",
            "repository_owner_id": "9919",
            "repository_visibility": "private",
            "repository_id": "74",
            "run_id": "7342001",
            "run_number": "12",
            "run_attempt": "1",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "deploy",
            "event_name": "push",
            "ref_type": "branch",
            "job_workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
            "runner_environment": "github-hosted",
            "iss": iss,
            "nbf": now - 600,
            "iat": now,
            "exp": now + LIFETIME_SECONDS,
        });
        let jwt = key.sign_jwt(&header, &claims)?;
        Ok(format!(
            "grant_type={TOKEN_EXCHANGE}&subject_token={jwt}&subject_token_type={JWT_TOKEN_TYPE}&client_id={client_id}"
        ))
    }))
}

fn bodies(flags: &Flags) -> anyhow::Result<()> {
    let dir = PathBuf::from(flags.required("state")?);
    let kind = flags.required("kind")?;
    let count: usize = flags.parsed_or("count", 0)?;
    if count == 0 {
        bail!("--count N (N > 0) is required\n{USAGE}");
    }
    let out = PathBuf::from(flags.required("out")?);
    let threads: usize = flags
        .parsed_or(
            "threads",
            std::thread::available_parallelism().map_or(2, usize::from),
        )?
        .clamp(1, 64);
    let state = load_state(&dir)?;
    let make = match kind {
        "assertion" => assertion_maker(&state, &dir)?,
        "federation" => federation_maker(&state, &dir)?,
        other => bail!("--kind {other:?}: expected assertion or federation"),
    };
    let started = Instant::now();
    let now = chrono::Utc::now().timestamp();
    // Contiguous chunks signed in parallel, written in order.
    let chunk = count.div_ceil(threads);
    let parts: Vec<anyhow::Result<Vec<String>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let make = &make;
                scope.spawn(move || {
                    (t * chunk..count.min((t + 1) * chunk))
                        .map(|_| make(&uuid::Uuid::new_v4().to_string(), now))
                        .collect::<anyhow::Result<Vec<String>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a signing thread panicked")))
            })
            .collect()
    });
    let file = File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = BufWriter::new(file);
    let mut bytes = 0usize;
    for part in parts {
        for line in part? {
            bytes += line.len() + 1;
            writeln!(w, "{line}")?;
        }
    }
    w.flush()?;
    eprintln!(
        "secretless_seed: {count} {kind} bodies ({:.0} bytes each) signed in {:.1} s -> {}",
        bytes as f64 / count as f64,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let allowed = [
        "database-url",
        "state",
        "issuer-dir",
        "fake-issuer",
        "server-issuer",
        "alg",
        "prefix",
        "scopes",
        "kind",
        "count",
        "out",
        "threads",
    ];
    match command.as_str() {
        "keys" | "bodies" => {
            let flags = Flags::parse(args, &allowed, &[], USAGE)?;
            if command == "keys" {
                keys(&flags)
            } else {
                bodies(&flags)
            }
        }
        "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}
