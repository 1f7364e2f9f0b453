//! `POST /auth/token`: the client-credentials grant in its three forms.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use serde::Deserialize;

use super::{client_ip, media_type, read_oauth_body};
use crate::AppState;
use crate::error::{OAuthError, rate_limit_headers};
use crate::keys::now_micros;
use crate::tokens::exchange::ExchangeRequest;

/// The parameters, whichever form they came in. No `Debug`: it holds the
/// secret in the clear until it is wrapped.
#[derive(Default)]
struct Params {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
}

/// The success body (RFC 6749 §5.1).
#[derive(serde::Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    scope: &'a str,
}

/// The JSON form. Unknown members are ignored, as OAuth asks of parameters.
#[derive(Deserialize)]
struct JsonBody {
    grant_type: Option<String>,
    api_key: Option<String>,
    api_secret: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
}

fn parse_json(body: &[u8]) -> Result<Params, OAuthError> {
    let b: JsonBody = serde_json::from_slice(body).map_err(|_| {
        OAuthError::InvalidRequest("the body is not a valid token request JSON object".into())
    })?;
    Ok(Params {
        grant_type: b.grant_type,
        client_id: b.api_key,
        client_secret: b.api_secret,
        scope: b.scope,
        audience: b.audience,
        resource: b.resource,
    })
}

fn parse_form(body: &[u8]) -> Result<Params, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidRequest("the body is not valid form encoding".into()))?;
    let mut p = Params::default();
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "grant_type" => &mut p.grant_type,
            "client_id" => &mut p.client_id,
            "client_secret" => &mut p.client_secret,
            "scope" => &mut p.scope,
            "audience" => &mut p.audience,
            "resource" => &mut p.resource,
            _ => continue,
        };
        // RFC 6749 §3.2: request parameters must not be repeated.
        if slot.replace(value).is_some() {
            return Err(OAuthError::InvalidRequest(format!(
                "the parameter {name} is repeated"
            )));
        }
    }
    Ok(p)
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidRequest("the Authorization header is malformed".into());
    let text = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidRequest(
            "only HTTP Basic client authentication is accepted here".into(),
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> Result<String, OAuthError> {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

/// Exchanges an API key pair for an access token.
pub async fn exchange_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let is_json = match media_type(&req).as_deref() {
        Some("application/json") => true,
        Some("application/x-www-form-urlencoded") => false,
        _ => return Err(OAuthError::UnsupportedMediaType),
    };
    let body = read_oauth_body(&req, payload).await?;
    let mut params = if is_json {
        parse_json(&body)?
    } else {
        parse_form(&body)?
    };
    match params.grant_type.as_deref().filter(|g| !g.is_empty()) {
        Some("client_credentials") => {}
        None if is_json => {}
        None => return Err(OAuthError::InvalidRequest("grant_type is required".into())),
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    }
    let basic = basic_credentials(&req)?;
    let used_basic = basic.is_some();
    let body_has_credentials = params.client_id.is_some() || params.client_secret.is_some();
    let (api_key, api_secret) = match basic {
        // RFC 6749 §2.3: one authentication method per request.
        Some(_) if body_has_credentials => {
            return Err(OAuthError::InvalidRequest(
                "send client credentials either with HTTP Basic or in the body, not both".into(),
            ));
        }
        Some(pair) => pair,
        None => match (params.client_id.take(), params.client_secret.take()) {
            (Some(k), Some(s)) if !k.is_empty() && !s.is_empty() => (k, s),
            _ => return Err(OAuthError::InvalidClient { basic: false }),
        },
    };
    let audience = match (params.audience.take(), params.resource.take()) {
        (Some(a), Some(r)) if a != r => {
            return Err(OAuthError::InvalidRequest(
                "audience and resource differ; send one".into(),
            ));
        }
        (a, r) => a.or(r),
    };
    let peer = client_ip(&req, &state.config.trusted_proxies);
    let request = ExchangeRequest {
        api_key,
        api_secret: SecretString::from(api_secret),
        scope: params.scope,
        audience,
        client_ip: peer,
    };
    let result = state.exchanger.exchange(request, now_micros()).await;
    crate::telemetry::exchange_outcome(match &result {
        Ok(_) => "issued",
        Err(e) => e.outcome(),
    });
    let exchanged = result.map_err(|e| match OAuthError::from(e) {
        OAuthError::InvalidClient { .. } => OAuthError::InvalidClient { basic: used_basic },
        other => other,
    })?;
    let issued = exchanged.token;
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if let Some(rate) = &exchanged.rate {
        rate_limit_headers(&mut res, rate);
    }
    Ok(res.json(TokenResponse {
        access_token: &issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope: &issued.scope,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_form_parameters_are_refused() {
        assert!(parse_form(b"grant_type=client_credentials&scope=a&scope=b").is_err());
        let p = parse_form(b"grant_type=client_credentials&scope=a+b&other=x&other=y").unwrap();
        assert_eq!(p.scope.as_deref(), Some("a b"));
    }

    #[test]
    fn json_type_errors_and_duplicates_are_refused() {
        assert!(parse_json(br#"{"api_key": 5}"#).is_err());
        assert!(parse_json(br#"{"api_key": "a", "api_key": "b"}"#).is_err());
        assert!(parse_json(br#"[]"#).is_err());
        assert!(parse_json(br#"{"api_key": "a", "extra": [1]}"#).is_ok());
    }
}
