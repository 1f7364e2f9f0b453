//! Workload identity federation (RFC 8693, SPEC §10.2): a token from a
//! trusted external issuer (GitHub Actions, Kubernetes) is swapped for the
//! key's own token; every refusal reads the same; the issuer's keys are
//! fetched sparingly, however many unknown `kid`s arrive.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::client::jwt_parts;
use crate::common::dpop::DpopKey;
use crate::common::issuer::{FakeIssuer, GITHUB_SUBJECT, KUBERNETES_SUBJECT};
use crate::common::jwt::{
    assert_create_refused, assert_invalid_field, create_key, form, hs256_jwt, unsigned_jwt,
};
use crate::common::{Backend, Created, Resp, TestApp};

both_backends!(
    a_github_actions_token_gets_the_keys_token,
    a_kubernetes_token_gets_the_keys_token,
    every_refusal_is_one_invalid_request,
);

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A token-exchange form, member by member, to alter.
type Form = Vec<(&'static str, String)>;

/// The form exchanging `subject_token` for a token of `client_id`.
fn grant(subject_token: &str, client_id: &str) -> Form {
    vec![
        ("grant_type", TOKEN_EXCHANGE.to_owned()),
        ("subject_token", subject_token.to_owned()),
        ("subject_token_type", JWT_TYPE.to_owned()),
        ("client_id", client_id.to_owned()),
    ]
}

/// `form` with `name` set to `value` (added if absent), or removed (`None`).
fn set(mut form: Form, name: &'static str, value: Option<&str>) -> Form {
    form.retain(|(n, _)| *n != name);
    if let Some(v) = value {
        form.push((name, v.to_owned()));
    }
    form
}

async fn swap(app: &TestApp, f: Form) -> Resp {
    let pairs: Vec<(&str, &str)> = f.iter().map(|(n, v)| (*n, v.as_str())).collect();
    app.post_form("/auth/token", &form(&pairs), &[]).await
}

/// A server trusting `issuers` (space-separated), with a failure budget
/// the refusal tests cannot exhaust.
async fn app_trusting(b: Backend, issuers: &[&FakeIssuer]) -> TestApp {
    let list: Vec<&str> = issuers.iter().map(|i| i.url.as_str()).collect();
    TestApp::builder(b)
        .var("TOKENMINT_FEDERATION_ISSUERS", &list.join(" "))
        .var("TOKENMINT_FAILED_AUTH_PER_MINUTE", "1000")
        .build()
        .await
}

/// A `federated` key (no secret) with `rules`.
async fn federated_key(app: &TestApp, admin: &str, rules: Value) -> Created {
    create_key(
        app,
        admin,
        json!({"name": "workload", "credential_type": "federated", "federation": rules}),
    )
    .await
}

fn key_path(id: &str) -> String {
    format!("/v1/api-keys/{id}")
}

async fn patch_rules(app: &TestApp, admin: &str, id: &str, rules: Value) -> Resp {
    app.json_call(
        "PATCH",
        &key_path(id),
        &json!({ "federation": rules }),
        Some(admin),
    )
    .await
}

/// Asserts the RFC 8693 §2.2.1 answer and returns the access token's claims.
fn assert_exchanged(r: &Resp, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let body = r.json();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE, "{what}");
    assert_eq!(body["token_type"], "Bearer", "{what}");
    assert!(body["expires_in"].is_i64(), "{what}: {body}");
    assert!(body["scope"].is_string(), "{what}: {body}");
    jwt_parts(body["access_token"].as_str().unwrap()).1
}

