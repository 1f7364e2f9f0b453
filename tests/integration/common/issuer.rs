//! A fake external OpenID Connect issuer for workload identity federation
//! (SPEC §10.2): discovery and JWKS on a local port, counting every fetch,
//! and tokens shaped like the ones GitHub Actions and Kubernetes issue.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use super::dpop::DpopKey;
use super::jwt::{patched, sign_jwt};

/// The `sub` of the GitHub Actions tokens minted here.
pub const GITHUB_SUBJECT: &str = "repo:octo-org/octo-repo:ref:refs/heads/main";
/// The `sub` of the Kubernetes service-account tokens minted here.
pub const KUBERNETES_SUBJECT: &str = "system:serviceaccount:payments:ledger";

/// What the issuer's HTTP server publishes and counts (shared with its
/// worker thread).
struct Published {
    url: String,
    jwks_path: String,
    keys: RwLock<Vec<Value>>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    other_requests: AtomicUsize,
}

/// A running fake issuer; its server stays up until the test process exits.
pub struct FakeIssuer {
    /// The issuer URL: `iss` of its tokens and base of its discovery.
    pub url: String,
    keys: Vec<(String, DpopKey)>,
    published: Arc<Published>,
}

impl FakeIssuer {
    /// An issuer at `http://127.0.0.1:PORT` publishing `keys`.
    pub async fn start(keys: Vec<DpopKey>) -> FakeIssuer {
        Self::start_at("", keys).await
    }

    /// An issuer whose URL has a `path` (as EKS clusters' do:
    /// `https://oidc.eks.…/id/…`), publishing `keys`.
    pub async fn start_at(path: &str, keys: Vec<DpopKey>) -> FakeIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
        let published = Arc::new(Published {
            url: url.clone(),
            jwks_path: format!("{path}/.well-known/jwks"),
            keys: RwLock::new(Vec::new()),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            other_requests: AtomicUsize::new(0),
        });
        let discovery_path = format!("{path}/.well-known/openid-configuration");
        let jwks_path = published.jwks_path.clone();
        let shared = published.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(shared.clone()))
                .route(&discovery_path, web::get().to(discovery))
                .route(&jwks_path, web::get().to(jwks))
                .default_service(web::to(elsewhere))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        actix_web::rt::spawn(server);
        let mut issuer = FakeIssuer {
            url,
            keys: Vec::new(),
            published,
        };
        for key in keys {
            issuer.add_key(key);
        }
        issuer
    }

    /// Publishes one more signing key at once (rotation at the issuer) and
    /// returns its `kid` (its RFC 7638 thumbprint, as Kubernetes does).
    pub fn add_key(&mut self, key: DpopKey) -> String {
        let kid = key.thumbprint();
        let mut jwk = key.jwk();
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(key.alg());
        jwk["use"] = json!("sig");
        self.published.keys.write().unwrap().push(jwk);
        self.keys.push((kid.clone(), key));
        kid
    }

    /// The `kid` of the first key, which signs by default.
    pub fn kid(&self) -> &str {
        &self.keys[0].0
    }

    /// The published JWK of `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        let keys = self.published.keys.read().unwrap();
        keys.iter().find(|k| k["kid"] == kid).cloned().expect("kid")
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.published.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many times the discovery document was fetched.
    pub fn discovery_fetches(&self) -> usize {
        self.published.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Requests for anything but discovery and the JWKS.
    pub fn other_requests(&self) -> usize {
        self.published.other_requests.load(Ordering::SeqCst)
    }

    /// A token with exactly `claims`, signed by the first key.
    pub fn token(&self, claims: Value) -> ExternalToken<'_> {
        ExternalToken {
            issuer: self,
            key: 0,
            header: json!({"typ": "JWT", "alg": self.keys[0].1.alg(), "kid": self.keys[0].0}),
            claims,
        }
    }

    /// A GitHub Actions OIDC token for a push to `main` of
    /// `octo-org/octo-repo`, for audience `aud`. GitHub's own timing: valid
    /// from ten minutes before issue, for five minutes after.
    pub fn github(&self, aud: &str) -> ExternalToken<'_> {
        let now = chrono::Utc::now().timestamp();
        self.token(json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": GITHUB_SUBJECT,
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
            "iss": self.url,
            "nbf": now - 600,
            "iat": now,
            "exp": now + 300,
        }))
    }

    /// A Kubernetes projected service-account token of `payments/ledger`,
    /// for the audiences `aud`, an hour long, with no `jti` (as older
    /// clusters issue them).
    pub fn kubernetes(&self, aud: &[&str]) -> ExternalToken<'_> {
        let now = chrono::Utc::now().timestamp();
        self.token(json!({
            "aud": aud,
            "exp": now + 3600,
            "iat": now,
            "iss": self.url,
            "kubernetes.io": {
                "namespace": "payments",
                "pod": {"name": "ledger-7d9f8b6c5-x2x9z", "uid": uuid::Uuid::new_v4().to_string()},
                "serviceaccount": {"name": "ledger", "uid": uuid::Uuid::new_v4().to_string()},
            },
            "nbf": now,
            "sub": KUBERNETES_SUBJECT,
        }))
        .header("typ", Value::Null)
    }
}

/// A token of a [`FakeIssuer`] being shaped before it is signed.
pub struct ExternalToken<'a> {
    issuer: &'a FakeIssuer,
    key: usize,
    header: Value,
    claims: Value,
}

impl ExternalToken<'_> {
    /// Sets a claim; `null` removes it.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims = patched(self.claims, json!({ name: value }));
        self
    }

    /// Sets a header member; `null` removes it.
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header = patched(self.header, json!({ name: value }));
        self
    }

    /// Signs with the issuer's key `kid` (its `alg` and `kid` in the header).
    pub fn key(mut self, kid: &str) -> Self {
        self.key = self
            .issuer
            .keys
            .iter()
            .position(|(k, _)| k == kid)
            .expect("a key of this issuer");
        let alg = self.issuer.keys[self.key].1.alg();
        self.header = patched(self.header, json!({"alg": alg, "kid": kid}));
        self
    }

    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// The compact JWS, signed by the issuer.
    pub fn sign(&self) -> String {
        sign_jwt(
            &self.issuer.keys[self.key].1,
            self.header.clone(),
            self.claims.clone(),
        )
    }

    /// The same header and claims signed by `key`, which the issuer never
    /// published: a forgery.
    pub fn sign_with(&self, key: &DpopKey) -> String {
        sign_jwt(key, self.header.clone(), self.claims.clone())
    }
}

async fn discovery(p: web::Data<Published>) -> HttpResponse {
    p.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok()
        .insert_header(("cache-control", "max-age=600"))
        .json(json!({
            "issuer": p.url,
            "jwks_uri": format!("{}{}", origin(&p.url), p.jwks_path),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        }))
}

async fn jwks(p: web::Data<Published>) -> HttpResponse {
    p.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = p.keys.read().unwrap().clone();
    HttpResponse::Ok()
        .insert_header(("cache-control", "max-age=600"))
        .json(json!({ "keys": keys }))
}

async fn elsewhere(p: web::Data<Published>) -> HttpResponse {
    p.other_requests.fetch_add(1, Ordering::SeqCst);
    HttpResponse::NotFound().finish()
}

/// `http://host:port` of a URL that may have a path.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}
