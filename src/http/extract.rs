//! Reading what clients send: bounded bodies, media types, typed JSON bodies
//! of the admin API and strict query strings. Errors come out in the shape of
//! the endpoint: RFC 6749 for the OAuth endpoints, RFC 9457 elsewhere.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, OAuthError};
use crate::keys::request::FieldError;

/// Largest body an OAuth endpoint reads.
pub const MAX_OAUTH_BODY: usize = 8 * 1024;
/// Largest body the admin API reads.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Broken,
    /// Not all of it arrived within the body deadline.
    TooSlow,
}

/// Reads a body of at most `limit` bytes within the server's body deadline
/// (`TOKENMINT_BODY_TIMEOUT_SECONDS`): a body trickled a byte at a time must
/// not hold its connection forever.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let seconds = req
        .app_data::<web::Data<crate::AppState>>()
        .map_or(10, |s| s.config.body_timeout_seconds);
    let deadline = std::time::Duration::from_secs(u64::from(seconds));
    tokio::time::timeout(deadline, read_all(req, payload, limit))
        .await
        .unwrap_or(Err(BodyError::TooSlow))
}

async fn read_all(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads the body of an OAuth endpoint (at most 8 KiB), with its errors in
/// the RFC 6749 shape.
pub async fn read_oauth_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<web::Bytes, OAuthError> {
    read_body(req, payload, MAX_OAUTH_BODY)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => OAuthError::TooLarge,
            BodyError::TooSlow => OAuthError::TooSlow,
            BodyError::Broken => OAuthError::InvalidRequest("the body could not be read".into()),
        })
}

/// The media type of the request, lower-cased, without parameters.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Reads an admin API body into `T`: 415 for another media type, 413 when
/// too large, 400 when not JSON or of the wrong JSON types (naming the
/// field). An empty body reads as `{}`.
pub async fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    let body = read_body(req, payload, MAX_JSON_BODY)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => ApiError::TooLarge,
            BodyError::TooSlow => ApiError::TooSlow,
            BodyError::Broken => ApiError::BadRequest("the body could not be read".into()),
        })?;
    // No body, or a JSON `null`, means no members.
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        b"{}"
    } else {
        match media_type(req).as_deref() {
            Some("application/json") => {}
            Some(t) if t.ends_with("+json") => {}
            _ => return Err(ApiError::UnsupportedMediaType),
        }
        &body
    };
    // Which of two members with one name wins differs between parsers (and
    // between us and a proxy or a WAF in front): refuse the ambiguity.
    serde_json::from_slice::<UniqueMembers>(body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::BadRequest(format!("malformed JSON: {inner}"))
        } else {
            ApiError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// A JSON value in which no object repeats a member name, at any depth.
struct UniqueMembers;

impl<'de> serde::Deserialize<'de> for UniqueMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueMembers)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueMembers {
    type Value = UniqueMembers;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the member {name:?} is repeated"
                )));
            }
            map.next_value::<UniqueMembers>()?;
        }
        Ok(UniqueMembers)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueMembers>()?.is_some() {}
        Ok(UniqueMembers)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(UniqueMembers)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(UniqueMembers)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(UniqueMembers)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(UniqueMembers)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(UniqueMembers)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(UniqueMembers)
    }
}

/// A query string whose parameters are each known and given at most once;
/// problems are collected and reported together as a 422.
pub struct StrictQuery {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl StrictQuery {
    /// Parses the query string, allowing only `known` parameters.
    pub fn parse(req: &HttpRequest, known: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
        let mut errors = Vec::new();
        for (i, (name, value)) in pairs.iter().enumerate() {
            let message = if !known.contains(&name.as_str()) {
                "unknown query parameter"
            } else if value.chars().count() > 256 || value.chars().any(char::is_control) {
                "must be at most 256 characters without control characters"
            } else if pairs[..i].iter().any(|(n, _)| n == name) {
                "repeated query parameter"
            } else {
                continue;
            };
            errors.push(FieldError {
                field: name.clone(),
                message: message.into(),
            });
        }
        Ok(Self { pairs, errors })
    }

    /// A parameter's value as given (an empty value included).
    pub fn get(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// A free-text filter; an empty value means no filter.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Records a bad value.
    pub fn invalid(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// The collected problems as one 422, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UniqueMembers;

    #[test]
    fn repeated_members_are_found_at_any_depth() {
        let ok = |s: &str| serde_json::from_str::<UniqueMembers>(s).is_ok();
        assert!(ok(r#"{"a": 1, "b": {"a": 2}, "c": [{"a": 1}, {"a": 2}]}"#));
        assert!(!ok(r#"{"a": 1, "a": 2}"#));
        assert!(!ok(r#"{"m": {"x": 1, "x": 1}}"#));
        assert!(!ok(r#"[{"x": [{"y": 1, "y": 2}]}]"#));
    }
}
