//! One typed configuration, read once at start from environment variables and
//! an optional TOML file. Environment variables win over the file. A bad value
//! is reported as one line naming the variable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::keys::hash::Argon2Params;
use crate::keys::scope::is_scope_token;
use crate::net::parse_cidr;
use crate::tokens::signing::{JWKS_MAX_AGE_SECONDS, SigningAlg, Timing};

/// Where the data lives; defined beside the storage that uses it.
pub use crate::db::DatabaseUrl;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The server's configuration, validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub bind: SocketAddr,
    pub issuer: String,
    pub audience: String,
    pub keys_dir: PathBuf,
    pub token_ttl_seconds: u32,
    pub signing_alg: SigningAlg,
    /// How long a new signing key is published before it signs
    /// (`TOKENMINT_SIGNING_KEY_PUBLISH_SECONDS`).
    pub signing_key_publish_seconds: u32,
    pub key_prefix: String,
    pub allowed_scopes: Option<Vec<String>>,
    pub trusted_proxies: Vec<IpNet>,
    pub rate_limit_per_minute: Option<u32>,
    pub failed_auth_per_minute: u32,
    pub argon2: Argon2Params,
    pub log: String,
    pub log_format: LogFormat,
    /// How long a client may take to send a request body.
    pub body_timeout_seconds: u32,
    /// Days of per-key usage kept (`TOKENMINT_USAGE_RETENTION_DAYS`).
    pub usage_retention_days: u32,
    /// Most client connections the main listener holds at once.
    pub max_connections: u32,
    /// An extra listener for `/healthz`, `/readyz` and `/metrics` only, not
    /// counted against `max_connections`.
    pub ops_bind: Option<SocketAddr>,
    /// Redis shared by the replicas (`TOKENMINT_REDIS_URL`), if any.
    pub redis_url: Option<String>,
    /// Starts every Redis key (`TOKENMINT_REDIS_PREFIX`).
    pub redis_prefix: String,
    /// External issuers whose tokens may be exchanged
    /// (`TOKENMINT_FEDERATION_ISSUERS`), exactly as their `iss`.
    pub federation_issuers: Vec<String>,
    /// How long after this replica last reached the database a cached key
    /// record may still be served while it cannot be reached
    /// (`TOKENMINT_STALE_IF_ERROR_SECONDS`).
    pub stale_if_error_seconds: u32,
}

/// A configuration error: one line that names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Longest token lifetime accepted (one day): tokens are meant to be short-lived.
pub const MAX_TOKEN_TTL_SECONDS: u32 = 86_400;

/// Every variable, with the key it has in the TOML file.
const VARIABLES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("TOKENMINT_BIND", "bind"),
    ("TOKENMINT_ISSUER", "issuer"),
    ("TOKENMINT_AUDIENCE", "audience"),
    ("TOKENMINT_KEYS_DIR", "keys_dir"),
    ("TOKENMINT_TOKEN_TTL_SECONDS", "token_ttl_seconds"),
    ("TOKENMINT_SIGNING_ALG", "signing_alg"),
    (
        "TOKENMINT_SIGNING_KEY_PUBLISH_SECONDS",
        "signing_key_publish_seconds",
    ),
    ("TOKENMINT_KEY_PREFIX", "key_prefix"),
    ("TOKENMINT_ALLOWED_SCOPES", "allowed_scopes"),
    ("TOKENMINT_TRUSTED_PROXIES", "trusted_proxies"),
    ("TOKENMINT_RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute"),
    ("TOKENMINT_FAILED_AUTH_PER_MINUTE", "failed_auth_per_minute"),
    ("TOKENMINT_ARGON2_M_KIB", "argon2_m_kib"),
    ("TOKENMINT_ARGON2_T", "argon2_t"),
    ("TOKENMINT_ARGON2_P", "argon2_p"),
    ("TOKENMINT_LOG", "log"),
    ("TOKENMINT_LOG_FORMAT", "log_format"),
    ("TOKENMINT_BODY_TIMEOUT_SECONDS", "body_timeout_seconds"),
    ("TOKENMINT_USAGE_RETENTION_DAYS", "usage_retention_days"),
    ("TOKENMINT_MAX_CONNECTIONS", "max_connections"),
    ("TOKENMINT_OPS_BIND", "ops_bind"),
    ("TOKENMINT_REDIS_URL", "redis_url"),
    ("TOKENMINT_REDIS_PREFIX", "redis_prefix"),
    ("TOKENMINT_STALE_IF_ERROR_SECONDS", "stale_if_error_seconds"),
    ("TOKENMINT_FEDERATION_ISSUERS", "federation_issuers"),
];

