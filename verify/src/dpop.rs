//! DPoP proofs (RFC 9449 §4): the proof's header, signature and claims are
//! checked, its `jti` is remembered for the window in which the proof could
//! be replayed, and the RFC 7638 thumbprint of its key is returned. The
//! tokenmint server checks proofs at its token endpoint with this, and the
//! [`Verifier`](crate::Verifier) checks them beside DPoP-bound tokens
//! (`ath`, `cnf.jkt`), so both sides agree on what a valid proof is.

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use moka::sync::Cache;
use serde::Deserialize;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// The proof's `typ` (RFC 9449 §4.2).
const PROOF_TYPE: &str = "dpop+jwt";
/// Signature algorithms a proof may use; discovery and `WWW-Authenticate`
/// (`algs`) list them.
pub const PROOF_ALGS: &[&str] = &["ES256", "RS256", "PS256", "EdDSA", "Ed25519"];
/// How far `iat` may be from now, either way.
pub const IAT_WINDOW_SECONDS: i64 = 60;
/// A proof is usable from `iat − window` to `iat + window`: its `jti` is
/// kept that long, and a little more.
pub const REPLAY_TTL: Duration = Duration::from_secs(2 * IAT_WINDOW_SECONDS as u64 + 5);
/// Remembered `jti`s at most (the gate reads moka's count, which may lag a
/// little). When full, new proofs are refused rather than old ones
/// forgotten: the cache has no size bound of its own, so nothing is evicted
/// before its time, and forgetting would let a proof be replayed.
const MAX_REMEMBERED: u64 = 1_000_000;
/// The largest RSA modulus accepted, in bytes (4096 bits): bigger keys only
/// make each check dearer.
const MAX_RSA_MODULUS_BYTES: usize = 512;
/// A proof larger than this is not read (an RSA-4096 proof is ~1.5 KiB).
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// JWK members that only a private key has (RFC 7518 §6), and `k` (a
/// symmetric key).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused; the text is safe to show the client (it goes
/// into `error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidProof(pub &'static str);

fn invalid(why: &'static str) -> InvalidProof {
    InvalidProof(why)
}

#[derive(Deserialize)]
struct ProofClaims {
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    jti: Option<String>,
    ath: Option<String>,
}

/// What a proof must match: the request it came with and, at a resource
/// server, the token it came with.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method (`htm`).
    pub method: &'a str,
    /// The request's URL (`htu`); query and fragment are ignored on both
    /// sides, and both are compared after RFC 3986 normalisation (scheme
    /// and host case, default port, dot segments).
    pub url: &'a str,
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// The access token presented with the proof: its hash must be the
    /// proof's `ath` (RFC 9449 §4.3 check 11). `None` at a token endpoint.
    pub access_token: Option<&'a str>,
    /// The token's `cnf.jkt`: the proof's key must have this thumbprint.
    pub jkt: Option<&'a str>,
}

/// A proof that passed: its key's thumbprint, and the id under which its
/// `jti` is remembered (SHA-256 of thumbprint and `jti`), for a store shared
/// with other processes to remember too, for [`REPLAY_TTL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The replay id.
    pub replay_id: [u8; 32],
}

/// Checks proofs and remembers their `jti`s for the replay window. One per
/// process (it is `Sync`); the window is per process too, so replicas of a
/// service each keep their own.
pub struct ProofChecker {
    seen: Cache<[u8; 32], ()>,
}

impl Default for ProofChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ProofChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofChecker")
            .field("remembered", &self.seen.entry_count())
            .finish()
    }
}

impl ProofChecker {
    /// An empty replay window.
    pub fn new() -> Self {
        Self {
            seen: Cache::builder().time_to_live(REPLAY_TTL).build(),
        }
    }

