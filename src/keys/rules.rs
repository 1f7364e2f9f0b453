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

/// Claim names a key may not set, because they carry a registered meaning
/// for authentication or authorisation that verifiers act on: RFC 7519's,
/// ours (`client_id scope env`), RFC 9068 §2.2 (`auth_time acr amr roles
/// groups entitlements`), RFC 8693 (`act may_act`), RFC 7800 (`cnf`), OpenID
/// Connect (`azp nonce at_hash c_hash s_hash sid`), RFC 9449 (`htm htu ath`),
/// RFC 8417 (`events toe txn`), and the common `scp`. Compared without
/// regard to case or surrounding space, so `" Sub"` is refused too.
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
    "scp",
    "env",
    "typ",
    "cty",
    "auth_time",
    "acr",
    "amr",
    "roles",
    "groups",
    "entitlements",
    "azp",
    "cnf",
    "act",
    "may_act",
    "nonce",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "htm",
    "htu",
    "ath",
    "events",
    "toe",
    "txn",
];

/// Whether `name` is (a spelling of) a registered claim name.
pub fn is_registered_claim(name: &str) -> bool {
    let name = name.trim();
    REGISTERED_CLAIMS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
}

/// Audience URI schemes a key may list.
const AUDIENCE_SCHEMES: &[&str] = &["https", "http", "urn"];

/// Fields of a key that exist but cannot be changed by a PATCH.
const NOT_PATCHABLE: &[&str] = &[
    "id",
    "credential_type",
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
    /// `TOKENMINT_FEDERATION_ISSUERS`: the issuers rules may name.
    pub federation_issuers: Vec<String>,
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

/// A regex character class body (ECMA and Python alike) of every character
/// names and subjects may not hold: controls and format characters, the
/// latter listed from the same Unicode tables the check uses, so the OpenAPI
/// document and the server cannot disagree.
pub fn forbidden_text_class() -> String {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let mut ranges: Vec<(char, char)> = Vec::new();
    for c in (0xA0..=0x10FFFF_u32).filter_map(char::from_u32) {
        if c.general_category() == GeneralCategory::Format {
            match ranges.last_mut() {
                Some((_, b)) if u32::from(*b) + 1 == u32::from(c) => *b = c,
                _ => ranges.push((c, c)),
            }
        }
    }
    let mut class = String::from(r"\x00-\x1f\x7f-\x9f");
    for (a, b) in ranges {
        class.push(a);
        if b != a {
            class.push('-');
            class.push(b);
        }
    }
    class
}

/// Format characters (Unicode `Cf`: bidi overrides, zero-width joiners and
/// spaces, the BOM…) make one string look like another; names and subjects
/// are shown to people and matched by machines, so they have none.
fn no_format(s: &str) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    !s.chars()
        .any(|c| c.general_category() == GeneralCategory::Format)
}

fn name(v: &str) -> Checked {
    let n = v.chars().count();
    if n == 0 || n > MAX_NAME || v.trim().is_empty() {
        return fail(format!("must be 1 to {MAX_NAME} characters"));
    }
    if !no_control(v) {
        return fail("must not contain control characters");
    }
    if !no_format(v) {
        return fail("must not contain format characters (bidi overrides, zero-width characters)");
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
        Some(s)
            if s.is_empty()
                || s.chars().count() > MAX_SUBJECT
                || !no_control(s)
                || !no_format(s) =>
        {
            fail(format!(
                "must be 1 to {MAX_SUBJECT} characters without control or format characters"
            ))
        }
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
        if let Some(catalog) = &rules.policy.allowed_scopes
            && !catalog.contains(s)
            && !scope::RESERVED.contains(&s.as_str())
        {
            return fail(format!("{s:?} is not in TOKENMINT_ALLOWED_SCOPES"));
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

/// An `https:`, `http:` or `urn:` URI with something after the scheme and
/// no whitespace or control characters.
fn is_audience_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    AUDIENCE_SCHEMES
        .iter()
        .any(|a| a.eq_ignore_ascii_case(scheme))
        && !rest.is_empty()
        && s.len() <= 2048
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub fn audiences(v: &Option<Vec<String>>, _: &Rules) -> Checked {
    let Some(list) = v else { return Ok(()) };
    if list.len() > MAX_AUDIENCES {
        return fail(format!("at most {MAX_AUDIENCES} entries"));
    }
    match list.iter().find(|a| !is_audience_uri(a)) {
        Some(a) => fail(format!("{a:?} is not an https:, http: or urn: URI")),
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
    if let Some(name) = map.keys().find(|k| is_registered_claim(k)) {
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
