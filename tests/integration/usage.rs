//! Per-key usage (SPEC §11.1): exchanges counted per hour by outcome, written
//! in batches, summed across replicas, reported with every bucket, expired
//! after the retention period; and the windows the API refuses.

use chrono::{DurationRound, Utc};
use serde_json::{Value, json};
use tokenmint::usage::store::{self, Count};

use crate::both_backends;
use crate::common::{Backend, Created, TestApp};

both_backends!(
    exchanges_are_counted_per_hour_by_outcome,
    replicas_and_repeated_flushes_add_up,
    bad_windows_are_refused_and_unknown_keys_are_404,
    usage_older_than_the_retention_is_deleted,
);

fn usage_path(key: &Created, query: &str) -> String {
    format!("/v1/api-keys/{}/usage{query}", key.id)
}

/// Denials of every bucket, summed by reason.
fn total_denied(report: &Value) -> Value {
    let mut sums = serde_json::Map::new();
    for bucket in report["data"].as_array().expect("data") {
        for (reason, n) in bucket["denied"].as_object().expect("denied") {
            let sum = sums.get(reason).and_then(Value::as_u64).unwrap_or(0);
            sums.insert(reason.clone(), json!(sum + n.as_u64().expect("count")));
        }
    }
    Value::Object(sums)
}

