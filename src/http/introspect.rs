//! `POST /auth/introspect` (RFC 7662) and `GET /auth/revocations`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Introspector;
use super::docs::AuthErrors;
use super::extract::{media_type, read_oauth_body};
use crate::AppState;
use crate::error::{ApiError, OAuthError, OAuthErrorBody};
use crate::keys::{now_micros, store};
use crate::tokens::Confirmation;
use crate::tokens::verify::{Inactive, active_token};

/// The introspection form (RFC 7662 §2.1).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct IntrospectionRequest {
    /// The access token to look at.
    #[schema(min_length = 1)]
    token: String,
}

/// RFC 7662 §2.2: `{"active": false}` alone, or every member of an active token.
#[derive(Serialize, ToSchema, Default)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `DPoP` for a token bound to a key (then `cnf` says which), else `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The DPoP key a bound token is confirmed by (`jkt`: its RFC 7638 thumbprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cnf: Option<Confirmation>,
}

fn answer(body: &Introspection) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// The `token` parameter, exactly once.
fn token_param(body: &[u8]) -> Result<String, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidRequest("the body is not valid form encoding".into()))?;
    let mut tokens = pairs
        .into_iter()
        .filter(|(k, _)| k == "token")
        .map(|(_, v)| v);
    match (tokens.next(), tokens.next()) {
        (Some(t), None) if !t.is_empty() => Ok(t),
        (Some(_), Some(_)) => Err(OAuthError::InvalidRequest(
            "the parameter token is repeated".into(),
        )),
        _ => Err(OAuthError::InvalidRequest("token is required".into())),
    }
}

/// Whether a token is active now: signature, time claims, and its key still
/// active. Needs `tokenmint:introspect` or `tokenmint:admin`.
#[utoipa::path(
    post, path = "/auth/introspect", tag = "oauth",
    security(("bearer" = [])),
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's state", body = Introspection),
        (status = 400, description = "`token` missing, repeated or malformed", body = OAuthErrorBody),
        (status = 408, description = "The body did not arrive in time", body = OAuthErrorBody),
        (status = 413, description = "The body is larger than 8 KiB", body = OAuthErrorBody),
        (status = 415, description = "The body is not form-encoded", body = OAuthErrorBody),
        AuthErrors,
    )
)]
pub async fn introspect_token(
    _: Introspector,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if media_type(&req).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::UnsupportedMediaType.into());
    }
    let body = read_oauth_body(&req, payload).await?;
    let token = token_param(&body)?;
    let active = match active_token(
        &state.db,
        &state.issuer.ring(),
        state.issuer.issuer(),
        &token,
        None,
    )
    .await
    {
        Ok(active) => active,
        Err(Inactive::Db(e)) => return Err(ApiError::from(e).into()),
        Err(_) => return Ok(answer(&Introspection::default())),
    };
    let c = active.claims;
    Ok(answer(&Introspection {
        active: true,
        scope: Some(c.scope),
        client_id: Some(c.client_id),
        sub: Some(c.sub),
        aud: Some(c.aud),
        iss: Some(c.iss),
        exp: Some(c.exp),
        iat: Some(c.iat),
        nbf: Some(c.nbf),
        jti: Some(c.jti),
        token_type: Some(if c.cnf.is_some() { "DPoP" } else { "Bearer" }),
        env: Some(c.env),
        cnf: c.cnf,
    }))
}

/// One revoked key.
#[derive(Serialize, ToSchema)]
pub struct Revocation {
    pub client_id: String,
    pub revoked_at: DateTime<Utc>,
}

/// The keys revoked within the window.
#[derive(Serialize, ToSchema)]
pub struct RevocationList {
    pub data: Vec<Revocation>,
    /// One token lifetime, plus how long a replica cut off from the database
    /// may serve stale key records (`TOKENMINT_STALE_IF_ERROR_SECONDS`),
    /// plus a minute of clock leeway: every token a stale replica may have
    /// issued expires while its key is still listed.
    pub window_seconds: i64,
}

/// The `client_id`s revoked within the last token lifetime, so verifiers
/// that poll this can refuse their tokens within seconds.
#[utoipa::path(
    get, path = "/auth/revocations", tag = "oauth",
    responses(
        (status = 200, description = "Recently revoked keys", body = RevocationList),
        (status = 503, description = "The database is unavailable", body = crate::error::Problem,
         content_type = "application/problem+json"),
    )
)]
pub async fn list_revocations(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let window = i64::from(state.config.token_ttl_seconds)
        + i64::from(state.config.stale_if_error_seconds)
        + 60;
    let since = now_micros() - Duration::seconds(window);
    let rows = state
        .db
        .run(move |conn| store::revoked_since(conn, since))
        .await?;
    let data = rows
        .into_iter()
        .map(|(client_id, revoked_at)| Revocation {
            client_id,
            revoked_at,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=5"))
        .json(RevocationList {
            data,
            window_seconds: window,
        }))
}
