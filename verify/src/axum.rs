//! axum: `Authenticated` and `Scoped<S>` as extractors, and [`AuthError`]
//! as a response. The [`Verifier`] comes from the router's state
//! (`Verifier: FromRef<S>`). Behind the tower [`AuthLayer`](crate::AuthLayer)
//! the extractors take the layer's result instead of verifying again (a
//! DPoP proof can be used once only).

use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::auth::{AuthError, Authenticated, RequiredScope, Scoped};
use crate::verifier::Verifier;

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        crate::http::response(&self)
    }
}

/// ```no_run
/// use axum::{Router, routing::get};
/// use tokenmint_verify::{AuthError, Authenticated, Verifier};
///
/// async fn orders(auth: Authenticated) -> Result<String, AuthError> {
///     auth.require_scope("orders:read")?;
///     Ok(format!("orders of {}", auth.sub))
/// }
///
/// fn app(verifier: Verifier) -> Router {
///     Router::new().route("/orders", get(orders)).with_state(verifier)
/// }
/// ```
impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        if let Some(done) = parts.extensions.get::<Authenticated>() {
            return Ok(done.clone());
        }
        let presented = crate::http::presented(parts);
        let authenticated = Verifier::from_ref(state).authenticate(&presented).await?;
        parts.extensions.insert(authenticated.clone());
        Ok(authenticated)
    }
}

impl<S, R> FromRequestParts<S> for Scoped<R>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    R: RequiredScope,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        Self::from_authenticated(Authenticated::from_request_parts(parts, state).await?)
    }
}
