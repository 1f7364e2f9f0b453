//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect
//! Core §9): a JWT the client signs with a key it registered.

use serde_json::Value;
use tokenmint_verify::jws::{self, UnverifiedJwt};

use super::claims;
use crate::keys::ApiKey;

/// `client_assertion_type` of a JWT assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest assertion lifetime accepted.
const MAX_LIFETIME_SECONDS: i64 = 300;

/// The `iss` an assertion claims (unverified): which key to check it with.
pub fn claimed_client<'a>(jwt: &'a UnverifiedJwt<'_>) -> Option<&'a str> {
    jwt.unverified_claims().get("iss").and_then(Value::as_str)
}

/// An assertion that passed every check: its `jti` must now be spent.
#[derive(Debug)]
pub struct Accepted {
    pub jti: String,
    pub exp: i64,
}

/// Checks `jwt` as an assertion of `key`: signed by one of its keys (by
/// `kid`, or its only key), `iss` = `sub` = the api_key, `aud` naming one
/// of `audiences` (our issuer or token endpoint), `exp` at most 5 minutes
/// after `iat`/now, a `jti`.
pub fn check(
    jwt: UnverifiedJwt<'_>,
    key: &ApiKey,
    audiences: &[&str],
    now: i64,
) -> Result<Accepted, &'static str> {
    let registered = key.jwks.as_ref().ok_or("the key has no public keys")?;
    let jwk = jws::select(&registered.keys, jwt.kid()).ok_or("no registered key fits the kid")?;
    let claims = jwt.verify(jwk).map_err(|e| e.0)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(&key.api_key) || text("sub") != Some(&key.api_key) {
        return Err("iss and sub must both be the api_key");
    }
    if !claims::audience_has(&claims, audiences) {
        return Err("aud names neither our issuer nor our token endpoint");
    }
    let exp = claims::time_window(&claims, now, MAX_LIFETIME_SECONDS)?;
    let jti = claims::jti(&claims)?.ok_or("no jti")?.to_owned();
    Ok(Accepted { jti, exp })
}
