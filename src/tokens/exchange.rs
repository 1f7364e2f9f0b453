//! The token exchange: an `api_key`/`api_secret` pair in, a signed access
//! token out. HTTP-free, so it can be tested and benchmarked on its own.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::usage::UsageLog;
use super::{IssuedToken, TokenIssuer};
use crate::db::{Db, DbError};
use crate::keys::hash::HashPool;
use crate::keys::scope::{self, ScopeRequestError};
use crate::keys::{ApiKey, KeyStatus, format, store};

/// A request as the transport hands it over.
pub struct ExchangeRequest {
    pub api_key: String,
    pub api_secret: SecretString,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub client_ip: IpAddr,
}

/// Why an exchange failed. `InvalidClient` is deliberately one case: unknown
/// key, wrong secret, revoked, expired and address not allowed all look the
/// same to the caller (the reason goes to the audit counts only).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("invalid client")]
    InvalidClient,
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    #[error("invalid target")]
    InvalidTarget,
    #[error("too many requests")]
    RateLimited { retry_after: u64 },
    #[error("busy")]
    Busy,
    #[error("database unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ExchangeError {
    /// The metric label of this outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidClient => "invalid_client",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
            Self::Internal => "error",
        }
    }
}

impl From<DbError> for ExchangeError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable => Self::Unavailable,
            other => {
                tracing::error!(error = %other, "key lookup failed");
                Self::Internal
            }
        }
    }
}

/// Everything an exchange needs.
#[derive(Clone)]
pub struct Exchanger {
    db: Db,
    hashes: HashPool,
    issuer: TokenIssuer,
    prefix: String,
    default_audience: String,
    usage: Arc<UsageLog>,
}

impl Exchanger {
    /// Builds the exchanger.
    pub fn new(
        db: Db,
        hashes: HashPool,
        issuer: TokenIssuer,
        prefix: String,
        default_audience: String,
        usage: Arc<UsageLog>,
    ) -> Self {
        Self {
            db,
            hashes,
            issuer,
            prefix,
            default_audience,
            usage,
        }
    }

    fn deny(&self, key: Option<&ApiKey>, reason: &'static str) -> ExchangeError {
        self.usage.denied(key.map(|k| k.id), reason);
        tracing::debug!(reason, key_id = ?key.map(|k| k.id), "exchange denied");
        ExchangeError::InvalidClient
    }

    /// Authenticates the pair and issues a token.
    pub async fn exchange(
        &self,
        req: ExchangeRequest,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, ExchangeError> {
        // Shape and checksum first: a typo costs neither a query nor argon2.
        if !format::api_key_is_well_formed(&self.prefix, &req.api_key)
            || !format::secret_is_well_formed(&self.prefix, &req.api_secret)
        {
            return Err(self.deny(None, "malformed_credentials"));
        }
        let api_key = req.api_key.clone();
        let key = self
            .db
            .run(move |conn| store::find_by_api_key(conn, &api_key))
            .await?;
        // The api_key is public, so an unknown one costs no argon2 work: doing
        // it anyway would hand attackers a CPU amplifier (see docs/SECURITY.md).
        let Some(key) = key else {
            return Err(self.deny(None, "unknown_key"));
        };
        match key.status(now) {
            KeyStatus::Active => {}
            KeyStatus::Revoked => return Err(self.deny(Some(&key), "revoked")),
            KeyStatus::Expired => return Err(self.deny(Some(&key), "expired")),
        }
        if !key.ip_allowed(req.client_ip) {
            return Err(self.deny(Some(&key), "ip_not_allowed"));
        }
        let mut hashes = vec![key.secret_hash.clone()];
        if let Some(previous) = key.previous_secret_live(now) {
            hashes.push(previous.to_owned());
        }
        crate::telemetry::verify_cache(false);
        let ok = self
            .hashes
            .verify_any(req.api_secret, hashes)
            .await
            .map_err(|_| ExchangeError::Busy)?;
        if !ok {
            return Err(self.deny(Some(&key), "wrong_secret"));
        }
        self.authorized(&key, req.scope.as_deref(), req.audience.as_deref(), now)
    }

    /// The part after authentication: scope, audience, signing.
    fn authorized(
        &self,
        key: &ApiKey,
        scope: Option<&str>,
        audience: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, ExchangeError> {
        let scopes = scope::narrow(&key.scopes, scope).map_err(|e| match e {
            ScopeRequestError::Malformed => {
                ExchangeError::InvalidScope("the scope parameter is malformed".into())
            }
            ScopeRequestError::NotGranted(s) => {
                ExchangeError::InvalidScope(format!("scope {s:?} is not granted to this key"))
            }
        })?;
        let audience = match audience.filter(|a| !a.is_empty()) {
            None => self.default_audience.as_str(),
            Some(a) if key.audiences.iter().any(|k| k == a) => a,
            Some(a) if key.audiences.is_empty() && a == self.default_audience => a,
            Some(_) => return Err(ExchangeError::InvalidTarget),
        };
        let token = self
            .issuer
            .issue(key, &scopes, audience, now)
            .map_err(|e| {
                tracing::error!(error = %e, "signing failed");
                ExchangeError::Internal
            })?;
        self.usage.used(key.id, now);
        Ok(token)
    }

    /// The issuer (for verification by other handlers).
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }
}
