//! Bearer authentication of admin and introspection callers, as extractors:
//! a handler that takes [`AdminWrite`], [`AdminRead`] or [`Introspector`]
//! runs only for a caller with an active token of ours carrying that scope.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

use crate::AppState;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::keys::scope::{ADMIN, INTROSPECT, KEYS_READ};
use crate::tokens::verify::{Inactive, active_token};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub actor: Actor,
}

/// Which scopes a call needs (any one of them).
pub trait Need: 'static {
    /// Scopes that grant the call.
    const SCOPES: &'static [&'static str];
    /// How the requirement reads in a 403.
    const WANTED: &'static str;
}

/// Any admin change: `tokenmint:admin`.
#[derive(Debug)]
pub struct Write;
impl Need for Write {
    const SCOPES: &'static [&'static str] = &[ADMIN];
    const WANTED: &'static str = "tokenmint:admin";
}

/// Any admin GET: `tokenmint:admin` or `tokenmint:keys:read`.
#[derive(Debug)]
pub struct Read;
impl Need for Read {
    const SCOPES: &'static [&'static str] = &[ADMIN, KEYS_READ];
    const WANTED: &'static str = "tokenmint:admin or tokenmint:keys:read";
}

/// Introspection: `tokenmint:introspect` or `tokenmint:admin`.
#[derive(Debug)]
pub struct Introspect;
impl Need for Introspect {
    const SCOPES: &'static [&'static str] = &[ADMIN, INTROSPECT];
    const WANTED: &'static str = "tokenmint:introspect or tokenmint:admin";
}

/// A caller allowed to do what `N` needs.
#[derive(Debug)]
pub struct Authorized<N: Need> {
    pub caller: Caller,
    need: PhantomData<N>,
}

/// A caller that may change keys.
pub type AdminWrite = Authorized<Write>;
/// A caller that may read keys and audit events.
pub type AdminRead = Authorized<Read>;
/// A caller that may introspect tokens.
pub type Introspector = Authorized<Introspect>;

const BAD_HOP: &str = "X-Forwarded-For holds a hop that is not an IP address";

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// 401 for a missing, invalid or expired token or a key no longer active;
/// 403 for a missing scope.
async fn authorize<N: Need>(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<Authorized<N>, ApiError> {
    let token =
        bearer(&req).ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
    let active = active_token(
        &state.db,
        &state.issuer.ring(),
        state.issuer.issuer(),
        &token,
        Some(&state.config.audience),
    )
    .await
    .map_err(|e| match e {
        Inactive::Db(db) => ApiError::from(db),
        other => ApiError::Unauthorized(other.to_string()),
    })?;
    // A scope counts only if the token carries it and the key still has it:
    // narrowing an admin key's scopes takes effect at once.
    let has = |scope: &&str| {
        active.claims.has_scope(scope) && active.key.scopes.iter().any(|s| s == scope)
    };
    if !N::SCOPES.iter().any(has) {
        return Err(ApiError::Forbidden(format!(
            "this call needs the scope {}",
            N::WANTED
        )));
    }
    let ip = super::client_ip(&req, &state.config.trusted_proxies)
        .map_err(|_| ApiError::BadRequest(BAD_HOP.into()))?
        .to_string();
    Ok(Authorized {
        caller: Caller {
            key_id: active.key.id,
            actor: Actor {
                id: active.key.id.to_string(),
                ip: Some(ip),
                request_id: super::request_id(&req),
            },
        },
        need: PhantomData,
    })
}

impl<N: Need> FromRequest for Authorized<N> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            authorize::<N>(req, state).await
        })
    }
}
