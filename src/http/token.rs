//! `POST /auth/token`: the client-credentials grant (JSON, or the OAuth
//! form with a secret by Basic or in the body, or a `private_key_jwt`
//! assertion) and the RFC 8693 token exchange. The [`TokenRequest`]
//! extractor turns any of them into the domain's [`ExchangeRequest`]; the
//! handler exchanges and answers.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::LocalBoxFuture;
use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::client_ip;
use super::docs::OAuthErrors;
use super::extract::{media_type, read_oauth_body};
use crate::AppState;
use crate::error::{OAuthError, rate_limit_headers};
use crate::keys::now_micros;
use crate::tokens::assertion::JWT_BEARER;
use crate::tokens::exchange::{Credential, ExchangeRequest};
use crate::tokens::federation::{ACCESS_TOKEN_TYPE, SUBJECT_TOKEN_TYPES, TOKEN_EXCHANGE};

/// The JSON form. Unknown members are ignored, as OAuth asks of parameters.
/// No `Debug`: it holds the secret in the clear until it is wrapped.
#[derive(Deserialize, ToSchema)]
pub struct JsonTokenRequest {
    /// Optional here; `client_credentials` if given.
    #[schema(value_type = Option<GrantType>)]
    pub grant_type: Option<String>,
    pub api_key: Option<String>,
    #[schema(format = Password)]
    pub api_secret: Option<String>,
    /// Space-separated subset of the key's scopes; all of them if absent.
    pub scope: Option<String>,
    /// One of the key's audiences (or RFC 8707 `resource`).
    pub audience: Option<String>,
    pub resource: Option<String>,
}

/// The OAuth form (RFC 6749 §4.4.2). `client_credentials`: the client
/// authenticates with HTTP Basic, with `client_id`/`client_secret` in the
/// body, or with a `private_key_jwt` assertion (RFC 7523), exactly one of
/// them. Token exchange (RFC 8693): `subject_token`, `subject_token_type`
/// and `client_id` (the key to act as). A parameter may appear once.
#[derive(Default, ToSchema)]
pub struct FormTokenRequest {
    #[schema(value_type = GrantType, required = true)]
    pub grant_type: Option<String>,
    /// The api_key (for an assertion: optional, and then its `iss`).
    #[schema(value_type = String)]
    pub client_id: Option<String>,
    #[schema(value_type = String, format = Password)]
    pub client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[schema(value_type = String)]
    pub client_assertion_type: Option<String>,
    /// A JWT signed with one of the key's registered keys.
    #[schema(value_type = String)]
    pub client_assertion: Option<String>,
    /// The external token to exchange (token exchange only).
    #[schema(value_type = String)]
    pub subject_token: Option<String>,
    /// `urn:ietf:params:oauth:token-type:jwt` or `…:id_token`.
    #[schema(value_type = String)]
    pub subject_token_type: Option<String>,
    /// Only `urn:ietf:params:oauth:token-type:access_token`.
    #[schema(value_type = String)]
    pub requested_token_type: Option<String>,
    /// Space-separated subset of the key's scopes; all of them if absent.
    #[schema(value_type = String)]
    pub scope: Option<String>,
    /// One of the key's audiences (or RFC 8707 `resource`).
    #[schema(value_type = String)]
    pub audience: Option<String>,
    #[schema(value_type = String)]
    pub resource: Option<String>,
}

/// The grants we serve.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum GrantType {
    #[schema(rename = "client_credentials")]
    ClientCredentials,
    #[schema(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// The success body (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse<'a> {
    /// A JWT (`typ: at+jwt`), verifiable with the JWKS.
    pub access_token: &'a str,
    /// `DPoP` when the request carried a DPoP proof (the token is bound to
    /// its key: `cnf.jkt`), else `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// `exp − iat`, in seconds.
    pub expires_in: i64,
    /// The granted scopes, space-separated.
    pub scope: &'a str,
    /// Token exchange only (RFC 8693 §2.2.1):
    /// `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// The parameters, whichever form they came in.
#[derive(Default)]
struct Params {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
    actor_token: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
}

fn parse_json(body: &[u8]) -> Result<Params, OAuthError> {
    let b: JsonTokenRequest = serde_json::from_slice(body).map_err(|_| {
        OAuthError::InvalidRequest("the body is not a valid token request JSON object".into())
    })?;
    Ok(Params {
        grant_type: b.grant_type,
        client_id: b.api_key,
        client_secret: b.api_secret,
        scope: b.scope,
        audience: b.audience,
        resource: b.resource,
        ..Params::default()
    })
}

