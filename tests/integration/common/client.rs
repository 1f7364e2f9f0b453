//! A small HTTP client over awc for the tests.

use actix_web::http::header::HeaderMap;
use serde_json::Value;

use super::TestApp;

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    /// Asserts an RFC 6749 error body.
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.json()["error"], error, "{}", self.text());
        assert!(self.json()["error_description"].is_string());
    }
    /// Asserts an RFC 9457 problem body.
    pub fn assert_problem(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        for field in ["type", "title", "detail", "request_id"] {
            assert!(p[field].is_string(), "problem without {field}: {p}");
        }
        assert_eq!(
            p["request_id"].as_str(),
            self.header("x-request-id").as_deref()
        );
    }
}

/// Sends a request to any URL; repeated header names are all sent.
pub async fn request(
    client: &awc::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Resp {
    let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.append_header((*k, *v));
    }
    let mut res = match body {
        Some(b) => req.send_body(b).await,
        None => req.send().await,
    }
    .expect("request");
    let body = res
        .body()
        .limit(4 * 1024 * 1024)
        .await
        .expect("body")
        .to_vec();
    Resp {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

impl TestApp {
    /// Sends a request with optional bearer token, headers and raw body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let url = format!("{}{}", self.base, path);
        request(&self.client, method, &url, headers, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.send("GET", path, &headers, None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        self.json_call("POST", path, body, token).await
    }

    pub async fn json_call(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        self.send(method, path, &headers, Some(body.to_string().into_bytes()))
            .await
    }

    /// Revokes a key over the admin API with a bearer token.
    pub async fn revoke(&self, id: &str, token: &str) -> Resp {
        let auth = format!("Bearer {token}");
        self.send(
            "DELETE",
            &format!("/v1/api-keys/{id}"),
            &[("authorization", &auth)],
            None,
        )
        .await
    }

    /// Introspects `token`, sending `authorization` (a whole header value) if given.
    pub async fn introspect(&self, token: &str, authorization: Option<&str>) -> Resp {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("authorization", *a))
            .collect();
        self.post_form("/auth/introspect", &format!("token={token}"), &headers)
            .await
    }

    pub async fn post_form(&self, path: &str, form: &str, headers: &[(&str, &str)]) -> Resp {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, Some(form.as_bytes().to_vec()))
            .await
    }
}

/// Decodes a JWT's header and claims without verifying (for assertions).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let header = b64.decode(parts.next().expect("header")).expect("b64");
    let claims = b64.decode(parts.next().expect("claims")).expect("b64");
    (
        serde_json::from_slice(&header).expect("json"),
        serde_json::from_slice(&claims).expect("json"),
    )
}

/// Copies of one single-use request raced: exactly one got 200, every
/// other one `refused`.
pub fn assert_one_wins(statuses: &[u16], refused: u16) {
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!(count(200), 1, "{statuses:?}");
    assert_eq!(count(refused), statuses.len() - 1, "{statuses:?}");
}
