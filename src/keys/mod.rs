//! API keys: their formats, argon2 hashing, storage and lifecycle.

pub mod cache;
pub mod credentials;
pub mod format;
pub mod hash;
pub mod request;
pub mod rules;
pub mod scope;
pub mod service;
pub mod store;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::net::canonical_ip;
use credentials::{ClientJwks, CredentialType, FederationRule};
use std::sync::Arc;

/// `live` or `test`: part of the key, the secret and every token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Live,
    Test,
}

impl Environment {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(Self::Live),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
}

/// Where a key stands at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "expired" => Some(Self::Expired),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// An API key as the domain sees it. The secret hashes never leave the
/// server, and `Debug` leaves them out too.
#[derive(Clone)]
pub struct ApiKey {
    pub id: Uuid,
    pub api_key: String,
    pub name: String,
    pub subject: String,
    pub scopes: Vec<String>,
    pub environment: Environment,
    pub secret_hash: String,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<IpNet>,
    pub rate_limit_per_minute: Option<u32>,
    pub audiences: Vec<String>,
    pub token_ttl_seconds: Option<u32>,
    pub claims: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Exchanges must carry a DPoP proof (RFC 9449).
    pub require_dpop: bool,
    /// A secret, registered public keys, or federation only. Keys without
    /// a secret have an empty `secret_hash`.
    pub credential_type: CredentialType,
    /// The public keys of a `private_key_jwt` key.
    pub jwks: Option<Arc<ClientJwks>>,
    /// Which external tokens may act as this key.
    pub federation: Vec<FederationRule>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("api_key", &self.api_key)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("revoked_at", &self.revoked_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// Revoked wins over expired; expired means `expires_at` has passed.
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// Whether the previous secret still works at `now`.
    pub fn previous_secret_live(&self, now: DateTime<Utc>) -> Option<&str> {
        match (&self.previous_secret_hash, self.previous_secret_expires_at) {
            (Some(h), Some(until)) if now < until => Some(h),
            _ => None,
        }
    }

    /// Whether `ip` may use this key (no list means anywhere).
    pub fn ip_allowed(&self, ip: std::net::IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&ip))
    }

    /// The public view, without any secret material.
    pub fn view(&self, now: DateTime<Utc>) -> ApiKeyView {
        ApiKeyView {
            id: self.id,
            api_key: self.api_key.clone(),
            name: self.name.clone(),
            subject: self.subject.clone(),
            scopes: self.scopes.clone(),
            environment: self.environment,
            status: self.status(now),
            allowed_ips: self.allowed_ips.iter().map(ToString::to_string).collect(),
            rate_limit_per_minute: self.rate_limit_per_minute,
            audiences: self.audiences.clone(),
            token_ttl_seconds: self.token_ttl_seconds,
            claims: self.claims.clone(),
            metadata: self.metadata.clone(),
            expires_at: self.expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
            previous_secret_expires_at: self
                .previous_secret_live(now)
                .and(self.previous_secret_expires_at),
            require_dpop: self.require_dpop,
            credential_type: self.credential_type,
            jwks: self.jwks.as_ref().map(|j| j.json.clone()),
            federation: self.federation.clone(),
        }
    }
}

/// What clients see of a key.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub api_key: String,
    pub name: String,
    pub subject: String,
    pub scopes: Vec<String>,
    pub environment: Environment,
    pub status: KeyStatus,
    pub allowed_ips: Vec<String>,
    pub rate_limit_per_minute: Option<u32>,
    pub audiences: Vec<String>,
    pub token_ttl_seconds: Option<u32>,
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still works.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Exchanges without a DPoP proof are refused (`400 invalid_dpop_proof`).
    pub require_dpop: bool,
    /// `secret`, `private_key_jwt` or `federated`.
    pub credential_type: CredentialType,
    /// The registered public JWK set of a `private_key_jwt` key, else null.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Federation rules (RFC 8693 token exchange).
    pub federation: Vec<FederationRule>,
}

/// The create and rotate answers: the view plus the secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyWithSecret {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The secret, shown this once and never again; absent for keys
    /// without one (`private_key_jwt`, `federated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_secret: Option<String>,
}

/// "Now", truncated to the microsecond precision both databases keep, so a
/// value reads back exactly as written.
pub fn now_micros() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

/// Truncates a timestamp to whole microseconds.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.timestamp_subsec_nanos();
    t - chrono::Duration::nanoseconds(i64::from(nanos % 1000))
}