async fn a_github_actions_token_gets_the_keys_token(b: Backend) {
    let github = FakeIssuer::start(vec![DpopKey::rsa(false)]).await;
    let app = app_trusting(b, &[&github]).await;
    let admin = app.admin_token().await;
    let rules = json!([{"issuer": github.url, "subject": GITHUB_SUBJECT,
                        "claims": {"repository": "octo-org/octo-repo", "workflow": "deploy"}}]);
    let key = create_key(
        &app,
        &admin,
        json!({"name": "deploy from CI", "credential_type": "federated",
               "scopes": ["deploy:write", "deploy:read"], "claims": {"team": "platform"},
               "token_ttl_seconds": 900, "federation": rules}),
    )
    .await;
    assert!(key.body.get("api_secret").is_none(), "{}", key.body);
    assert_eq!(key.body["credential_type"], "federated");
    assert!(key.body["jwks"].is_null(), "{}", key.body);
    let stored = &key.body["federation"][0];
    assert_eq!(stored["issuer"], github.url.as_str());
    assert_eq!(stored["subject"], GITHUB_SUBJECT);
    assert_eq!(stored["claims"], rules[0]["claims"]);

    // The rule's audience defaults to our issuer URL.
    let issuer = app.state.config.issuer.clone();
    let token = github.github(&issuer).sign();
    // A refusal after the token was accepted (a scope the key lacks) does not
    // spend its jti: the retry with the same token works.
    let r = swap(
        &app,
        set(grant(&token, &key.api_key), "scope", Some("admin")),
    )
    .await;
    r.assert_oauth_error(400, "invalid_scope");
    let r = swap(&app, grant(&token, &key.api_key)).await;
    let claims = assert_exchanged(&r, "GitHub token");
    let body = r.json();
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "deploy:write deploy:read");
    // The token is the key's: its sub, client_id, scopes, claims and TTL,
    // nothing of the GitHub token.
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["sub"], key.id.as_str());
    assert_eq!(claims["client_id"], key.api_key.as_str());
    assert_eq!(claims["scope"], "deploy:write deploy:read");
    assert_eq!(claims["team"], "platform");
    assert!(claims.get("repository").is_none(), "{claims}");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    let access_token = body["access_token"].as_str().unwrap();
    let i = app
        .introspect(access_token, Some(&format!("Bearer {admin}")))
        .await
        .json();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], key.api_key.as_str());
    assert_eq!(i["sub"], key.id.as_str());

    // `id_token` as the type, a narrower scope, an access token asked for.
    let f = set(
        grant(&github.github(&issuer).sign(), &key.api_key),
        "subject_token_type",
        Some(ID_TOKEN_TYPE),
    );
    let f = set(f, "scope", Some("deploy:read"));
    let f = set(f, "requested_token_type", Some(ACCESS_TOKEN_TYPE));
    let r = swap(&app, f).await;
    let claims = assert_exchanged(&r, "id_token type, narrower scope");
    assert_eq!(r.json()["scope"], "deploy:read");
    assert_eq!(claims["scope"], "deploy:read");

    // All of that from one fetch of the issuer's keys, and nothing else.
    assert_eq!(github.jwks_fetches(), 1, "the JWKS is cached");
    assert_eq!(github.discovery_fetches(), 1, "discovery is cached");
    assert_eq!(github.other_requests(), 0);
}

async fn a_kubernetes_token_gets_the_keys_token(b: Backend) {
    // An EKS-style issuer URL, with a path; two issuers, comma-separated.
    let cluster = FakeIssuer::start_at(
        "/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
        vec![DpopKey::es256()],
    )
    .await;
    let github = FakeIssuer::start(vec![DpopKey::rsa(false)]).await;
    let app = TestApp::builder(b)
        .var(
            "TOKENMINT_FEDERATION_ISSUERS",
            &format!("{},{}", github.url, cluster.url),
        )
        .build()
        .await;
    let admin = app.admin_token().await;
    let key = create_key(
        &app,
        &admin,
        json!({"name": "ledger", "credential_type": "federated", "scopes": ["ledger:post"],
               "audiences": ["https://ledger.internal"],
               "federation": [{"issuer": cluster.url, "subject": KUBERNETES_SUBJECT,
                               "audience": "tokenmint"}]}),
    )
    .await;
    assert_eq!(key.body["federation"][0]["audience"], "tokenmint");
    let token = cluster
        .kubernetes(&["https://kubernetes.default.svc.cluster.local", "tokenmint"])
        .sign();
    let f = set(
        grant(&token, &key.api_key),
        "audience",
        Some("https://ledger.internal"),
    );
    let claims = assert_exchanged(&swap(&app, f).await, "Kubernetes token");
    assert_eq!(claims["aud"], "https://ledger.internal");
    assert_eq!(claims["sub"], key.id.as_str());
    assert_eq!(claims["client_id"], key.api_key.as_str());
    assert_eq!(claims["scope"], "ledger:post");
    // No jti, so nothing to spend: the same token works again.
    let claims = assert_exchanged(
        &swap(&app, grant(&token, &key.api_key)).await,
        "the same token without jti",
    );
    assert_eq!(claims["aud"], app.base.as_str());
    // The other issuer of the list is trusted too.
    let ci = federated_key(
        &app,
        &admin,
        json!([{"issuer": github.url, "subject": GITHUB_SUBJECT}]),
    )
    .await;
    let issuer = app.state.config.issuer.clone();
    let r = swap(&app, grant(&github.github(&issuer).sign(), &ci.api_key)).await;
    assert_exchanged(&r, "GitHub token, second issuer of the list");
    assert_eq!(cluster.other_requests(), 0);
}

