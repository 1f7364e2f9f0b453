//! Checking our own tokens (admin API bearer tokens, introspection) with the
//! same rules downstream services use: `tokenmint_verify::rules` is the one
//! place they live. The key comes from our key ring by `kid`; the algorithm
//! comes from that key, never from the token.

use std::time::SystemTime;

pub use tokenmint_verify::rules::{LEEWAY_SECONDS, VerifyError};
use tokenmint_verify::rules::{check_header, decode_claims, read_header};

use super::AccessClaims;
use super::signing::KeyRing;
use crate::db::{Db, DbError};
use crate::keys::{ApiKey, KeyStatus, now_micros, store};

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

/// A token of ours that is active right now, with the key behind it.
#[derive(Debug)]
pub struct ActiveToken {
    pub claims: AccessClaims,
    pub key: ApiKey,
}

/// Why a token is not active now.
#[derive(Debug, thiserror::Error)]
pub enum Inactive {
    /// Bad signature, wrong issuer or audience, expired, not yet valid.
    #[error("the token is invalid or expired")]
    Invalid,
    /// The key behind the token is unknown, revoked or expired.
    #[error("the key behind this token is no longer active")]
    KeyInactive,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The one "is this token active now" check, used by admin authentication
/// and introspection: our signature and time claims, then the key read from
/// the database (not the exchange cache), so a revocation made anywhere,
/// even by the CLI in another process, counts at once.
pub async fn active_token(
    db: &Db,
    ring: &KeyRing,
    issuer: &str,
    token: &str,
    audience: Option<&str>,
) -> Result<ActiveToken, Inactive> {
    let claims = verify(ring, token, issuer, audience).map_err(|_| Inactive::Invalid)?;
    let client_id = claims.client_id.clone();
    let key = db
        .run(move |conn| store::find_by_api_key(conn, &client_id))
        .await?
        .filter(|k| k.status(now_micros()) == KeyStatus::Active)
        .ok_or(Inactive::KeyInactive)?;
    Ok(ActiveToken { claims, key })
}
