//! Signing keys: PKCS#8 PEM files in the keys folder, parsed once, each named
//! by its RFC 7638 thumbprint. The newest file signs; older ones stay in the
//! JWKS until every token they could have signed has expired.
//!
//! `alg` parses a key and builds its JWK, `files` reads and writes the keys
//! folder, `ring` decides which keys sign and which are published.

mod alg;
mod files;
mod ring;

pub use alg::{SigningAlg, SigningKey};
pub use files::{generate_into, generate_pkcs8, load_dir};
pub use ring::{JwksJson, KeyRing};

/// Problems with the keys folder.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{path}: {why}")]
    BadKey { path: String, why: String },
    #[error("keys folder {path}: {why}")]
    Io { path: String, why: String },
    #[error("signing failed")]
    Sign,
}
