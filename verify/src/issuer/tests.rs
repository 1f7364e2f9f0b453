//! The external issuer's key cache, with a fake source and a hand-moved clock.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

use crate::test_common::*;

fn keys(source: &FakeSource) -> (IssuerKeys, Arc<AtomicU64>) {
    let start = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    let clock: Clock = Arc::new(move || start + Duration::from_secs(o.load(Ordering::SeqCst)));
    let k = IssuerKeys::with_clock(ISSUER.into(), Arc::new(source.clone()), clock);
    (k, offset)
}

const DISCOVERY: &str = "/openid-configuration";

#[tokio::test]
async fn keys_come_through_discovery_and_are_cached() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let (k, _) = keys(&source);
    for _ in 0..5 {
        assert!(k.key(Some(&key.kid)).await.is_ok());
    }
    assert_eq!((source.fetches(DISCOVERY), source.jwks_fetches()), (1, 1));
    // A token without kid takes the only key.
    assert!(k.key(None).await.is_ok());
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_ten_seconds() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let (k, clock) = keys(&source);
    k.key(Some(&key.kid)).await.unwrap();
    clock.store(11, Ordering::SeqCst);
    for i in 0..50 {
        let kid = format!("invented-{i}");
        assert_eq!(k.key(Some(&kid)).await, Err(IssuerKeyError::UnknownKey));
    }
    assert_eq!(source.jwks_fetches(), 2, "one refetch for the whole flood");
    // A key the issuer adds is found once the interval has passed.
    let added = TestKey::ed25519();
    source.set_jwks(jwks(&[&key, &added]));
    assert!(k.key(Some(&added.kid)).await.is_err(), "still within 10 s");
    clock.store(22, Ordering::SeqCst);
    assert!(k.key(Some(&added.kid)).await.is_ok());
    assert_eq!(source.jwks_fetches(), 3);
}

#[tokio::test]
async fn max_age_is_kept_between_one_minute_and_one_hour() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    source.set_max_age(Some(Duration::from_secs(1)));
    let (k, clock) = keys(&source);
    k.key(Some(&key.kid)).await.unwrap();
    clock.store(59, Ordering::SeqCst);
    k.key(Some(&key.kid)).await.unwrap();
    assert_eq!(source.jwks_fetches(), 1, "max-age=1 still caches a minute");
    clock.store(61, Ordering::SeqCst);
    k.key(Some(&key.kid)).await.unwrap();
    assert_eq!(source.jwks_fetches(), 2);

    source.set_max_age(Some(Duration::from_secs(86_400)));
    clock.store(61 + 3601, Ordering::SeqCst);
    k.key(Some(&key.kid)).await.unwrap();
    assert_eq!(source.jwks_fetches(), 3);
    clock.store(61 + 3601 + 3599, Ordering::SeqCst);
    k.key(Some(&key.kid)).await.unwrap();
    assert_eq!(
        source.jwks_fetches(),
        3,
        "a day's max-age is cut to an hour"
    );
    clock.store(61 + 3601 + 3601, Ordering::SeqCst);
    k.key(Some(&key.kid)).await.unwrap();
    assert_eq!(source.jwks_fetches(), 4);
}

#[tokio::test]
async fn an_outage_keeps_the_last_keys() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let (k, clock) = keys(&source);
    k.key(Some(&key.kid)).await.unwrap();
    source.set_down(true);
    clock.store(600 + 3599, Ordering::SeqCst);
    assert!(k.key(Some(&key.kid)).await.is_ok(), "stale beats none");
    clock.store(600 + 3601, Ordering::SeqCst);
    assert!(
        matches!(
            k.key(Some(&key.kid)).await,
            Err(IssuerKeyError::Unavailable(_))
        ),
        "but not for ever"
    );
    source.set_down(false);
    clock.store(600 + 3612, Ordering::SeqCst);
    assert!(
        k.key(Some(&key.kid)).await.is_ok(),
        "back when the issuer is"
    );
    source.set_down(true);
    let (cold, _) = keys(&source);
    assert!(matches!(
        cold.key(Some(&key.kid)).await,
        Err(IssuerKeyError::Unavailable(_))
    ));
}

#[test]
fn discovery_must_name_the_issuer_and_an_https_jwks_uri() {
    let doc =
        |iss: &str, uri: &str| serde_json::json!({"issuer": iss, "jwks_uri": uri}).to_string();
    let https = "https://id.example";
    assert!(parse_discovery(https, doc(https, "https://keys.example/jwks").as_bytes()).is_ok());
    assert!(parse_discovery(https, doc("https://evil.example", "https://k/j").as_bytes()).is_err());
    assert!(parse_discovery(https, doc(https, "http://keys.example/jwks").as_bytes()).is_err());
    let local = "http://127.0.0.1:9";
    assert!(parse_discovery(local, doc(local, "http://127.0.0.1:9/jwks").as_bytes()).is_ok());
    assert!(parse_discovery(local, doc(local, "http://keys.example/jwks").as_bytes()).is_err());
    assert!(parse_discovery(https, b"{}").is_err());
}
