//! Issuing access tokens: claims from the key and the request, signed with
//! the ring's current key.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::signing::{KeyRing, LiveRing, SigningError};
use super::{AccessClaims, Confirmation, TOKEN_TYPE};
use crate::keys::ApiKey;

/// A freshly signed token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS.
    pub access_token: String,
    /// Seconds from `iat` to `exp`.
    pub expires_in: i64,
    /// The granted scopes, space-separated (the OAuth wire form).
    pub scope: String,
    /// What was signed.
    pub claims: AccessClaims,
}

/// Signs access tokens with the ring's current key; the ring is swapped
/// while running when the keys folder changes.
#[derive(Clone)]
pub struct TokenIssuer {
    ring: LiveRing,
    issuer: String,
    max_ttl_seconds: u32,
}

impl TokenIssuer {
    /// Builds the issuer.
    pub fn new(ring: LiveRing, issuer: String, max_ttl_seconds: u32) -> Self {
        Self {
            ring,
            issuer,
            max_ttl_seconds,
        }
    }

    /// The key ring as it is now (for JWKS and verification).
    pub fn ring(&self) -> std::sync::Arc<KeyRing> {
        self.ring.load_full()
    }

    /// The `iss` of our tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Issues a token for `key` with the already-narrowed `scopes`, bound to
    /// the DPoP key with thumbprint `jkt` if given. `exp` is
    /// `iat` plus the key's TTL (never above the server's) and never past the
    /// key's own expiry.
    pub fn issue(
        &self,
        key: &ApiKey,
        scopes: &[String],
        audience: &str,
        jkt: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, SigningError> {
        let ring = self.ring.load();
        let signer = ring
            .signer(SystemTime::from(now))
            .ok_or(SigningError::Sign)?;
        let iat = now.timestamp();
        let ttl = key
            .token_ttl_seconds
            .map_or(self.max_ttl_seconds, |t| t.min(self.max_ttl_seconds));
        let mut exp = iat + i64::from(ttl);
        if let Some(until) = key.expires_at {
            exp = exp.min(until.timestamp()).max(iat);
        }
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: key.subject.clone(),
            aud: audience.to_owned(),
            client_id: key.api_key.clone(),
            scope: scopes.join(" "),
            env: key.environment.as_str().to_owned(),
            iat,
            nbf: iat,
            exp,
            jti: Uuid::new_v4().to_string(),
            cnf: jkt.map(|jkt| Confirmation { jkt }),
            extra: key.claims.clone(),
        };
        let header =
            serde_json::json!({ "alg": signer.alg.as_str(), "typ": TOKEN_TYPE, "kid": signer.kid });
        let payload = serde_json::to_vec(&claims).map_err(|_| SigningError::Sign)?;
        let mut token = B64.encode(header.to_string());
        token.push('.');
        token.push_str(&B64.encode(payload));
        let signature = signer.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&B64.encode(signature));
        Ok(IssuedToken {
            access_token: token,
            expires_in: exp - iat,
            scope: claims.scope.clone(),
            claims,
        })
    }
}