/// Raw values by variable name, from the file and then the environment.
struct Raw(BTreeMap<&'static str, String>);

impl Raw {
    fn get(&self, var: &str) -> Option<&str> {
        self.0
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T>(
        &self,
        var: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => parse(v.trim()).map_err(|why| ConfigError(format!("{var}: {why}"))),
        }
    }
}

impl Config {
    /// Reads the process environment and, if given, a TOML file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, |name| std::env::var(name).ok())
    }

    /// Builds the config from a file and a variable lookup (tests pass a map).
    pub fn from_sources(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw = BTreeMap::new();
        if let Some(path) = file {
            raw = read_file(path)?;
        }
        for (var, _) in VARIABLES {
            if let Some(value) = env(var) {
                raw.insert(*var, value);
            }
        }
        Self::from_raw(&Raw(raw))
    }

    fn from_raw(raw: &Raw) -> Result<Self, ConfigError> {
        let database_url = raw.parse(
            "DATABASE_URL",
            DatabaseUrl::Sqlite(PathBuf::from("data/tokenmint.db")),
            DatabaseUrl::parse,
        )?;
        let bind: SocketAddr = raw.parse(
            "TOKENMINT_BIND",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            |v| {
                v.parse()
                    .map_err(|_| format!("expected HOST:PORT such as 127.0.0.1:8080, got {v:?}"))
            },
        )?;
        let issuer = raw.parse("TOKENMINT_ISSUER", format!("http://{bind}"), parse_url)?;
        let audience = raw.parse("TOKENMINT_AUDIENCE", issuer.clone(), |v| {
            if v.chars().any(char::is_whitespace) {
                Err("must not contain spaces".to_owned())
            } else {
                Ok(v.to_owned())
            }
        })?;
        let keys_dir = raw.parse(
            "TOKENMINT_KEYS_DIR",
            PathBuf::from("keys"),
            |v| Ok(v.into()),
        )?;
        let token_ttl_seconds = raw.parse("TOKENMINT_TOKEN_TTL_SECONDS", 3600, |v| {
            parse_range(v, 1, MAX_TOKEN_TTL_SECONDS)
        })?;
        let signing_alg = raw.parse("TOKENMINT_SIGNING_ALG", SigningAlg::Es256, |v| {
            v.parse::<SigningAlg>()
        })?;
        let signing_key_publish_seconds = raw.parse(
            "TOKENMINT_SIGNING_KEY_PUBLISH_SECONDS",
            JWKS_MAX_AGE_SECONDS,
            |v| parse_range(v, 0, MAX_TOKEN_TTL_SECONDS),
        )?;
        let key_prefix = raw.parse("TOKENMINT_KEY_PREFIX", "tm".to_owned(), |v| {
            let ok = (1..=12).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if ok {
                Ok(v.to_owned())
            } else {
                Err(format!(
                    "expected 1 to 12 lowercase letters or digits, got {v:?}"
                ))
            }
        })?;
        let allowed_scopes = raw.parse("TOKENMINT_ALLOWED_SCOPES", None, |v| {
            let scopes = split_list(v);
            match scopes.iter().find(|s| !is_scope_token(s)) {
                Some(bad) => Err(format!(
                    "{bad:?} is not a valid scope token (RFC 6749 §3.3)"
                )),
                None => Ok(Some(scopes)),
            }
        })?;
        let trusted_proxies = raw.parse("TOKENMINT_TRUSTED_PROXIES", Vec::new(), |v| {
            split_list(v).iter().map(|c| parse_cidr(c)).collect()
        })?;
        let rate_limit_per_minute = raw.parse("TOKENMINT_RATE_LIMIT_PER_MINUTE", None, |v| {
            parse_range(v, 1, 1_000_000).map(Some)
        })?;
        let failed_auth_per_minute = raw.parse("TOKENMINT_FAILED_AUTH_PER_MINUTE", 60, |v| {
            parse_range(v, 1, 1_000_000)
        })?;
        let argon2 = Argon2Params {
            m_kib: raw.parse("TOKENMINT_ARGON2_M_KIB", 19_456, |v| {
                parse_range(v, 8, 4_194_304)
            })?,
            t: raw.parse("TOKENMINT_ARGON2_T", 2, |v| parse_range(v, 1, 100))?,
            p: raw.parse("TOKENMINT_ARGON2_P", 1, |v| parse_range(v, 1, 64))?,
        };
        if argon2.m_kib < 8 * argon2.p {
            return Err(ConfigError(format!(
                "TOKENMINT_ARGON2_M_KIB: must be at least 8 × TOKENMINT_ARGON2_P ({})",
                8 * argon2.p
            )));
        }
        let log = raw.parse("TOKENMINT_LOG", "info".to_owned(), |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_owned())
                .map_err(|e| format!("not a valid log filter ({e})"))
        })?;
        let log_format = raw.parse("TOKENMINT_LOG_FORMAT", LogFormat::Pretty, |v| match v {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected json or pretty, got {other:?}")),
        })?;
        let body_timeout_seconds = raw.parse("TOKENMINT_BODY_TIMEOUT_SECONDS", 10, |v| {
            parse_range(v, 1, 300)
        })?;
        let usage_retention_days = raw.parse("TOKENMINT_USAGE_RETENTION_DAYS", 90, |v| {
            parse_range(v, 1, 3650)
        })?;
        let max_connections = raw.parse("TOKENMINT_MAX_CONNECTIONS", 10_000, |v| {
            parse_range(v, 1, 1_000_000)
        })?;
        let ops_bind = raw.parse("TOKENMINT_OPS_BIND", None, |v| {
            v.parse::<SocketAddr>()
                .map(Some)
                .map_err(|_| format!("expected HOST:PORT such as 127.0.0.1:9090, got {v:?}"))
        })?;
        let redis_url = raw.parse("TOKENMINT_REDIS_URL", None, |v| {
            if v.starts_with("rediss://") {
                return Err("rediss:// (TLS) is not supported yet: use redis:// on a private network or through a TLS tunnel".to_owned());
            }
            redis::Client::open(v)
                .map(|_| Some(v.to_owned()))
                .map_err(|_| "expected redis://[user:password@]host[:port][/db]".to_owned())
        })?;
        let redis_prefix = raw.parse("TOKENMINT_REDIS_PREFIX", "tokenmint:".to_owned(), |v| {
            if v.is_empty()
                || v.len() > 64
                || v.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err("1-64 characters without spaces".to_owned());
            }
            Ok(v.to_owned())
        })?;
        let federation_issuers =
            raw.parse("TOKENMINT_FEDERATION_ISSUERS", Vec::new(), parse_issuers)?;
        let stale_if_error_seconds = raw.parse("TOKENMINT_STALE_IF_ERROR_SECONDS", 120, |v| {
            parse_range(v, 0, 3600)
        })?;
        if ops_bind == Some(bind) {
            return Err(ConfigError(
                "TOKENMINT_OPS_BIND: must differ from TOKENMINT_BIND".into(),
            ));
        }
        Ok(Self {
            stale_if_error_seconds,
            federation_issuers,
            redis_url,
            redis_prefix,
            body_timeout_seconds,
            usage_retention_days,
            max_connections,
            ops_bind,
            database_url,
            bind,
            issuer,
            audience,
            keys_dir,
            token_ttl_seconds,
            signing_alg,
            signing_key_publish_seconds,
            key_prefix,
            allowed_scopes,
            trusted_proxies,
            rate_limit_per_minute,
            failed_auth_per_minute,
            argon2,
            log,
            log_format,
        })
    }
}

