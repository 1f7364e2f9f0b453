//! tower: [`AuthLayer`] authenticates every request before the service it
//! wraps sees it, and hands the result on as an [`Authenticated`] request
//! extension. Works with any `http` service (hyper, tonic, axum routers).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::auth::{AuthError, Authenticated};
use crate::verifier::Verifier;

/// Wraps a service so that only authenticated requests (with every scope
/// given to [`Self::require_scopes`]) reach it; the rest are answered as
/// [`AuthError`] says. The response body type must be buildable from a
/// `String` (axum's `Body`, `http_body_util::Full<Bytes>`, `String`, …).
///
/// ```no_run
/// use axum::{Extension, Router, routing::get};
/// use tokenmint_verify::{AuthLayer, Authenticated, Verifier};
///
/// async fn orders(Extension(auth): Extension<Authenticated>) -> String {
///     format!("orders of {}", auth.sub)
/// }
///
/// fn app(verifier: Verifier) -> Router {
///     Router::new()
///         .route("/orders", get(orders))
///         .layer(AuthLayer::new(verifier).require_scopes(&["orders:read"]))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: Verifier,
    scopes: &'static [&'static str],
}

impl AuthLayer {
    /// Requires a valid token on every request.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            scopes: &[],
        }
    }

    /// Also requires every one of `scopes` (`403 insufficient_scope`).
    #[must_use]
    pub fn require_scopes(mut self, scopes: &'static [&'static str]) -> Self {
        self.scopes = scopes;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = RequireAuth<S>;

    fn layer(&self, inner: S) -> RequireAuth<S> {
        RequireAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct RequireAuth<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone is not ready yet: call the instance poll_ready readied
        // and leave the clone in its place (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let presented = crate::http::presented(&parts);
            let checked = async {
                let auth = layer.verifier.authenticate(&presented).await?;
                auth.require_scopes(layer.scopes)?;
                Ok::<_, AuthError>(auth)
            };
            match checked.await {
                Ok(auth) => {
                    parts.extensions.insert::<Authenticated>(auth);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(refused) => Ok(crate::http::response(&refused)),
            }
        })
    }
}
