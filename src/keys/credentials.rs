//! How a key proves who it is (SPEC §10): a secret, registered public keys
//! (`private_key_jwt`, RFC 7523), or a token of an identity provider we
//! trust (federation, RFC 8693). Parsing here is the one validation of
//! the stored and the submitted forms alike.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokenmint_verify::jws::PublicJwk;
use utoipa::ToSchema;

/// What a key authenticates with. Fixed at creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    /// An `api_secret`, checked with argon2id.
    #[default]
    Secret,
    /// A JWT signed with one of the key's registered public keys.
    PrivateKeyJwt,
    /// No credential of its own: only the token exchange of its
    /// federation rules.
    Federated,
}

impl CredentialType {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::Federated => "federated",
        }
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(Self::Secret),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "federated" => Some(Self::Federated),
            _ => None,
        }
    }

    /// Whether the key has an `api_secret`.
    pub fn has_secret(self) -> bool {
        self == Self::Secret
    }
}

/// Most public keys a key may register.
pub const MAX_CLIENT_KEYS: usize = 5;
/// Most federation rules a key may hold.
pub const MAX_FEDERATION_RULES: usize = 20;
const MAX_TEXT: usize = 1024;

/// A registered JWK set: the JSON as submitted (shown back to admins) and
/// its parsed keys (used per exchange, so parsed once per cached record).
#[derive(Clone, Debug)]
pub struct ClientJwks {
    pub json: Value,
    pub keys: Vec<PublicJwk>,
}

impl ClientJwks {
    /// Validates `{"keys": [...]}`: 1 to 5 public keys of an accepted
    /// type, with distinct `kid`s, every key having one when there are
    /// several (an assertion names its key by `kid`).
    pub fn parse(value: &Value) -> Result<Arc<Self>, String> {
        let list = value
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .ok_or("must be a JWK set: {\"keys\": [...]}")?;
        if list.is_empty() || list.len() > MAX_CLIENT_KEYS {
            return Err(format!("must hold 1 to {MAX_CLIENT_KEYS} keys"));
        }
        let keys = list
            .iter()
            .enumerate()
            .map(|(i, k)| PublicJwk::from_json(k).map_err(|e| format!("key {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.len() > 1 {
            let mut kids: Vec<&str> = keys.iter().filter_map(PublicJwk::kid).collect();
            kids.sort_unstable();
            kids.dedup();
            if kids.len() != keys.len() {
                return Err("with several keys, each needs its own kid".into());
            }
        }
        Ok(Arc::new(Self {
            json: value.clone(),
            keys,
        }))
    }
}

/// One federation rule: which external tokens may act as this key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FederationRule {
    /// A trusted issuer (`TOKENMINT_FEDERATION_ISSUERS`), exactly as in `iss`.
    pub issuer: String,
    /// Must equal the external token's `sub`.
    pub subject: String,
    /// Must be in the external token's `aud` [our issuer URL].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Each must equal the external token's claim of that name.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
}

impl FederationRule {
    /// Whether verified external `claims` satisfy this rule, whose
    /// audience defaults to `default_audience`.
    pub fn matches(&self, claims: &Map<String, Value>, default_audience: &str) -> bool {
        let audience = self.audience.as_deref().unwrap_or(default_audience);
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        claims.get("iss").and_then(Value::as_str) == Some(self.issuer.as_str())
            && claims.get("sub").and_then(Value::as_str) == Some(self.subject.as_str())
            && aud_ok
            && self
                .claims
                .iter()
                .all(|(name, want)| claims.get(name) == Some(want))
    }
}

/// Validates a rule list against the trusted issuers.
pub fn parse_rules(value: &Value, trusted: &[String]) -> Result<Vec<FederationRule>, String> {
    let list = value.as_array().ok_or("must be an array of rules")?;
    if list.len() > MAX_FEDERATION_RULES {
        return Err(format!("at most {MAX_FEDERATION_RULES} rules"));
    }
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let rule: FederationRule =
                serde_json::from_value(r.clone()).map_err(|e| format!("rule {i}: {e}"))?;
            check_rule(&rule, trusted).map_err(|e| format!("rule {i}: {e}"))?;
            Ok(rule)
        })
        .collect()
}

