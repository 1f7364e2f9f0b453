//! actix-web extractors: `Authenticated` (any valid token) and
//! `Scoped<S>` (a valid token carrying the scopes `S` names).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use crate::rules::{AccessClaims, VerifyError};
use crate::verifier::Verifier;

/// Why a request was refused. As an actix-web error it answers per
/// RFC 6750 §3: `401` with `WWW-Authenticate: Bearer` (plus
/// `error="invalid_token"` when a token was sent), or `403` with
/// `error="insufficient_scope"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("a bearer token is required")]
    MissingToken,
    /// The token was refused; the inner error says why, for logs only.
    #[error("invalid token: {0}")]
    InvalidToken(VerifyError),
    /// The token is valid but lacks this scope.
    #[error("insufficient scope: {0} is required")]
    InsufficientScope(String),
    /// The issuer's keys (or revocation list) could not be fetched yet.
    #[error("token verification unavailable: {0}")]
    Unavailable(VerifyError),
    /// No [`Verifier`] in the app data: a wiring mistake.
    #[error("no tokenmint_verify::Verifier in app_data")]
    NotConfigured,
}

impl From<VerifyError> for AuthError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::MissingScope(scope) => Self::InsufficientScope(scope),
            e if e.is_unavailable() => Self::Unavailable(e),
            e => Self::InvalidToken(e),
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The bodies are generic on purpose: telling the bearer *why* its
        // token failed (revoked? which key?) helps only an attacker.
        let (error, description) = match self {
            Self::MissingToken => ("invalid_request", "a bearer token is required"),
            Self::InvalidToken(_) => (
                "invalid_token",
                "the access token is invalid, expired or revoked",
            ),
            Self::InsufficientScope(_) => (
                "insufficient_scope",
                "the access token lacks a required scope",
            ),
            Self::Unavailable(_) => (
                "temporarily_unavailable",
                "tokens cannot be verified right now",
            ),
            Self::NotConfigured => ("server_error", "internal error"),
        };
        let mut response = HttpResponse::build(self.status_code());
        if let Some(challenge) = self.challenge() {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if matches!(self, Self::Unavailable(_)) {
            response.insert_header((header::RETRY_AFTER, "10"));
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "error": error, "error_description": description }))
    }
}

impl AuthError {
    /// The `WWW-Authenticate` challenge, if this answer carries one.
    fn challenge(&self) -> Option<HeaderValue> {
        let value = match self {
            // RFC 6750 §3.1: no error code when no credentials were sent.
            Self::MissingToken => "Bearer".to_owned(),
            Self::InvalidToken(_) => r#"Bearer error="invalid_token""#.to_owned(),
            // Scope names are RFC 6749 scope-tokens, which exclude `"` and
            // `\`; a name with them is left out rather than break the header.
            Self::InsufficientScope(scope) if !scope.contains(['"', '\\']) => {
                format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)
            }
            Self::InsufficientScope(_) => r#"Bearer error="insufficient_scope""#.to_owned(),
            Self::Unavailable(_) | Self::NotConfigured => return None,
        };
        HeaderValue::from_str(&value).ok()
    }
}

/// The token from `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

type Extracting<T> = Pin<Box<dyn Future<Output = Result<T, AuthError>>>>;

/// The claims of a valid bearer token. Extract it in a handler to require
/// authentication; the [`Verifier`] must be in app data as
/// `web::Data<Verifier>` (or a plain `Verifier`).
///
/// ```no_run
/// use actix_web::{HttpResponse, get};
/// use tokenmint_verify::{AuthError, Authenticated};
///
/// #[get("/orders")]
/// async fn list_orders(auth: Authenticated) -> Result<HttpResponse, AuthError> {
///     auth.require_scope("orders:read")?;
///     Ok(HttpResponse::Ok().json(serde_json::json!({ "for": auth.sub })))
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated(pub AccessClaims);

impl Authenticated {
    /// The verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.0
    }

    /// The verified claims, owned.
    pub fn into_inner(self) -> AccessClaims {
        self.0
    }

    /// `Err` (`403 insufficient_scope`) unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        self.require_scopes(&[scope])
    }

    /// `Err` (`403 insufficient_scope`) unless the token carries every one
    /// of `scopes`.
    pub fn require_scopes(&self, scopes: &[&str]) -> Result<(), AuthError> {
        match self.0.missing_scope(scopes) {
            Some(missing) => Err(AuthError::InsufficientScope(missing.to_owned())),
            None => Ok(()),
        }
    }
}

