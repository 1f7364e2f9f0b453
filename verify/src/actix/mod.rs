//! actix-web integration: an awc-based [`JwksSource`](crate::JwksSource)
//! and request extractors.

mod awc_source;
mod extract;

pub use awc_source::AwcSource;
pub use extract::{AuthError, Authenticated, RequiredScope, Scoped};
