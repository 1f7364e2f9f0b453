//! Offline verification of tokenmint access tokens.
//!
//! tokenmint exchanges API keys for short-lived JWTs (`typ: at+jwt`, signed
//! ES256, RS256 or EdDSA). A service that receives such a token checks it
//! here without calling tokenmint per request: the issuer's JWKS is fetched
//! once and cached, refreshed when it goes stale or when a token names a
//! key we do not know yet (at most once per minimum interval), and every
//! token is checked for signature, `typ`, algorithm (pinned by the key),
//! `iss`, `aud`, `exp` and `nbf` with a 30 s leeway, and optionally scopes
//! and the issuer's revocation list.
//!
//! ```no_run
//! # #[cfg(feature = "actix")]
//! # async fn demo(token: &str) -> Result<(), tokenmint_verify::VerifyError> {
//! use tokenmint_verify::{AwcSource, Verifier};
//!
//! let verifier = Verifier::builder("http://127.0.0.1:8080", "http://127.0.0.1:8080")
//!     .build(AwcSource::new());
//! let claims = verifier.verify_with_scopes(token, &["orders:read"]).await?;
//! println!("{} may read orders", claims.sub);
//! # Ok(())
//! # }
//! ```
//!
//! With the `actix` feature (default) there is an awc-based [`AwcSource`]
//! and an actix-web extractor, [`Authenticated`]. Without it, bring your own
//! HTTP client by implementing [`JwksSource`].
//!
//! The rules themselves live in [`rules`], which the tokenmint server uses
//! too.

// Lets the unit tests share tests/common, which names the crate.
#[cfg(test)]
extern crate self as tokenmint_verify;

#[cfg(feature = "actix")]
mod actix;
mod cache;
pub mod rules;
mod source;
mod verifier;

#[cfg(feature = "actix")]
pub use actix::{AuthError, Authenticated, AwcSource, RequiredScope, Scoped};
pub use rules::{AccessClaims, VerifyError};
pub use source::{FetchError, FetchFuture, Fetched, JwksSource, max_age_from_cache_control};
pub use verifier::{
    DEFAULT_MAX_CACHE_AGE, DEFAULT_MIN_REFRESH_INTERVAL, DEFAULT_REVOCATION_POLL_INTERVAL,
    Verifier, VerifierBuilder,
};
