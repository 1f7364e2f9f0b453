//! A cluster of `serve` replicas on one PostgreSQL database, one keys
//! folder and (optionally) one Redis, and the calls the cluster tests make.

use std::path::Path;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::{Value, json};

use super::PgDatabase;
use super::replicas::{Server, spawn_server, tokenmint, wait_ready};

/// Runs a CLI command to success and parses its JSON output.
pub fn cli_json(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Value {
    let out = tokenmint(dir, args, vars).output().unwrap();
    assert!(
        out.status.success(),
        "tokenmint {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One HTTP answer: status, headers of interest, JSON body (or null).
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub remaining: Option<u32>,
    pub body: Value,
}

/// Several `serve` replicas sharing one PostgreSQL database and one keys
/// folder, and each other's Redis when asked. Everything goes on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub database_url: String,
    vars: Vec<(String, String)>,
    pub replicas: Vec<(Server, String)>,
    pub admin_key: String,
    pub admin_secret: String,
    pub client: awc::Client,
    _pg: PgDatabase,
}

impl Cluster {
    /// A fresh database, migrated, with an admin key; no replica yet.
    pub fn prepare(vars: &[(&str, &str)]) -> Cluster {
        let (pg, database_url) = PgDatabase::create();
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys").display().to_string();
        let mut all: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.clone()),
            ("TOKENMINT_KEYS_DIR".into(), keys),
            ("TOKENMINT_ISSUER".into(), "http://tokenmint.test".into()),
            ("TOKENMINT_LOG".into(), "warn".into()),
            ("TOKENMINT_TRUSTED_PROXIES".into(), "127.0.0.1/32".into()),
        ];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut cluster = Cluster {
            dir,
            database_url,
            vars: all,
            replicas: Vec::new(),
            admin_key: String::new(),
            admin_secret: String::new(),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish(),
            _pg: pg,
        };
        cluster.cli(&["migrate"]);
        cluster.cli(&["signing-key", "generate"]);
        let admin = cluster.cli(&[
            "api-key",
            "create",
            "--name",
            "root",
            "--scope",
            "tokenmint:admin",
        ]);
        cluster.admin_key = admin["api_key"].as_str().unwrap().to_owned();
        cluster.admin_secret = admin["api_secret"].as_str().unwrap().to_owned();
        cluster
    }

    /// `n` replicas, started together, each with `extra` on top of the
    /// cluster's variables.
    pub async fn start(vars: &[(&str, &str)], n: usize) -> Cluster {
        let mut cluster = Self::prepare(vars);
        cluster.add_replicas(n, &[]).await;
        cluster
    }

    /// Starts `n` more replicas together, with `extra` variables.
    pub async fn add_replicas(&mut self, n: usize, extra: &[(&str, &str)]) {
        let mut vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        vars.extend_from_slice(extra);
        let started: Vec<_> = (0..n)
            .map(|_| spawn_server(self.dir.path(), &vars))
            .collect();
        for (_, base) in &started {
            wait_ready(base).await;
        }
        self.replicas.extend(started);
    }

    /// Runs a CLI command with the cluster's configuration.
    pub fn cli(&self, args: &[&str]) -> Value {
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        cli_json(self.dir.path(), args, &vars)
    }

    pub fn base(&self, i: usize) -> &str {
        &self.replicas[i].1
    }

    /// A JSON request to replica `i` (`body` null: none).
    pub async fn call(
        &self,
        i: usize,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Value,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = format!("{}{path}", self.base(i));
        let mut req = self
            .client
            .request(method.parse().unwrap(), url)
            .timeout(Duration::from_secs(10));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut res = if body.is_null() {
            req.send().await
        } else {
            req.send_json(&body).await
        }
        .unwrap();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after");
        let remaining = header("ratelimit-remaining").and_then(|v| v.parse().ok());
        let bytes = res.body().limit(1 << 20).await.unwrap();
        Answer {
            status: res.status(),
            retry_after,
            remaining,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// `POST /auth/token` with a key and secret at replica `i`, from
    /// `client_ip` (the replicas trust 127.0.0.1 as a proxy).
    pub async fn exchange(&self, i: usize, key: &str, secret: &str, client_ip: &str) -> Answer {
        self.call(
            i,
            "POST",
            "/auth/token",
            None,
            json!({ "api_key": key, "api_secret": secret }),
            &[("x-forwarded-for", client_ip)],
        )
        .await
    }

    /// An admin token from replica `i`.
    pub async fn admin_token(&self, i: usize) -> String {
        let a = self
            .exchange(i, &self.admin_key, &self.admin_secret, "192.0.2.250")
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a key through replica `i`.
    pub async fn create_key(&self, i: usize, admin: &str, body: Value) -> (String, String, String) {
        let a = self
            .call(i, "POST", "/v1/api-keys", Some(admin), body, &[])
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        let s = |f: &str| a.body[f].as_str().unwrap().to_owned();
        (s("id"), s("api_key"), s("api_secret"))
    }

    /// The value of an unlabelled Prometheus sample at replica `i`.
    pub async fn metric(&self, i: usize, name: &str) -> f64 {
        let mut res = self
            .client
            .get(format!("{}/metrics", self.base(i)))
            .send()
            .await
            .unwrap();
        let text = String::from_utf8(res.body().limit(1 << 22).await.unwrap().to_vec()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The sum of a metric over every replica.
    pub async fn metric_sum(&self, name: &str) -> f64 {
        let mut sum = 0.0;
        for i in 0..self.replicas.len() {
            sum += self.metric(i, name).await;
        }
        sum
    }
}

/// Polls `check` every 50 ms until it holds, for at most `within`; returns
/// how long it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}