/// Issuer URLs separated by spaces or commas, kept exactly as written
/// (they are compared with `iss` as strings): `https`, or `http` on a
/// loopback host for development; no query or fragment.
fn parse_issuers(v: &str) -> Result<Vec<String>, String> {
    let mut issuers: Vec<String> = Vec::new();
    for text in v.split([' ', ',', '\n', '\t']).filter(|s| !s.is_empty()) {
        let url = url::Url::parse(text).map_err(|_| format!("{text:?} is not a URL"))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !scheme_ok || url.query().is_some() || url.fragment().is_some() || url.username() != "" {
            return Err(format!(
                "{text:?}: issuers must be https URLs without query or fragment (http only on loopback)"
            ));
        }
        if !issuers.iter().any(|i| i == text) {
            issuers.push(text.to_owned());
        }
    }
    Ok(issuers)
}

fn read_file(path: &Path) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    let fail = |why: String| ConfigError(format!("--config {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(e.message().to_owned()))?;
    let mut raw = BTreeMap::new();
    for (key, value) in table {
        let var = VARIABLES
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(var, _)| *var)
            .ok_or_else(|| fail(format!("unknown setting {key:?}")))?;
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s),
                    other => Err(fail(format!(
                        "{key}: expected strings, got a {}",
                        other.type_str()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(" "),
            other => {
                return Err(fail(format!(
                    "{key}: unsupported value of type {}",
                    other.type_str()
                )));
            }
        };
        raw.insert(var, text);
    }
    Ok(raw)
}

/// Splits a list given with spaces and/or commas.
fn split_list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_range(v: &str, min: u32, max: u32) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, got {v:?}"
        )),
    }
}