    /// Checks `proof` against `expected`. Only a proof that passes every
    /// check spends its `jti` (in this process; see [`Proof::replay_id`]).
    pub fn check(&self, proof: &str, expected: &Expected<'_>) -> Result<Proof, InvalidProof> {
        // Everything that costs no signature check first, so a proof that is
        // wrong anyway costs only parsing.
        let (parts, jwk, claims) = parsed(proof)?;
        if claims.htm.as_deref() != Some(expected.method) {
            return Err(invalid("htm does not match the request method"));
        }
        let htu = claims.htu.ok_or(invalid("the proof has no htu"))?;
        if !same_resource(&htu, expected.url) {
            return Err(invalid("htu does not match the request URL"));
        }
        let iat = claims.iat.ok_or(invalid("the proof has no integer iat"))?;
        if expected.now.abs_diff(iat) > IAT_WINDOW_SECONDS.unsigned_abs() {
            return Err(invalid("iat is too far from now"));
        }
        let jti = claims.jti.filter(|j| !j.is_empty() && j.len() <= 256);
        let jti = jti.ok_or(invalid("the proof has no jti (1-256 characters)"))?;
        if let Some(token) = expected.access_token {
            let ath = claims.ath.ok_or(invalid("the proof has no ath"))?;
            if !bool::from(ath.as_bytes().ct_eq(access_token_hash(token).as_bytes())) {
                return Err(invalid("ath is not the hash of the access token"));
            }
        }
        let jkt = thumbprint(&jwk)?;
        if let Some(bound) = expected.jkt
            && !bool::from(bound.as_bytes().ct_eq(jkt.as_bytes()))
        {
            return Err(invalid(
                "the proof's key is not the one the token is bound to",
            ));
        }
        // Keyed by key and jti: one client cannot use up another's jti.
        let id = digest(&SHA256, format!("{jkt}.{jti}").as_bytes());
        let mut seen_id = [0u8; 32];
        seen_id.copy_from_slice(id.as_ref());
        if self.seen.contains_key(&seen_id) {
            return Err(invalid("the proof's jti was used before"));
        }
        // Only a proof signed by its key may spend a jti.
        verify_signature(parts.alg, &jwk, parts.signed.as_bytes(), &parts.signature)?;
        if self.seen.entry_count() >= MAX_REMEMBERED {
            return Err(invalid("too many recent proofs; retry shortly"));
        }
        // `or_insert_with` runs one initialiser per key even when copies of a
        // proof race: exactly one of them sees a fresh entry.
        if !self.seen.entry(seen_id).or_insert_with(|| ()).is_fresh() {
            return Err(invalid("the proof's jti was used before"));
        }
        Ok(Proof {
            jkt,
            replay_id: seen_id,
        })
    }
}

/// `ath`: base64url(SHA-256(access token)) (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    B64.encode(digest(&SHA256, token.as_bytes()))
}

/// Whether `htu` names the resource at `url`: both without query and
/// fragment, after the normalisation of RFC 3986 §6.2.2–6.2.3 (what the
/// `url` crate's parser does: lower-case scheme and host, no default port,
/// resolved dot segments, an empty path as `/`).
fn same_resource(htu: &str, url: &str) -> bool {
    let normal = |s: &str| {
        url::Url::parse(without_query(s)).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.username().is_empty()
                && u.password().is_none()
        })
    };
    match (normal(htu), normal(url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `htu` without query and fragment (RFC 9449 §4.3, check 9).
fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

fn b64_json(part: &str) -> Result<Value, InvalidProof> {
    let bytes = B64
        .decode(part)
        .map_err(|_| invalid("the proof is not a JWT"))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid("the proof is not a JWT"))
}

/// A proof split into what its signature check needs.
struct Parts<'a> {
    alg: &'a str,
    signed: &'a str,
    signature: Vec<u8>,
}

