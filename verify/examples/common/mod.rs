//! What both example services read from the environment.

use std::time::Duration;

use tokenmint_verify::{ReqwestSource, Verifier};

/// Builds the verifier from `TOKENMINT_ISSUER` (required), `AUDIENCE`
/// (default: the issuer), `REVOCATION_POLL_SECONDS` and `PUBLIC_ORIGIN`
/// (the URL clients use, for DPoP proofs; default: from each request),
/// fetches the issuer's keys once so that a wrong URL fails at start, and
/// returns it with `BIND` (default `127.0.0.1:8081`).
pub async fn verifier_from_env() -> (Verifier, String) {
    let Ok(issuer) = std::env::var("TOKENMINT_ISSUER") else {
        eprintln!("TOKENMINT_ISSUER is required, e.g. http://127.0.0.1:8080");
        std::process::exit(2);
    };
    let audience = std::env::var("AUDIENCE").unwrap_or_else(|_| issuer.clone());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8081".into());

    let mut builder = Verifier::builder(&issuer, audience);
    if let Ok(secs) = std::env::var("REVOCATION_POLL_SECONDS") {
        let Ok(secs) = secs.parse::<u64>() else {
            eprintln!("REVOCATION_POLL_SECONDS must be a whole number of seconds");
            std::process::exit(2);
        };
        builder = builder.revocation_polling(Duration::from_secs(secs));
    }
    if let Ok(origin) = std::env::var("PUBLIC_ORIGIN") {
        builder = builder.public_origin(origin);
    }
    let verifier = builder.build(ReqwestSource::new());
    if let Err(e) = verifier.warm_up().await {
        eprintln!("cannot reach the issuer's keys: {e}");
        std::process::exit(1);
    }
    eprintln!("protecting GET http://{bind}/orders with tokens of {issuer}");
    (verifier, bind)
}
