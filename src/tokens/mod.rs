//! Access tokens: signing keys, JWT issue and verification, and the token
//! exchange itself.
//!
//! `exchange` turns an API key into a token; `issue` signs it with the key
//! from `signing`; `verify` checks one of ours; `limits` are the exchange's
//! rate limits; `dpop` checks the DPoP proofs that bind a token to a key.

pub mod dpop;
pub mod exchange;
pub mod issue;
pub mod limits;
pub mod signing;
pub mod verify;

pub use issue::{IssuedToken, TokenIssuer};
/// The claims of every access token we issue (shared with the verifier crate).
pub use tokenmint_verify::rules::{AccessClaims, Confirmation, TOKEN_TYPE};