fn check_rule(rule: &FederationRule, trusted: &[String]) -> Result<(), String> {
    if !trusted.contains(&rule.issuer) {
        return Err(format!(
            "issuer {:?} is not one of TOKENMINT_FEDERATION_ISSUERS",
            rule.issuer
        ));
    }
    let text_ok =
        |s: &str| !s.is_empty() && s.len() <= MAX_TEXT && !s.chars().any(char::is_control);
    if !text_ok(&rule.subject) {
        return Err("subject must be 1-1024 characters without control characters".into());
    }
    if rule.audience.as_deref().is_some_and(|a| !text_ok(a)) {
        return Err("audience must be 1-1024 characters without control characters".into());
    }
    if rule.claims.len() > 10 {
        return Err("at most 10 claims conditions".into());
    }
    for (name, value) in &rule.claims {
        if !text_ok(name) || !(value.is_string() || value.is_number() || value.is_boolean()) {
            return Err(format!(
                "claim condition {name:?} must compare with a string, number or boolean"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GH: &str = "https://token.actions.githubusercontent.com";

    #[test]
    fn rules_match_exactly() {
        let rule: FederationRule = serde_json::from_value(json!({
            "issuer": GH, "subject": "repo:o/r:ref:refs/heads/main",
            "claims": {"repository": "o/r"}}))
        .unwrap();
        let mut claims = json!({"iss": GH, "sub": "repo:o/r:ref:refs/heads/main",
                                "aud": ["https://tm", "x"], "repository": "o/r"});
        let m = |c: &Value| rule.matches(c.as_object().unwrap(), "https://tm");
        assert!(m(&claims));
        claims["aud"] = json!("https://tm");
        assert!(m(&claims));
        for (name, bad) in [
            ("aud", json!("https://other")),
            ("sub", json!("repo:o/r:ref:refs/heads/main2")),
            ("iss", json!(format!("{GH}/evil"))),
            ("repository", json!("o/other")),
        ] {
            let mut c = claims.clone();
            c[name] = bad;
            assert!(!m(&c), "{name}");
        }
        let mut no_aud = claims.clone();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert!(!m(&no_aud));
    }

    #[test]
    fn rule_lists_are_validated() {
        let trusted = vec![GH.to_owned()];
        let ok = json!([{"issuer": GH, "subject": "s"}]);
        assert_eq!(parse_rules(&ok, &trusted).unwrap().len(), 1);
        for bad in [
            json!([{"issuer": "https://evil", "subject": "s"}]),
            json!([{"issuer": GH, "subject": ""}]),
            json!([{"issuer": GH, "subject": "s", "extra": 1}]),
            json!([{"issuer": GH, "subject": "s", "claims": {"a": [1]}}]),
            json!({"issuer": GH}),
            json!(vec![json!({"issuer": GH, "subject": "s"}); 21]),
        ] {
            assert!(parse_rules(&bad, &trusted).is_err(), "{bad}");
        }
    }

    #[test]
    fn jwk_sets_are_validated() {
        let ed = |kid: Option<&str>| {
            let mut k = json!({"kty": "OKP", "crv": "Ed25519",
                               "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
            if let Some(kid) = kid {
                k["kid"] = json!(kid);
            }
            k
        };
        assert!(ClientJwks::parse(&json!({"keys": [ed(None)]})).is_ok());
        assert!(ClientJwks::parse(&json!({"keys": [ed(Some("a")), ed(Some("b"))]})).is_ok());
        for bad in [
            json!({"keys": []}),
            json!({"keys": [ed(Some("a")), ed(None)]}),
            json!({"keys": [ed(Some("a")), ed(Some("a"))]}),
            json!({"keys": vec![ed(None); 6]}),
            json!({"keys": [ed(None)], "other": 1}),
            json!([ed(None)]),
        ] {
            assert!(ClientJwks::parse(&bad).is_err(), "{bad}");
        }
    }
}
