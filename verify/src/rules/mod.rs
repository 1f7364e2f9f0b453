//! The one place the token rules live. The verifier in this crate and the
//! tokenmint server (introspection, admin API) both check tokens with these
//! functions, so the two can never disagree about what a valid token is.
//!
//! A full check, for a caller that already has its keys:
//! [`read_header`] → look the key up by `kid` → [`check_header`] with the
//! key's algorithm → [`decode_claims`].

mod claims;
pub mod ecdsa;
mod error;
mod jwk;

pub use claims::{AccessClaims, Confirmation};
pub use error::VerifyError;
pub use jwk::{MAX_KID_LEN, decoding_key_from_jwk};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};

/// The JWT `typ` of tokenmint access tokens (RFC 9068 §2.1).
pub const TOKEN_TYPE: &str = "at+jwt";

/// Clock leeway for `exp` and `nbf`, in seconds. Small on purpose: tokens
/// live an hour, and the contract allows at most 60 s.
pub const LEEWAY_SECONDS: u64 = 30;

/// The only algorithms a tokenmint key can have. Everything else (`none`,
/// `HS*`, other curves) is refused before any key is looked up.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

/// Tokens longer than this are refused unread; ours are well under 2 KiB
/// even with static claims, and parsing costs grow with size.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Parses the (unverified) header of a compact JWS.
///
/// Nothing in it is trusted yet: it only says which key to try and what the
/// token claims to be, and [`check_header`] decides whether that is
/// acceptable.
pub fn read_header(token: &str) -> Result<Header, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
        return Err(VerifyError::Malformed);
    }
    jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)
}

/// Checks the header against the key found by its `kid`.
///
/// `typ` must be exactly `at+jwt`, and the header's `alg` must equal the
/// algorithm of the key: the key decides, never the token, so `none`, HS256
/// keyed with a public key, or RS256 presented against an EC key all fail.
/// A `crit` header is refused because we implement no JWS extensions
/// (RFC 7515 §4.1.11).
pub fn check_header(header: &Header, key_alg: Algorithm) -> Result<(), VerifyError> {
    if header.typ.as_deref() != Some(TOKEN_TYPE) {
        return Err(VerifyError::WrongType);
    }
    if !ALGORITHMS.contains(&key_alg) {
        return Err(VerifyError::Invalid("unsupported key algorithm".into()));
    }
    if header.alg != key_alg {
        return Err(VerifyError::Invalid("algorithm mismatch".into()));
    }
    if header.crit.is_some() {
        return Err(VerifyError::Invalid("unsupported critical header".into()));
    }
    Ok(())
}

/// The claim validation for a key of algorithm `alg`.
///
/// Algorithms are pinned to `[alg]`, leeway is [`LEEWAY_SECONDS`], `nbf` is
/// checked, `iss` must equal `issuer`. With `Some(audience)` the `aud` must
/// equal it; `None` skips the audience check (for the issuer's own
/// introspection, which accepts any audience it issued for) and must not be
/// used by a resource server.
pub fn validation(alg: Algorithm, issuer: &str, audience: Option<&str>) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.leeway = LEEWAY_SECONDS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    match audience {
        Some(aud) => {
            v.validate_aud = true;
            v.set_audience(&[aud]);
            v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "sub", "aud"]);
        }
        None => {
            v.validate_aud = false;
            v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "sub"]);
        }
    }
    v
}

/// Verifies the signature with `key` and the claims with [`validation`].
///
/// Call [`check_header`] first: this function trusts that `alg` is the
/// key's algorithm.
pub fn decode_claims(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, VerifyError> {
    if alg == Algorithm::ES256 && !es256_signature_is_canonical(token) {
        return Err(VerifyError::Invalid("non-canonical signature".into()));
    }
    jsonwebtoken::decode::<AccessClaims>(token, key, &validation(alg, issuer, audience))
        .map(|data| data.claims)
        .map_err(|e| VerifyError::Invalid(reason(e.kind())))
}

/// An ES256 token has exactly one valid string form: the low-`s` one.
fn es256_signature_is_canonical(token: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    token
        .rsplit('.')
        .next()
        .and_then(|sig| URL_SAFE_NO_PAD.decode(sig).ok())
        .is_some_and(|sig| ecdsa::is_low_s(&sig))
}

/// A short, stable reason for logs; never echoed to the token's bearer
/// beyond "invalid token".
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::ExpiredSignature => "expired".into(),
        ErrorKind::ImmatureSignature => "not yet valid".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidAlgorithm => "algorithm mismatch".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("missing claim {c}"),
        ErrorKind::InvalidClaimFormat(c) => format!("bad claim {c}"),
        ErrorKind::Json(_) => "malformed claims".into(),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            "malformed token".into()
        }
        _ => "invalid token".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(alg: Algorithm, typ: Option<&str>) -> Header {
        let mut h = Header::new(alg);
        h.typ = typ.map(str::to_owned);
        h.kid = Some("k".into());
        h
    }

    #[test]
    fn header_must_be_ours_and_match_the_key() {
        let es = Algorithm::ES256;
        assert_eq!(check_header(&header(es, Some("at+jwt")), es), Ok(()));
        for typ in [
            None,
            Some("JWT"),
            Some("AT+JWT"),
            Some("application/at+jwt"),
        ] {
            assert_eq!(
                check_header(&header(es, typ), es),
                Err(VerifyError::WrongType),
                "{typ:?}"
            );
        }
        for alg in [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ] {
            assert!(matches!(
                check_header(&header(alg, Some("at+jwt")), es),
                Err(VerifyError::Invalid(_))
            ));
        }
        // An HMAC "key" can never be the one that decides.
        let hs = Algorithm::HS256;
        assert!(check_header(&header(hs, Some("at+jwt")), hs).is_err());
        let mut crit = header(es, Some("at+jwt"));
        crit.crit = Some(vec!["exp".into()]);
        assert!(check_header(&crit, es).is_err());
    }

    #[test]
    fn validation_pins_algorithm_leeway_and_claims() {
        let v = validation(Algorithm::EdDSA, "https://id", Some("api"));
        assert_eq!(v.algorithms, vec![Algorithm::EdDSA]);
        assert_eq!(v.leeway, LEEWAY_SECONDS);
        assert!(v.validate_nbf && v.validate_exp && v.validate_aud);
        assert_eq!(v.iss.as_ref().map(|i| i.contains("https://id")), Some(true));
        assert_eq!(v.aud.as_ref().map(|a| a.len()), Some(1));
        for c in ["exp", "nbf", "iss", "sub", "aud"] {
            assert!(v.required_spec_claims.contains(c), "{c}");
        }
        let v = validation(Algorithm::ES256, "https://id", None);
        assert!(!v.validate_aud);
        assert!(!v.required_spec_claims.contains("aud"));
        assert!(v.required_spec_claims.contains("nbf"));
    }

    #[test]
    fn read_header_refuses_non_jws_shapes() {
        assert_eq!(read_header("abc"), Err(VerifyError::Malformed));
        assert_eq!(read_header("a.b.c.d.e"), Err(VerifyError::Malformed));
        assert_eq!(read_header("!!.b.c"), Err(VerifyError::Malformed));
        let huge = format!("{}.b.c", "a".repeat(MAX_TOKEN_BYTES));
        assert_eq!(read_header(&huge), Err(VerifyError::Malformed));
    }
}
