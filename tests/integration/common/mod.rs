//! Test fixtures: a real tokenmint server on an ephemeral port, on SQLite or
//! on a fresh PostgreSQL database that is dropped afterwards, and builders
//! for keys and admin tokens.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::OnceLock;

use actix_web::{HttpServer, web};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::{Value, json};
use tokenmint::AppState;
use tokenmint::audit::Actor;
use tokenmint::config::Config;
use tokenmint::keys::request::CreateKeyRequest;

pub mod client;
pub mod cluster;
pub mod dpop;
pub mod issuer;
pub mod jwt;
pub mod proxy;
pub mod replicas;
pub use client::Resp;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed test on both backends:
/// `both_backends!(my_test, other_test);` where `async fn my_test(b: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[actix_web::test] async fn $name() { super::$name($crate::common::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[actix_web::test] async fn $name() {
                if !$crate::common::postgres_available() { return; }
                super::$name($crate::common::Backend::Postgres).await
            })*
        }
    };
}

/// The server the Postgres leg creates its databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TOKENMINT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Test servers stay up until the test process exits; without TLS, libpq
/// never calls into OpenSSL while OpenSSL's exit handlers run.
fn without_tls(url: &str) -> String {
    if url.contains("sslmode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// Whether the Postgres leg can run. With `TOKENMINT_REQUIRE_POSTGRES=1`
/// (set by CI) an unreachable server fails the test instead of skipping it.
pub fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let ok = *AVAILABLE
        .get_or_init(|| PgConnection::establish(&without_tls(&postgres_admin_url())).is_ok());
    if !ok {
        if std::env::var("TOKENMINT_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!(
                "TOKENMINT_REQUIRE_POSTGRES=1 but PostgreSQL at {} is unreachable",
                postgres_admin_url()
            );
        }
        eprintln!(
            "\n*** POSTGRES LEG SKIPPED: no PostgreSQL at {} (set TOKENMINT_TEST_POSTGRES_URL) ***\n",
            postgres_admin_url()
        );
    }
    ok
}

/// A throwaway Postgres database, dropped (connections and all) on drop.
pub struct PgDatabase {
    name: String,
}

impl PgDatabase {
    pub fn create() -> (Self, String) {
        let name = format!("tokenmint_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&without_tls(&postgres_admin_url()))
            .expect("postgres admin connection");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create test database");
        let admin_url = postgres_admin_url();
        let (base, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
        let url = match base.rfind('/') {
            Some(i) if base[..i].ends_with(|c: char| c != '/') => format!("{}/{name}", &base[..i]),
            _ => format!("{base}/{name}"),
        };
        let url = if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        };
        (Self { name }, without_tls(&url))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&without_tls(&postgres_admin_url())) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Builds a [`TestApp`].
pub struct TestAppBuilder {
    backend: Backend,
    vars: BTreeMap<String, String>,
}

impl TestAppBuilder {
    /// Sets a configuration variable, as the environment would.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Starts the server.
    pub async fn build(self) -> TestApp {
        self.start(true).await
    }

    /// Starts the server without running migrations (for a database that is down).
    pub async fn build_unmigrated(self) -> TestApp {
        self.start(false).await
    }

    async fn start(self, migrate: bool) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pg, url) = match self.backend {
            Backend::Sqlite => (
                None,
                format!("sqlite://{}", dir.path().join("tokenmint.db").display()),
            ),
            Backend::Postgres => {
                let (db, url) = PgDatabase::create();
                (Some(db), url)
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut vars = BTreeMap::from([
            ("DATABASE_URL".to_owned(), url),
            ("TOKENMINT_BIND".to_owned(), addr.to_string()),
            (
                "TOKENMINT_KEYS_DIR".to_owned(),
                dir.path().join("keys").display().to_string(),
            ),
            // Cheap argon2 keeps the suite fast; production cost is a config value.
            ("TOKENMINT_ARGON2_M_KIB".to_owned(), "256".to_owned()),
            ("TOKENMINT_ARGON2_T".to_owned(), "1".to_owned()),
        ]);
        vars.extend(self.vars);
        let config = Config::from_sources(None, |n| vars.get(n).cloned()).expect("test config");
        let state = web::Data::new(AppState::build(config).expect("state"));
        if migrate {
            state.db.migrate().expect("migrations");
        }
        let server_state = state.clone();
        let server = HttpServer::new(move || tokenmint::app(server_state.clone()))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("listen")
            .run();
        actix_web::rt::spawn(server);
        let database_url = vars["DATABASE_URL"].clone();
        TestApp {
            state,
            base: format!("http://{addr}"),
            // Generous: a loaded 2-core CI machine runs the argon2-heavy
            // tests slowly; a hang still fails.
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .finish(),
            dir,
            pg,
            database_url,
        }
    }
}

/// A running server and what it needs; everything is removed on drop.
pub struct TestApp {
    pub state: web::Data<AppState>,
    pub base: String,
    pub client: awc::Client,
    pub dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
    pub database_url: String,
}

/// A key as created, with its secret.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub api_key: String,
    pub api_secret: String,
    pub body: Value,
}

impl TestApp {
    /// Starts configuring a server on `backend`.
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            vars: BTreeMap::new(),
        }
    }

    /// A second replica: another server on the same database and signing keys.
    pub async fn replica(&self) -> TestApp {
        self.replica_builder().build().await
    }

    /// A [`Self::replica`] to configure further.
    pub fn replica_builder(&self) -> TestAppBuilder {
        let keys = self.dir.path().join("keys").display().to_string();
        let backend = if self.pg.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        Self::builder(backend)
            .var("DATABASE_URL", &self.database_url)
            .var("TOKENMINT_KEYS_DIR", &keys)
            .var("TOKENMINT_ISSUER", &self.base)
    }

    /// A server with the default test configuration.
    pub async fn start(backend: Backend) -> TestApp {
        Self::builder(backend).build().await
    }

    /// The audit trail of one key, as text (for `contains` checks).
    pub async fn audit_text(&self, key_id: &str, admin: &str) -> String {
        self.get(
            &format!("/v1/audit-events?api_key_id={key_id}"),
            Some(admin),
        )
        .await
        .json()
        .to_string()
    }

    /// Starts building a key through the domain layer.
    pub fn key(&self) -> ApiKeyBuilder<'_> {
        ApiKeyBuilder {
            app: self,
            request: CreateKeyRequest {
                name: Some("test key".into()),
                ..CreateKeyRequest::default()
            },
            expired: false,
        }
    }

    /// Exchanges a key pair (JSON form) and returns the response.
    pub async fn exchange(&self, key: &Created, extra: Value) -> Resp {
        let mut body = json!({ "api_key": key.api_key, "api_secret": key.api_secret });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post_json("/auth/token", &body, None).await
    }

    /// A fresh access token with `scopes` (a new key is created for it).
    pub async fn token(&self, scopes: &[&str]) -> String {
        let key = self.key().scopes(scopes).create().await;
        self.token_for(&key).await
    }

    /// An access token of an existing key.
    pub async fn token_for(&self, key: &Created) -> String {
        let r = self.exchange(key, json!({})).await;
        assert_eq!(r.status, 200, "exchange failed: {}", r.text());
        r.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Sets a key's `expires_at` a minute in the past, straight in the
    /// database, as the passing of time would (the API refuses past values).
    pub async fn expire_in_database(&self, id: &str) {
        let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).naive_utc();
        let id = id.to_owned();
        self.state
            .db
            .run(move |conn| {
                use diesel::prelude::*;
                use tokenmint::db::schema::api_keys::dsl;
                diesel::update(dsl::api_keys.find(id))
                    .set(dsl::expires_at.eq(Some(past)))
                    .execute(conn)
                    .map_err(tokenmint::db::DbError::from)
            })
            .await
            .expect("expire key");
    }

    /// Writes batched usage now, as the background flush would.
    pub async fn flush_usage(&self) {
        self.state
            .usage
            .flush(&self.state.db, true)
            .await
            .expect("usage flush");
    }

    /// An admin token (`tokenmint:admin`).
    pub async fn admin_token(&self) -> String {
        self.token(&["tokenmint:admin"]).await
    }
}

