use serde_json::json;

use super::*;
use crate::keys::rules::KeyPolicy;

fn rules() -> Rules {
    Rules {
        policy: KeyPolicy {
            prefix: "tm".into(),
            allowed_scopes: None,
            max_ttl_seconds: 3600,
            federation_issuers: vec!["https://token.actions.githubusercontent.com".into()],
        },
        now: Utc::now(),
    }
}

fn create(body: Value) -> Result<NewKey, Invalid> {
    serde_json::from_value::<CreateKeyRequest>(body)
        .expect("well-typed")
        .validate_into(&rules())
}

fn fields(e: Invalid) -> Vec<String> {
    let mut f: Vec<String> = e.0.into_iter().map(|f| f.field).collect();
    f.sort();
    f
}

#[test]
fn minimal_create() {
    let k = create(json!({"name": "svc"})).unwrap();
    assert_eq!(k.name, "svc");
    assert!(k.scopes.is_empty());
    assert!(k.subject.is_none());
    assert_eq!(k.environment, Environment::Live);
}

#[test]
fn every_bad_field_is_named() {
    let e = create(json!({
        "name": "",
        "scopes": ["ok", "bad\"scope"],
        "environment": "prod",
        "expires_at": "2001-01-01T00:00:00Z",
        "allowed_ips": ["10.0.0.0/33"],
        "rate_limit_per_minute": 0,
        "audiences": ["not a uri"],
        "token_ttl_seconds": 7200,
        "claims": {"sub": "x"},
        "metadata": {"blob": "x".repeat(5000)},
        "colour": "blue",
        "shade": 1
    }))
    .unwrap_err();
    assert_eq!(
        fields(e),
        [
            "allowed_ips",
            "audiences",
            "claims",
            "colour",
            "environment",
            "expires_at",
            "metadata",
            "name",
            "rate_limit_per_minute",
            "scopes",
            "shade",
            "token_ttl_seconds"
        ]
    );
}

#[test]
fn wrong_types_do_not_deserialise() {
    for body in [
        json!([1]),
        json!({"name": 5}),
        json!({"name": "x", "scopes": "a b"}),
        json!({"name": "x", "scopes": [1]}),
        json!({"name": "x", "metadata": []}),
        json!({"name": "x", "rate_limit_per_minute": "10"}),
    ] {
        assert!(
            serde_json::from_value::<CreateKeyRequest>(body.clone()).is_err(),
            "{body}"
        );
    }
}

#[test]
fn missing_name_is_a_validation_error() {
    assert_eq!(fields(create(json!({})).unwrap_err()), ["name"]);
}

#[test]
fn catalog_limits_scopes_but_reserved_ones_pass() {
    let mut r = rules();
    r.policy.allowed_scopes = Some(vec!["read".into()]);
    let ok: CreateKeyRequest =
        serde_json::from_value(json!({"name": "a", "scopes": ["read", "tokenmint:admin"]}))
            .unwrap();
    assert!(ok.validate_into(&r).is_ok());
    let bad: CreateKeyRequest =
        serde_json::from_value(json!({"name": "a", "scopes": ["write"]})).unwrap();
    assert_eq!(fields(bad.validate_into(&r).unwrap_err()), ["scopes"]);
}

#[test]
fn patch_distinguishes_null_from_absent_and_refuses_fixed_fields() {
    let u: UpdateKeyRequest = serde_json::from_value(json!({"expires_at": null})).unwrap();
    let u = u.validate_into(&rules()).unwrap();
    assert_eq!(u.expires_at, Patch::Null);
    assert_eq!(u.rate_limit_per_minute, Patch::Absent);
    assert_eq!(u.fields(), ["expires_at"]);
    let fixed: UpdateKeyRequest =
        serde_json::from_value(json!({"subject": "x", "environment": "test"})).unwrap();
    let e = fixed.validate_into(&rules()).unwrap_err();
    assert!(
        e.0.iter().all(|f| f.message == "cannot be changed"),
        "{e:?}"
    );
    assert_eq!(e.0.len(), 2);
    let null_name: UpdateKeyRequest = serde_json::from_value(json!({"name": null})).unwrap();
    assert_eq!(
        fields(null_name.validate_into(&rules()).unwrap_err()),
        ["name"]
    );
}

#[test]
fn rotate_grace_is_bounded() {
    let grace = |body: Value| {
        serde_json::from_value::<RotateKeyRequest>(body)
            .unwrap()
            .validate_into(&rules())
    };
    assert_eq!(grace(json!({})).unwrap(), 0);
    assert_eq!(grace(json!({"grace_period_seconds": 60})).unwrap(), 60);
    assert!(grace(json!({"grace_period_seconds": 604801})).is_err());
    assert!(grace(json!({"grace_period_seconds": -1})).is_err());
}

#[test]
fn create_values_are_normalised() {
    let k = create(json!({
        "name": "n",
        "scopes": ["a", "b", "a"],
        "allowed_ips": ["10.1.2.3/8", "127.0.0.1"],
        "expires_at": "2999-01-01T00:00:00.123456789Z"
    }))
    .unwrap();
    assert_eq!(k.scopes, ["a", "b"]);
    assert_eq!(
        k.allowed_ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.0.0.0/8", "127.0.0.1/32"]
    );
    assert_eq!(
        k.expires_at.map(|t| t.timestamp_subsec_nanos()),
        Some(123_456_000)
    );
}

#[test]
fn whole_numbers_may_be_written_as_decimals() {
    let k = create(json!({"name": "n", "rate_limit_per_minute": 2.0, "token_ttl_seconds": 60}))
        .unwrap();
    assert_eq!(k.rate_limit_per_minute, Some(2));
    assert!(
        serde_json::from_value::<CreateKeyRequest>(json!({"rate_limit_per_minute": 2.5})).is_err()
    );
    let u: UpdateKeyRequest =
        serde_json::from_value(json!({"token_ttl_seconds": 30.0, "rate_limit_per_minute": null}))
            .unwrap();
    let u = u.validate_into(&rules()).unwrap();
    assert_eq!(u.token_ttl_seconds, Patch::Set(30));
    assert_eq!(u.rate_limit_per_minute, Patch::Null);
}