async fn every_refusal_is_one_invalid_request(b: Backend) {
    let github = FakeIssuer::start(vec![DpopKey::rsa(false)]).await;
    let stranger = FakeIssuer::start(vec![DpopKey::rsa(false)]).await;
    let app = app_trusting(b, &[&github]).await;
    let admin = app.admin_token().await;
    let rules = json!([{"issuer": github.url, "subject": GITHUB_SUBJECT,
                        "claims": {"repository": "octo-org/octo-repo"}}]);
    let key = federated_key(&app, &admin, rules.clone()).await;
    let revoked = federated_key(&app, &admin, rules.clone()).await;
    assert_eq!(app.revoke(&revoked.id, &admin).await.status, 200);
    let expired = federated_key(&app, &admin, rules.clone()).await;
    app.expire_in_database(&expired.id).await;
    let fenced = create_key(
        &app,
        &admin,
        json!({"name": "office only", "credential_type": "federated",
               "allowed_ips": ["10.0.0.0/8"], "federation": rules}),
    )
    .await;
    let plain = app.key().create().await;
    let fork = "repo:octo-org/fork:ref:refs/heads/main";
    federated_key(
        &app,
        &admin,
        json!([{"issuer": github.url, "subject": fork}]),
    )
    .await;

    let issuer = app.state.config.issuer.clone();
    let good = || github.github(&issuer);
    let now = chrono::Utc::now().timestamp();
    let kid = github.kid().to_owned();
    // A token spent once, for the replay below.
    let spent = good().sign();
    assert_exchanged(&swap(&app, grant(&spent, &key.api_key)).await, "control");

    let as_key = |token: String| grant(&token, &key.api_key);
    let cases: Vec<(&str, Form)> = vec![
        ("untrusted issuer", as_key(stranger.github(&issuer).sign())),
        (
            "iss under a trusted issuer's path",
            as_key(
                good()
                    .claim("iss", json!(format!("{}/evil", github.url)))
                    .sign(),
            ),
        ),
        (
            "iss with a trailing slash",
            as_key(
                good()
                    .claim("iss", json!(format!("{}/", github.url)))
                    .sign(),
            ),
        ),
        (
            "wrong sub",
            as_key(
                good()
                    .claim("sub", json!("repo:octo-org/octo-repo:ref:refs/heads/evil"))
                    .sign(),
            ),
        ),
        (
            "another key's workload",
            as_key(good().claim("sub", json!(fork)).sign()),
        ),
        (
            "wrong aud",
            as_key(
                good()
                    .claim("aud", json!("https://elsewhere.example"))
                    .sign(),
            ),
        ),
        (
            "claims condition not met",
            as_key(good().claim("repository", json!("octo-org/fork")).sign()),
        ),
        (
            "claims condition's claim missing",
            as_key(good().claim("repository", Value::Null).sign()),
        ),
        (
            "expired",
            as_key(
                good()
                    .claim("nbf", json!(now - 900))
                    .claim("iat", json!(now - 900))
                    .claim("exp", json!(now - 120))
                    .sign(),
            ),
        ),
        (
            "not yet valid",
            as_key(good().claim("nbf", json!(now + 600)).sign()),
        ),
        (
            "lives longer than 24 h",
            as_key(good().claim("exp", json!(now + 86_400 + 600)).sign()),
        ),
        (
            "no iat, exp beyond 24 h",
            as_key(
                good()
                    .claim("iat", Value::Null)
                    .claim("exp", json!(now + 86_400 + 600))
                    .sign(),
            ),
        ),
        ("no exp", as_key(good().claim("exp", Value::Null).sign())),
        (
            "forged with a key not in the JWKS",
            as_key(good().sign_with(&DpopKey::rsa(false))),
        ),
        (
            "alg none",
            as_key(unsigned_jwt(
                json!({"alg": "none", "kid": kid}),
                good().claims().clone(),
            )),
        ),
        (
            "HS256 keyed with the issuer's JWK",
            as_key(hs256_jwt(
                json!({"alg": "HS256", "kid": kid}),
                good().claims().clone(),
                github.jwk(&kid).to_string().as_bytes(),
            )),
        ),
        ("replayed jti", as_key(spent.clone())),
        ("not a JWT", as_key("not.a.jwt".to_owned())),
        (
            "missing subject_token",
            set(as_key(good().sign()), "subject_token", None),
        ),
        (
            "empty subject_token",
            set(as_key(good().sign()), "subject_token", Some("")),
        ),
        (
            "SAML subject_token_type",
            set(
                as_key(good().sign()),
                "subject_token_type",
                Some("urn:ietf:params:oauth:token-type:saml2"),
            ),
        ),
        (
            "access_token subject_token_type",
            set(
                as_key(good().sign()),
                "subject_token_type",
                Some(ACCESS_TOKEN_TYPE),
            ),
        ),
        (
            "missing subject_token_type",
            set(as_key(good().sign()), "subject_token_type", None),
        ),
        (
            "refresh_token requested",
            set(
                as_key(good().sign()),
                "requested_token_type",
                Some("urn:ietf:params:oauth:token-type:refresh_token"),
            ),
        ),
        (
            "id_token requested",
            set(
                as_key(good().sign()),
                "requested_token_type",
                Some(ID_TOKEN_TYPE),
            ),
        ),
        (
            "unknown key",
            grant(&good().sign(), "tm_live_AAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        ("revoked key", grant(&good().sign(), &revoked.api_key)),
        ("expired key", grant(&good().sign(), &expired.api_key)),
        ("IP-refused key", grant(&good().sign(), &fenced.api_key)),
        ("key without rules", grant(&good().sign(), &plain.api_key)),
    ];
    let mut descriptions = Vec::new();
    for (what, f) in cases {
        let r = swap(&app, f).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "invalid_request", "{what}");
        assert!(r.json().get("access_token").is_none(), "{what}");
        let description = r.json()["error_description"].clone();
        assert!(description.is_string(), "{what}: {}", r.text());
        descriptions.push((what, description));
    }
    for (what, d) in &descriptions {
        assert_eq!(
            d, &descriptions[0].1,
            "{what} reads differently from {}",
            descriptions[0].0
        );
    }
    // The server asked the stranger nothing, and the trusted issuer only
    // for discovery and keys (not `{issuer}/evil/…`).
    assert_eq!(stranger.discovery_fetches(), 0);
    assert_eq!(stranger.jwks_fetches(), 0);
    assert_eq!(stranger.other_requests(), 0);
    assert_eq!(github.other_requests(), 0);
    // None of that cost the key anything.
    let r = swap(&app, grant(&good().sign(), &key.api_key)).await;
    assert_exchanged(&r, "a good token after the refusals");
}

/// A token must match one rule whole: its issuer, subject, audience and
/// every claims condition. PATCH replaces the rules at once.
#[actix_web::test]
async fn a_token_must_match_one_rule_whole() {
    let github = FakeIssuer::start(vec![DpopKey::rsa(false)]).await;
    let app = app_trusting(Backend::Sqlite, &[&github]).await;
    let admin = app.admin_token().await;
    let production = "repo:octo-org/octo-repo:environment:production";
    let own_audience = "https://tokenmint.example/octo-org";
    let main_rule = json!({"issuer": github.url, "subject": GITHUB_SUBJECT,
                           "claims": {"repository": "octo-org/octo-repo", "workflow": "deploy"}});
    let production_rule = json!({"issuer": github.url, "subject": production,
                                 "audience": own_audience,
                                 "claims": {"environment": "production"}});
    let key = federated_key(&app, &admin, json!([main_rule, production_rule])).await;
    let issuer = app.state.config.issuer.clone();
    let main = || github.github(&issuer);
    let deploy = || {
        github
            .github(own_audience)
            .claim("sub", json!(production))
            .claim("environment", json!("production"))
    };
    let refused = |r: &Resp, what: &str| {
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "invalid_request", "{what}");
    };
    let exchange = |token: String| swap(&app, grant(&token, &key.api_key));

    assert_exchanged(&exchange(main().sign()).await, "first rule");
    refused(
        &exchange(main().claim("workflow", json!("lint")).sign()).await,
        "one of two conditions unmet",
    );
    assert_exchanged(&exchange(deploy().sign()).await, "second rule");
    // The audience is the rule's own, among others in the token.
    let r = exchange(
        deploy()
            .claim("aud", json!(["https://other.example", own_audience]))
            .sign(),
    )
    .await;
    assert_exchanged(&r, "rule audience among several");
    refused(
        &exchange(deploy().claim("aud", json!(issuer)).sign()).await,
        "our issuer where the rule names its own audience",
    );
    refused(
        &exchange(deploy().claim("environment", json!("staging")).sign()).await,
        "condition of the other rule",
    );
    // A rule's conditions do not mix with another's: main's subject with
    // the production rule's audience and claims matches neither.
    refused(
        &exchange(deploy().claim("sub", json!(GITHUB_SUBJECT)).sign()).await,
        "parts of two rules",
    );

    // PATCH: only the production rule is left, effective at once, audited.
    let r = patch_rules(&app, &admin, &key.id, json!([production_rule])).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["federation"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["federation"][0]["subject"], production);
    refused(&exchange(main().sign()).await, "removed rule");
    assert_exchanged(&exchange(deploy().sign()).await, "kept rule");
    let audit = app.audit_text(&key.id, &admin).await;
    assert!(audit.contains("federation"), "{audit}");
}

