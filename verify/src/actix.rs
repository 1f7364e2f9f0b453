//! actix-web: `Authenticated` and `Scoped<S>` as extractors, and
//! [`AuthError`] as an actix-web error. The [`Verifier`] is found in app
//! data, as `web::Data<Verifier>` or a plain `Verifier`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use crate::auth::{AuthError, Authenticated, Presented, RequiredScope, Scoped};
use crate::verifier::Verifier;

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        for challenge in self.challenges() {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.append_header((header::WWW_AUTHENTICATE, value));
            }
        }
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("application/json")
            .body(self.body())
    }
}

/// What the request presents, copied out: the future must not borrow it.
/// The scheme and host are the connection's and the `Host` header's, not
/// `Forwarded`/`X-Forwarded-*` (which any client can send, and which would
/// let a proof made for another origin pass): behind a proxy, configure a
/// [public origin](crate::VerifierBuilder::public_origin).
fn presented(req: &HttpRequest) -> Presented {
    let text = |v: &HeaderValue| v.to_str().unwrap_or_default().to_owned();
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(header::HOST)
        .map(text)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    Presented {
        method: req.method().as_str().to_owned(),
        scheme: scheme.to_owned(),
        host,
        path: req.path().to_owned(),
        authorization: req.headers().get(header::AUTHORIZATION).map(text),
        dpop: req.headers().get_all("dpop").map(text).collect(),
    }
}

type Extracting<T> = Pin<Box<dyn Future<Output = Result<T, AuthError>>>>;

/// A handler taking `Authenticated` is only called for a request with a
/// valid token (and, for a DPoP-bound one, a valid proof).
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
impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req
            .app_data::<web::Data<Verifier>>()
            .map(|d| d.get_ref().clone())
            .or_else(|| req.app_data::<Verifier>().cloned());
        let presented = presented(req);
        Box::pin(async move {
            let verifier = verifier.ok_or(AuthError::NotConfigured)?;
            verifier.authenticate(&presented).await
        })
    }
}

impl<S: RequiredScope + 'static> FromRequest for Scoped<S> {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = Authenticated::from_request(req, payload);
        Box::pin(async move { Self::from_authenticated(authenticated.await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn answers_carry_every_challenge() {
        let r = AuthError::MissingToken.error_response();
        assert_eq!(r.status(), 401);
        let challenges: Vec<_> = r
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(challenges.len(), 2, "{challenges:?}");
        assert_eq!(challenges[0], "Bearer");
        assert!(challenges[1].starts_with("DPoP algs="));
        assert_eq!(r.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
    }

    #[test]
    fn the_request_url_ignores_forwarded_headers() {
        let req = TestRequest::post()
            .uri("/orders?page=2")
            .insert_header((header::HOST, "api.example"))
            .insert_header(("x-forwarded-host", "evil.example"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("forwarded", "host=evil.example;proto=https"))
            .insert_header(("dpop", "a"))
            .append_header(("dpop", "b"))
            .to_http_request();
        let p = presented(&req);
        assert_eq!(
            (p.method.as_str(), p.scheme.as_str(), p.path.as_str()),
            ("POST", "http", "/orders")
        );
        assert_eq!(p.host.as_deref(), Some("api.example"));
        assert_eq!(p.dpop, vec!["a", "b"]);
    }
}
