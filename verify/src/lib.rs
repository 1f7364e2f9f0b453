//! Offline verification of tokenmint access tokens, bearer and DPoP-bound.
//!
//! tokenmint exchanges API keys for short-lived JWTs (`typ: at+jwt`, signed
//! ES256, RS256 or EdDSA). A service that receives such a token checks it
//! here without calling tokenmint per request: the issuer's JWKS is fetched
//! once and cached, refreshed when it goes stale or when a token names a
//! key we do not know yet (at most once per minimum interval), and every
//! token is checked for signature, `typ`, algorithm (pinned by the key),
//! `iss`, `aud`, `exp` and `nbf` with a 30 s leeway, and optionally scopes
//! and the issuer's revocation feed. A token bound to a key (`cnf.jkt`,
//! RFC 9449) is accepted only as `Authorization: DPoP` with a fresh proof
//! of that key for this request.
//!
//! ```no_run
//! # #[cfg(feature = "reqwest")]
//! # async fn demo(token: &str) -> Result<(), tokenmint_verify::VerifyError> {
//! use tokenmint_verify::{ReqwestSource, Verifier};
//!
//! let verifier = Verifier::builder("https://auth.example", "https://auth.example")
//!     .build(ReqwestSource::new());
//! let claims = verifier.verify_with_scopes(token, &["orders:read"]).await?;
//! println!("{} may read orders", claims.sub);
//! # Ok(())
//! # }
//! ```
//!
//! [`Verifier::verify`] checks a token; [`Verifier::authenticate`] checks a
//! request (scheme, token, DPoP proof). Features:
//! - `reqwest` (default): [`ReqwestSource`], the HTTP source (rustls).
//!   Without it, implement [`JwksSource`] with the client you have.
//! - `actix`: [`Authenticated`] and [`Scoped`] as actix-web extractors.
//! - `axum`: the same as axum extractors (`Verifier: FromRef<State>`).
//! - `tower`: [`AuthLayer`], a layer for any `http` service.
//!
//! All three answer refusals alike ([`AuthError`]: RFC 6750 and RFC 9449
//! §7.1 challenges), and share one key cache, revocation feed and DPoP
//! replay window per [`Verifier`]. The token and proof rules live in
//! [`rules`] and [`dpop`], which the tokenmint server uses too.

// Lets the unit tests share tests/common, which names the crate.
#[cfg(test)]
extern crate self as tokenmint_verify;

#[cfg(feature = "actix")]
mod actix;
mod auth;
#[cfg(feature = "axum")]
mod axum;
mod cache;
pub mod dpop;
#[cfg(feature = "http")]
mod http;
mod issuer;
pub mod jws;
#[cfg(feature = "reqwest")]
mod reqwest_source;
pub mod rules;
mod source;
#[cfg(feature = "tower")]
mod tower;
mod verifier;

/// The fixtures the integration tests use (keys, a fake issuer), shared by
/// the unit tests.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_common;

pub use auth::{AuthError, Authenticated, Presented, RequiredScope, Scheme, Scoped};
pub use issuer::{
    ISSUER_DEFAULT_AGE, ISSUER_MAX_AGE, ISSUER_MIN_AGE, ISSUER_MIN_REFRESH, IssuerKeyError,
    IssuerKeys,
};
#[cfg(feature = "reqwest")]
pub use reqwest_source::ReqwestSource;
pub use rules::{AccessClaims, VerifyError};
pub use source::{FetchError, FetchFuture, Fetched, JwksSource, max_age_from_cache_control};
#[cfg(feature = "tower")]
pub use tower::{AuthLayer, RequireAuth};
pub use verifier::{
    DEFAULT_MAX_CACHE_AGE, DEFAULT_MIN_REFRESH_INTERVAL, DEFAULT_REVOCATION_POLL_INTERVAL,
    Verifier, VerifierBuilder,
};
