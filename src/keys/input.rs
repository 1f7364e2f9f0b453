//! Parsing and validating what admins send to create or change a key.
//!
//! Wrong JSON types are a malformed request (400); well-typed but invalid
//! values, missing required fields and unknown fields are validation errors
//! (422) that name every bad field at once.

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Environment, scope};
use crate::net::parse_cidr;

/// Longest name, in characters.
pub const MAX_NAME: usize = 100;
/// Largest `claims` object, in bytes of compact JSON.
pub const MAX_CLAIMS_BYTES: usize = 2048;
/// Largest `metadata` object, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Most CIDRs in `allowed_ips`.
pub const MAX_ALLOWED_IPS: usize = 100;
/// Most entries in `audiences`.
pub const MAX_AUDIENCES: usize = 20;
/// Highest per-key rate limit.
pub const MAX_RATE_LIMIT: u64 = 1_000_000;
/// Longest rotation grace period: 7 days.
pub const MAX_GRACE_SECONDS: u64 = 7 * 24 * 3600;

/// Claim names a key may not set: they are ours to fill in.
pub const REGISTERED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "env",
    "typ",
    "auth_time",
    "acr",
    "amr",
    "azp",
    "cnf",
    "act",
    "may_act",
    "nonce",
];

/// One invalid field.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why input was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InputError {
    /// Not a JSON object, or a field of the wrong JSON type (400).
    Malformed(String),
    /// Well-formed but invalid (422).
    Invalid(Vec<FieldError>),
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

    fn into_option(self) -> Option<T> {
        match self {
            Self::Set(v) => Some(v),
            _ => None,
        }
    }
}

/// What the server allows, for validation.
#[derive(Clone, Debug)]
pub struct KeyPolicy {
    pub prefix: String,
    pub allowed_scopes: Option<Vec<String>>,
    pub max_ttl_seconds: u32,
}

/// A validated create request.
#[derive(Clone, Debug, Default)]
pub struct CreateKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub subject: Option<String>,
    pub environment: Option<Environment>,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<IpNet>,
    pub rate_limit_per_minute: Option<u32>,
    pub audiences: Vec<String>,
    pub token_ttl_seconds: Option<u32>,
    pub claims: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

/// A validated PATCH: only present fields change.
#[derive(Clone, Debug, Default)]
pub struct UpdateKey {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub allowed_ips: Option<Vec<IpNet>>,
    pub rate_limit_per_minute: Patch<u32>,
    pub audiences: Option<Vec<String>>,
    pub token_ttl_seconds: Patch<u32>,
    pub claims: Option<Map<String, Value>>,
    pub expires_at: Patch<DateTime<Utc>>,
    pub metadata: Option<Map<String, Value>>,
}

impl UpdateKey {
    /// Names of the fields this PATCH sets, for the audit trail.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                f.push(name)
            }
        };
        add(self.name.is_some(), "name");
        add(self.scopes.is_some(), "scopes");
        add(self.allowed_ips.is_some(), "allowed_ips");
        add(
            self.rate_limit_per_minute != Patch::Absent,
            "rate_limit_per_minute",
        );
        add(self.audiences.is_some(), "audiences");
        add(self.token_ttl_seconds != Patch::Absent, "token_ttl_seconds");
        add(self.claims.is_some(), "claims");
        add(self.expires_at != Patch::Absent, "expires_at");
        add(self.metadata.is_some(), "metadata");
        f
    }
}

/// Takes fields out of a JSON object one at a time, collecting value errors.
struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(field: &str, expected: &str, got: &Value) -> InputError {
    InputError::Malformed(format!(
        "{field}: expected {expected}, got {}",
        type_name(got)
    ))
}

impl Fields {
    fn new(body: Value) -> Result<Self, InputError> {
        match body {
            Value::Object(map) => Ok(Self {
                map,
                errors: Vec::new(),
            }),
            other => Err(InputError::Malformed(format!(
                "expected a JSON object, got {}",
                type_name(&other)
            ))),
        }
    }

    fn invalid(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn raw(&mut self, field: &str) -> Patch<Value> {
        match self.map.remove(field) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(v) => Patch::Set(v),
        }
    }

    fn string(&mut self, field: &str) -> Result<Patch<String>, InputError> {
        Ok(match self.raw(field) {
            Patch::Set(Value::String(s)) => Patch::Set(s),
            Patch::Set(other) => return Err(wrong(field, "a string", &other)),
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        })
    }