/// Parses the proof and checks its header (not yet its signature).
fn parsed(proof: &str) -> Result<(Parts<'_>, Map<String, Value>, ProofClaims), InvalidProof> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(invalid("the proof is too large"));
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the proof is not a compact JWS"));
    };
    let Value::Object(mut header) = b64_json(h)? else {
        return Err(invalid("the proof's header is not an object"));
    };
    if header.get("typ").and_then(Value::as_str) != Some(PROOF_TYPE) {
        return Err(invalid("the proof's typ is not dpop+jwt"));
    }
    if header.contains_key("crit") {
        return Err(invalid(
            "the proof has critical header parameters we do not know",
        ));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|a| PROOF_ALGS.iter().find(|x| **x == a).copied())
        .ok_or(invalid(
            "the proof's alg is not an accepted asymmetric algorithm",
        ))?;
    let Some(Value::Object(jwk)) = header.remove("jwk") else {
        return Err(invalid("the proof has no jwk"));
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid(
            "the proof's jwk holds private or symmetric key material",
        ));
    }
    let signature = B64
        .decode(s)
        .map_err(|_| invalid("the proof's signature is not base64url"))?;
    let claims: ProofClaims = serde_json::from_value(b64_json(p)?)
        .map_err(|_| invalid("the proof's claims have the wrong types"))?;
    let signed = &proof[..h.len() + 1 + p.len()];
    Ok((
        Parts {
            alg,
            signed,
            signature,
        },
        jwk,
        claims,
    ))
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, InvalidProof> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or(invalid("the proof's jwk lacks a member its kty needs"))
}

fn member_bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, InvalidProof> {
    B64.decode(member(jwk, name)?)
        .map_err(|_| invalid("a member of the proof's jwk is not base64url"))
}

/// The signature check for each allowed `alg`, with the key types it
/// implies; anything else (`none`, `HS256`, …) is refused.
fn verify_signature(
    alg: &str,
    jwk: &Map<String, Value>,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), InvalidProof> {
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
    let bad_signature = |_| invalid("the proof's signature does not verify with its jwk");
    match (alg, kty) {
        ("ES256", "EC") => {
            if member(jwk, "crv")? != "P-256" {
                return Err(invalid("ES256 needs a P-256 key"));
            }
            let (x, y) = (member_bytes(jwk, "x")?, member_bytes(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(invalid("the proof's P-256 key is malformed"));
            }
            let point = [&[4u8][..], &x, &y].concat();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, signature)
                .map_err(bad_signature)
        }
        ("RS256" | "PS256", "RSA") => {
            let n = member_bytes(jwk, "n")?;
            let e = member_bytes(jwk, "e")?;
            // Minimal encodings only (RFC 7518 §6.3.1.1): one key, one thumbprint.
            if n.len() > MAX_RSA_MODULUS_BYTES || n.first() == Some(&0) || e.first() == Some(&0) {
                return Err(invalid(
                    "the proof's RSA key is too large or not minimally encoded",
                ));
            }
            let params = if alg == "RS256" {
                &RSA_PKCS1_2048_8192_SHA256
            } else {
                &RSA_PSS_2048_8192_SHA256
            };
            // The parameters refuse moduli under 2048 bits.
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(params, signed, signature)
                .map_err(bad_signature)
        }
        ("EdDSA" | "Ed25519", "OKP") => {
            if member(jwk, "crv")? != "Ed25519" {
                return Err(invalid("EdDSA proofs need an Ed25519 key"));
            }
            UnparsedPublicKey::new(&ED25519, member_bytes(jwk, "x")?)
                .verify(signed, signature)
                .map_err(bad_signature)
        }
        ("ES256" | "RS256" | "PS256" | "EdDSA" | "Ed25519", _) => {
            Err(invalid("the proof's jwk does not fit its alg"))
        }
        _ => Err(invalid(
            "the proof's alg is not an accepted asymmetric algorithm",
        )),
    }
}

/// The RFC 7638 thumbprint (SHA-256, base64url) of a public JWK: the
/// required members of its `kty`, in lexicographic order, as JSON without
/// whitespace.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, InvalidProof> {
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
    let names: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return Err(invalid("the proof's jwk has an unsupported kty")),
    };
    let mut canonical = String::from("{");
    for (i, name) in names.iter().enumerate() {
        let value = Value::String(member(jwk, name)?.to_owned());
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&format!("\"{name}\":{value}"));
    }
    canonical.push('}');
    Ok(B64.encode(digest(&SHA256, canonical.as_bytes())))
}

#[cfg(test)]
mod tests;
