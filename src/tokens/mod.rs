//! Access tokens: signing keys, JWT issue and verification, and the token
//! exchange itself.
//!
//! `exchange` turns a client's credential into a token: a secret, a
//! `private_key_jwt` `assertion`, or an external token under `federation`
//! rules (`claims` and `replay` serve the last two). `issue` signs it with
//! the key from `signing`; `verify` checks one of ours; `limits` are the
//! exchange's rate limits. DPoP proofs, which bind a token to a key, are checked by
//! `tokenmint_verify::dpop`, the same code resource servers use.

pub mod assertion;
pub mod claims;
pub mod exchange;
pub mod federation;
pub mod issue;
pub mod limits;
pub mod replay;
pub mod signing;
pub mod verify;

pub use issue::{IssuedToken, TokenIssuer};
/// The claims of every access token we issue (shared with the verifier crate).
pub use tokenmint_verify::rules::{AccessClaims, Confirmation, TOKEN_TYPE};
