//! tokenmint: a token-exchange auth server. API keys in, short-lived signed
//! JWTs out, verifiable offline against the published JWKS.
//!
//! Where things live: `keys/` (API keys: formats, hashing, storage,
//! lifecycle), `tokens/` (signing keys, JWT issue and verification, the
//! exchange), `http/` (handlers by domain), `db/` (both backends), `cli.rs`.

pub mod audit;
pub mod background;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod http;
pub mod keys;
pub mod net;
pub mod telemetry;
pub mod tokens;
pub mod usage;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use config::Config;
use db::Db;
use keys::cache::{CacheLimits, KeyCache};
use keys::hash::{HashPool, SecretHasher};
use keys::service::KeyService;
use tokenmint_verify::dpop::ProofChecker;

use crate::cluster::Redis;
use tokens::TokenIssuer;
use tokens::exchange::Exchanger;
use tokens::federation::Federation;
use tokens::limits::Limits;
use tokens::replay::SeenOnce;
use tokens::signing::KeyWatch;
use usage::UsageLog;

/// Everything the handlers share.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: KeyService,
    pub exchanger: Exchanger,
    pub issuer: TokenIssuer,
    pub usage: Arc<UsageLog>,
    pub cache: Arc<KeyCache>,
    /// The argon2 pool (shared with the exchange and key management).
    pub hashes: HashPool,
    pub limits: Arc<Limits>,
    /// Usage flushes, cache invalidation and the keys folder poll; stop when
    /// dropped.
    pub background: background::Background,
}

impl AppState {
    /// Builds the state: the pool (not yet connected), the signing keys (one
    /// is generated if the folder is empty; the folder is then followed) and
    /// the argon2 pool.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database_url)?;
        let redis = match &config.redis_url {
            Some(url) => Some(Arc::new(
                Redis::new(url, &config.redis_prefix)
                    .map_err(|e| anyhow::anyhow!("TOKENMINT_REDIS_URL: {e}"))?,
            )),
            None => None,
        };
        let key_watch = KeyWatch::start(
            &config.keys_dir,
            config.signing_alg,
            config.signing_timing(),
        )
        .map_err(|e| anyhow::anyhow!("signing keys: {e}"))?;
        let hasher = SecretHasher::new(config.argon2)
            .map_err(|e| anyhow::anyhow!("TOKENMINT_ARGON2_*: {e}"))?;
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let hashes = HashPool::start(hasher, threads, 32 * threads);
        let issuer = TokenIssuer::new(
            key_watch.live(),
            config.issuer.clone(),
            config.token_ttl_seconds,
        );
        let usage = Arc::new(UsageLog::default());
        let policy = config.key_policy();
        // A client re-exchanging before its token expires never pays argon2.
        let cache = Arc::new(KeyCache::new(CacheLimits {
            verified_ttl: verified_ttl(&config),
            stale_if_error: Duration::from_secs(u64::from(config.stale_if_error_seconds)),
            ..CacheLimits::default()
        }));
        let proofs = match &redis {
            Some(redis) => shared_proofs(&config, redis.clone())?,
            None => None,
        };
        // One address may hold as many argon2 jobs as there are threads: it
        // can use the whole pool when alone, never queue ahead of everyone.
        let limits = Arc::new(
            Limits::new(
                config.failed_auth_per_minute,
                config.rate_limit_per_minute,
                u32::try_from(threads).unwrap_or(u32::MAX),
            )
            .with_redis(redis.clone()),
        );
        let local = cache.clone();
        let keys = KeyService::new(db.clone(), hashes.clone(), policy)
            .with_change_hook(Arc::new(move |_, api_key: &str| local.invalidate(api_key)));
        let exchanger = Exchanger {
            db: db.clone(),
            hashes: hashes.clone(),
            issuer: issuer.clone(),
            prefix: config.key_prefix.clone(),
            default_audience: config.audience.clone(),
            usage: usage.clone(),
            cache: cache.clone(),
            limits: limits.clone(),
            dpop: Arc::new(ProofChecker::new()),
            token_endpoint: format!("{}/auth/token", config.issuer),
            seen: SeenOnce::new(redis.clone()),
            redis,
            federation: Federation::new(&config.federation_issuers),
            proofs,
        };
        let background = background::start(
            &config.database_url,
            db.clone(),
            usage.clone(),
            cache.clone(),
            limits.clone(),
            config.usage_retention_days,
        )?
        .with(key_watch.spawn()?);
        Ok(Self {
            config: Arc::new(config),
            db,
            keys,
            exchanger,
            issuer,
            usage,
            cache,
            hashes,
            limits,
            background,
        })
    }
}