    fn strings(&mut self, field: &str) -> Result<Patch<Vec<String>>, InputError> {
        Ok(match self.raw(field) {
            Patch::Set(Value::Array(items)) => Patch::Set(
                items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) => Ok(s),
                        other => Err(wrong(field, "an array of strings", &other)),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Patch::Set(other) => return Err(wrong(field, "an array of strings", &other)),
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        })
    }

    fn object(
        &mut self,
        field: &str,
        max_bytes: usize,
    ) -> Result<Patch<Map<String, Value>>, InputError> {
        Ok(match self.raw(field) {
            Patch::Set(Value::Object(m)) => {
                let size = Value::Object(m.clone()).to_string().len();
                if size > max_bytes {
                    self.invalid(
                        field,
                        format!("must be at most {max_bytes} bytes of compact JSON, got {size}"),
                    );
                }
                Patch::Set(m)
            }
            Patch::Set(other) => return Err(wrong(field, "an object", &other)),
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        })
    }

    fn number(&mut self, field: &str, min: u64, max: u64) -> Result<Patch<u32>, InputError> {
        Ok(match self.raw(field) {
            Patch::Set(Value::Number(n)) => match n.as_u64().filter(|v| (min..=max).contains(v)) {
                Some(v) => Patch::Set(u32::try_from(v).unwrap_or(u32::MAX)),
                None => {
                    self.invalid(field, format!("must be a whole number from {min} to {max}"));
                    Patch::Absent
                }
            },
            Patch::Set(other) => return Err(wrong(field, "a number", &other)),
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        })
    }

    fn name(&mut self, required: bool) -> Result<Option<String>, InputError> {
        match self.string("name")? {
            Patch::Set(name) => {
                let n = name.chars().count();
                if n == 0 || n > MAX_NAME || name.trim().is_empty() {
                    self.invalid("name", format!("must be 1 to {MAX_NAME} characters"));
                } else if name.chars().any(char::is_control) {
                    self.invalid("name", "must not contain control characters");
                }
                Ok(Some(name))
            }
            _ if required => {
                self.invalid("name", "is required");
                Ok(None)
            }
            Patch::Null => {
                self.invalid("name", "cannot be null");
                Ok(None)
            }
            Patch::Absent => Ok(None),
        }
    }

    fn scopes(&mut self, policy: &KeyPolicy) -> Result<Option<Vec<String>>, InputError> {
        let Some(list) = self.strings("scopes")?.into_option() else {
            return Ok(None);
        };
        if list.len() > scope::MAX_SCOPES {
            self.invalid("scopes", format!("at most {} scopes", scope::MAX_SCOPES));
        }
        for s in &list {
            if !scope::is_scope_token(s) {
                self.invalid(
                    "scopes",
                    format!("{s:?} is not a valid scope (RFC 6749 §3.3)"),
                );
            } else if let Some(catalog) = &policy.allowed_scopes {
                if !catalog.contains(s) && !scope::RESERVED.contains(&s.as_str()) {
                    self.invalid(
                        "scopes",
                        format!("{s:?} is not in TOKENMINT_ALLOWED_SCOPES"),
                    );
                }
            }
        }
        Ok(Some(scope::dedup(list)))
    }

    fn allowed_ips(&mut self) -> Result<Option<Vec<IpNet>>, InputError> {
        let Some(list) = self.strings("allowed_ips")?.into_option() else {
            return Ok(None);
        };
        if list.len() > MAX_ALLOWED_IPS {
            self.invalid("allowed_ips", format!("at most {MAX_ALLOWED_IPS} entries"));
        }
        let mut nets = Vec::new();
        for entry in &list {
            match parse_cidr(entry) {
                Ok(net) => nets.push(net.trunc()),
                Err(why) => self.invalid("allowed_ips", why),
            }
        }
        nets.dedup();
        Ok(Some(nets))
    }

    fn audiences(&mut self) -> Result<Option<Vec<String>>, InputError> {
        let Some(list) = self.strings("audiences")?.into_option() else {
            return Ok(None);
        };
        if list.len() > MAX_AUDIENCES {
            self.invalid("audiences", format!("at most {MAX_AUDIENCES} entries"));
        }
        for a in &list {
            if !is_absolute_uri(a) {
                self.invalid("audiences", format!("{a:?} is not an absolute URI"));
            }
        }
        Ok(Some(scope::dedup(list)))
    }

