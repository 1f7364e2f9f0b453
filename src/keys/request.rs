//! What admins send to create, change or rotate a key: the admin API's request
//! types (the CLI and the test builders fill in the same structs), their
//! OpenAPI schemas, and their validation into domain values.
//!
//! Wrong JSON types fail deserialisation (400). Everything else, missing
//! required fields and unknown fields included, is checked by `garde` with
//! every bad field named at once (422).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use garde::Validate;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::credentials::{self, ClientJwks, CredentialType, FederationRule};
use super::rules::{self, Rules};
use super::{Environment, scope};
use std::sync::Arc;

/// One invalid field.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every field that failed validation (the 422 `errors` list).
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub Vec<FieldError>);

impl From<garde::Report> for Invalid {
    fn from(report: garde::Report) -> Self {
        Self(
            report
                .iter()
                .map(|(path, error)| {
                    // `scopes[2]` and `claims.x` are reported against the field.
                    let path = path.to_string();
                    let field = path.split(['[', '.']).next().unwrap_or_default();
                    FieldError {
                        field: field.to_owned(),
                        message: error.message().to_owned(),
                    }
                })
                .collect(),
        )
    }
}

/// A field that may be absent, explicitly null, or set.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<T> Patch<T> {
    /// `Absent` keeps `current`; `Null` clears; `Set` replaces.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Self::Absent => current,
            Self::Null => None,
            Self::Set(v) => Some(v),
        }
    }

    fn from_wire(v: Option<Option<T>>) -> Self {
        match v {
            None => Self::Absent,
            Some(None) => Self::Null,
            Some(Some(v)) => Self::Set(v),
        }
    }
}

/// `POST /v1/api-keys` (and `tokenmint api-key create`).
#[derive(Clone, Debug, Default, Deserialize, ToSchema, Validate)]
#[garde(context(Rules as ctx))]
pub struct CreateKeyRequest {
    /// A label for people, 1–100 characters.
    #[garde(custom(rules::required_name))]
    #[schema(
        value_type = String,
        required = true,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// RFC 6749 scope tokens (at most 100); duplicates are dropped.
    #[garde(custom(rules::scopes))]
    #[schema(schema_with = schema::scope_list)]
    pub scopes: Option<Vec<String>>,
    /// The token's `sub`; defaults to the key's `id`.
    #[garde(custom(rules::subject))]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub subject: Option<String>,
    /// `live` (default) or `test`.
    #[garde(custom(rules::environment))]
    #[schema(value_type = Option<Environment>)]
    pub environment: Option<String>,
    /// RFC 3339; must be in the future.
    #[garde(custom(rules::expires_at))]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    /// CIDRs or addresses allowed to exchange this key; empty means anywhere.
    #[garde(custom(rules::allowed_ips))]
    #[schema(schema_with = schema::network_list)]
    pub allowed_ips: Option<Vec<String>>,
    /// Exchanges per minute; null means the server default.
    #[serde(default, deserialize_with = "de::whole")]
    #[garde(custom(rules::rate_limit))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<i64>,
    /// Absolute URIs this key may ask for as `audience`/`resource`.
    #[garde(custom(rules::audiences))]
    #[schema(schema_with = schema::audience_list)]
    pub audiences: Option<Vec<String>>,
    /// Token lifetime, never above the server's.
    #[serde(default, deserialize_with = "de::whole")]
    #[garde(custom(rules::token_ttl))]
    #[schema(minimum = 1)]
    pub token_ttl_seconds: Option<i64>,
    /// Extra static claims (≤ 2 KiB of compact JSON, no registered names).
    #[garde(custom(rules::claims))]
    #[schema(value_type = Option<Object>)]
    pub claims: Option<Map<String, Value>>,
    /// Free-form data for admins (≤ 4 KiB), never put in tokens.
    #[garde(custom(rules::metadata))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Refuse exchanges without a DPoP proof (RFC 9449) [false].
    #[garde(skip)]
    pub require_dpop: Option<bool>,
    /// `secret` (default), `private_key_jwt` (needs `jwks`; no secret is
    /// issued) or `federated` (needs `federation`; no secret).
    #[garde(skip)]
    #[schema(value_type = Option<CredentialType>)]
    pub credential_type: Option<String>,
    /// The public keys of a `private_key_jwt` key: `{"keys": [...]}`, 1–5
    /// EC P-256, RSA (≥ 2048 bits) or Ed25519 JWKs, each with a `kid` when
    /// there are several.
    #[garde(skip)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Federation rules (at most 20), each naming a trusted issuer.
    #[garde(skip)]
    #[schema(value_type = Option<Vec<FederationRule>>)]
    pub federation: Option<Value>,
    /// Members we do not know: refused, each named.
    #[serde(flatten)]
    #[garde(skip)]
    #[schema(ignore)]
    pub unknown: BTreeMap<String, Value>,
}

