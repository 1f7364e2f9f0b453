//! Checking our own tokens (admin API bearer tokens, introspection) with the
//! same rules downstream services use: `tokenmint_verify::rules` is the one
//! place they live. The key comes from our key ring by `kid`; the algorithm
//! comes from that key, never from the token.

use std::time::SystemTime;

pub use tokenmint_verify::rules::{LEEWAY_SECONDS, VerifyError};
use tokenmint_verify::rules::{check_header, decode_claims, read_header};

use super::AccessClaims;
use super::signing::KeyRing;

/// Verifies a token against the ring. `audience` `None` skips the audience
/// check (introspection accepts any audience we issued for).
pub fn verify(
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, VerifyError> {
    let header = read_header(token)?;
    let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
    let key = ring
        .find(kid, SystemTime::now())
        .ok_or(VerifyError::UnknownKey)?;
    let alg = key.alg.jwt_algorithm();
    check_header(&header, alg)?;
    decode_claims(token, key.decoding_key(), alg, issuer, audience)
}
