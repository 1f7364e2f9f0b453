//! JWTs built by hand for the secretless tests (SPEC §10.1, §10.2): client
//! assertions and any other compact JWS, so every header and claim can be
//! got wrong on purpose.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use super::dpop::DpopKey;
use super::{Created, Resp, TestApp};

/// `client_assertion_type` of RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A compact JWS of `header` and `claims`, signed by `key`. An RSA key signs
/// as the header's `alg` says (RS256 or PS256), whatever padding it was made
/// for, so one key pair can be presented under the other algorithm.
pub fn sign_jwt(key: &DpopKey, header: Value, claims: Value) -> String {
    let signed = signing_input(&header, &claims);
    let signature = match (key, header["alg"].as_str()) {
        (DpopKey::Rsa(k, _), Some(alg @ ("RS256" | "PS256"))) => {
            let padding = if alg == "PS256" {
                &RSA_PSS_SHA256
            } else {
                &RSA_PKCS1_SHA256
            };
            let mut sig = vec![0; k.public_modulus_len()];
            k.sign(padding, &SystemRandom::new(), signed.as_bytes(), &mut sig)
                .unwrap();
            sig
        }
        _ => key.sign(signed.as_bytes()),
    };
    format!("{signed}.{}", B64.encode(signature))
}

/// An unsigned JWT (`alg: none` goes in `header`): empty signature.
pub fn unsigned_jwt(header: Value, claims: Value) -> String {
    format!("{}.", signing_input(&header, &claims))
}

/// A JWT MACed with HS256 under `secret` (the classic key-confusion forgery).
pub fn hs256_jwt(header: Value, claims: Value, secret: &[u8]) -> String {
    let signed = signing_input(&header, &claims);
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
        signed.as_bytes(),
    );
    format!("{signed}.{}", B64.encode(tag.as_ref()))
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

/// `base` with each member of `patch` set over it; `null` removes a member.
pub fn patched(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

/// A client's key pair as it is registered in a key's `jwks`.
pub struct ClientKey {
    pub key: DpopKey,
    pub kid: Option<String>,
}

impl ClientKey {
    pub fn new(key: DpopKey, kid: Option<&str>) -> Self {
        Self {
            key,
            kid: kid.map(str::to_owned),
        }
    }

    /// The public JWK to register, with the `kid` if there is one.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.key.jwk();
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The header of a good assertion: the key's `alg` and `kid`.
    pub fn header(&self) -> Value {
        let mut h = json!({"alg": self.key.alg()});
        if let Some(kid) = &self.kid {
            h["kid"] = json!(kid);
        }
        h
    }

    /// A good assertion for `api_key` at `app`, fresh `jti`.
    pub fn assertion(&self, app: &TestApp, api_key: &str) -> String {
        self.sign(self.header(), assertion_claims(app, api_key))
    }

    /// `claims` under `header`, signed by this key.
    pub fn sign(&self, header: Value, claims: Value) -> String {
        sign_jwt(&self.key, header, claims)
    }
}

/// The claims of a good client assertion for `api_key` at `app` (RFC 7523
/// §3): `aud` is the server's issuer, a minute to live. To alter.
pub fn assertion_claims(app: &TestApp, api_key: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": api_key, "sub": api_key, "aud": app.state.config.issuer,
           "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()})
}

/// The token endpoint URL, as an assertion's `aud` may name it.
pub fn token_endpoint(app: &TestApp) -> String {
    format!("{}/auth/token", app.state.config.issuer)
}

/// An `application/x-www-form-urlencoded` body of `pairs`, in order.
pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// A client-credentials form authenticated by `assertion`, with `extra`.
pub fn assertion_form(assertion: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    pairs.extend_from_slice(extra);
    form(&pairs)
}

/// Exchanges `assertion` (with `extra` form members) at `/auth/token`.
pub async fn exchange_assertion(app: &TestApp, assertion: &str, extra: &[(&str, &str)]) -> Resp {
    app.post_form("/auth/token", &assertion_form(assertion, extra), &[])
        .await
}

/// Creates a key over the admin API from a whole request `body`; it must
/// answer 201. `api_secret` is empty for keys that have none.
pub async fn create_key(app: &TestApp, admin: &str, body: Value) -> Created {
    let r = app.post_json("/v1/api-keys", &body, Some(admin)).await;
    assert_eq!(r.status, 201, "{body}: {}", r.text());
    let created = r.json();
    Created {
        id: created["id"].as_str().unwrap().to_owned(),
        api_key: created["api_key"].as_str().unwrap().to_owned(),
        api_secret: created["api_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body: created,
    }
}

/// Asserts a 422 problem whose `errors` name `field` and nothing else (the
/// server reports `jwks.keys[1]` against `jwks`, as it does for every field).
pub fn assert_invalid_field(r: &Resp, field: &str) {
    r.assert_problem(422);
    let body = r.json();
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("422 without errors: {body}"));
    assert!(!errors.is_empty(), "422 naming no field: {body}");
    assert!(
        errors.iter().all(|e| e["field"] == field),
        "expected only `{field}` to be named: {body}"
    );
}

/// Creates a key with `body` through the admin API and asserts the 422 that
/// names `field` only.
pub async fn assert_create_refused(app: &TestApp, admin: &str, body: Value, field: &str) {
    let r = app.post_json("/v1/api-keys", &body, Some(admin)).await;
    assert_eq!(r.status, 422, "{body}: {}", r.text());
    assert_invalid_field(&r, field);
}