impl Deref for Authenticated {
    type Target = AccessClaims;

    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Clone what the future needs now: it must not borrow the request.
        let verifier = req
            .app_data::<web::Data<Verifier>>()
            .map(|d| d.get_ref().clone())
            .or_else(|| req.app_data::<Verifier>().cloned());
        let token = bearer(req);
        Box::pin(async move {
            let verifier = verifier.ok_or(AuthError::NotConfigured)?;
            let token = token.ok_or(AuthError::MissingToken)?;
            let claims = verifier.verify(&token).await?;
            Ok(Self(claims))
        })
    }
}

/// Names the scopes a [`Scoped`] extractor requires.
///
/// ```
/// use tokenmint_verify::RequiredScope;
///
/// struct OrdersRead;
/// impl RequiredScope for OrdersRead {
///     const SCOPES: &'static [&'static str] = &["orders:read"];
/// }
/// ```
pub trait RequiredScope {
    /// Every one of these must be granted.
    const SCOPES: &'static [&'static str];
}

/// Like [`Authenticated`], but also requires the scopes of `S`: a handler
/// taking `Scoped<OrdersRead>` is never called without them, and the
/// caller gets `403 insufficient_scope`.
pub struct Scoped<S: RequiredScope> {
    claims: AccessClaims,
    // fn() -> S: a marker only, so Scoped is Send/Sync whatever S is.
    _scopes: PhantomData<fn() -> S>,
}

impl<S: RequiredScope> Scoped<S> {
    /// The verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }

    /// The verified claims, owned.
    pub fn into_inner(self) -> AccessClaims {
        self.claims
    }
}

impl<S: RequiredScope> Deref for Scoped<S> {
    type Target = AccessClaims;

    fn deref(&self) -> &AccessClaims {
        &self.claims
    }
}

impl<S: RequiredScope> fmt::Debug for Scoped<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("scopes", &S::SCOPES)
            .field("claims", &self.claims)
            .finish()
    }
}

impl<S: RequiredScope + 'static> FromRequest for Scoped<S> {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let auth = authenticated.await?;
            auth.require_scopes(S::SCOPES)?;
            Ok(Self {
                claims: auth.0,
                _scopes: PhantomData,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn challenge(e: AuthError) -> (u16, Option<String>) {
        let r = e.error_response();
        let h = r
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), h)
    }

    #[test]
    fn errors_map_to_rfc6750_answers() {
        assert_eq!(
            challenge(AuthError::MissingToken),
            (401, Some("Bearer".into()))
        );
        assert_eq!(
            challenge(VerifyError::Revoked.into()),
            (401, Some(r#"Bearer error="invalid_token""#.into()))
        );
        assert_eq!(
            challenge(VerifyError::MissingScope("orders:read".into()).into()),
            (
                403,
                Some(r#"Bearer error="insufficient_scope", scope="orders:read""#.into())
            )
        );
        assert_eq!(
            challenge(AuthError::InsufficientScope("a\"b".into())),
            (403, Some(r#"Bearer error="insufficient_scope""#.into()))
        );
        assert_eq!(
            challenge(VerifyError::Jwks("down".into()).into()),
            (503, None)
        );
        assert_eq!(challenge(AuthError::NotConfigured), (500, None));
    }

    #[test]
    fn bodies_do_not_leak_the_reason() {
        let body = |e: VerifyError| {
            let r = AuthError::from(e).error_response();
            r.into_body().try_into_bytes().unwrap()
        };
        let expired = body(VerifyError::Invalid("expired".into()));
        assert_eq!(expired, body(VerifyError::Revoked));
        assert_eq!(expired, body(VerifyError::UnknownKey));
        let text = String::from_utf8(expired.to_vec()).unwrap();
        assert!(text.contains(r#""error":"invalid_token""#), "{text}");
    }

    #[test]
    fn bearer_header_parsing() {
        let req = |v: &str| {
            actix_web::test::TestRequest::default()
                .insert_header((header::AUTHORIZATION, v))
                .to_http_request()
        };
        assert_eq!(bearer(&req("Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(bearer(&req("bearer  abc ")).as_deref(), Some("abc"));
        assert_eq!(bearer(&req("Basic abc")), None);
        assert_eq!(bearer(&req("Bearer ")), None);
        assert_eq!(bearer(&req("Bearerabc")), None);
        let none = actix_web::test::TestRequest::default().to_http_request();
        assert_eq!(bearer(&none), None);
    }
}
