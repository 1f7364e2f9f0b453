//! Access tokens: signing keys, JWT issue and verification, and the token
//! exchange itself.
//!
//! `exchange` turns an API key into a token; `issue` signs it with the key
//! from `signing`; `verify` checks one of ours; `limits` are the exchange's
//! rate limits. DPoP proofs, which bind a token to a key, are checked by
//! `tokenmint_verify::dpop`, the same code resource servers use.

pub mod exchange;
pub mod issue;
pub mod limits;
pub mod signing;
pub mod verify;

pub use issue::{IssuedToken, TokenIssuer};
/// The claims of every access token we issue (shared with the verifier crate).
pub use tokenmint_verify::rules::{AccessClaims, Confirmation, TOKEN_TYPE};
