//! The one set of rules by which we check our own tokens: algorithm pinned to
//! the key named by `kid`, `typ` exactly `at+jwt`, issuer, audience, time
//! claims with a small leeway.

use std::time::SystemTime;

use jsonwebtoken::{Validation, decode, decode_header};

use super::signing::KeyRing;
use super::{AccessClaims, TOKEN_TYPE};

/// Clock leeway for `exp` and `nbf`, in seconds (SPEC: at most 60).
pub const LEEWAY_SECONDS: u64 = 30;

/// Why a token was refused. Deliberately coarse: callers answer 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("wrong token type")]
    WrongType,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verifies a token against the ring. `audience` `None` skips the audience
/// check (introspection accepts any audience we issued for).
pub fn verify(
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, VerifyError> {
    let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.typ.as_deref() != Some(TOKEN_TYPE) {
        return Err(VerifyError::WrongType);
    }
    let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
    let key = ring
        .find(&kid, SystemTime::now())
        .ok_or(VerifyError::UnknownKey)?;
    // The algorithm comes from our key, never from the token: `none`, HS256
    // keyed with the public key, or any other swap fails here.
    let alg = key.alg.jwt_algorithm();
    if header.alg != alg {
        return Err(VerifyError::Invalid("algorithm mismatch".into()));
    }
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECONDS;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "sub", "aud"]);
        }
        None => {
            v.validate_aud = false;
            v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "sub"]);
        }
    }
    decode::<AccessClaims>(token, key.decoding_key(), &v)
        .map(|d| d.claims)
        .map_err(|e| VerifyError::Invalid(e.to_string()))
}
