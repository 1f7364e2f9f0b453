//! The cluster benchmarks of SPEC §9 (issue 8), with real `tokenmint serve`
//! processes on one PostgreSQL database and one Redis, and a TCP proxy this
//! program controls in front of PostgreSQL:
//!
//! - `redis`: warm exchanges of keys with a budget, one replica with Redis
//!   next to the same run without (target: ≥ 70 %);
//! - `fleet`: N clients that each re-exchange at 90 % of their token
//!   lifetime, round-robin over 2 replicas, with and without Redis: argon2
//!   verifies per key per lifetime (target with Redis: ≤ 1.0) and p99;
//! - `outage`: PostgreSQL cut for a while under warm load: share of warm
//!   exchanges that succeed (target ≥ 99 %), time to full service after it
//!   returns (target ≤ 5 s);
//! - `budget`: a key budget hammered round-robin on 3 replicas, with and
//!   without Redis: admitted / budget (target ≤ 1 + replicas / budget).
//!
//! Every case prints one `case key=value …` line. Driven by bench/cluster.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use secrecy::ExposeSecret;
use serde_json::json;
use tokenmint::config::DatabaseUrl;
use tokenmint::db::Db;
use tokenmint::keys::Environment;
use tokenmint::keys::format::{new_api_key, new_api_secret};
use tokenmint::keys::hash::{Argon2Params, SecretHasher};
use tokenmint_bench::{Flags, bench_key, insert_keys};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const USAGE: &str = "\
cluster --bin PATH --database-url URL --redis-url URL --cases \"redis fleet outage budget\"
        [--duration S] [--connections N] [--fleet-clients N] [--fleet-ttl S]
        [--fleet-lifetimes N] [--outage S] [--budget N] [--port-base N]";

/// Cheap argon2 for the seeded keys: what is measured is how often argon2
/// runs, not what one run costs.
const SEED_ARGON2: Argon2Params = Argon2Params {
    m_kib: 256,
    t: 1,
    p: 1,
};

struct Settings {
    bin: String,
    database_url: String,
    redis_url: String,
    duration: Duration,
    connections: usize,
    fleet_clients: usize,
    fleet_ttl: u64,
    fleet_lifetimes: u64,
    outage: Duration,
    budget: u32,
    next_port: AtomicU64,
    keys_dir: tempfile::TempDir,
}

/// A `tokenmint serve` child, killed on drop.
struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Settings {
    /// The variables that point a replica at Redis under `prefix`, or none.
    fn redis_vars<'a>(&'a self, with_redis: bool, prefix: &'a str) -> Vec<(&'a str, &'a str)> {
        if with_redis {
            vec![
                ("TOKENMINT_REDIS_URL", self.redis_url.as_str()),
                ("TOKENMINT_REDIS_PREFIX", prefix),
            ]
        } else {
            vec![]
        }
    }

    async fn replica(&self, database_url: &str, vars: &[(&str, &str)]) -> anyhow::Result<Replica> {
        let port = self.next_port.fetch_add(1, Ordering::SeqCst);
        let bind = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("TOKENMINT_BIND", &bind)
            .env("TOKENMINT_ISSUER", "http://tokenmint.bench")
            .env("TOKENMINT_KEYS_DIR", self.keys_dir.path())
            .env("TOKENMINT_LOG", "warn")
            .env("TOKENMINT_FAILED_AUTH_PER_MINUTE", "1000000")
            .stdout(Stdio::null())
            // BENCH_SERVER_LOGS=1 shows the replicas' logs.
            .stderr(if std::env::var_os("BENCH_SERVER_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let replica = Replica {
            child: cmd.spawn().context("spawn tokenmint")?,
            base: format!("http://{bind}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", replica.base)).send().await
                && r.status() == 200
            {
                return Ok(replica);
            }
            if Instant::now() > deadline {
                bail!("{} did not become ready", replica.base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Keys inserted straight into the database: `(api_key, api_secret)`. One
/// secret (and hash) for all of them keeps seeding fast; every key still
/// has its own id, record and proof.
fn seed(database_url: &str, n: usize, limit: Option<u32>) -> anyhow::Result<Vec<(String, String)>> {
    let db = Db::connect(&DatabaseUrl::parse(database_url).map_err(|e| anyhow!("{e}"))?)?;
    let secret = new_api_secret("tm", Environment::Live);
    let hash = SecretHasher::new(SEED_ARGON2)
        .map_err(|e| anyhow!("{e}"))?
        .hash(&secret)
        .map_err(|e| anyhow!("{e}"))?;
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let mut key = bench_key(
            format!("bench-{i}"),
            new_api_key("tm", Environment::Live),
            &[],
            hash.clone(),
        );
        key.rate_limit_per_minute = limit;
        keys.push(key);
    }
    for chunk in keys.chunks(5000) {
        insert_keys(&db, chunk)?;
    }
    let plain = secret.expose_secret().to_owned();
    Ok(keys
        .into_iter()
        .map(|k| (k.api_key, plain.clone()))
        .collect())
}

/// One exchange: its status and how long it took.
async fn exchange(http: &reqwest::Client, base: &str, pair: &(String, String)) -> (u16, Duration) {
    exchange_from(http, base, pair, None).await
}

/// [`exchange`] with an `X-Forwarded-For` client address (the replicas
/// trust 127.0.0.1 as a proxy).
async fn exchange_from(
    http: &reqwest::Client,
    base: &str,
    pair: &(String, String),
    from: Option<&str>,
) -> (u16, Duration) {
    let body = json!({ "api_key": pair.0, "api_secret": pair.1 }).to_string();
    let started = Instant::now();
    let mut req = http
        .post(format!("{base}/auth/token"))
        .header("content-type", "application/json");
    if let Some(ip) = from {
        req = req.header("x-forwarded-for", ip);
    }
    let status = match req.body(body).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            status
        }
        Err(_) => 0,
    };
    (status, started.elapsed())
}

/// The sum of an unlabelled metric over `bases`.
async fn metric(http: &reqwest::Client, bases: &[&str], name: &str) -> anyhow::Result<f64> {
    let mut sum = 0.0;
    for base in bases {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        sum += text
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0);
    }
    Ok(sum)
}

