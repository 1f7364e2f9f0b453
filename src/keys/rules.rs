//! The rules a key's fields must follow, as `garde` custom validators over
//! the request types of `keys::request`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use garde::Error;
use ipnet::IpNet;
use serde_json::{Map, Value};

use super::request::FieldError;
use super::{Environment, scope};

/// Longest name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest subject, in characters.
pub const MAX_SUBJECT: usize = 255;
/// Largest `claims` object, in bytes of compact JSON.
pub const MAX_CLAIMS_BYTES: usize = 2048;
/// Largest `metadata` object, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Most CIDRs in `allowed_ips`.
pub const MAX_ALLOWED_IPS: usize = 100;
/// Most entries in `audiences`.
pub const MAX_AUDIENCES: usize = 20;
/// Highest per-key rate limit.
pub const MAX_RATE_LIMIT: i64 = 1_000_000;
/// Longest rotation grace period: 7 days.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

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

/// Fields of a key that exist but cannot be changed by a PATCH.
const NOT_PATCHABLE: &[&str] = &[
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
];

/// What the server allows, from its configuration.
#[derive(Clone, Debug)]
pub struct KeyPolicy {
    pub prefix: String,
    pub allowed_scopes: Option<Vec<String>>,
    pub max_ttl_seconds: u32,
}

/// The validation context: the server's policy and the current time.
#[derive(Clone, Debug)]
pub struct Rules {
    pub policy: KeyPolicy,
    pub now: DateTime<Utc>,
}

type Checked = garde::Result;

fn fail(message: impl Into<String>) -> Checked {
    Err(Error::new(message.into()))
}

fn no_control(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

fn name(v: &str) -> Checked {
    let n = v.chars().count();
    if n == 0 || n > MAX_NAME || v.trim().is_empty() {
        return fail(format!("must be 1 to {MAX_NAME} characters"));
    }
    if !no_control(v) {
        return fail("must not contain control characters");
    }
    Ok(())
}

pub fn required_name(v: &Option<String>, _: &Rules) -> Checked {
    v.as_deref().map_or_else(|| fail("is required"), name)
}

pub fn patched_name(v: &Option<Option<String>>, _: &Rules) -> Checked {
    match v {
        None => Ok(()),
        Some(None) => fail("cannot be null"),
        Some(Some(v)) => name(v),
    }
}

pub fn subject(v: &Option<String>, _: &Rules) -> Checked {
    match v {
        Some(s) if s.is_empty() || s.chars().count() > MAX_SUBJECT || !no_control(s) => fail(
            format!("must be 1 to {MAX_SUBJECT} characters without control characters"),
        ),
        _ => Ok(()),
    }
}

pub fn environment(v: &Option<String>, _: &Rules) -> Checked {
    match v.as_deref() {
        Some(e) if Environment::parse(e).is_none() => fail("must be live or test"),
        _ => Ok(()),
    }
}

pub fn scopes(v: &Option<Vec<String>>, rules: &Rules) -> Checked {
    let Some(list) = v else { return Ok(()) };
    if list.len() > scope::MAX_SCOPES {
        return fail(format!("at most {} scopes", scope::MAX_SCOPES));
    }
    for s in list {
        if !scope::is_scope_token(s) {
            return fail(format!("{s:?} is not a valid scope (RFC 6749 §3.3)"));
        }
        if let Some(catalog) = &rules.policy.allowed_scopes {
            if !catalog.contains(s) && !scope::RESERVED.contains(&s.as_str()) {
                return fail(format!("{s:?} is not in TOKENMINT_ALLOWED_SCOPES"));
            }
        }
    }
    Ok(())
}

/// Parses an `allowed_ips` entry: a CIDR or a single address.
fn network(v: &str) -> Result<IpNet, String> {
    crate::net::parse_cidr(v).map(|n| n.trunc())
}

/// The validated `allowed_ips`, normalised and without repeats.
pub fn networks(list: Vec<String>) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = list.iter().filter_map(|e| network(e).ok()).collect();
    nets.dedup();
    nets
}