fn total_issued(report: &Value) -> u64 {
    report["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|b| b["issued"].as_u64().expect("issued"))
        .sum()
}

async fn exchanges_are_counted_per_hour_by_outcome(b: Backend) {
    let app = TestApp::start(b).await;
    let reader = app.token(&["tokenmint:keys:read"]).await;
    let key = app.key().create().await;
    for _ in 0..3 {
        assert_eq!(app.exchange(&key, json!({})).await.status, 200);
    }
    let mut wrong = key.clone();
    wrong.api_secret = app.key().create().await.api_secret;
    for _ in 0..2 {
        assert_eq!(app.exchange(&wrong, json!({})).await.status, 401);
    }
    // Nothing is written per exchange: before the flush there is nothing.
    let before = app.get(&usage_path(&key, ""), Some(&reader)).await;
    assert_eq!(before.status, 200, "{}", before.text());
    assert_eq!(total_issued(&before.json()), 0);

    app.flush_usage().await;
    let r = app.get(&usage_path(&key, ""), Some(&reader)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    assert_eq!(report["granularity"], "hour");
    let data = report["data"].as_array().expect("data");
    assert_eq!(data.len(), 25, "a day of hours, the current one included");
    let hour = Utc::now()
        .duration_trunc(chrono::Duration::hours(1))
        .expect("hour");
    assert_eq!(
        data[24]["start"],
        json!(hour),
        "the newest bucket is this hour"
    );
    // Totals, so that a test running across the hour still holds.
    assert_eq!(total_issued(&report), 3);
    assert_eq!(total_denied(&report), json!({ "wrong_secret": 2 }));
    let busy = data
        .iter()
        .filter(|b| b["issued"] != 0 || b["denied"] != json!({}))
        .count();
    assert!(
        (1..=2).contains(&busy),
        "the other buckets are zeros: {report}"
    );
    let starts: Vec<&str> = data.iter().map(|b| b["start"].as_str().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "oldest first");

    // Revoked: its denials are counted too, and its history stays readable.
    let admin = app.admin_token().await;
    assert_eq!(app.revoke(&key.id, &admin).await.status, 200);
    assert_eq!(app.exchange(&key, json!({})).await.status, 401);
    app.flush_usage().await;
    let days = app
        .get(&usage_path(&key, "?granularity=day"), Some(&reader))
        .await
        .json();
    assert_eq!(days["granularity"], "day");
    assert_eq!(days["data"].as_array().unwrap().len(), 31);
    assert_eq!(total_issued(&days), 3);
    assert_eq!(
        total_denied(&days),
        json!({ "wrong_secret": 2, "revoked": 1 })
    );
    // An explicit window that ends before the exchanges holds none of them.
    let earlier = (hour - chrono::Duration::hours(3)).to_rfc3339();
    let r = app
        .get(
            &usage_path(&key, &format!("?to={}", urlencode(&earlier))),
            Some(&reader),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(total_issued(&r.json()), 0);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 24);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn replicas_and_repeated_flushes_add_up(b: Backend) {
    let app = TestApp::start(b).await;
    let other = app.replica().await;
    let reader = app.token(&["tokenmint:keys:read"]).await;
    let key = app.key().create().await;
    assert_eq!(app.exchange(&key, json!({})).await.status, 200);
    assert_eq!(other.exchange(&key, json!({})).await.status, 200);
    app.flush_usage().await;
    other.flush_usage().await;
    assert_eq!(other.exchange(&key, json!({})).await.status, 200);
    other.flush_usage().await;
    let report = app.get(&usage_path(&key, ""), Some(&reader)).await.json();
    assert_eq!(total_issued(&report), 3, "{report}");
}

async fn bad_windows_are_refused_and_unknown_keys_are_404(b: Backend) {
    let app = TestApp::start(b).await;
    let reader = app.token(&["tokenmint:keys:read"]).await;
    let key = app.key().create().await;
    for (query, field) in [
        ("?granularity=week", "granularity"),
        ("?from=yesterday", "from"),
        ("?to=2026-13-01T00:00:00Z", "to"),
        ("?from=2026-12-02T00:00:00Z&to=2026-12-02T00:00:00Z", "from"),
        ("?from=2026-12-03T00:00:00Z&to=2026-12-02T00:00:00Z", "from"),
        // 746 hours.
        ("?from=2026-11-01T00:00:00Z&to=2026-12-02T02:00:00Z", "to"),
        ("?granularity=day&from=2020-01-01T00:00:00Z", "to"),
        ("?bucket=hour", "bucket"),
    ] {
        let r = app.get(&usage_path(&key, query), Some(&reader)).await;
        r.assert_problem(422);
        assert_eq!(
            r.json()["errors"][0]["field"],
            field,
            "{query}: {}",
            r.text()
        );
    }
    // The largest window is served: 745 hours.
    let r = app
        .get(
            &usage_path(&key, "?from=2026-11-01T00:00:00Z&to=2026-12-02T01:00:00Z"),
            Some(&reader),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 745);
    // Unknown and malformed ids; no token; a token without a read scope.
    let missing = format!("/v1/api-keys/{}/usage", uuid::Uuid::new_v4());
    app.get(&missing, Some(&reader)).await.assert_problem(404);
    app.get("/v1/api-keys/not-a-key/usage", Some(&reader))
        .await
        .assert_problem(404);
    app.get(&usage_path(&key, ""), None)
        .await
        .assert_problem(401);
    let other = app.token(&["invoices:read"]).await;
    app.get(&usage_path(&key, ""), Some(&other))
        .await
        .assert_problem(403);
}

async fn usage_older_than_the_retention_is_deleted(b: Backend) {
    let app = TestApp::start(b).await;
    let reader = app.token(&["tokenmint:keys:read"]).await;
    let key = app.key().create().await;
    let id = uuid::Uuid::parse_str(&key.id).unwrap();
    let now = Utc::now()
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap();
    let old = now - chrono::Duration::days(91);
    let recent = now - chrono::Duration::days(89);
    app.state
        .db
        .run(move |conn| {
            store::add(
                conn,
                &[
                    Count {
                        api_key_id: id,
                        hour: old,
                        outcome: store::ISSUED,
                        count: 7,
                    },
                    Count {
                        api_key_id: id,
                        hour: recent,
                        outcome: store::ISSUED,
                        count: 5,
                    },
                ],
            )?;
            tokenmint::usage::expire(conn, 90, Utc::now())
        })
        .await
        .map(|deleted| assert_eq!(deleted, 1))
        .expect("expire");
    let window = |from: chrono::DateTime<Utc>| {
        format!(
            "?granularity=day&from={}&to={}",
            urlencode(&from.to_rfc3339()),
            urlencode(&(from + chrono::Duration::days(1)).to_rfc3339())
        )
    };
    let gone = app
        .get(&usage_path(&key, &window(old)), Some(&reader))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert_eq!(total_issued(&gone.json()), 0);
    let kept = app
        .get(&usage_path(&key, &window(recent)), Some(&reader))
        .await;
    assert_eq!(total_issued(&kept.json()), 5);
}