/// `connections` loops exchanging `pairs` in turn against `bases` (round
/// robin) until `stop`; returns (ok, failed) counts.
async fn load(
    bases: Vec<String>,
    pairs: Arc<Vec<(String, String)>>,
    connections: usize,
    stop: Arc<AtomicBool>,
    failed_at: Option<Arc<std::sync::Mutex<Vec<Instant>>>>,
) -> (u64, u64) {
    let http = reqwest::Client::new();
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (http, bases, pairs, stop) = (http.clone(), bases.clone(), pairs.clone(), stop.clone());
        let (ok, bad, failed_at) = (ok.clone(), bad.clone(), failed_at.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let base = &bases[i % bases.len()];
                let (status, _) = exchange(&http, base, &pairs[i % pairs.len()]).await;
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    bad.fetch_add(1, Ordering::Relaxed);
                    if let Some(log) = &failed_at
                        && let Ok(mut log) = log.lock()
                    {
                        log.push(Instant::now());
                    }
                }
                i += connections;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed))
}

/// Runs [`load`] for `d`; returns requests per second and failures.
async fn rate_for(
    bases: Vec<String>,
    pairs: Arc<Vec<(String, String)>>,
    connections: usize,
    d: Duration,
) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(load(bases, pairs, connections, stop.clone(), None));
    tokio::time::sleep(d).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, bad) = run.await.unwrap_or((0, 0));
    (ok as f64 / d.as_secs_f64(), bad)
}

/// Warms every pair on every base once.
async fn warm(bases: &[&str], pairs: &[(String, String)]) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for base in bases {
        for pair in pairs {
            let (status, _) = exchange(&http, base, pair).await;
            if status != 200 {
                bail!("warming {} at {base}: {status}", pair.0);
            }
        }
    }
    Ok(())
}

async fn case_redis(s: &Settings) -> anyhow::Result<()> {
    let pairs = Arc::new(seed(&s.database_url, 200, Some(100_000_000))?);
    let prefix = format!("tokenmint-bench:{}:", uuid::Uuid::new_v4().simple());
    let mut rates = Vec::new();
    for with_redis in [false, true] {
        let vars = s.redis_vars(with_redis, &prefix);
        let r = s.replica(&s.database_url, &vars).await?;
        warm(&[&r.base], &pairs).await?;
        // A short run first, so both measured runs start equally warm.
        rate_for(
            vec![r.base.clone()],
            pairs.clone(),
            s.connections,
            Duration::from_secs(2),
        )
        .await;
        let (rate, bad) = rate_for(
            vec![r.base.clone()],
            pairs.clone(),
            s.connections,
            s.duration,
        )
        .await;
        if bad > 0 {
            bail!("{bad} warm exchanges failed (redis={with_redis})");
        }
        println!(
            "redis_warm redis={with_redis} rps={rate:.0} connections={}",
            s.connections
        );
        rates.push(rate);
    }
    println!(
        "redis_warm_ratio ratio={:.3} target=0.70 {}",
        rates[1] / rates[0],
        if rates[1] / rates[0] >= 0.7 {
            "PASS"
        } else {
            "MISS"
        }
    );
    Ok(())
}