/// `PATCH /v1/api-keys/{id}`: absent members keep their value; `null`
/// clears `rate_limit_per_minute`, `token_ttl_seconds` and `expires_at`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, Validate)]
#[garde(context(Rules as ctx))]
pub struct UpdateKeyRequest {
    #[serde(default, deserialize_with = "de::nullable")]
    #[garde(custom(rules::patched_name))]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub name: Option<Option<String>>,
    #[garde(custom(rules::scopes))]
    #[schema(schema_with = schema::scope_list)]
    pub scopes: Option<Vec<String>>,
    #[garde(custom(rules::allowed_ips))]
    #[schema(schema_with = schema::network_list)]
    pub allowed_ips: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::nullable_whole")]
    #[garde(custom(rules::patched_rate_limit))]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<Option<i64>>,
    #[garde(custom(rules::audiences))]
    #[schema(schema_with = schema::audience_list)]
    pub audiences: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::nullable_whole")]
    #[garde(custom(rules::patched_token_ttl))]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub token_ttl_seconds: Option<Option<i64>>,
    #[garde(custom(rules::claims))]
    #[schema(value_type = Option<Object>)]
    pub claims: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[garde(custom(rules::patched_expires_at))]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<String>>,
    #[garde(custom(rules::metadata))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Refuse exchanges without a DPoP proof (RFC 9449).
    #[garde(skip)]
    pub require_dpop: Option<bool>,
    /// Replaces the public keys of a `private_key_jwt` key (its rotation);
    /// not `null`.
    #[serde(default, deserialize_with = "de::keep_null")]
    #[garde(skip)]
    #[schema(value_type = Object, required = false)]
    pub jwks: Option<Value>,
    /// Replaces the federation rules (`[]` removes them); not `null`.
    #[serde(default, deserialize_with = "de::keep_null")]
    #[garde(skip)]
    #[schema(value_type = Vec<FederationRule>, required = false)]
    pub federation: Option<Value>,
    /// Members we do not know, or that cannot be changed: refused, each named.
    #[serde(flatten)]
    #[garde(skip)]
    #[schema(ignore)]
    pub unknown: BTreeMap<String, Value>,
}

/// `POST /v1/api-keys/{id}/rotate`; an empty body is `{}`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, Validate)]
#[garde(context(Rules as ctx))]
pub struct RotateKeyRequest {
    /// How long the current secret keeps working (0 to 7 days) [0].
    #[serde(default, deserialize_with = "de::whole")]
    #[garde(custom(rules::grace_period))]
    #[schema(minimum = 0, maximum = 604_800)]
    pub grace_period_seconds: Option<i64>,
    #[serde(flatten)]
    #[garde(skip)]
    #[schema(ignore)]
    pub unknown: BTreeMap<String, Value>,
}

/// A validated create request: plain domain values.
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub subject: Option<String>,
    pub environment: Environment,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<ipnet::IpNet>,
    pub rate_limit_per_minute: Option<u32>,
    pub audiences: Vec<String>,
    pub token_ttl_seconds: Option<u32>,
    pub claims: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub require_dpop: bool,
    pub credential_type: CredentialType,
    pub jwks: Option<Arc<ClientJwks>>,
    pub federation: Vec<FederationRule>,
}

/// A validated PATCH: only what is present changes.
#[derive(Clone, Debug, Default)]
pub struct KeyUpdate {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub allowed_ips: Option<Vec<ipnet::IpNet>>,
    pub rate_limit_per_minute: Patch<u32>,
    pub audiences: Option<Vec<String>>,
    pub token_ttl_seconds: Patch<u32>,
    pub claims: Option<Map<String, Value>>,
    pub expires_at: Patch<DateTime<Utc>>,
    pub metadata: Option<Map<String, Value>>,
    pub require_dpop: Option<bool>,
    pub jwks: Option<Arc<ClientJwks>>,
    pub federation: Option<Vec<FederationRule>>,
}

impl KeyUpdate {
    /// Names of the fields this PATCH sets, for the audit trail.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            (self.name.is_some(), "name"),
            (self.scopes.is_some(), "scopes"),
            (self.allowed_ips.is_some(), "allowed_ips"),
            (
                self.rate_limit_per_minute != Patch::Absent,
                "rate_limit_per_minute",
            ),
            (self.audiences.is_some(), "audiences"),
            (self.token_ttl_seconds != Patch::Absent, "token_ttl_seconds"),
            (self.claims.is_some(), "claims"),
            (self.expires_at != Patch::Absent, "expires_at"),
            (self.metadata.is_some(), "metadata"),
            (self.require_dpop.is_some(), "require_dpop"),
            (self.jwks.is_some(), "jwks"),
            (self.federation.is_some(), "federation"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

/// garde's report, the credential checks and every unknown member, or
/// nothing when all is well.
fn checked(
    report: Result<(), garde::Report>,
    credentials: Vec<FieldError>,
    unknown: &BTreeMap<String, Value>,
    fixed: bool,
) -> Result<(), Invalid> {
    let mut errors = report.err().map(|r| Invalid::from(r).0).unwrap_or_default();
    errors.extend(credentials);
    errors.extend(rules::unknown_fields(unknown, fixed));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Invalid(errors))
    }
}

