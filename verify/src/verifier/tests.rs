//! Cache and refresh behaviour with a fake source and a hand-driven clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::*;

use crate::test_common::*;

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<(Instant, AtomicU64)>);

impl TestClock {
    fn new() -> Self {
        Self(Arc::new((Instant::now(), AtomicU64::new(0))))
    }
    fn advance(&self, d: Duration) {
        (self.0).1.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }
    fn now(&self) -> Instant {
        (self.0).0 + Duration::from_millis((self.0).1.load(Ordering::SeqCst))
    }
}

fn verifier(source: &FakeSource, clock: &TestClock) -> Verifier {
    let c = clock.clone();
    Verifier::builder(ISSUER, AUDIENCE)
        .clock(move || c.now())
        .build(source.clone())
}

#[tokio::test]
async fn keys_are_fetched_once_and_cached() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let clock = TestClock::new();
    let v = verifier(&source, &clock);
    for _ in 0..5 {
        v.verify(&key.token(&claims())).await.unwrap();
    }
    assert_eq!(source.jwks_fetches(), 1);
}

#[tokio::test]
async fn unknown_kid_refreshes_once_per_interval() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let clock = TestClock::new();
    let v = verifier(&source, &clock);
    v.verify(&key.token(&claims())).await.unwrap();
    clock.advance(Duration::from_secs(11));

    let stranger = TestKey::es256();
    let err = v.verify(&stranger.token(&claims())).await.unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey);
    assert_eq!(source.jwks_fetches(), 2, "one refresh for the unknown kid");

    // A flood of random kids within the interval costs the issuer nothing.
    for _ in 0..20 {
        let other = TestKey::ed25519();
        assert_eq!(
            v.verify(&other.token(&claims())).await.unwrap_err(),
            VerifyError::UnknownKey
        );
    }
    assert_eq!(source.jwks_fetches(), 2);
    clock.advance(Duration::from_secs(10));
    let _ = v.verify(&stranger.token(&claims())).await;
    assert_eq!(source.jwks_fetches(), 3);
}

#[tokio::test]
async fn rotation_is_picked_up_on_the_new_kid() {
    let old = TestKey::es256();
    let source = FakeSource::new(jwks(&[&old]));
    let clock = TestClock::new();
    let v = verifier(&source, &clock);
    v.verify(&old.token(&claims())).await.unwrap();

    let new = TestKey::ed25519();
    source.set_jwks(jwks(&[&new, &old]));
    clock.advance(Duration::from_secs(30));
    let claims = v.verify(&new.token(&claims())).await.unwrap();
    assert_eq!(claims.client_id, CLIENT_ID);
    // Tokens of the old key keep working while it is published.
    v.verify(&old.token(&crate::test_common::claims()))
        .await
        .unwrap();
    assert_eq!(source.jwks_fetches(), 2);
}

#[tokio::test]
async fn stale_keys_are_refetched_and_retired_keys_dropped() {
    let old = TestKey::es256();
    let source = FakeSource::new(jwks(&[&old]));
    let clock = TestClock::new();
    let v = verifier(&source, &clock);
    v.verify(&old.token(&claims())).await.unwrap();

    // The issuer retires the key; we notice once our copy is stale.
    let new = TestKey::es256();
    source.set_jwks(jwks(&[&new]));
    clock.advance(Duration::from_secs(299));
    v.verify(&old.token(&claims())).await.unwrap();
    assert_eq!(source.jwks_fetches(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        v.verify(&old.token(&claims())).await.unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(source.jwks_fetches(), 2);
}

#[tokio::test]
async fn max_age_from_the_issuer_is_honoured_within_bounds() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    source.set_max_age(Some(Duration::from_secs(60)));
    let clock = TestClock::new();
    let v = verifier(&source, &clock);
    v.verify(&key.token(&claims())).await.unwrap();
    clock.advance(Duration::from_secs(59));
    v.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(source.jwks_fetches(), 1);
    clock.advance(Duration::from_secs(1));
    v.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(source.jwks_fetches(), 2);

    // max-age=0 cannot turn every request into a fetch.
    source.set_max_age(Some(Duration::ZERO));
    clock.advance(Duration::from_secs(60));
    v.verify(&key.token(&claims())).await.unwrap();
    v.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(source.jwks_fetches(), 3);
}

#[tokio::test]
async fn an_outage_keeps_known_keys_and_is_not_hammered() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let clock = TestClock::new();
    let v = verifier(&source, &clock);
    v.verify(&key.token(&claims())).await.unwrap();

    source.set_down(true);
    clock.advance(Duration::from_secs(301));
    for _ in 0..5 {
        v.verify(&key.token(&claims())).await.unwrap();
    }
    assert_eq!(
        source.jwks_fetches(),
        2,
        "one failed attempt, then the stale copy"
    );
}

