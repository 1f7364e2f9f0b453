//! The claims of a tokenmint access token.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The claims of every access token tokenmint issues (RFC 9068 profile).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    /// The issuer, tokenmint's base URL.
    pub iss: String,
    /// The subject the API key acts for.
    pub sub: String,
    /// The one audience the token was minted for.
    pub aud: String,
    /// The API key (`api_key`) that obtained the token.
    pub client_id: String,
    /// Granted scopes, space-separated (RFC 6749 §3.3); may be empty.
    pub scope: String,
    /// The key's environment: `live` or `test`.
    pub env: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The key the token is bound to (RFC 9449 §6), for DPoP tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The key's static extra claims.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A token's confirmation claim (RFC 7800): the RFC 7638 thumbprint of the
/// DPoP key it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

impl AccessClaims {
    /// The granted scopes, in token order.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        // Split on the single space of the wire form; empty pieces would only
        // come from sloppy whitespace and are never scopes.
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether the token carries exactly `scope` (no prefix or wildcard
    /// matching: `orders` does not grant `orders:read`).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// The first of `required` the token lacks, if any.
    pub fn missing_scope<'a>(&self, required: &[&'a str]) -> Option<&'a str> {
        required.iter().copied().find(|s| !self.has_scope(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(scope: &str) -> AccessClaims {
        serde_json::from_value(json!({
            "iss": "i", "sub": "s", "aud": "a", "client_id": "c", "scope": scope,
            "env": "live", "iat": 1, "nbf": 1, "exp": 2, "jti": "j", "tenant": "acme"
        }))
        .unwrap()
    }

    #[test]
    fn scopes_split_and_match_exactly() {
        let c = claims("orders:read  orders:write");
        assert_eq!(
            c.scopes().collect::<Vec<_>>(),
            ["orders:read", "orders:write"]
        );
        assert!(c.has_scope("orders:read"));
        assert!(!c.has_scope("orders"));
        assert!(!c.has_scope(""));
        assert_eq!(c.missing_scope(&["orders:read", "admin"]), Some("admin"));
        assert_eq!(c.missing_scope(&["orders:write"]), None);
    }

    #[test]
    fn empty_scope_grants_nothing_and_extra_claims_are_kept() {
        let c = claims("");
        assert_eq!(c.scopes().count(), 0);
        assert_eq!(c.extra.get("tenant"), Some(&json!("acme")));
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["tenant"], "acme");
    }
}