fn parse_form(body: &[u8]) -> Result<Params, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidRequest("the body is not valid form encoding".into()))?;
    let mut f = Params::default();
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "grant_type" => &mut f.grant_type,
            "client_id" => &mut f.client_id,
            "client_secret" => &mut f.client_secret,
            "client_assertion_type" => &mut f.client_assertion_type,
            "client_assertion" => &mut f.client_assertion,
            "subject_token" => &mut f.subject_token,
            "subject_token_type" => &mut f.subject_token_type,
            "requested_token_type" => &mut f.requested_token_type,
            "actor_token" => &mut f.actor_token,
            "scope" => &mut f.scope,
            "audience" => &mut f.audience,
            "resource" => &mut f.resource,
            _ => continue,
        };
        // RFC 6749 §3.2: a parameter sent without a value counts as omitted.
        if value.is_empty() {
            continue;
        }
        // RFC 6749 §3.2: request parameters must not be repeated.
        if slot.replace(value).is_some() {
            return Err(OAuthError::InvalidRequest(format!(
                "the parameter {name} is repeated"
            )));
        }
    }
    Ok(f)
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

/// The `DPoP` header (RFC 9449 §4.1): at most one, of visible ASCII.
fn dpop_proof(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let bad = |why: &str| OAuthError::InvalidDpopProof(why.into());
    let mut values = req.headers().get_all("dpop");
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(bad("send one DPoP header"));
    }
    let proof = first
        .to_str()
        .map_err(|_| bad("the DPoP header is not a JWT"))?;
    Ok(Some(proof.trim().to_owned()))
}

/// A token request in any of its three forms, checked against the rules of
/// RFC 6749 (one client authentication method, no repeated parameters) and
/// turned into the domain's exchange request.
pub struct TokenRequest {
    pub exchange: ExchangeRequest,
    /// Whether the client authenticated with HTTP Basic (errors then carry
    /// `WWW-Authenticate: Basic`).
    pub basic: bool,
    /// An RFC 8693 token exchange (the answer names `issued_token_type`).
    pub token_exchange: bool,
}

impl TokenRequest {
    async fn read(req: HttpRequest, payload: web::Payload) -> Result<Self, OAuthError> {
        let is_json = match media_type(&req).as_deref() {
            Some("application/json") => true,
            Some("application/x-www-form-urlencoded") => false,
            _ => return Err(OAuthError::UnsupportedMediaType),
        };
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or(OAuthError::Internal)?;
        let client_ip = client_ip(&req, &state.config.trusted_proxies).map_err(|_| {
            OAuthError::InvalidRequest(
                "X-Forwarded-For holds a hop that is not an IP address".into(),
            )
        })?;
        // A blocked address is answered before its body is read or parsed.
        state
            .exchanger
            .admit(client_ip)
            .await
            .map_err(OAuthError::from)?;
        let body = read_oauth_body(&req, payload).await?;
        let mut params = if is_json {
            parse_json(&body)?
        } else {
            parse_form(&body)?
        };
        let token_exchange = match params.grant_type.as_deref().filter(|g| !g.is_empty()) {
            Some("client_credentials") => false,
            None if is_json => false,
            Some(TOKEN_EXCHANGE) if !is_json => true,
            None => return Err(OAuthError::InvalidRequest("grant_type is required".into())),
            Some(_) => return Err(OAuthError::UnsupportedGrantType),
        };
        let dpop = dpop_proof(&req)?;
        let basic = basic_credentials(&req)?;
        let used_basic = basic.is_some();
        let credential = if token_exchange {
            subject_token(&mut params, used_basic)?
        } else {
            client_credentials(&mut params, basic)?
        };
        let audience = match (params.audience.take(), params.resource.take()) {
            (Some(a), Some(r)) if a != r => {
                return Err(OAuthError::InvalidRequest(
                    "audience and resource differ; send one".into(),
                ));
            }
            (a, r) => a.or(r),
        };
        Ok(Self {
            exchange: ExchangeRequest {
                credential,
                scope: params.scope,
                audience,
                client_ip,
                dpop,
            },
            basic: used_basic,
            token_exchange,
        })
    }
}