    fn claims(&mut self) -> Result<Option<Map<String, Value>>, InputError> {
        let claims = self.object("claims", MAX_CLAIMS_BYTES)?.into_option();
        if let Some(c) = &claims {
            for name in c.keys() {
                if REGISTERED_CLAIMS.contains(&name.as_str()) {
                    self.invalid(
                        "claims",
                        format!("{name:?} is a registered claim and is set by the server"),
                    );
                }
            }
        }
        Ok(claims)
    }

    fn expires_at(&mut self, now: DateTime<Utc>) -> Result<Patch<DateTime<Utc>>, InputError> {
        Ok(match self.string("expires_at")? {
            Patch::Set(s) => match DateTime::parse_from_rfc3339(&s) {
                Ok(t) if t.with_timezone(&Utc) > now => {
                    Patch::Set(super::truncate_micros(t.with_timezone(&Utc)))
                }
                Ok(_) => {
                    self.invalid("expires_at", "must be in the future");
                    Patch::Absent
                }
                Err(_) => {
                    self.invalid(
                        "expires_at",
                        "must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z",
                    );
                    Patch::Absent
                }
            },
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        })
    }

    /// Reports leftovers as unknown (or not patchable) and returns the errors.
    fn finish(mut self, not_patchable: &[&str]) -> Result<(), InputError> {
        let rest: Vec<String> = self.map.keys().cloned().collect();
        for field in rest {
            if not_patchable.contains(&field.as_str()) {
                self.invalid(&field, "cannot be changed");
            } else {
                self.invalid(&field, "unknown field");
            }
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(InputError::Invalid(self.errors))
        }
    }
}

/// `scheme:rest`, with an RFC 3986 scheme and no whitespace.
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && s.len() <= 2048
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Validates `POST /v1/api-keys` (and `tokenmint api-key create`).
pub fn parse_create(
    body: Value,
    policy: &KeyPolicy,
    now: DateTime<Utc>,
) -> Result<CreateKey, InputError> {
    let mut f = Fields::new(body)?;
    let name = f.name(true)?;
    let scopes = f.scopes(policy)?;
    let subject = match f.string("subject")? {
        Patch::Set(s) => {
            let n = s.chars().count();
            if n == 0 || n > 255 || s.chars().any(char::is_control) {
                f.invalid(
                    "subject",
                    "must be 1 to 255 characters without control characters",
                );
            }
            Some(s)
        }
        _ => None,
    };
    let environment = match f.string("environment")? {
        Patch::Set(s) => {
            let env = Environment::parse(&s);
            if env.is_none() {
                f.invalid("environment", "must be live or test");
            }
            env
        }
        _ => None,
    };
    let expires_at = f.expires_at(now)?.into_option();
    let allowed_ips = f.allowed_ips()?;
    let rate_limit_per_minute = f
        .number("rate_limit_per_minute", 1, MAX_RATE_LIMIT)?
        .into_option();
    let audiences = f.audiences()?;
    let token_ttl_seconds = f
        .number("token_ttl_seconds", 1, u64::from(policy.max_ttl_seconds))?
        .into_option();
    let claims = f.claims()?;
    let metadata = f.object("metadata", MAX_METADATA_BYTES)?.into_option();
    f.finish(&[])?;
    Ok(CreateKey {
        name: name.unwrap_or_default(),
        scopes: scopes.unwrap_or_default(),
        subject,
        environment,
        expires_at,
        allowed_ips: allowed_ips.unwrap_or_default(),
        rate_limit_per_minute,
        audiences: audiences.unwrap_or_default(),
        token_ttl_seconds,
        claims: claims.unwrap_or_default(),
        metadata: metadata.unwrap_or_default(),
    })
}

/// Validates `PATCH /v1/api-keys/{id}`.
pub fn parse_update(
    body: Value,
    policy: &KeyPolicy,
    now: DateTime<Utc>,
) -> Result<UpdateKey, InputError> {
    let mut f = Fields::new(body)?;
    let update = UpdateKey {
        name: f.name(false)?,
        scopes: f.scopes(policy)?,
        allowed_ips: f.allowed_ips()?,
        rate_limit_per_minute: f.number("rate_limit_per_minute", 1, MAX_RATE_LIMIT)?,
        audiences: f.audiences()?,
        token_ttl_seconds: f.number("token_ttl_seconds", 1, u64::from(policy.max_ttl_seconds))?,
        claims: f.claims()?,
        expires_at: f.expires_at(now)?,
        metadata: f.object("metadata", MAX_METADATA_BYTES)?.into_option(),
    };
    f.finish(&[
        "id",
        "api_key",
        "api_secret",
        "subject",
        "environment",
        "status",
        "created_at",
        "updated_at",
        "last_used_at",
        "revoked_at",
        "previous_secret_expires_at",
    ])?;
    Ok(update)
}

