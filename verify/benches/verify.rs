//! `cargo bench -p tokenmint-verify`: what a warm [`Verifier`] costs per
//! token, against a bare `jsonwebtoken::decode` of the same token with the
//! same key and an equivalent `Validation`, and what a DPoP-bound request
//! costs against a bearer one. No network: the JWKS comes from the tests'
//! in-memory `FakeSource` and is fetched once, before anything is timed.
//!
//! Executor: the verifier's futures never wait once the cache is warm (the
//! key is found and fresh, the revocation list is off), so they are polled
//! once with a no-op waker ([`poll_once`]), which costs a few nanoseconds;
//! `executor::tokio_block_on` shows what a tokio current-thread runtime's
//! `block_on` would add instead. A future that does wait panics: that would
//! mean the cache was not warm.
//!
//! Groups:
//! - `verify`: `Verifier::verify` vs `raw_decode` (into `AccessClaims`, as
//!   the verifier does) and `raw_decode_value` (into `serde_json::Value`),
//!   per algorithm.
//! - `parts`: the pieces of `verify`, to see where an overhead comes from.
//! - `authenticate`: `Verifier::authenticate` with `Authorization: DPoP` and
//!   a fresh ES256 proof per iteration (made outside the timed part), and
//!   with `Authorization: Bearer`; `proof_check` is the proof check alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{AUDIENCE, FakeSource, ISSUER, TestKey, claims, claims_with, jwks, now};
use divan::{Bencher, black_box};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokenmint_verify::dpop::{Expected, ProofChecker, access_token_hash};
use tokenmint_verify::{AccessClaims, Authenticated, Presented, Verifier, rules};

fn main() {
    // Build every key, token and the warm verifier before anything is timed.
    LazyLock::force(&FIXTURE);
    divan::main();
}

const ALGS: [&str; 3] = ["ES256", "RS256", "EdDSA"];
const METHOD: &str = "GET";
const SCHEME: &str = "https";
const HOST: &str = "orders.example";
const PATH: &str = "/orders";

/// Polls `f` once with a no-op waker: enough for a warm verifier, whose
/// futures complete without waiting.
fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the verifier waited: the cache is not warm"),
    }
}

// Each timed call is a function of its own, never inlined (a call costs a
// nanosecond), so that callgrind (`--toggle-collect='*timed_raw_decode*'`)
// can count instructions per call: a measure that does not move with the
// machine's load.

#[inline(never)]
fn timed_verify(verifier: &Verifier, token: &str) -> AccessClaims {
    poll_once(verifier.verify(token)).unwrap()
}

#[inline(never)]
fn timed_raw_decode(a: &Alg) -> AccessClaims {
    jsonwebtoken::decode::<AccessClaims>(&a.token, &a.raw_key, &a.raw_validation)
        .unwrap()
        .claims
}

#[inline(never)]
fn timed_raw_decode_value(a: &Alg) -> Value {
    jsonwebtoken::decode::<Value>(&a.token, &a.raw_key, &a.raw_validation)
        .unwrap()
        .claims
}

#[inline(never)]
fn timed_authenticate(verifier: &Verifier, request: &Presented) -> Authenticated {
    poll_once(verifier.authenticate(request)).unwrap()
}

/// One token-signing key, and what a bare `jsonwebtoken` user would hold.
struct Alg {
    name: &'static str,
    /// A bearer token (no `cnf`).
    token: String,
    /// A token bound to [`Fixture::proof_key`] (`cnf.jkt`).
    bound_token: String,
    raw_key: DecodingKey,
    raw_validation: Validation,
}

struct Fixture {
    algs: Vec<Alg>,
    verifier: Verifier,
    /// The client's DPoP key (ES256).
    proof_key: TestKey,
    /// Its public JWK as a proof header carries it.
    proof_jwk: Value,
    /// A current-thread runtime, only for `warm_up` and the executor
    /// comparison.
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn alg(&self, name: &str) -> &Alg {
        self.algs.iter().find(|a| a.name == name).unwrap()
    }
}

