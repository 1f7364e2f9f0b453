//! Why a token was refused.

/// Why a token was refused, or could not be checked.
///
/// Deliberately coarse towards callers: everything except
/// [`VerifyError::MissingScope`] and the two "unavailable" cases should be
/// answered with `401`, and the reason only logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a compact JWS with a readable header.
    #[error("malformed token")]
    Malformed,
    /// The header's `typ` is not exactly `at+jwt`, so this is not one of our
    /// access tokens (an ID token, say) even if the signature checks out.
    #[error("wrong token type")]
    WrongType,
    /// No `kid`, or a `kid` the issuer's key set does not contain.
    #[error("unknown signing key")]
    UnknownKey,
    /// Bad signature, algorithm mismatch, wrong issuer or audience, expired,
    /// not yet valid, or claims missing. The text says which, for logs.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token's `client_id` is on the issuer's revocation list.
    #[error("the API key behind this token was revoked")]
    Revoked,
    /// The token is valid but lacks this scope (answer `403`, not `401`).
    #[error("missing scope {0}")]
    MissingScope(String),
    /// No usable key set could be fetched yet, so nothing can be verified.
    #[error("key set unavailable: {0}")]
    Jwks(String),
    /// Revocation checking is on and no revocation list could be fetched yet.
    #[error("revocation list unavailable: {0}")]
    Revocations(String),
}

impl VerifyError {
    /// Whether the failure is ours (issuer unreachable) rather than the
    /// token's: such errors deserve `503`, not `401`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Jwks(_) | Self::Revocations(_))
    }
}
