//! Workload identity federation (RFC 8693, SPEC §10.2): tokens of the
//! identity providers we trust, checked against their published keys. The
//! keys are fetched and cached by the verifier crate's [`IssuerKeys`], the
//! same cache resource servers use for our JWKS.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Map, Value};
use tokenmint_verify::jws::UnverifiedJwt;
use tokenmint_verify::{IssuerKeyError, IssuerKeys, JwksSource, ReqwestSource};

use super::claims;
use crate::keys::ApiKey;

/// `grant_type` of the token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The subject token types we accept: a JWT, or an OpenID ID token.
pub const SUBJECT_TOKEN_TYPES: &[&str] = &[
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
];
/// What we issue (and the only `requested_token_type` accepted).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Longest external token lifetime accepted (24 h).
const MAX_LIFETIME_SECONDS: i64 = 86_400;

/// An external token that verified and matched one of the key's rules.
#[derive(Debug)]
pub struct Matched {
    pub issuer: String,
    pub jti: Option<String>,
    pub exp: i64,
}

/// The trusted issuers and their cached keys.
#[derive(Clone)]
pub struct Federation {
    issuers: Arc<HashMap<String, IssuerKeys>>,
    /// When an unreachable issuer was last logged (seconds since the Unix
    /// epoch): once a minute, however many requests find it down.
    last_warning: Arc<AtomicI64>,
}

impl Federation {
    /// Trusts `issuers`, fetching their keys over HTTPS.
    pub fn new(issuers: &[String]) -> Self {
        Self::with_source(issuers, Arc::new(ReqwestSource::new()))
    }

    /// Trusts `issuers`, fetching through `source`.
    pub fn with_source(issuers: &[String], source: Arc<dyn JwksSource>) -> Self {
        let map = issuers
            .iter()
            .map(|i| (i.clone(), IssuerKeys::new(i.clone(), source.clone())))
            .collect();
        Self {
            issuers: Arc::new(map),
            last_warning: Arc::new(AtomicI64::new(0)),
        }
    }

    fn warn_unavailable(&self, issuer: &str, why: &str) {
        let now = chrono::Utc::now().timestamp();
        let last = self.last_warning.load(Ordering::Relaxed);
        if now - last >= 60
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                issuer,
                why,
                "external issuer keys unavailable (logged once a minute)"
            );
        }
    }

    /// Verifies `token` and matches it against `key`'s rules, whose default
    /// audience is `our_issuer`. The refusal reason is for logs only: the
    /// client hears one undistinguished answer.
    pub async fn check(
        &self,
        token: &str,
        key: &ApiKey,
        our_issuer: &str,
        now: i64,
    ) -> Result<Matched, &'static str> {
        let jwt = UnverifiedJwt::parse(token).map_err(|e| e.0)?;
        let iss = jwt
            .unverified_claims()
            .get("iss")
            .and_then(Value::as_str)
            .ok_or("no iss")?
            .to_owned();
        // Exact strings: `https://issuer/evil` is not `https://issuer`. An
        // issuer none of the key's rules name costs no fetch.
        if !key.federation.iter().any(|r| r.issuer == iss) {
            return Err("no rule of this key names the token's issuer");
        }
        let keys = self.issuers.get(&iss).ok_or("untrusted issuer")?;
        let jwk = keys.key(jwt.kid()).await.map_err(|e| match e {
            IssuerKeyError::UnknownKey => "the issuer has no such key",
            IssuerKeyError::Unavailable(why) => {
                self.warn_unavailable(&iss, &why);
                "the issuer's keys are unavailable"
            }
        })?;
        let verified = jwt.verify(&jwk).map_err(|e| e.0)?;
        let exp = claims::time_window(&verified, now, MAX_LIFETIME_SECONDS)?;
        let jti = claims::jti(&verified)?.map(str::to_owned);
        if !matches_a_rule(key, &verified, our_issuer) {
            return Err("no rule of this key matches the token");
        }
        Ok(Matched {
            issuer: iss,
            jti,
            exp,
        })
    }
}

fn matches_a_rule(key: &ApiKey, verified: &Map<String, Value>, our_issuer: &str) -> bool {
    key.federation
        .iter()
        .any(|rule| rule.matches(verified, our_issuer))
}