/// The `Validation` a bare `jsonwebtoken` user would write for these
/// tokens, built once: algorithm pinned, `iss`, `aud`, `exp` and `nbf` with
/// a 30 s leeway, the same required claims as the verifier's.
fn raw_validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.leeway = 30;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = true;
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "sub", "aud"]);
    v
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let keys = [TestKey::es256(), TestKey::rs256(), TestKey::ed25519()];
    let proof_key = TestKey::es256();
    // RFC 7638 thumbprint of the proof key: TestKey's kid is exactly that;
    // check it against the crate's own.
    let proof_jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": proof_key.jwk["x"], "y": proof_key.jwk["y"],
    });
    let jkt = tokenmint_verify::dpop::thumbprint(proof_jwk.as_object().unwrap()).unwrap();
    assert_eq!(jkt, proof_key.kid);

    let verifier = Verifier::builder(ISSUER, AUDIENCE)
        // Never stale during a run, however long: no refresh is ever timed.
        .max_cache_age(Duration::from_secs(24 * 3600))
        .build(FakeSource::new(jwks(&keys.iter().collect::<Vec<_>>())));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(verifier.warm_up()).unwrap();

    let algs = keys
        .iter()
        .map(|key| {
            let token = key.token(&claims());
            let bound_token = key.token(&claims_with(json!({"cnf": {"jkt": jkt}})));
            let (kid, alg, raw_key) = rules::decoding_key_from_jwk(&key.jwk).unwrap();
            assert_eq!(kid, key.kid);
            let a = Alg {
                name: key.alg,
                token,
                bound_token,
                raw_key,
                raw_validation: raw_validation(alg),
            };
            // Both sides accept the token, with the same claims.
            let ours = poll_once(verifier.verify(&a.token)).unwrap();
            let raw = jsonwebtoken::decode::<AccessClaims>(&a.token, &a.raw_key, &a.raw_validation)
                .unwrap()
                .claims;
            assert_eq!(ours, raw);
            a
        })
        .collect();
    Fixture {
        algs,
        verifier,
        proof_key,
        proof_jwk,
        runtime,
    }
});

/// Unique `jti`s for the whole run (the replay window would refuse a reuse).
static JTI: AtomicU64 = AtomicU64::new(0);

/// A fresh ES256 DPoP proof for `GET https://orders.example/orders`, bound
/// to `token` (`ath`).
fn proof(token: &str) -> String {
    let f = &*FIXTURE;
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": f.proof_jwk});
    let claims = json!({
        "htm": METHOD,
        "htu": format!("{SCHEME}://{HOST}{PATH}"),
        "iat": now(),
        "jti": format!("bench-{}", JTI.fetch_add(1, Ordering::Relaxed)),
        "ath": access_token_hash(token),
    });
    f.proof_key.sign_with(&header, &claims)
}

fn presented(authorization: String, dpop: Vec<String>) -> Presented {
    Presented {
        method: METHOD.into(),
        scheme: SCHEME.into(),
        host: Some(HOST.into()),
        path: PATH.into(),
        authorization: Some(authorization),
        dpop,
    }
}

/// A warm `Verifier::verify` against a bare `jsonwebtoken::decode`.
#[divan::bench_group(sample_count = 1000, sample_size = 10)]
mod verify {
    use super::*;

    #[divan::bench(args = ALGS)]
    fn verifier(bencher: Bencher, alg: &str) {
        let f = &*FIXTURE;
        let token = f.alg(alg).token.as_str();
        bencher.bench_local(|| timed_verify(&f.verifier, black_box(token)));
    }

    #[divan::bench(args = ALGS)]
    fn raw_decode(bencher: Bencher, alg: &str) {
        let a = FIXTURE.alg(alg);
        bencher.bench_local(|| timed_raw_decode(black_box(a)));
    }

    #[divan::bench(args = ALGS)]
    fn raw_decode_value(bencher: Bencher, alg: &str) {
        let a = FIXTURE.alg(alg);
        bencher.bench_local(|| timed_raw_decode_value(black_box(a)));
    }
}

/// The steps of `verify`, alone: where its overhead over a bare decode is.
#[divan::bench_group(sample_count = 1000, sample_size = 10)]
mod parts {
    use super::*;

