use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

fn doc() -> Value {
    let config = Config::from_sources(None, |_| None).expect("default config");
    serde_json::from_str(&document_for(&config)).expect("the document is JSON")
}

fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.insert(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let d = doc();
    let mut found = BTreeSet::new();
    refs(&d, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            d["components"]["schemas"].get(name).is_some(),
            "{r} is not in components"
        );
    }
}

#[test]
fn is_openapi_3_1_with_every_endpoint_and_a_success_answer_each() {
    let d = doc();
    assert_eq!(d["openapi"], "3.1.0");
    let list = endpoints();
    assert_eq!(list.len(), 18);
    for e in &list {
        let method = serde_json::to_value(&e.method).expect("method");
        let method = method.as_str().expect("a method name");
        let op = &d["paths"][&e.path][method];
        assert!(op.is_object(), "{method} {} is not documented", e.path);
        let statuses: Vec<&String> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .collect();
        assert!(
            statuses.iter().any(|s| s.starts_with('2')),
            "{method} {}: no success answer in {statuses:?}",
            e.path
        );
    }
}

#[test]
fn admin_operations_require_a_bearer_token() {
    let d = doc();
    for (path, item) in d["paths"].as_object().expect("paths") {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().expect("path item") {
            assert_eq!(
                op["security"][0]["bearer"],
                serde_json::json!([]),
                "{method} {path}"
            );
            assert!(op["responses"].get("401").is_some(), "{method} {path}");
            assert!(op["responses"].get("403").is_some(), "{method} {path}");
        }
    }
    let schemes = &d["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["client_basic"]["scheme"], "basic");
}

#[test]
fn configuration_limits_are_written_in() {
    let vars = [
        ("TOKENMINT_TOKEN_TTL_SECONDS", "600"),
        ("TOKENMINT_ALLOWED_SCOPES", "orders:read"),
    ];
    let config = Config::from_sources(None, |n| {
        vars.iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("config");
    let d: Value = serde_json::from_str(&document_for(&config)).expect("JSON");
    let create = &d["components"]["schemas"]["CreateKeyRequest"];
    assert_eq!(create["additionalProperties"], false);
    assert_eq!(create["properties"]["token_ttl_seconds"]["maximum"], 600);
    let scopes = create["properties"]["scopes"]["items"]["enum"]
        .as_array()
        .expect("scope enum");
    assert!(scopes.contains(&serde_json::json!("orders:read")));
    assert!(scopes.contains(&serde_json::json!("tokenmint:admin")));
}

#[test]
fn documented_cursor_form_is_the_one_we_parse() {
    let d = doc();
    for path in ["/v1/api-keys", "/v1/audit-events"] {
        let params = d["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        let cursor = params
            .iter()
            .find(|p| p["name"] == "cursor")
            .expect("cursor parameter");
        assert_eq!(cursor["schema"]["pattern"], admin::CURSOR_PATTERN, "{path}");
    }
}
