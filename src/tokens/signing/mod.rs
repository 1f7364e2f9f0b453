//! Signing keys: PKCS#8 PEM files in the keys folder, parsed once, each named
//! by its RFC 7638 thumbprint. Keys are picked up while running: a new key is
//! published at once and signs after a delay; the key it replaces stays in
//! the JWKS until every token it signed has expired (SPEC §9.3).
//!
//! `alg` parses a key and builds its JWK, `files` reads and writes the keys
//! folder, `schedule` decides when each key publishes, signs and retires,
//! `ring` is one snapshot of that, `watch` follows the folder while running
//! and `admin` is what `signing-key list|revoke` do.

mod admin;
mod alg;
mod files;
mod ring;
mod schedule;
mod watch;

pub use admin::{KeyInfo, describe, revoke};
pub use alg::{SigningAlg, SigningKey};
pub use files::{generate_into, generate_pkcs8, load_dir, load_or_generate};
pub use ring::{JwksJson, KeyRing, KeyState, Timeline};
pub use schedule::{PICKUP, Schedule, Timing};
pub use watch::{KeyWatch, LiveRing, POLL};

/// How long verifiers may cache the JWKS (its `Cache-Control: max-age`), and
/// so the default publication delay of a new key.
pub const JWKS_MAX_AGE_SECONDS: u32 = 300;

/// Problems with the keys folder.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{path}: {why}")]
    BadKey { path: String, why: String },
    #[error("keys folder {path}: {why}")]
    Io { path: String, why: String },
    #[error("signing failed")]
    Sign,
    /// A `signing-key revoke` that cannot be done.
    #[error("{0}")]
    Refused(String),
}
