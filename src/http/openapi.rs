//! The route table and the OpenAPI 3.1 document, both made from one list:
//! each entry pairs a handler with the description its `#[utoipa::path]`
//! generated, so nothing is routed undocumented or documented unrouted.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use actix_web::dev::HttpServiceFactory;
use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Responder, Route, web};
use serde_json::{Value, json};
use utoipa::openapi::path::{HttpMethod, Operation, Paths};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::config::Config;
use crate::keys::rules::REGISTERED_CLAIMS;
use crate::keys::scope::RESERVED;

use super::{admin, introspect, ops, token, well_known};

/// One operation: its method, path, description and handler.
pub struct Endpoint {
    pub method: HttpMethod,
    pub path: String,
    operation: Operation,
    route: Arc<dyn Fn() -> Route + Send + Sync>,
}

fn actix_method(m: &HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

/// The entries of a handler described by `P` (its `#[utoipa::path]`).
fn endpoint<P, F, Args>(handler: F) -> Vec<Endpoint>
where
    P: utoipa::Path,
    F: Handler<Args> + Clone + Send + Sync + 'static,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    P::methods()
        .into_iter()
        .map(|method| {
            let (m, h) = (actix_method(&method), handler.clone());
            Endpoint {
                method,
                path: P::path(),
                operation: P::operation(),
                route: Arc::new(move || web::route().method(m.clone()).to(h.clone())),
            }
        })
        .collect()
}

/// Every operation of the server.
pub fn endpoints() -> Vec<Endpoint> {
    use admin::audit::*;
    use admin::keys::*;
    use admin::usage::*;
    use introspect::*;
    use ops::*;
    use token::*;
    use well_known::*;
    [
        endpoint::<__path_exchange_token, _, _>(exchange_token),
        endpoint::<__path_introspect_token, _, _>(introspect_token),
        endpoint::<__path_list_revocations, _, _>(list_revocations),
        endpoint::<__path_jwks, _, _>(jwks),
        endpoint::<__path_discovery, _, _>(discovery),
        endpoint::<__path_openid_configuration, _, _>(openid_configuration),
        endpoint::<__path_healthz, _, _>(healthz),
        endpoint::<__path_readyz, _, _>(readyz),
        endpoint::<__path_metrics, _, _>(metrics),
        endpoint::<__path_openapi, _, _>(openapi),
        endpoint::<__path_create_key, _, _>(create_key),
        endpoint::<__path_list_keys, _, _>(list_keys),
        endpoint::<__path_get_key, _, _>(get_key),
        endpoint::<__path_update_key, _, _>(update_key),
        endpoint::<__path_revoke_key, _, _>(revoke_key),
        endpoint::<__path_rotate_key, _, _>(rotate_key),
        endpoint::<__path_key_usage, _, _>(key_usage),
        endpoint::<__path_list_audit_events, _, _>(list_audit_events),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// One actix resource per path, with a route per method, so an unserved
/// method on a known path answers 405.
pub fn resources() -> Vec<impl HttpServiceFactory> {
    let mut by_path: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
    for e in endpoints() {
        by_path.entry(e.path.clone()).or_default().push(e);
    }
    by_path
        .into_iter()
        .map(|(path, list)| {
            list.iter()
                .fold(web::resource(path), |r, e| r.route((e.route)()))
        })
        .collect()
}

/// Security schemes: bearer tokens of ours for the admin API and
/// introspection, HTTP Basic client authentication at the token endpoint.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description =
            Some("An access token of this server with the scope the operation needs".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "RFC 6749 §2.3.1: client_id = api_key, client_secret = api_secret (or send them in the form body)"
                .into(),
        );
        components.add_security_scheme("client_basic", SecurityScheme::Http(basic));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenmint",
        description = "Token-exchange auth server: API keys in, short-lived signed JWTs out.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&Security),
    components(schemas(
        crate::keys::ApiKeyView,
        crate::keys::ApiKeyWithSecret,
        crate::keys::Environment,
        crate::keys::KeyStatus,
        crate::keys::request::CreateKeyRequest,
        crate::keys::request::UpdateKeyRequest,
        crate::keys::request::RotateKeyRequest,
        crate::keys::request::FieldError,
        crate::audit::AuditEvent,
        crate::usage::report::UsageReport,
        crate::usage::report::UsageBucket,
        crate::usage::report::Granularity,
        crate::error::Problem,
        crate::error::OAuthErrorBody,
        admin::KeyPage,
        admin::AuditPage,
        token::JsonTokenRequest,
        token::FormTokenRequest,
        token::GrantType,
        token::TokenResponse,
        introspect::IntrospectionRequest,
        introspect::Introspection,
        introspect::Revocation,
        introspect::RevocationList,
        well_known::DiscoveryDocument,
        well_known::Jwks,
        ops::Health,
        ops::Readiness,
    )),
    tags(
        (name = "oauth", description = "Token exchange, introspection, revocations"),
        (name = "discovery", description = "JWKS and server metadata"),
        (name = "api-keys", description = "Key management (admin API)"),
        (name = "audit", description = "The audit trail (admin API)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// The document: components from [`ApiDoc`], paths from [`endpoints`].
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut paths = Paths::new();
    for e in endpoints() {
        paths.add_path_operation(e.path, vec![e.method], e.operation);
    }
    doc.paths = paths;
    doc
}

/// The document as a server with this configuration serves it: the limits
/// that depend on the configuration (the longest token lifetime, the scope
/// catalog) and those utoipa cannot express (no unknown members, no
/// registered claim names) are written in.
pub fn document_for(config: &Config) -> String {
    static BASE: OnceLock<Value> = OnceLock::new();
    let mut doc = BASE
        .get_or_init(|| serde_json::to_value(document()).unwrap_or_default())
        .clone();
    let schemas = &mut doc["components"]["schemas"];
    for name in ["CreateKeyRequest", "UpdateKeyRequest", "RotateKeyRequest"] {
        schemas[name]["additionalProperties"] = json!(false);
    }
    let bad = crate::keys::rules::forbidden_text_class();
    let name_pattern = format!("^[^{bad}]*[^\\s{bad}][^{bad}]*$");
    schemas["CreateKeyRequest"]["properties"]["subject"]["pattern"] = json!(format!("^[^{bad}]+$"));
    for name in ["CreateKeyRequest", "UpdateKeyRequest"] {
        let props = &mut schemas[name]["properties"];
        props["name"]["pattern"] = json!(name_pattern);
        props["token_ttl_seconds"]["maximum"] = json!(config.token_ttl_seconds);
        props["claims"]["propertyNames"] =
            json!({ "not": { "pattern": registered_claims_pattern() } });
        if let Some(catalog) = &config.allowed_scopes {
            let mut allowed: Vec<&str> = catalog.iter().map(String::as_str).collect();
            allowed.extend(RESERVED.iter().filter(|r| !catalog.iter().any(|c| c == *r)));
            props["scopes"]["items"]["enum"] = json!(allowed);
        }
    }
    doc.to_string()
}

/// Matches every spelling the server refuses as a registered claim name
/// (any case, surrounding space); ECMA regexes have no case-insensitive flag
/// inside the pattern, so each letter is a class.
fn registered_claims_pattern() -> String {
    let names: Vec<String> = REGISTERED_CLAIMS
        .iter()
        .map(|n| {
            n.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!(r"^\s*(?:{})\s*$", names.join("|"))
}

/// The served document, made once per worker from the configuration.
pub struct OpenApiJson(pub String);

#[cfg(test)]
mod tests;