    /// `rules::read_header`: the split count and `jsonwebtoken::decode_header`
    /// (which `jsonwebtoken::decode` then does again).
    #[divan::bench(args = ALGS)]
    fn read_header(bencher: Bencher, alg: &str) {
        let token = FIXTURE.alg(alg).token.as_str();
        bencher.bench_local(|| rules::read_header(black_box(token)).unwrap());
    }

    /// `rules::validation`, which `decode_claims` builds per token (a Vec
    /// and three HashSets).
    #[divan::bench(args = ALGS)]
    fn build_validation(bencher: Bencher, alg: &str) {
        let alg = FIXTURE.alg(alg).raw_validation.algorithms[0];
        bencher.bench_local(|| rules::validation(black_box(alg), ISSUER, Some(AUDIENCE)));
    }

    /// The low-`s` check of ES256 signatures: base64 decode of the signature
    /// and a comparison (what `decode_claims` does before decoding).
    #[divan::bench]
    fn es256_low_s() -> bool {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = FIXTURE.alg("ES256").token.as_str();
        let sig = black_box(token).rsplit('.').next().unwrap();
        rules::ecdsa::is_low_s(&URL_SAFE_NO_PAD.decode(sig).unwrap())
    }

    /// `rules::decode_claims`: the low-`s` check (ES256), `validation()`
    /// and `jsonwebtoken::decode`; `verify` adds the header and key lookup.
    #[divan::bench(args = ALGS)]
    fn decode_claims(bencher: Bencher, alg: &str) {
        let a = FIXTURE.alg(alg);
        let key_alg = a.raw_validation.algorithms[0];
        bencher.bench_local(|| {
            rules::decode_claims(
                black_box(&a.token),
                &a.raw_key,
                key_alg,
                ISSUER,
                Some(AUDIENCE),
            )
            .unwrap()
        });
    }
}

/// `Verifier::authenticate`, DPoP-bound (a fresh ES256 proof each time) and
/// bearer.
#[divan::bench_group(sample_count = 1000, sample_size = 10)]
mod authenticate {
    use super::*;

    #[divan::bench(args = ALGS)]
    fn dpop(bencher: Bencher, alg: &str) {
        let f = &*FIXTURE;
        let token = f.alg(alg).bound_token.as_str();
        bencher
            .with_inputs(|| presented(format!("DPoP {token}"), vec![proof(token)]))
            .bench_local_refs(|request| timed_authenticate(&f.verifier, request));
    }

    #[divan::bench(args = ALGS)]
    fn bearer(bencher: Bencher, alg: &str) {
        let f = &*FIXTURE;
        let request = presented(format!("Bearer {}", f.alg(alg).token), Vec::new());
        bencher.bench_local(|| timed_authenticate(&f.verifier, black_box(&request)));
    }

    /// `ProofChecker::check` alone (a fresh ES256 proof each time, its own
    /// replay window): the part of `dpop` that `bearer` does not do.
    #[divan::bench]
    fn proof_check(bencher: Bencher) {
        let token = FIXTURE.alg("ES256").bound_token.as_str();
        let jkt = FIXTURE.proof_key.kid.as_str();
        let checker = ProofChecker::new();
        let url = format!("{SCHEME}://{HOST}{PATH}");
        bencher.with_inputs(|| proof(token)).bench_local_refs(|p| {
            let expected = Expected {
                method: METHOD,
                url: &url,
                now: now(),
                access_token: Some(token),
                jkt: Some(jkt),
            };
            checker.check(p, &expected).unwrap()
        });
    }
}

/// What running the verifier's future costs, executor alone.
#[divan::bench_group(sample_count = 1000)]
mod executor {
    use super::*;

    /// What the benches above use.
    #[divan::bench]
    fn poll_once_noop_waker() {
        poll_once(black_box(async {}));
    }

    /// The alternative: a tokio current-thread runtime's `block_on`.
    #[divan::bench]
    fn tokio_block_on() {
        FIXTURE.runtime.block_on(black_box(async {}));
    }
}
