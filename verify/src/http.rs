//! What the axum extractor and the tower layer share: reading a
//! [`Presented`] off an `http::Request` and answering an [`AuthError`] with
//! an `http::Response`.

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};

use crate::auth::{AuthError, Presented};

/// What the request presents. The scheme is the URI's when it has one
/// (HTTP/2, absolute-form), else `http`: a service behind TLS should set
/// a [public origin](crate::VerifierBuilder::public_origin).
pub(crate) fn presented(parts: &Parts) -> Presented {
    let headers = &parts.headers;
    let text = |v: &HeaderValue| v.to_str().unwrap_or_default().to_owned();
    let host = headers
        .get(header::HOST)
        .map(text)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
    Presented {
        method: parts.method.as_str().to_owned(),
        scheme: parts.uri.scheme_str().unwrap_or("http").to_owned(),
        host,
        path: parts.uri.path().to_owned(),
        authorization: headers.get(header::AUTHORIZATION).map(text),
        dpop: headers.get_all("dpop").iter().map(text).collect(),
    }
}

/// The answer to a refused request, with any body type made from a string.
pub(crate) fn response<B: From<String>>(error: &AuthError) -> Response<B> {
    let mut response = Response::new(B::from(error.body()));
    *response.status_mut() =
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for challenge in error.challenges() {
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.append(header::WWW_AUTHENTICATE, value);
        }
    }
    if let Some(seconds) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_from_parts() {
        let (parts, ()) = http::Request::post("/orders?x=1")
            .header(header::HOST, "api.example")
            .header(header::AUTHORIZATION, "DPoP t")
            .header("DPoP", "p1")
            .body(())
            .unwrap()
            .into_parts();
        let p = presented(&parts);
        assert_eq!(p.method, "POST");
        assert_eq!(p.scheme, "http");
        assert_eq!(p.host.as_deref(), Some("api.example"));
        assert_eq!(p.path, "/orders");
        assert_eq!(p.authorization.as_deref(), Some("DPoP t"));
        assert_eq!(p.dpop, vec!["p1"]);

        let (parts, ()) = http::Request::get("https://h2.example/x")
            .body(())
            .unwrap()
            .into_parts();
        let p = presented(&parts);
        assert_eq!(
            (p.scheme.as_str(), p.host.as_deref()),
            ("https", Some("h2.example"))
        );
    }

    #[test]
    fn refusals_become_responses() {
        let r: Response<String> = response(&AuthError::MissingToken);
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers().get_all(header::WWW_AUTHENTICATE).iter().count(),
            2
        );
        assert!(r.body().contains("invalid_request"));
    }
}