/// Builds an API key for a test, with the same typed request the admin API
/// and the CLI use.
pub struct ApiKeyBuilder<'a> {
    app: &'a TestApp,
    request: CreateKeyRequest,
    expired: bool,
}

fn strings(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| (*s).to_owned()).collect())
}

fn object(v: Value) -> Option<serde_json::Map<String, Value>> {
    Some(v.as_object().cloned().expect("a JSON object"))
}

impl ApiKeyBuilder<'_> {
    pub fn name(mut self, name: &str) -> Self {
        self.request.name = Some(name.to_owned());
        self
    }
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.request.scopes = strings(scopes);
        self
    }
    pub fn subject(mut self, subject: &str) -> Self {
        self.request.subject = Some(subject.to_owned());
        self
    }
    pub fn audiences(mut self, audiences: &[&str]) -> Self {
        self.request.audiences = strings(audiences);
        self
    }
    pub fn allowed_ips(mut self, ips: &[&str]) -> Self {
        self.request.allowed_ips = strings(ips);
        self
    }
    pub fn rate_limit_per_minute(mut self, n: i64) -> Self {
        self.request.rate_limit_per_minute = Some(n);
        self
    }
    pub fn token_ttl_seconds(mut self, n: i64) -> Self {
        self.request.token_ttl_seconds = Some(n);
        self
    }
    /// RFC 3339.
    pub fn expires_at(mut self, at: &str) -> Self {
        self.request.expires_at = Some(at.to_owned());
        self
    }
    pub fn claims(mut self, claims: Value) -> Self {
        self.request.claims = object(claims);
        self
    }
    /// Makes the key already expired (written past validation, as time would).
    pub fn expired(mut self) -> Self {
        self.expired = true;
        self
    }

    /// Creates the key.
    pub async fn create(self) -> Created {
        let keys = &self.app.state.keys;
        let now = tokenmint::keys::now_micros();
        let new = self
            .request
            .validate_into(&keys.rules(now))
            .expect("valid key request");
        let (key, secret) = keys
            .create(new, Actor::cli(), now)
            .await
            .expect("create key");
        let id = key.id.to_string();
        if self.expired {
            self.app.expire_in_database(&id).await;
        }
        let body = serde_json::to_value(key.view(chrono::Utc::now())).expect("view");
        Created {
            id,
            api_key: key.api_key,
            // Keys without a secret (private_key_jwt, federated) get "".
            api_secret: secret
                .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned())
                .unwrap_or_default(),
            body,
        }
    }
}

/// Whether the shared Redis answers on 127.0.0.1:6379. CI (`CI` set) must
/// have it; elsewhere the test says loudly that it is skipped.
pub fn redis_available() -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().unwrap(),
        std::time::Duration::from_secs(1),
    )
    .is_ok();
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Redis does not answer on 127.0.0.1:6379"
        );
        eprintln!("\n*** REDIS TEST SKIPPED: nothing answers on 127.0.0.1:6379 ***\n");
    }
    up
}
