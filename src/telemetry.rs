//! Logs (tracing) and Prometheus metrics. The metric registry is process-wide,
//! like every Prometheus client's default registry.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Starts logging to stderr with the configured filter and format.
pub fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolState {
    state: String,
}

struct Metrics {
    registry: Registry,
    exchanges: Family<Outcome, Counter>,
    argon2: Histogram,
    cache_hits: Counter,
    cache_misses: Counter,
    stale_served: Counter,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histogram,
    pool: Family<PoolState, Gauge>,
    usage_flush: Histogram,
    usage_flushes: Family<Outcome, Counter>,
    usage_dropped: Counter,
    redis_up: Gauge,
    signing_keys: Family<KeyStateLabel, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyStateLabel {
    state: &'static str,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("tokenmint");
    let exchanges = Family::<Outcome, Counter>::default();
    registry.register(
        "token_exchanges",
        "Token exchanges by outcome",
        exchanges.clone(),
    );
    let argon2 = Histogram::new(exponential_buckets(0.002, 2.0, 10));
    registry.register(
        "argon2_verify_seconds",
        "Time of one argon2 secret verification",
        argon2.clone(),
    );
    let cache_hits = Counter::default();
    registry.register(
        "verify_cache_hits",
        "Exchanges verified without argon2",
        cache_hits.clone(),
    );
    let cache_misses = Counter::default();
    registry.register(
        "verify_cache_misses",
        "Exchanges that needed argon2",
        cache_misses.clone(),
    );
    let stale_served = Counter::default();
    registry.register(
        "stale_records_served",
        "Key records served from memory while the database was unreachable",
        stale_served.clone(),
    );
    let http_requests = Family::<HttpLabels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP requests by method and status",
        http_requests.clone(),
    );
    let http_duration = Histogram::new(exponential_buckets(0.0001, 2.5, 12));
    registry.register(
        "http_request_duration_seconds",
        "HTTP request latency",
        http_duration.clone(),
    );
    let pool = Family::<PoolState, Gauge>::default();
    registry.register(
        "db_pool_connections",
        "Database pool connections by state",
        pool.clone(),
    );
    let usage_flush = Histogram::new(exponential_buckets(0.0005, 2.5, 10));
    registry.register(
        "usage_flush_seconds",
        "Time of one batched write of usage data",
        usage_flush.clone(),
    );
    let usage_flushes = Family::<Outcome, Counter>::default();
    registry.register(
        "usage_flushes",
        "Batched writes of usage data by outcome (ok, error; an error is retried)",
        usage_flushes.clone(),
    );
    let usage_dropped = Counter::default();
    registry.register(
        "usage_dropped",
        "Exchanges left out of per-key usage because too many keys were busy between two flushes",
        usage_dropped.clone(),
    );
    let redis_up = Gauge::default();
    registry.register(
        "redis_up",
        "1 when the last call to Redis succeeded; 0 when it failed, none was made yet, or no Redis is configured",
        redis_up.clone(),
    );
    let signing_keys = Family::<KeyStateLabel, Gauge>::default();
    registry.register(
        "signing_keys",
        "Signing keys in the keys folder by state (pending, active, retiring: published; retired)",
        signing_keys.clone(),
    );
    Metrics {
        signing_keys,
        redis_up,
        registry,
        usage_flush,
        usage_flushes,
        usage_dropped,
        exchanges,
        argon2,
        cache_hits,
        cache_misses,
        stale_served,
        http_requests,
        http_duration,
        pool,
    }
});

/// Whether Redis answered the last call.
pub fn redis_up(up: bool) {
    METRICS.redis_up.set(i64::from(up));
}

/// Counts one exchange outcome (`issued`, `invalid_client`, …).
pub fn exchange_outcome(outcome: &'static str) {
    METRICS.exchanges.get_or_create(&Outcome { outcome }).inc();
}

/// Records one argon2 verification.
pub fn observe_argon2(seconds: f64) {
    METRICS.argon2.observe(seconds);
}

/// Records whether an exchange could skip argon2.
pub fn verify_cache(hit: bool) {
    if hit {
        METRICS.cache_hits.inc();
    } else {
        METRICS.cache_misses.inc();
    }
}

/// A key record served stale during a database outage.
pub fn stale_record_served() {
    METRICS.stale_served.inc();
}

/// A bounded label for a request method: any other method name a client
/// invents is `other`, so no one can grow the metric series at will.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Records one HTTP request.
pub fn observe_http(method: &'static str, status: u16, micros: u64) {
    METRICS
        .http_requests
        .get_or_create(&HttpLabels { method, status })
        .inc();
    METRICS.http_duration.observe(micros as f64 / 1e6);
}

/// Records one batched write of usage data.
pub fn usage_flush(seconds: f64, ok: bool) {
    METRICS.usage_flush.observe(seconds);
    let outcome = if ok { "ok" } else { "error" };
    METRICS
        .usage_flushes
        .get_or_create(&Outcome { outcome })
        .inc();
}

/// Counts exchanges that per-key usage could not hold.
pub fn usage_dropped(n: u64) {
    METRICS.usage_dropped.inc_by(n);
}

/// Sets the pool gauges.
pub fn set_pool(total: u32, idle: u32) {
    METRICS
        .pool
        .get_or_create(&PoolState {
            state: "idle".into(),
        })
        .set(i64::from(idle));
    METRICS
        .pool
        .get_or_create(&PoolState {
            state: "in_use".into(),
        })
        .set(i64::from(total.saturating_sub(idle)));
}

/// Sets the signing key gauges from each key's state name.
pub fn set_signing_keys<'a>(states: impl Iterator<Item = &'a str>) {
    let mut counts = [
        ("pending", 0),
        ("active", 0),
        ("retiring", 0),
        ("retired", 0),
    ];
    for state in states {
        if let Some((_, n)) = counts.iter_mut().find(|(s, _)| *s == state) {
            *n += 1;
        }
    }
    for (state, n) in counts {
        METRICS
            .signing_keys
            .get_or_create(&KeyStateLabel { state })
            .set(n);
    }
}

/// The Prometheus text exposition.
pub fn render() -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &METRICS.registry).is_err() {
        out.clear();
    }
    out
}