fn parse_url(v: &str) -> Result<String, String> {
    let trimmed = v.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !trimmed.chars().any(char::is_whitespace) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(format!("expected an http:// or https:// URL, got {v:?}")),
    }
}

impl Config {
    /// What key management may accept, from this configuration.
    pub fn key_policy(&self) -> crate::keys::rules::KeyPolicy {
        crate::keys::rules::KeyPolicy {
            prefix: self.key_prefix.clone(),
            allowed_scopes: self.allowed_scopes.clone(),
            max_ttl_seconds: self.token_ttl_seconds,
            federation_issuers: self.federation_issuers.clone(),
        }
    }

    /// When signing keys sign and retire (SPEC §9.3).
    pub fn signing_timing(&self) -> Timing {
        Timing::new(
            std::time::Duration::from_secs(u64::from(self.signing_key_publish_seconds)),
            std::time::Duration::from_secs(u64::from(self.token_ttl_seconds)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(None, |name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = with(&[]).unwrap();
        assert_eq!(
            c.database_url,
            DatabaseUrl::Sqlite("data/tokenmint.db".into())
        );
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.audience, c.issuer);
        assert_eq!(c.token_ttl_seconds, 3600);
        assert_eq!(c.signing_alg, SigningAlg::Es256);
        assert_eq!(c.signing_key_publish_seconds, 300);
        assert_eq!(c.key_prefix, "tm");
        assert_eq!(c.failed_auth_per_minute, 60);
        assert_eq!(c.argon2, Argon2Params::default());
        assert!(c.allowed_scopes.is_none());
    }

    #[test]
    fn a_bad_database_url_names_the_variable() {
        let err = with(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(err.0.starts_with("DATABASE_URL:"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("TOKENMINT_TOKEN_TTL_SECONDS", "abc"),
            ("TOKENMINT_TOKEN_TTL_SECONDS", "0"),
            ("TOKENMINT_BIND", "nope"),
            ("TOKENMINT_SIGNING_ALG", "HS256"),
            ("TOKENMINT_TRUSTED_PROXIES", "10.0.0.0/8, banana"),
            ("TOKENMINT_ISSUER", "ftp://x"),
            ("TOKENMINT_KEY_PREFIX", "Bad_Prefix"),
            ("TOKENMINT_ARGON2_M_KIB", "-1"),
            ("TOKENMINT_LOG_FORMAT", "xml"),
            ("TOKENMINT_LOG", "info,[[[bad"),
            ("TOKENMINT_ALLOWED_SCOPES", "ok \"bad\""),
        ] {
            let err = with(&[(var, value)]).unwrap_err();
            assert!(
                err.0.starts_with(&format!("{var}:")),
                "{var}={value}: {err}"
            );
            assert!(!err.0.contains('\n'));
        }
    }

    #[test]
    fn lists_split_on_spaces_and_commas_and_issuer_loses_its_slash() {
        let c = with(&[
            ("TOKENMINT_ALLOWED_SCOPES", "a, b c,d"),
            ("TOKENMINT_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1"),
            ("TOKENMINT_ISSUER", "https://auth.example.com/"),
        ])
        .unwrap();
        assert_eq!(c.allowed_scopes.unwrap(), ["a", "b", "c", "d"]);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.issuer, "https://auth.example.com");
    }

    #[test]
    fn file_values_are_overridden_by_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "token_ttl_seconds = 600\nallowed_scopes = [\"a\", \"b\"]\nkey_prefix = \"acme\"\n",
        )
        .unwrap();
        let c = Config::from_sources(Some(&path), |n| {
            (n == "TOKENMINT_KEY_PREFIX").then(|| "env".to_owned())
        })
        .unwrap();
        assert_eq!(c.token_ttl_seconds, 600);
        assert_eq!(c.allowed_scopes.unwrap(), ["a", "b"]);
        assert_eq!(c.key_prefix, "env");

        std::fs::write(&path, "colour = \"blue\"\n").unwrap();
        let err = Config::from_sources(Some(&path), |_| None).unwrap_err();
        assert!(err.0.contains("unknown setting \"colour\""), "{err}");
    }
}