/// Validates the rotate body (`{grace_period_seconds?}`); an empty body is `{}`.
pub fn parse_rotate(body: Value) -> Result<u32, InputError> {
    let mut f = Fields::new(body)?;
    let grace = f
        .number("grace_period_seconds", 0, MAX_GRACE_SECONDS)?
        .into_option()
        .unwrap_or(0);
    f.finish(&[])?;
    Ok(grace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> KeyPolicy {
        KeyPolicy {
            prefix: "tm".into(),
            allowed_scopes: None,
            max_ttl_seconds: 3600,
        }
    }

    fn invalid_fields(e: InputError) -> Vec<String> {
        match e {
            InputError::Invalid(list) => list.into_iter().map(|f| f.field).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn minimal_create() {
        let c = parse_create(json!({"name": "svc"}), &policy(), Utc::now()).unwrap();
        assert_eq!(c.name, "svc");
        assert!(c.scopes.is_empty());
        assert!(c.subject.is_none());
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = json!({
            "name": "",
            "scopes": ["ok", "bad\"scope"],
            "environment": "prod",
            "expires_at": "2001-01-01T00:00:00Z",
            "allowed_ips": ["10.0.0.0/33"],
            "rate_limit_per_minute": 0,
            "audiences": ["not a uri"],
            "token_ttl_seconds": 7200,
            "claims": {"sub": "x"},
            "metadata": {"blob": "x".repeat(5000)},
            "colour": "blue"
        });
        let mut fields = invalid_fields(parse_create(body, &policy(), Utc::now()).unwrap_err());
        fields.sort();
        assert_eq!(
            fields,
            [
                "allowed_ips",
                "audiences",
                "claims",
                "colour",
                "environment",
                "expires_at",
                "metadata",
                "name",
                "rate_limit_per_minute",
                "scopes",
                "token_ttl_seconds"
            ]
        );
    }

    #[test]
    fn wrong_types_are_malformed() {
        for body in [
            json!([1]),
            json!({"name": 5}),
            json!({"name": "x", "scopes": "a b"}),
            json!({"name": "x", "scopes": [1]}),
            json!({"name": "x", "metadata": []}),
            json!({"name": "x", "rate_limit_per_minute": "10"}),
        ] {
            assert!(
                matches!(
                    parse_create(body.clone(), &policy(), Utc::now()),
                    Err(InputError::Malformed(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn missing_name_is_a_validation_error() {
        assert_eq!(
            invalid_fields(parse_create(json!({}), &policy(), Utc::now()).unwrap_err()),
            ["name"]
        );
    }

    #[test]
    fn catalog_limits_scopes_but_reserved_ones_pass() {
        let p = KeyPolicy {
            allowed_scopes: Some(vec!["read".into()]),
            ..policy()
        };
        assert!(
            parse_create(
                json!({"name": "a", "scopes": ["read", "tokenmint:admin"]}),
                &p,
                Utc::now()
            )
            .is_ok()
        );
        let e =
            parse_create(json!({"name": "a", "scopes": ["write"]}), &p, Utc::now()).unwrap_err();
        assert_eq!(invalid_fields(e), ["scopes"]);
    }

    #[test]
    fn patch_distinguishes_null_from_absent_and_refuses_fixed_fields() {
        let u = parse_update(json!({"expires_at": null}), &policy(), Utc::now()).unwrap();
        assert_eq!(u.expires_at, Patch::Null);
        assert_eq!(u.rate_limit_per_minute, Patch::Absent);
        assert_eq!(u.fields(), ["expires_at"]);
        let e = parse_update(
            json!({"subject": "x", "environment": "test"}),
            &policy(),
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(invalid_fields(e).len(), 2);
    }

    #[test]
    fn rotate_grace_is_bounded() {
        assert_eq!(parse_rotate(json!({})).unwrap(), 0);
        assert_eq!(
            parse_rotate(json!({"grace_period_seconds": 60})).unwrap(),
            60
        );
        assert!(matches!(
            parse_rotate(json!({"grace_period_seconds": 604801})),
            Err(InputError::Invalid(_))
        ));
    }
}