/// How long a verified secret skips argon2: one token lifetime + 5 min.
fn verified_ttl(config: &Config) -> Duration {
    Duration::from_secs(u64::from(config.token_ttl_seconds) + 300)
}

/// Verified secrets shared through Redis under the keys folder's cluster
/// key; per replica (with a warning) when the folder is read-only and
/// holds none.
fn shared_proofs(
    config: &Config,
    redis: Arc<Redis>,
) -> anyhow::Result<Option<Arc<cluster::proofs::SharedProofs>>> {
    use cluster::proofs::{CLUSTER_KEY_FILE, SharedProofs, load_or_create_key};
    match load_or_create_key(&config.keys_dir) {
        Ok(Some(material)) => Ok(Some(Arc::new(SharedProofs::new(
            redis,
            &material,
            verified_ttl(config),
        )))),
        Ok(None) => {
            tracing::warn!(
                keys_dir = %config.keys_dir.display(),
                "the keys folder is read-only and holds no {CLUSTER_KEY_FILE}: verified secrets are not shared between replicas (each pays argon2 once per key)"
            );
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!("cluster key: {e}")),
    }
}

/// The application: middleware and every route. Used by `serve` and by the
/// integration tests, so both run the same app.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state.clone())
        .wrap(from_fn(http::request_context))
        .configure(|cfg| http::configure(cfg, &state))
}

/// The operations listener (`TOKENMINT_OPS_BIND`): `/healthz`, `/readyz` and
/// `/metrics` only, so probes and scrapes answer even while the main
/// listener is at its connection cap.
pub fn ops_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .wrap(from_fn(http::request_context))
        .configure(http::configure_ops)
}

/// Runs the server until SIGTERM/SIGINT: migrations first, then HTTP, then a
/// final flush of usage data once in-flight requests have finished.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    let state = web::Data::new(AppState::build(config)?);
    state
        .db
        .migrate()
        .map_err(|e| anyhow::anyhow!("database {}: {e}", state.config.database_url.redacted()))?;
    if let Some(signer) = state.issuer.ring().signer(std::time::SystemTime::now()) {
        tracing::info!(kid = %signer.kid, alg = signer.alg.as_str(), "signing key loaded");
    }
    let factory_state = state.clone();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    // actix counts connections per worker; the cap is for the whole server.
    let per_worker = (state.config.max_connections as usize).div_ceil(workers);
    let server = HttpServer::new(move || app(factory_state.clone()))
        .workers(workers)
        .max_connections(per_worker)
        .client_request_timeout(Duration::from_secs(5))
        .shutdown_timeout(10)
        .bind(bind)
        .map_err(|e| anyhow::anyhow!("TOKENMINT_BIND {bind}: {e}"))?
        .run();
    let ops = match state.config.ops_bind {
        Some(ops_bind) => {
            let ops_state = state.clone();
            let ops = HttpServer::new(move || ops_app(ops_state.clone()))
                .workers(1)
                .shutdown_timeout(10)
                .bind(ops_bind)
                .map_err(|e| anyhow::anyhow!("TOKENMINT_OPS_BIND {ops_bind}: {e}"))?
                .run();
            tracing::info!(%ops_bind, "operations listener");
            Some(ops)
        }
        None => None,
    };
    tracing::info!(%bind, issuer = %state.config.issuer, database = %state.config.database_url.redacted(), "tokenmint listening");
    match ops {
        Some(ops) => {
            futures_util::future::try_join(server, ops).await?;
        }
        None => server.await?,
    }
    if let Err(e) = state.usage.flush(&state.db, true).await {
        tracing::warn!(error = %e, "final usage flush failed");
    }
    // Drop the last references so background threads stop and are waited
    // for before the process exits.
    drop(state);
    tracing::info!("stopped");
    Ok(())
}