#[tokio::test]
async fn no_key_set_at_all_is_unavailable_not_invalid() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    source.set_down(true);
    let clock = TestClock::new();
    let v = verifier(&source, &clock);
    let err = v.verify(&key.token(&claims())).await.unwrap_err();
    assert!(matches!(&err, VerifyError::Jwks(m) if m.contains("connection refused")));
    assert!(err.is_unavailable());
    assert!(v.warm_up().await.is_err());
    assert_eq!(source.jwks_fetches(), 1, "warm_up obeys the rate limit too");

    source.set_down(false);
    clock.advance(Duration::from_secs(10));
    v.warm_up().await.unwrap();
    v.verify(&key.token(&claims())).await.unwrap();
}

#[tokio::test]
async fn tokens_that_cannot_be_valid_never_trigger_a_fetch() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let clock = TestClock::new();
    let v = verifier(&source, &clock);
    let c = claims();
    let no_kid = key.sign_with(&json!({"alg": "ES256", "typ": "at+jwt"}), &c);
    let wrong_typ = key.sign_with(&json!({"alg": "ES256", "typ": "JWT", "kid": key.kid}), &c);
    let hs = compact(
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}),
        &c,
        b"x",
    );
    assert_eq!(
        v.verify(&no_kid).await.unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(
        v.verify(&wrong_typ).await.unwrap_err(),
        VerifyError::WrongType
    );
    assert!(matches!(
        v.verify(&hs).await.unwrap_err(),
        VerifyError::Invalid(_)
    ));
    assert_eq!(
        v.verify("garbage").await.unwrap_err(),
        VerifyError::Malformed
    );
    assert_eq!(source.jwks_fetches(), 0);
}

#[tokio::test]
async fn revocations_are_polled_at_the_interval() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let clock = TestClock::new();
    let c = clock.clone();
    let v = Verifier::builder(format!("{ISSUER}/"), AUDIENCE)
        .revocation_polling(Duration::from_secs(5))
        .clock(move || c.now())
        .build(source.clone());
    let token = key.token(&claims());
    v.verify(&token).await.unwrap();
    assert_eq!(source.fetches("/auth/revocations"), 1);

    source.set_revocations(revocations(&[CLIENT_ID]));
    clock.advance(Duration::from_secs(4));
    v.verify(&token).await.unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::Revoked);
    assert_eq!(source.fetches("/auth/revocations"), 2);

    // A failed poll keeps the last list rather than forgetting revocations.
    source.set_down(true);
    clock.advance(Duration::from_secs(5));
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::Revoked);
}

#[tokio::test]
async fn revocation_checking_fails_closed_until_a_list_arrives() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let clock = TestClock::new();
    let c = clock.clone();
    let v = Verifier::builder(ISSUER, AUDIENCE)
        .revocation_url("https://id.example/broken")
        .clock(move || c.now())
        .build(source.clone());
    let err = v.verify(&key.token(&claims())).await.unwrap_err();
    assert!(matches!(err, VerifyError::Revocations(_)), "{err:?}");
    assert!(err.is_unavailable());
}

#[tokio::test]
async fn concurrent_misses_share_one_fetch() {
    let key = TestKey::es256();
    let source = FakeSource::new(jwks(&[&key]));
    let clock = TestClock::new();
    source.set_delay(Duration::from_millis(50));
    let v = verifier(&source, &clock);
    let token = key.token(&claims());
    let results = Mutex::new(Vec::new());
    let run = || async {
        let r = v.verify(&token).await;
        results.lock().unwrap().push(r.is_ok());
    };
    tokio::join!(run(), run(), run(), run());
    assert_eq!(*results.lock().unwrap(), vec![true; 4]);
    assert_eq!(source.jwks_fetches(), 1);
}

#[test]
fn builder_defaults_and_debug() {
    let v = Verifier::builder("https://id.example/", "aud")
        .min_refresh_interval(Duration::from_secs(30))
        .max_cache_age(Duration::from_secs(5))
        .build(FakeSource::default());
    assert_eq!(v.issuer(), "https://id.example");
    assert_eq!(v.audience(), "aud");
    assert_eq!(v.inner.jwks_url, "https://id.example/.well-known/jwks.json");
    assert_eq!(
        v.inner.policy.max_age,
        Duration::from_secs(30),
        "max never below min"
    );
    assert!(v.inner.revocations.is_none());
    let dbg = format!("{v:?}");
    assert!(dbg.contains("jwks_url"));
}

/// axum and tower need `Send` futures; this fails to compile otherwise.
#[test]
fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let v = Verifier::builder(ISSUER, AUDIENCE).build(FakeSource::new(jwks(&[])));
    send(&v.verify("t"));
    send(&v.verify_with_scopes("t", &["a"]));
    send(&v.warm_up());
    send(&v.authenticate(&crate::Presented::default()));
}