/// The client authentication of a `client_credentials` request: HTTP
/// Basic, a secret in the body, or an assertion; exactly one (RFC 6749
/// §2.3, RFC 7521 §4.2).
fn client_credentials(
    params: &mut Params,
    basic: Option<(String, String)>,
) -> Result<Credential, OAuthError> {
    let has_assertion = params.client_assertion.is_some() || params.client_assertion_type.is_some();
    if has_assertion {
        if basic.is_some() || params.client_secret.is_some() {
            return Err(OAuthError::InvalidRequest(
                "send one client authentication method: an assertion, HTTP Basic or client_secret"
                    .into(),
            ));
        }
        if params.client_assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(OAuthError::InvalidRequest(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let assertion = params.client_assertion.take().ok_or_else(|| {
            OAuthError::InvalidRequest("client_assertion is required with its type".into())
        })?;
        return Ok(Credential::Assertion {
            client_id: params.client_id.take(),
            assertion,
        });
    }
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
    Ok(Credential::Secret {
        api_key,
        api_secret: SecretString::from(api_secret),
    })
}

/// The parameters of a token exchange (RFC 8693 §2.1). The workload holds
/// no secret of ours, so none may be sent; every refusal is the one
/// undistinguished `invalid_request` of §2.2.2.
fn subject_token(params: &mut Params, basic: bool) -> Result<Credential, OAuthError> {
    let refused = OAuthError::subject_token_refused;
    if basic
        || params.client_secret.is_some()
        || params.client_assertion.is_some()
        || params.actor_token.is_some()
    {
        return Err(refused());
    }
    if !params
        .subject_token_type
        .as_deref()
        .is_some_and(|t| SUBJECT_TOKEN_TYPES.contains(&t))
    {
        return Err(refused());
    }
    if params
        .requested_token_type
        .as_deref()
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(refused());
    }
    match (params.client_id.take(), params.subject_token.take()) {
        (Some(client_id), Some(subject_token)) => Ok(Credential::Federated {
            client_id,
            subject_token,
        }),
        _ => Err(refused()),
    }
}

impl FromRequest for TokenRequest {
    type Error = OAuthError;
    type Future = LocalBoxFuture<'static, Result<Self, OAuthError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = web::Payload::from_request(&req, payload);
        Box::pin(async move {
            let payload = payload
                .await
                .map_err(|_| OAuthError::InvalidRequest("the body could not be read".into()))?;
            Self::read(req, payload).await
        })
    }
}

/// Exchange an API key pair for an access token.
#[utoipa::path(
    post, path = "/auth/token", tag = "oauth",
    security((), ("client_basic" = [])),
    params(("DPoP" = Option<String>, Header,
        description = "A DPoP proof (RFC 9449): the token is then bound to its key")),
    request_body(content(
        (JsonTokenRequest = "application/json"),
        (FormTokenRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "A signed access token", body = TokenResponse,
         headers(
            ("Cache-Control" = String, description = "no-store"),
            ("RateLimit-Limit" = String, description = "When the key has a budget"),
            ("RateLimit-Remaining" = String),
            ("RateLimit-Reset" = String),
         )),
        OAuthErrors,
    )
)]
pub async fn exchange_token(
    request: TokenRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let result = state
        .exchanger
        .exchange(request.exchange, now_micros())
        .await;
    crate::telemetry::exchange_outcome(match &result {
        Ok(_) => "issued",
        Err(e) => e.outcome(),
    });
    let exchanged = result.map_err(|e| match OAuthError::from(e) {
        OAuthError::InvalidClient { .. } => OAuthError::InvalidClient {
            basic: request.basic,
        },
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
        token_type: if issued.claims.cnf.is_some() {
            "DPoP"
        } else {
            "Bearer"
        },
        expires_in: issued.expires_in,
        scope: &issued.scope,
        issued_token_type: request.token_exchange.then_some(ACCESS_TOKEN_TYPE),
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
        let empty = parse_form(b"grant_type=client_credentials&client_id=&client_secret=").unwrap();
        assert!(empty.client_id.is_none() && empty.client_secret.is_none());
    }

    #[test]
    fn one_dpop_header_at_most() {
        use actix_web::test::TestRequest;
        let none = TestRequest::default().to_http_request();
        assert_eq!(dpop_proof(&none).unwrap(), None);
        let one = TestRequest::default()
            .insert_header(("dpop", " a.b.c "))
            .to_http_request();
        assert_eq!(dpop_proof(&one).unwrap().as_deref(), Some("a.b.c"));
        let two = TestRequest::default()
            .append_header(("dpop", "a.b.c"))
            .append_header(("DPoP", "d.e.f"))
            .to_http_request();
        assert!(matches!(
            dpop_proof(&two),
            Err(OAuthError::InvalidDpopProof(_))
        ));
    }

    #[test]
    fn json_type_errors_and_duplicates_are_refused() {
        assert!(parse_json(br#"{"api_key": 5}"#).is_err());
        assert!(parse_json(br#"{"api_key": "a", "api_key": "b"}"#).is_err());
        assert!(parse_json(br#"[]"#).is_err());
        assert!(parse_json(br#"{"api_key": "a", "extra": [1]}"#).is_ok());
    }
}