/// A key with rules may keep its secret; rules can be added to and taken
/// from a secret key, and then it is one more way in.
#[actix_web::test]
async fn a_secret_key_may_also_hold_rules() {
    let github = FakeIssuer::start(vec![DpopKey::es256()]).await;
    let app = app_trusting(Backend::Sqlite, &[&github]).await;
    let admin = app.admin_token().await;
    let rules = json!([{"issuer": github.url, "subject": GITHUB_SUBJECT}]);
    let both = create_key(
        &app,
        &admin,
        json!({"name": "both ways", "federation": rules}),
    )
    .await;
    assert_eq!(both.body["credential_type"], "secret");
    assert!(both.api_secret.starts_with("tms_"), "{}", both.body);
    let issuer = app.state.config.issuer.clone();
    assert_eq!(app.exchange(&both, json!({})).await.status, 200);
    let r = swap(&app, grant(&github.github(&issuer).sign(), &both.api_key)).await;
    assert_exchanged(&r, "rules of a secret key");
    // It has a secret, so it rotates.
    let r = app
        .post_json(
            &format!("{}/rotate", key_path(&both.id)),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let plain = app.key().create().await;
    let token = || github.github(&issuer).sign();
    let r = swap(&app, grant(&token(), &plain.api_key)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = patch_rules(&app, &admin, &plain.id, rules).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_exchanged(
        &swap(&app, grant(&token(), &plain.api_key)).await,
        "rules added by PATCH",
    );
    let r = patch_rules(&app, &admin, &plain.id, json!([])).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["federation"], json!([]));
    let r = swap(&app, grant(&token(), &plain.api_key)).await;
    assert_eq!(r.status, 400, "rules removed: {}", r.text());
    assert_eq!(app.exchange(&plain, json!({})).await.status, 200);
}

/// Each way a `federation` list can be unfit is a 422 naming `federation`;
/// the fixed credential type and secretless rotation answer as for
/// `private_key_jwt` keys.
#[actix_web::test]
async fn federation_rules_are_validated() {
    let github = FakeIssuer::start(vec![DpopKey::es256()]).await;
    let app = app_trusting(Backend::Sqlite, &[&github]).await;
    let admin = app.admin_token().await;
    let rule = |issuer: &str, subject: &str| json!({"issuer": issuer, "subject": subject});
    let ok = rule(&github.url, GITHUB_SUBJECT);
    let rules_21: Vec<Value> = (0..21)
        .map(|i| {
            rule(
                &github.url,
                &format!("repo:octo-org/r{i}:ref:refs/heads/main"),
            )
        })
        .collect();
    let mut unknown_member = ok.clone();
    unknown_member["subjct"] = json!(GITHUB_SUBJECT);
    let cases: Vec<(&str, Value)> = vec![
        (
            "https issuer not in the list",
            json!([rule(
                "https://token.actions.githubusercontent.com",
                GITHUB_SUBJECT
            )]),
        ),
        (
            "http issuer",
            json!([rule("http://idp.example.com", GITHUB_SUBJECT)]),
        ),
        (
            "trusted issuer with a trailing slash",
            json!([rule(&format!("{}/", github.url), GITHUB_SUBJECT)]),
        ),
        (
            "another port of the trusted host",
            json!([rule("http://127.0.0.1:1", GITHUB_SUBJECT)]),
        ),
        ("more than 20 rules", json!(rules_21)),
        ("empty subject", json!([rule(&github.url, "")])),
        ("no subject", json!([{"issuer": github.url}])),
        ("unknown member", json!([ok.clone(), unknown_member])),
        ("federated key without rules", json!([])),
    ];
    for (what, rules) in &cases {
        assert_create_refused(
            &app,
            &admin,
            json!({"name": what, "credential_type": "federated", "federation": rules}),
            "federation",
        )
        .await;
    }
    assert_create_refused(
        &app,
        &admin,
        json!({"name": "no list", "credential_type": "federated"}),
        "federation",
    )
    .await;
    assert_create_refused(
        &app,
        &admin,
        json!({"name": "jwks too", "credential_type": "federated", "federation": [ok],
                    "jwks": {"keys": [DpopKey::es256().jwk()]}}),
        "jwks",
    )
    .await;
    let all = app.get("/v1/api-keys", Some(&admin)).await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");

    // Twenty rules is the limit, and every member is kept.
    let rules_20: Vec<Value> = (0..20)
        .map(|i| {
            json!({"issuer": github.url, "subject": format!("repo:octo-org/r{i}:ref:refs/heads/main"),
                   "audience": "https://tokenmint.example", "claims": {"workflow": "deploy", "run_attempt": "1"}})
        })
        .collect();
    let key = federated_key(&app, &admin, json!(rules_20)).await;
    assert_eq!(key.body["federation"], json!(rules_20));

    // PATCH: no empty list for a federated key, no bad rule, no type change,
    // no jwks; and nothing to rotate.
    for (what, rules) in [
        ("no rules left", json!([])),
        ("http issuer", json!([rule("http://idp.example.com", "x")])),
    ] {
        let r = patch_rules(&app, &admin, &key.id, rules).await;
        assert_eq!(r.status, 422, "{what}: {}", r.text());
        assert_invalid_field(&r, "federation");
    }
    let r = app
        .json_call(
            "PATCH",
            &key_path(&key.id),
            &json!({"credential_type": "secret"}),
            Some(&admin),
        )
        .await;
    assert_invalid_field(&r, "credential_type");
    let r = app
        .json_call(
            "PATCH",
            &key_path(&key.id),
            &json!({"jwks": {"keys": [DpopKey::es256().jwk()]}}),
            Some(&admin),
        )
        .await;
    assert_invalid_field(&r, "jwks");
    app.post_json(
        &format!("{}/rotate", key_path(&key.id)),
        &json!({}),
        Some(&admin),
    )
    .await
    .assert_problem(409);
    let read = app.get(&key_path(&key.id), Some(&admin)).await.json();
    assert_eq!(read["federation"], json!(rules_20), "nothing changed");
}

/// `TOKENMINT_FEDERATION_ISSUERS` takes https URLs, and http only on a
/// loopback address; a bad one stops the start naming the variable.
#[test]
fn federation_issuers_must_be_https_or_loopback() {
    let config = |issuers: &str| {
        tokenmint::config::Config::from_sources(None, |name| match name {
            "DATABASE_URL" => Some("sqlite://unused.db".to_owned()),
            "TOKENMINT_FEDERATION_ISSUERS" => Some(issuers.to_owned()),
            _ => None,
        })
    };
    for good in [
        "https://token.actions.githubusercontent.com",
        "https://a.example https://oidc.eks.example/id/ABC",
        "https://a.example,http://127.0.0.1:8443",
    ] {
        assert!(config(good).is_ok(), "{good}: {:?}", config(good).err());
    }
    for bad in [
        "http://idp.example.com",
        "http://10.0.0.1:8443",
        "https://a.example http://idp.example.com",
        "ftp://idp.example.com",
        "not a url",
    ] {
        let e = config(bad)
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(
            e.to_string().contains("TOKENMINT_FEDERATION_ISSUERS"),
            "{bad}: {e}"
        );
    }
}

/// 50 tokens under `kid`s the issuer never published cost it at most one
/// JWKS refetch; a key it publishes afterwards is found once 10 s have
/// passed since, and not before.
#[actix_web::test]
async fn unknown_kids_cannot_flood_the_issuer() {
    let mut idp = FakeIssuer::start(vec![DpopKey::es256()]).await;
    let app = app_trusting(Backend::Sqlite, &[&idp]).await;
    let admin = app.admin_token().await;
    let key = federated_key(
        &app,
        &admin,
        json!([{"issuer": idp.url, "subject": GITHUB_SUBJECT}]),
    )
    .await;
    let issuer = app.state.config.issuer.clone();
    let r = swap(&app, grant(&idp.github(&issuer).sign(), &key.api_key)).await;
    assert_exchanged(&r, "before the flood");
    assert_eq!(idp.jwks_fetches(), 1);

    let stray = DpopKey::es256();
    let flood: Vec<String> = (0..50)
        .map(|_| {
            idp.github(&issuer)
                .header("kid", json!(uuid::Uuid::new_v4().to_string()))
                .sign_with(&stray)
        })
        .collect();
    let answers = join_all(flood.iter().map(|t| swap(&app, grant(t, &key.api_key)))).await;
    let flood_ended = Instant::now();
    for r in &answers {
        r.assert_oauth_error(400, "invalid_request");
    }
    assert!(
        idp.jwks_fetches() <= 2,
        "{} JWKS fetches for 50 unknown kids",
        idp.jwks_fetches()
    );

    // Rotation at the issuer: its new key is not looked for within the 10 s...
    let kid = idp.add_key(DpopKey::rsa(false));
    let rotated = || idp.github(&issuer).key(&kid).sign();
    let r = swap(&app, grant(&rotated(), &key.api_key)).await;
    r.assert_oauth_error(400, "invalid_request");
    assert!(idp.jwks_fetches() <= 2, "{}", idp.jwks_fetches());
    // ...and is found after them, with one more fetch.
    let window_over = flood_ended + Duration::from_millis(10_500);
    actix_web::rt::time::sleep(window_over.saturating_duration_since(Instant::now())).await;
    let before = idp.jwks_fetches();
    let r = swap(&app, grant(&rotated(), &key.api_key)).await;
    assert_exchanged(&r, "a key published after the window");
    assert_eq!(idp.jwks_fetches(), before + 1);
    // The old key still works from the refreshed set, without a fetch.
    let r = swap(&app, grant(&idp.github(&issuer).sign(), &key.api_key)).await;
    assert_exchanged(&r, "the first key after rotation");
    assert_eq!(idp.jwks_fetches(), before + 1);
    assert_eq!(idp.other_requests(), 0);
}
