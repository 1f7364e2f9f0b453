//! The command line: `serve` (default), `migrate`, `api-key …`,
//! `signing-key …`. Machine output is JSON on stdout; logs go to stderr.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::audit::Actor;
use crate::config::Config;
use crate::db::Db;
use crate::keys::hash::{HashPool, SecretHasher};
use crate::keys::request::{CreateKeyRequest, Invalid};
use crate::keys::service::KeyService;
use crate::keys::store::KeyFilter;
use crate::keys::{ApiKeyWithSecret, KeyStatus, now_micros};
use crate::serve;
use crate::tokens::signing::{self, SigningAlg};

/// tokenmint: API keys in, short-lived signed JWTs out.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// A TOML file with settings (environment variables override it).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys directly in the database.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Manage signing keys in the keys folder.
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key and print it with its secret (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// A scope; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// live or test.
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        /// RFC 3339 time, e.g. 2030-01-01T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
        /// Refuse exchanges without a DPoP proof.
        #[arg(long)]
        require_dpop: bool,
        /// secret (default), private_key_jwt (with --jwks) or federated
        /// (with --federation).
        #[arg(long)]
        credential_type: Option<String>,
        /// A file holding the key's public JWK set (`{"keys": [...]}`).
        #[arg(long, value_name = "FILE")]
        jwks: Option<std::path::PathBuf>,
        /// A file holding the key's federation rules (a JSON array).
        #[arg(long, value_name = "FILE")]
        federation: Option<std::path::PathBuf>,
    },
    /// List keys, newest first.
    List {
        /// active, expired or revoked.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Revoke a key by id.
    Revoke { id: uuid::Uuid },
}

#[derive(Subcommand, Debug)]
pub enum SigningKeyCommand {
    /// Write a new signing key. Running servers publish it within seconds
    /// and sign with it after TOKENMINT_SIGNING_KEY_PUBLISH_SECONDS.
    Generate {
        /// ES256, RS256 or EdDSA (default: TOKENMINT_SIGNING_ALG).
        #[arg(long)]
        alg: Option<String>,
    },
    /// List the signing keys, newest first, with their state (pending,
    /// active, retiring, retired, revoked) and until when it holds.
    List,
    /// Take a key out of the JWKS at once (its file becomes
    /// `{name}.revoked`); its tokens are refused within seconds. Revoking
    /// the active key makes the newest remaining key sign at once.
    Revoke { kid: String },
}

fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a parsed command.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let db = crate::db::Db::connect(&config.database_url)?;
            db.migrate()
                .with_context(|| format!("database {}", config.database_url.redacted()))?;
            print(&json!({ "migrated": true }))
        }
        Command::ApiKey(cmd) => api_key(cmd, config).await,
        Command::SigningKey(cmd) => signing_key(cmd, &config),
    }
}

/// Only what key management needs: the database (migrated) and one argon2
/// thread; no server state, no background work, no signing key.
fn key_service(config: &Config) -> anyhow::Result<KeyService> {
    let db = Db::connect(&config.database_url)?;
    db.migrate()
        .with_context(|| format!("database {}", config.database_url.redacted()))?;
    let hasher =
        SecretHasher::new(config.argon2).map_err(|e| anyhow::anyhow!("TOKENMINT_ARGON2_*: {e}"))?;
    Ok(KeyService::new(
        db,
        HashPool::start(hasher, 1, 4),
        config.key_policy(),
    ))
}

/// A JSON document from a file named on the command line.
fn read_json(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

async fn api_key(cmd: ApiKeyCommand, config: Config) -> anyhow::Result<()> {
    let keys = key_service(&config)?;
    match cmd {
        ApiKeyCommand::Create {
            name,
            scopes,
            environment,
            subject,
            expires_at,
            require_dpop,
            credential_type,
            jwks,
            federation,
        } => {
            let now = now_micros();
            let request = CreateKeyRequest {
                name: Some(name),
                scopes: Some(scopes),
                environment,
                subject,
                expires_at,
                require_dpop: Some(require_dpop),
                credential_type,
                jwks: jwks.as_deref().map(read_json).transpose()?,
                federation: federation.as_deref().map(read_json).transpose()?,
                ..CreateKeyRequest::default()
            };
            let new = request.validate_into(&keys.rules(now)).map_err(describe)?;
            let (key, secret) = keys
                .create(new, Actor::cli(), now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print(&ApiKeyWithSecret {
                key: key.view(now_micros()),
                api_secret: secret.map(|s| s.expose_secret().to_owned()),
            })
        }
        ApiKeyCommand::List { status, limit } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(
                    KeyStatus::parse(s).context("--status must be active, expired or revoked")?,
                ),
            };
            let filter = KeyFilter {
                status,
                ..KeyFilter::default()
            };
            let list = keys
                .list(filter, None, limit.clamp(1, 10_000))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let now = now_micros();
            print(&list.iter().map(|k| k.view(now)).collect::<Vec<_>>())
        }
        ApiKeyCommand::Revoke { id } => {
            let key = keys
                .revoke(id, Actor::cli())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print(&key.view(now_micros()))
        }
    }
}

/// One line naming every bad field.
fn describe(e: Invalid) -> anyhow::Error {
    anyhow::anyhow!(
        "invalid input: {}",
        e.0.iter()
            .map(|f| format!("{} {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

fn signing_key(cmd: SigningKeyCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        SigningKeyCommand::Generate { alg } => {
            let alg = match alg {
                Some(a) => a
                    .parse::<SigningAlg>()
                    .map_err(|e| anyhow::anyhow!("--alg: {e}"))?,
                None => config.signing_alg,
            };
            let key = signing::generate_into(&config.keys_dir, alg)?;
            print(&json!({ "kid": key.kid, "alg": key.alg.as_str(), "path": key.path }))
        }
        SigningKeyCommand::List => print(&signing::describe(
            &config.keys_dir,
            config.signing_timing(),
            SystemTime::now(),
        )?),
        SigningKeyCommand::Revoke { kid } => print(&signing::revoke(
            &config.keys_dir,
            &kid,
            config.signing_timing(),
            SystemTime::now(),
        )?),
    }
}
