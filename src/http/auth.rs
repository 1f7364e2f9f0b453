//! Bearer authentication of admin and introspection callers: a token of ours,
//! for our default audience, whose key is still active right now.

use actix_web::HttpRequest;
use actix_web::http::header;
use uuid::Uuid;

use crate::AppState;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::keys::scope::{ADMIN, INTROSPECT, KEYS_READ};
use crate::keys::{KeyStatus, now_micros, store};
use crate::tokens::verify::verify;

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any admin GET: `tokenmint:admin` or `tokenmint:keys:read`.
    Read,
    /// Any admin change: `tokenmint:admin`.
    Write,
    /// Introspection: `tokenmint:introspect` or `tokenmint:admin`.
    Introspect,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub actor: Actor,
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks the bearer token and the scope `need`. 401 for a missing, invalid
/// or expired token or a key no longer active; 403 for a missing scope.
pub async fn authorize(
    req: &HttpRequest,
    state: &AppState,
    need: Need,
) -> Result<Caller, ApiError> {
    let token =
        bearer(req).ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
    let issuer = state.issuer.issuer();
    let claims = verify(
        state.issuer.ring(),
        token,
        issuer,
        Some(&state.config.audience),
    )
    .map_err(|_| ApiError::Unauthorized("the bearer token is invalid or expired".into()))?;
    // A revoked or expired admin key loses access at once, not at token expiry.
    let client_id = claims.client_id.clone();
    // Read from the database, not the exchange cache: an admin call must see a
    // revocation made anywhere (even by the CLI in another process) at once.
    let key = state
        .db
        .run(move |conn| store::find_by_api_key(conn, &client_id))
        .await?;
    let key = key
        .filter(|k| k.status(now_micros()) == KeyStatus::Active)
        .ok_or_else(|| {
            ApiError::Unauthorized("the key behind this token is no longer active".into())
        })?;
    // A scope counts only if the token carries it and the key still has it:
    // narrowing an admin key's scopes takes effect at once.
    let has = |scope: &str| claims.has_scope(scope) && key.scopes.iter().any(|s| s == scope);
    let allowed = match need {
        Need::Read => has(ADMIN) || has(KEYS_READ),
        Need::Write => has(ADMIN),
        Need::Introspect => has(ADMIN) || has(INTROSPECT),
    };
    if !allowed {
        let wanted = match need {
            Need::Read => "tokenmint:admin or tokenmint:keys:read",
            Need::Write => "tokenmint:admin",
            Need::Introspect => "tokenmint:introspect or tokenmint:admin",
        };
        return Err(ApiError::Forbidden(format!(
            "this call needs the scope {wanted}"
        )));
    }
    let ip = crate::http::client_ip(req, &state.config.trusted_proxies).to_string();
    Ok(Caller {
        key_id: key.id,
        actor: Actor {
            id: key.id.to_string(),
            ip: Some(ip),
            request_id: crate::http::request_id(req),
        },
    })
}
