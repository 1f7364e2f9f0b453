//! The ceiling: a minimal "sign-only" token endpoint built from the same
//! crates as tokenmint (actix-web, serde_json, aws-lc-rs, base64, uuid,
//! chrono), with none of its work besides parsing and signing: no database,
//! no argon2, no cache, no rate limits, no middleware. It accepts the same
//! requests (`POST /auth/token`, JSON `{"api_key", "api_secret"}`, or the
//! OAuth form with HTTP Basic), signs one ES256 JWT with the same header and
//! claims shape, and answers the same JSON. Whatever tokenmint does per warm
//! exchange beyond this is its overhead; the harness reports
//! tokenmint req/s ÷ ceiling req/s.
//!
//! It never checks a credential: it is a measuring stick, not a server.

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokenmint_bench::Flags;
use uuid::Uuid;

const USAGE: &str = "ceiling [--bind 127.0.0.1:8090] [--workers N (default: cores, as tokenmint)]";
const MAX_BODY_BYTES: usize = 8 * 1024;
const TTL_SECONDS: i64 = 3600;

struct Signer {
    pair: EcdsaKeyPair,
    kid: String,
    issuer: String,
}

/// The JSON form, as tokenmint reads it.
#[derive(Deserialize)]
struct JsonBody {
    grant_type: Option<String>,
    api_key: Option<String>,
    api_secret: Option<String>,
    scope: Option<String>,
}

/// The claims of tokenmint's access tokens (same names, same order).
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    client_id: &'a str,
    scope: &'a str,
    env: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

fn bad_request(what: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": "invalid_request", "error_description": what}))
}

/// `(client_id, client_secret)` from `Authorization: Basic …`.
fn basic(req: &HttpRequest) -> Option<(String, String)> {
    let text = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

async fn token(req: HttpRequest, body: web::Bytes, signer: web::Data<Signer>) -> HttpResponse {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let (api_key, scope) = match media.as_deref() {
        Some("application/json") => {
            let Ok(b) = serde_json::from_slice::<JsonBody>(&body) else {
                return bad_request("the body is not a valid token request JSON object");
            };
            if b.grant_type
                .as_deref()
                .is_some_and(|g| g != "client_credentials")
            {
                return bad_request("unsupported grant_type");
            }
            match (b.api_key, b.api_secret) {
                (Some(k), Some(s)) if !k.is_empty() && !s.is_empty() => (k, b.scope),
                _ => return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"})),
            }
        }
        Some("application/x-www-form-urlencoded") => {
            let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
                return bad_request("the body is not valid form encoding");
            };
            let mut grant = None;
            let mut scope = None;
            for (name, value) in pairs {
                match name.as_str() {
                    "grant_type" => grant = Some(value),
                    "scope" => scope = Some(value),
                    _ => {}
                }
            }
            if grant.as_deref() != Some("client_credentials") {
                return bad_request("grant_type must be client_credentials");
            }
            match basic(&req) {
                Some((k, s)) if !k.is_empty() && !s.is_empty() => (k, scope),
                _ => return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"})),
            }
        }
        _ => return HttpResponse::UnsupportedMediaType().finish(),
    };

    let iat = chrono::Utc::now().timestamp();
    let scope = scope.unwrap_or_else(|| "read write".to_owned());
    let claims = Claims {
        iss: &signer.issuer,
        sub: Uuid::new_v4().to_string(),
        aud: &signer.issuer,
        client_id: &api_key,
        scope: &scope,
        env: "live",
        iat,
        nbf: iat,
        exp: iat + TTL_SECONDS,
        jti: Uuid::new_v4().to_string(),
    };
    let jwt_header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": signer.kid });
    let Ok(payload) = serde_json::to_vec(&claims) else {
        return HttpResponse::InternalServerError().finish();
    };
    let mut token = B64.encode(jwt_header.to_string());
    token.push('.');
    token.push_str(&B64.encode(payload));
    let rng = SystemRandom::new();
    let Ok(signature) = signer.pair.sign(&rng, token.as_bytes()) else {
        return HttpResponse::InternalServerError().finish();
    };
    token.push('.');
    token.push_str(&B64.encode(signature.as_ref()));
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TTL_SECONDS,
            "scope": scope,
        }))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&["bind", "workers"], &[], USAGE)?;
    let bind: std::net::SocketAddr = flags.parsed_or("bind", ([127, 0, 0, 1], 8090).into())?;
    let workers: usize = flags.parsed_or(
        "workers",
        std::thread::available_parallelism().map_or(2, usize::from),
    )?;

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("could not generate a P-256 key"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("could not load the P-256 key"))?;
    // A kid of the same length as tokenmint's RFC 7638 thumbprint.
    let kid = B64.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pair.public_key().as_ref()).as_ref(),
    );
    let signer = web::Data::new(Signer {
        pair,
        kid,
        issuer: format!("http://{bind}"),
    });

    eprintln!("ceiling: listening on {bind} with {workers} workers");
    HttpServer::new(move || {
        App::new()
            .app_data(signer.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route("/auth/token", web::post().to(token))
            .route("/healthz", web::get().to(healthz))
    })
    .workers(workers)
    .bind(bind)?
    .run()
    .await?;
    Ok(())
}