pub fn allowed_ips(v: &Option<Vec<String>>, _: &Rules) -> Checked {
    let Some(list) = v else { return Ok(()) };
    if list.len() > MAX_ALLOWED_IPS {
        return fail(format!("at most {MAX_ALLOWED_IPS} entries"));
    }
    list.iter()
        .try_for_each(|e| network(e).map(drop))
        .or_else(fail)
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

pub fn audiences(v: &Option<Vec<String>>, _: &Rules) -> Checked {
    let Some(list) = v else { return Ok(()) };
    if list.len() > MAX_AUDIENCES {
        return fail(format!("at most {MAX_AUDIENCES} entries"));
    }
    match list.iter().find(|a| !is_absolute_uri(a)) {
        Some(a) => fail(format!("{a:?} is not an absolute URI")),
        None => Ok(()),
    }
}

fn within(v: i64, min: i64, max: i64) -> Checked {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        fail(format!("must be a whole number from {min} to {max}"))
    }
}

pub fn rate_limit(v: &Option<i64>, _: &Rules) -> Checked {
    v.map_or(Ok(()), |n| within(n, 1, MAX_RATE_LIMIT))
}

pub fn patched_rate_limit(v: &Option<Option<i64>>, rules: &Rules) -> Checked {
    rate_limit(&v.flatten(), rules)
}

pub fn token_ttl(v: &Option<i64>, rules: &Rules) -> Checked {
    v.map_or(Ok(()), |n| {
        within(n, 1, i64::from(rules.policy.max_ttl_seconds))
    })
}

pub fn patched_token_ttl(v: &Option<Option<i64>>, rules: &Rules) -> Checked {
    token_ttl(&v.flatten(), rules)
}

pub fn grace_period(v: &Option<i64>, _: &Rules) -> Checked {
    v.map_or(Ok(()), |n| within(n, 0, MAX_GRACE_SECONDS))
}

/// An RFC 3339 time, truncated to the microseconds both databases keep.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| super::truncate_micros(t.with_timezone(&Utc)))
}

pub fn expires_at(v: &Option<String>, rules: &Rules) -> Checked {
    let Some(s) = v else { return Ok(()) };
    match parse_time(s) {
        Some(t) if t > rules.now => Ok(()),
        Some(_) => fail("must be in the future"),
        None => fail("must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z"),
    }
}

pub fn patched_expires_at(v: &Option<Option<String>>, rules: &Rules) -> Checked {
    expires_at(&v.clone().flatten(), rules)
}

fn sized(map: &Map<String, Value>, max_bytes: usize) -> Checked {
    // Serialising a map cannot fail; an error would only overstate the size.
    let size = serde_json::to_vec(map).map_or(usize::MAX, |b| b.len());
    if size > max_bytes {
        return fail(format!(
            "must be at most {max_bytes} bytes of compact JSON, got {size}"
        ));
    }
    Ok(())
}

pub fn claims(v: &Option<Map<String, Value>>, _: &Rules) -> Checked {
    let Some(map) = v else { return Ok(()) };
    if let Some(name) = map.keys().find(|k| REGISTERED_CLAIMS.contains(&k.as_str())) {
        return fail(format!(
            "{name:?} is a registered claim and is set by the server"
        ));
    }
    sized(map, MAX_CLAIMS_BYTES)
}

pub fn metadata(v: &Option<Map<String, Value>>, _: &Rules) -> Checked {
    v.as_ref().map_or(Ok(()), |m| sized(m, MAX_METADATA_BYTES))
}

/// Each unknown member of a request named on its own (garde would report
/// the catch-all map once); members in `fixed` exist but cannot be changed.
pub fn unknown_fields(members: &BTreeMap<String, Value>, fixed: bool) -> Vec<FieldError> {
    members
        .keys()
        .map(|field| FieldError {
            field: field.clone(),
            message: if fixed && NOT_PATCHABLE.contains(&field.as_str()) {
                "cannot be changed".into()
            } else {
                "unknown field".into()
            },
        })
        .collect()
}
