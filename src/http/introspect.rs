//! `POST /auth/introspect` (RFC 7662) and `GET /auth/revocations`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Duration;
use serde_json::json;

use super::auth::{Need, authorize};
use super::{media_type, read_oauth_body};
use crate::AppState;
use crate::error::{ApiError, OAuthError};
use crate::keys::{KeyStatus, now_micros, store};
use crate::tokens::verify::verify;

fn inactive() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "active": false }))
}

/// Tells a caller with `tokenmint:introspect` (or admin) whether a token is
/// active now: signature, time claims, and its key still active.
pub async fn introspect_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    authorize(&req, &state, Need::Introspect).await?;
    if media_type(&req).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::UnsupportedMediaType.into());
    }
    let body = read_oauth_body(&req, payload).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| OAuthError::InvalidRequest("the body is not valid form encoding".into()))?;
    let mut tokens = pairs
        .into_iter()
        .filter(|(k, _)| k == "token")
        .map(|(_, v)| v);
    let token = match (tokens.next(), tokens.next()) {
        (Some(t), None) if !t.is_empty() => t,
        (Some(_), Some(_)) => {
            return Err(
                OAuthError::InvalidRequest("the parameter token is repeated".into()).into(),
            );
        }
        _ => return Err(OAuthError::InvalidRequest("token is required".into()).into()),
    };
    let Ok(claims) = verify(state.issuer.ring(), &token, state.issuer.issuer(), None) else {
        return Ok(inactive());
    };
    let client_id = claims.client_id.clone();
    // The database, not the exchange cache: introspection answers "active now".
    let key = state
        .db
        .run(move |conn| store::find_by_api_key(conn, &client_id))
        .await
        .map_err(ApiError::from)?;
    if !key.is_some_and(|k| k.status(now_micros()) == KeyStatus::Active) {
        return Ok(inactive());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "active": true,
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "nbf": claims.nbf,
            "jti": claims.jti,
            "token_type": "Bearer",
            "env": claims.env,
        })))
}

/// The `client_id`s revoked within the last token lifetime, so verifiers
/// that poll this can refuse their tokens within seconds.
pub async fn list_revocations(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let window = i64::from(state.config.token_ttl_seconds) + 60;
    let since = now_micros() - Duration::seconds(window);
    let rows = state
        .db
        .run(move |conn| store::revoked_since(conn, since))
        .await?;
    let data: Vec<_> = rows
        .into_iter()
        .map(|(client_id, revoked_at)| json!({ "client_id": client_id, "revoked_at": revoked_at }))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=5"))
        .json(json!({ "data": data, "window_seconds": window })))
}