fn small(n: Option<i64>) -> Option<u32> {
    n.and_then(|v| u32::try_from(v).ok())
}

/// A field error.
fn field(name: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.into(),
    }
}

/// Parses `jwks` and `federation` when present, collecting their errors.
fn credential_fields(
    jwks: Option<&Value>,
    federation: Option<&Value>,
    rules: &Rules,
    errors: &mut Vec<FieldError>,
) -> (Option<Arc<ClientJwks>>, Option<Vec<FederationRule>>) {
    let jwks = jwks.and_then(|v| {
        ClientJwks::parse(v)
            .map_err(|e| errors.push(field("jwks", e)))
            .ok()
    });
    let federation = federation.and_then(|v| {
        credentials::parse_rules(v, &rules.policy.federation_issuers)
            .map_err(|e| errors.push(field("federation", e)))
            .ok()
    });
    (jwks, federation)
}

impl CreateKeyRequest {
    /// Validates against `rules` and converts to domain values.
    pub fn validate_into(self, rules: &Rules) -> Result<NewKey, Invalid> {
        let mut errors = Vec::new();
        let credential_type = match self.credential_type.as_deref() {
            None => Some(CredentialType::Secret),
            Some(t) => CredentialType::parse(t).or_else(|| {
                errors.push(field(
                    "credential_type",
                    "must be secret, private_key_jwt or federated",
                ));
                None
            }),
        };
        let (jwks, federation) = credential_fields(
            self.jwks.as_ref(),
            self.federation.as_ref(),
            rules,
            &mut errors,
        );
        match credential_type {
            Some(CredentialType::PrivateKeyJwt) if self.jwks.is_none() => {
                errors.push(field("jwks", "a private_key_jwt key needs its public keys"));
            }
            Some(CredentialType::Secret | CredentialType::Federated) if self.jwks.is_some() => {
                errors.push(field("jwks", "only private_key_jwt keys have jwks"));
            }
            Some(CredentialType::Federated)
                if self.federation.is_none() || federation.as_ref().is_some_and(Vec::is_empty) =>
            {
                errors.push(field(
                    "federation",
                    "a federated key needs at least one rule",
                ));
            }
            _ => {}
        }
        checked(self.validate_with(rules), errors, &self.unknown, false)?;
        Ok(NewKey {
            credential_type: credential_type.unwrap_or_default(),
            jwks,
            federation: federation.unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            scopes: scope::dedup(self.scopes.unwrap_or_default()),
            subject: self.subject,
            environment: self
                .environment
                .as_deref()
                .and_then(Environment::parse)
                .unwrap_or(Environment::Live),
            expires_at: self.expires_at.as_deref().and_then(rules::parse_time),
            allowed_ips: rules::networks(self.allowed_ips.unwrap_or_default()),
            rate_limit_per_minute: small(self.rate_limit_per_minute),
            audiences: scope::dedup(self.audiences.unwrap_or_default()),
            token_ttl_seconds: small(self.token_ttl_seconds),
            claims: self.claims.unwrap_or_default(),
            metadata: self.metadata.unwrap_or_default(),
            require_dpop: self.require_dpop.unwrap_or(false),
        })
    }
}

impl UpdateKeyRequest {
    /// Validates against `rules` and converts to domain values.
    pub fn validate_into(self, rules: &Rules) -> Result<KeyUpdate, Invalid> {
        let mut errors = Vec::new();
        let (jwks, federation) = credential_fields(
            self.jwks.as_ref(),
            self.federation.as_ref(),
            rules,
            &mut errors,
        );
        checked(self.validate_with(rules), errors, &self.unknown, true)?;
        Ok(KeyUpdate {
            jwks,
            federation,
            name: self.name.flatten(),
            scopes: self.scopes.map(scope::dedup),
            allowed_ips: self.allowed_ips.map(rules::networks),
            rate_limit_per_minute: Patch::from_wire(self.rate_limit_per_minute.map(small)),
            audiences: self.audiences.map(scope::dedup),
            token_ttl_seconds: Patch::from_wire(self.token_ttl_seconds.map(small)),
            claims: self.claims,
            expires_at: Patch::from_wire(
                self.expires_at
                    .map(|t| t.as_deref().and_then(rules::parse_time)),
            ),
            metadata: self.metadata,
            require_dpop: self.require_dpop,
        })
    }
}

impl RotateKeyRequest {
    /// Validates and returns the grace period in seconds.
    pub fn validate_into(self, rules: &Rules) -> Result<u32, Invalid> {
        checked(self.validate_with(rules), Vec::new(), &self.unknown, false)?;
        Ok(small(self.grace_period_seconds).unwrap_or(0))
    }
}

mod de;
mod schema;
#[cfg(test)]
mod tests;
