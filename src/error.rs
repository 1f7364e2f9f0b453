//! The one place where errors become HTTP responses.
//!
//! Two shapes: the token endpoints answer RFC 6749 §5.2 bodies
//! (`{"error", "error_description"}`), everything else answers RFC 9457
//! `application/problem+json`. 5xx bodies are generic; causes go to the log.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::keys::request::{FieldError, Invalid};
use crate::keys::service::KeyError;
use crate::tokens::exchange::ExchangeError;
use crate::tokens::limits::{Limited, RateInfo};

/// The `RateLimit-Limit/Remaining/Reset` headers (IETF httpapi draft).
pub fn rate_limit_headers(res: &mut actix_web::HttpResponseBuilder, info: &RateInfo) {
    res.insert_header(("RateLimit-Limit", info.limit.to_string()))
        .insert_header(("RateLimit-Remaining", info.remaining.to_string()))
        .insert_header(("RateLimit-Reset", info.reset.to_string()));
}

tokio::task_local! {
    /// The request id of the request being served, for error bodies.
    pub static REQUEST_ID: String;
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Seconds clients should wait after a 503.
const RETRY_AFTER_UNAVAILABLE: u64 = 1;

/// The body of an OAuth error (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_scope`, `invalid_target`,
    /// `unsupported_grant_type`, `rate_limited`, `temporarily_unavailable`.
    pub error: &'static str,
    pub error_description: String,
}

/// An RFC 9457 problem: the body of every admin API error.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what happened.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The `X-Request-Id` of the request.
    pub request_id: Option<String>,
    /// For 422: every invalid field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// An error of the token and introspection endpoints (RFC 6749 §5.2).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client")]
    InvalidClient { basic: bool },
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target")]
    InvalidTarget,
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("body too large")]
    TooLarge,
    #[error("body too slow")]
    TooSlow,
    #[error("rate limited")]
    RateLimited(Limited),
    #[error("temporarily unavailable")]
    Unavailable,
    #[error("server error")]
    Internal,
}

impl OAuthError {
    /// Every refusal of a token exchange (RFC 8693 §2.2.2), whatever the
    /// reason: one answer, so it tells a prober nothing.
    pub fn subject_token_refused() -> Self {
        Self::InvalidRequest("the subject_token was not accepted for this client_id".into())
    }

    fn parts(&self) -> (&'static str, String) {
        match self {
            Self::InvalidRequest(d) => ("invalid_request", d.clone()),
            Self::InvalidClient { .. } => ("invalid_client", "client authentication failed".into()),
            Self::InvalidScope(d) => ("invalid_scope", d.clone()),
            Self::InvalidTarget => (
                "invalid_target",
                "the requested audience is not allowed for this key".into(),
            ),
            Self::InvalidDpopProof(d) => ("invalid_dpop_proof", d.clone()),
            Self::UnsupportedGrantType => (
                "unsupported_grant_type",
                "grant_type must be client_credentials or urn:ietf:params:oauth:grant-type:token-exchange".into(),
            ),
            Self::UnsupportedMediaType => (
                "invalid_request",
                "the body must be application/json or application/x-www-form-urlencoded".into(),
            ),
            Self::TooLarge => ("invalid_request", "the body is larger than 8 KiB".into()),
            Self::TooSlow => (
                "invalid_request",
                "the body did not arrive within the deadline".into(),
            ),
            Self::RateLimited(_) => (
                "rate_limited",
                "too many requests; retry after the given delay".into(),
            ),
            Self::Unavailable => (
                "temporarily_unavailable",
                "the service is temporarily unavailable".into(),
            ),
            Self::Internal => ("server_error", "internal error".into()),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooSlow => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (error, description) = self.parts();
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::InvalidClient { basic: true } => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="tokenmint""#));
            }
            Self::RateLimited(limited) => {
                res.insert_header((header::RETRY_AFTER, limited.retry_after.to_string()));
                rate_limit_headers(&mut res, &limited.info);
            }
            Self::Unavailable => {
                res.insert_header((header::RETRY_AFTER, RETRY_AFTER_UNAVAILABLE.to_string()));
            }
            _ => {}
        }
        res.json(OAuthErrorBody {
            error,
            error_description: description,
        })
    }
}

impl From<ExchangeError> for OAuthError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::InvalidClient => Self::InvalidClient { basic: false },
            ExchangeError::SubjectTokenRefused => Self::subject_token_refused(),
            ExchangeError::InvalidScope(d) => Self::InvalidScope(d),
            ExchangeError::InvalidTarget => Self::InvalidTarget,
            ExchangeError::InvalidDpopProof(d) => Self::InvalidDpopProof(d.into()),
            ExchangeError::RateLimited(limited) => Self::RateLimited(limited),
            ExchangeError::Busy | ExchangeError::Unavailable => Self::Unavailable,
            ExchangeError::Internal => Self::Internal,
        }
    }
}

/// An error of the admin API and other JSON endpoints (RFC 9457).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("body too large")]
    TooLarge,
    #[error("body too slow")]
    TooSlow,
    #[error("unavailable")]
    Unavailable,
    #[error("internal: {0}")]
    Internal(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooSlow => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::Conflict(d) => d.clone(),
            Self::NotFound => "no such resource".into(),
            Self::Validation(_) => "one or more fields are invalid".into(),
            Self::UnsupportedMediaType => "the body must be application/json".into(),
            Self::TooLarge => "the body is too large".into(),
            Self::TooSlow => "the body did not arrive within the deadline".into(),
            Self::Unavailable => "the service is temporarily unavailable; retry shortly".into(),
            Self::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                "internal error".into()
            }
        };
        let body = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            request_id: current_request_id(),
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        };
        let mut res = HttpResponse::build(status);
        match self {
            Self::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="tokenmint""#));
            }
            Self::Unavailable => {
                res.insert_header((header::RETRY_AFTER, RETRY_AFTER_UNAVAILABLE.to_string()));
            }
            _ => {}
        }
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ))
        .body(serde_json::to_string(&body).unwrap_or_default())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable => Self::Unavailable,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        Self::Validation(e.0)
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::NotFound => Self::NotFound,
            KeyError::Revoked => Self::Conflict("the key is revoked and cannot be changed".into()),
            KeyError::Busy => Self::Unavailable,
            KeyError::NoSecret => Self::Conflict(
                "this key has no secret: it authenticates with private_key_jwt or federation"
                    .into(),
            ),
            KeyError::Invalid(i) => Self::Validation(i.0),
            KeyError::Db(d) => d.into(),
            KeyError::Hash(h) => Self::Internal(h.to_string()),
        }
    }
}