async fn case_fleet(s: &Settings) -> anyhow::Result<()> {
    for with_redis in [true, false] {
        let pairs = seed(&s.database_url, s.fleet_clients, None)?;
        let prefix = format!("tokenmint-bench:{}:", uuid::Uuid::new_v4().simple());
        let ttl = s.fleet_ttl.to_string();
        let mut vars = s.redis_vars(with_redis, &prefix);
        vars.push(("TOKENMINT_TOKEN_TTL_SECONDS", ttl.as_str()));
        // Each client has an address of its own, as a real fleet does (one
        // address may hold only its share of the argon2 pool).
        vars.push(("TOKENMINT_TRUSTED_PROXIES", "127.0.0.1/32"));
        let a = s.replica(&s.database_url, &vars).await?;
        let b = s.replica(&s.database_url, &vars).await?;
        let bases = [a.base.clone(), b.base.clone()];
        let http = reqwest::Client::new();
        let argon2 = "tokenmint_argon2_verify_seconds_count";
        let before = metric(&http, &[&a.base, &b.base], argon2).await?;
        // Each client exchanges at a random phase in the first period, then
        // every 90 % of the lifetime, alternating replicas.
        let period = Duration::from_secs_f64(s.fleet_ttl as f64 * 0.9);
        let run_for = Duration::from_secs(s.fleet_ttl * s.fleet_lifetimes);
        let started = Instant::now();
        let latencies = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
        let failures = Arc::new(AtomicU64::new(0));
        let limiter = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::new();
        for (n, pair) in pairs.into_iter().enumerate() {
            let (http, bases, latencies, failures, limiter) = (
                http.clone(),
                bases.clone(),
                latencies.clone(),
                failures.clone(),
                limiter.clone(),
            );
            let phase = period.mul_f64(n as f64 / s.fleet_clients as f64);
            tasks.push(tokio::spawn(async move {
                let mut k = 0u64;
                loop {
                    let at = phase + period * (k as u32);
                    if at >= run_for {
                        return;
                    }
                    tokio::time::sleep_until((started + at).into()).await;
                    let Ok(_permit) = limiter.acquire().await else {
                        return;
                    };
                    let base = &bases[(n + k as usize) % 2];
                    let from = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
                    let (status, took) = exchange_from(&http, base, &pair, Some(&from)).await;
                    if status == 200 {
                        if let Ok(mut l) = latencies.lock() {
                            l.push(took);
                        }
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    k += 1;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let verifies = metric(&http, &[&a.base, &b.base], argon2).await? - before;
        let mut l = latencies.lock().map_err(|_| anyhow!("poisoned"))?.clone();
        l.sort();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        let per_key_lifetime = verifies / (s.fleet_clients as f64 * s.fleet_lifetimes as f64);
        println!(
            "fleet redis={with_redis} clients={} ttl={} lifetimes={} exchanges={} failures={} argon2_verifies={verifies:.0} per_key={:.3} per_key_per_lifetime={per_key_lifetime:.3} p50_ms={:.2} p99_ms={:.2} {}",
            s.fleet_clients,
            s.fleet_ttl,
            s.fleet_lifetimes,
            l.len(),
            failures.load(Ordering::Relaxed),
            verifies / s.fleet_clients as f64,
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            if !with_redis {
                "REPORT"
            } else if per_key_lifetime <= 1.0 {
                "PASS"
            } else {
                "MISS"
            }
        );
    }
    Ok(())
}

/// Forwards local connections to `upstream` while open; closing cuts every
/// connection and refuses new ones.
struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let open = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = watch::channel(0u64);
        let is_open = open.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !is_open.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Ok(Proxy { addr, open, cut })
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
        if !open {
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

async fn case_outage(s: &Settings) -> anyhow::Result<()> {
    let mut url = url::Url::parse(&s.database_url)?;
    let upstream = url
        .socket_addrs(|| Some(5432))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no address for the database"))?;
    let proxy = Proxy::start(upstream).await?;
    url.set_host(Some("127.0.0.1"))?;
    url.set_port(Some(proxy.addr.port()))
        .map_err(|()| anyhow!("port"))?;
    let pairs = Arc::new(seed(&s.database_url, 200, None)?);
    let fresh = seed(&s.database_url, 50, None)?;
    let r = s.replica(url.as_str(), &[]).await?;
    warm(&[&r.base], &pairs).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let failed_at = Arc::new(std::sync::Mutex::new(Vec::new()));
    let run = tokio::spawn(load(
        vec![r.base.clone()],
        pairs.clone(),
        s.connections,
        stop.clone(),
        Some(failed_at.clone()),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set_open(false);
    let cut_at = Instant::now();
    tokio::time::sleep(s.outage).await;
    proxy.set_open(true);
    let back_at = Instant::now();
    // Full service: ready, and a key never seen before exchanges (a cold
    // exchange needs the database).
    let http = reqwest::Client::new();
    let mut fresh_keys = fresh.iter();
    let recovered = loop {
        let ready = http
            .get(format!("{}/readyz", r.base))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        if ready
            && let Some(pair) = fresh_keys.next()
            && exchange(&http, &r.base, pair).await.0 == 200
        {
            break back_at.elapsed();
        }
        if back_at.elapsed() > Duration::from_secs(60) {
            bail!("no full service 60 s after the database returned");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, bad) = run.await.unwrap_or((0, 0));
    let during = failed_at
        .lock()
        .map_err(|_| anyhow!("poisoned"))?
        .iter()
        .filter(|t| **t >= cut_at && **t <= back_at)
        .count();
    let share = ok as f64 / (ok + bad).max(1) as f64;
    println!(
        "outage seconds={} warm_ok={ok} warm_failed={bad} failed_during_outage={during} success_share={share:.4} recovery_s={:.2} {}",
        s.outage.as_secs(),
        recovered.as_secs_f64(),
        if share >= 0.99 && recovered <= Duration::from_secs(5) {
            "PASS"
        } else {
            "MISS"
        }
    );
    Ok(())
}

async fn case_budget(s: &Settings) -> anyhow::Result<()> {
    let replicas = 3;
    for with_redis in [true, false] {
        let pairs = seed(&s.database_url, 1, Some(s.budget))?;
        let prefix = format!("tokenmint-bench:{}:", uuid::Uuid::new_v4().simple());
        let vars = s.redis_vars(with_redis, &prefix);
        let mut rs = Vec::new();
        for _ in 0..replicas {
            rs.push(s.replica(&s.database_url, &vars).await?);
        }
        let bases: Vec<String> = rs.iter().map(|r| r.base.clone()).collect();
        let http = reqwest::Client::new();
        let attempts = s.budget as usize * 3;
        let admitted = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for c in 0..8 {
            let (http, bases, pair, admitted) = (
                http.clone(),
                bases.clone(),
                pairs[0].clone(),
                admitted.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut i = c;
                while i < attempts {
                    if exchange(&http, &bases[i % bases.len()], &pair).await.0 == 200 {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 8;
                }
            }));
        }
        let started = Instant::now();
        for t in tasks {
            let _ = t.await;
        }
        let admitted = admitted.load(Ordering::Relaxed) as f64;
        let ratio = admitted / f64::from(s.budget);
        let bound = 1.0 + replicas as f64 / f64::from(s.budget);
        println!(
            "budget redis={with_redis} replicas={replicas} budget={} attempts={attempts} seconds={:.1} admitted={admitted:.0} ratio={ratio:.3} bound={bound:.3} {}",
            s.budget,
            started.elapsed().as_secs_f64(),
            if !with_redis {
                "REPORT"
            } else if ratio <= bound {
                "PASS"
            } else {
                "MISS"
            }
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(
        &[
            "bin",
            "database-url",
            "redis-url",
            "cases",
            "duration",
            "connections",
            "fleet-clients",
            "fleet-ttl",
            "fleet-lifetimes",
            "outage",
            "budget",
            "port-base",
        ],
        &[],
        USAGE,
    )?;
    let s = Settings {
        bin: flags.required("bin")?.to_owned(),
        database_url: flags.required("database-url")?.to_owned(),
        redis_url: flags.required("redis-url")?.to_owned(),
        duration: Duration::from_secs(flags.parsed_or("duration", 10)?),
        connections: flags.parsed_or("connections", 32)?,
        fleet_clients: flags.parsed_or("fleet-clients", 20_000)?,
        fleet_ttl: flags.parsed_or("fleet-ttl", 60)?,
        fleet_lifetimes: flags.parsed_or("fleet-lifetimes", 3)?,
        outage: Duration::from_secs(flags.parsed_or("outage", 60)?),
        budget: flags.parsed_or("budget", 300)?,
        next_port: AtomicU64::new(flags.parsed_or("port-base", 18_600)?),
        keys_dir: tempfile::tempdir()?,
    };
    let cases = flags
        .get("cases")
        .unwrap_or("redis fleet outage budget")
        .to_owned();
    for case in cases.split_whitespace() {
        eprintln!(
            "[cluster {}] case {case}",
            chrono::Utc::now().format("%H:%M:%S")
        );
        match case {
            "redis" => case_redis(&s).await?,
            "fleet" => case_fleet(&s).await?,
            "outage" => case_outage(&s).await?,
            "budget" => case_budget(&s).await?,
            other => bail!("unknown case {other:?}\n{USAGE}"),
        }
    }
    Ok(())
}
