//! Authenticating a request, whatever the framework: what was presented
//! ([`Presented`]), what came out ([`Authenticated`], [`Scoped`]) and why a
//! request was refused ([`AuthError`], with its RFC 6750 / RFC 9449 §7.1
//! answer). The actix, axum and tower adapters only translate requests into
//! [`Presented`] and [`AuthError`]s into responses, so all three behave the
//! same.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::dpop::{Expected, InvalidProof, PROOF_ALGS};
use crate::rules::{AccessClaims, VerifyError};
use crate::verifier::Verifier;

/// The authentication scheme of an `Authorization` header, and of a
/// `WWW-Authenticate` challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750: whoever holds the token may use it.
    Bearer,
    /// RFC 9449: the token is bound to a key, and each request carries a
    /// proof signed with it.
    Dpop,
}

/// What a request presents: the parts of it authentication looks at.
/// Adapters fill it in; call [`Verifier::authenticate`] with one to use
/// another framework.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    /// The request method, e.g. `GET` (a DPoP proof's `htm`).
    pub method: String,
    /// `http` or `https`, as the service sees it. Ignored when the verifier
    /// has a [public origin](crate::VerifierBuilder::public_origin).
    pub scheme: String,
    /// The `Host` header (or the request URI's authority). Ignored when the
    /// verifier has a public origin.
    pub host: Option<String>,
    /// The request path, without the query.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Every `DPoP` header of the request (there must be exactly one with
    /// the `DPoP` scheme).
    pub dpop: Vec<String>,
}

/// Why a request was refused. Each adapter answers with [`Self::status`],
/// [`Self::challenges`] as `WWW-Authenticate` headers and [`Self::body`].
/// The bodies are generic on purpose: telling the bearer *why* its token
/// failed (revoked? which key?) helps only an attacker; the inner errors
/// are for logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header with a scheme we know.
    #[error("an access token is required")]
    MissingToken,
    /// The token was refused. `scheme` is the scheme the answer challenges
    /// with: `DPoP` for a DPoP-bound token, even when it was sent as a
    /// bearer token.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// The scheme of the challenge.
        scheme: Scheme,
        /// Why, for logs.
        reason: VerifyError,
    },
    /// The token is fine but its DPoP proof is not (or is missing).
    #[error("invalid DPoP proof: {0}")]
    InvalidProof(InvalidProof),
    /// The token is valid but lacks this scope.
    #[error("insufficient scope: {scope} is required")]
    InsufficientScope {
        /// The first missing scope.
        scope: String,
        /// The scheme the token came with.
        scheme: Scheme,
    },
    /// The issuer's keys (or revocation list) could not be fetched yet.
    #[error("token verification unavailable: {0}")]
    Unavailable(VerifyError),
    /// No [`Verifier`] where the adapter looks for one: a wiring mistake.
    #[error("no tokenmint_verify::Verifier configured")]
    NotConfigured,
}

impl AuthError {
    fn invalid(scheme: Scheme, reason: VerifyError) -> Self {
        if reason.is_unavailable() {
            return Self::Unavailable(reason);
        }
        Self::InvalidToken { scheme, reason }
    }

    /// The HTTP status: 401, 403, 503 or (misconfiguration) 500.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingToken | Self::InvalidToken { .. } | Self::InvalidProof(_) => 401,
            Self::InsufficientScope { .. } => 403,
            Self::Unavailable(_) => 503,
            Self::NotConfigured => 500,
        }
    }

    /// The `WWW-Authenticate` challenges, one header each (RFC 6750 §3,
    /// RFC 9449 §7.1). Without credentials both schemes are offered.
    pub fn challenges(&self) -> Vec<String> {
        let algs = || format!(r#"algs="{}""#, PROOF_ALGS.join(" "));
        let with_error = |scheme: Scheme, error: &str| match scheme {
            Scheme::Bearer => format!(r#"Bearer error="{error}""#),
            Scheme::Dpop => format!(r#"DPoP error="{error}", {}"#, algs()),
        };
        match self {
            // RFC 6750 §3.1: no error code when no credentials were sent.
            Self::MissingToken => vec!["Bearer".into(), format!("DPoP {}", algs())],
            Self::InvalidToken { scheme, .. } => vec![with_error(*scheme, "invalid_token")],
            Self::InvalidProof(_) => vec![with_error(Scheme::Dpop, "invalid_dpop_proof")],
            // Scope names are RFC 6749 scope-tokens, which exclude `"` and
            // `\`; a name with them is left out rather than break the header.
            Self::InsufficientScope { scope, scheme } if !scope.contains(['"', '\\']) => {
                vec![format!(
                    r#"{}, scope="{scope}""#,
                    with_error(*scheme, "insufficient_scope")
                )]
            }
            Self::InsufficientScope { scheme, .. } => {
                vec![with_error(*scheme, "insufficient_scope")]
            }
            Self::Unavailable(_) | Self::NotConfigured => Vec::new(),
        }
    }

    /// `Retry-After`, for answers that are worth retrying.
    pub fn retry_after(&self) -> Option<&'static str> {
        matches!(self, Self::Unavailable(_)).then_some("10")
    }

    /// The JSON body: `{"error": …, "error_description": …}`.
    pub fn body(&self) -> String {
        let (error, description) = match self {
            Self::MissingToken => ("invalid_request", "an access token is required"),
            Self::InvalidToken { .. } => (
                "invalid_token",
                "the access token is invalid, expired or revoked",
            ),
            // The proof is the client's own; saying what is wrong with it
            // tells an attacker nothing about the token.
            Self::InvalidProof(why) => ("invalid_dpop_proof", why.0),
            Self::InsufficientScope { .. } => (
                "insufficient_scope",
                "the access token lacks a required scope",
            ),
            Self::Unavailable(_) => (
                "temporarily_unavailable",
                "tokens cannot be verified right now",
            ),
            Self::NotConfigured => ("server_error", "internal error"),
        };
        json!({ "error": error, "error_description": description }).to_string()
    }
}

/// The claims of a request's valid token, bearer or DPoP-bound (then with
/// a valid proof). The actix and axum extractors produce it, and the tower
/// layer puts it into the request's extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated(pub AccessClaims);

impl Authenticated {
    /// The verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.0
    }

    /// The verified claims, owned.
    pub fn into_inner(self) -> AccessClaims {
        self.0
    }

    /// The scheme the token was presented with.
    pub fn scheme(&self) -> Scheme {
        if self.0.cnf.is_some() {
            Scheme::Dpop
        } else {
            Scheme::Bearer
        }
    }

    /// `Err` (`403 insufficient_scope`) unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        self.require_scopes(&[scope])
    }

    /// `Err` (`403 insufficient_scope`) unless the token carries every one
    /// of `scopes`.
    pub fn require_scopes(&self, scopes: &[&str]) -> Result<(), AuthError> {
        match self.0.missing_scope(scopes) {
            Some(missing) => Err(AuthError::InsufficientScope {
                scope: missing.to_owned(),
                scheme: self.scheme(),
            }),
            None => Ok(()),
        }
    }
}

impl Deref for Authenticated {
    type Target = AccessClaims;

    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

/// Names the scopes a [`Scoped`] extractor requires.
///
/// ```
/// use tokenmint_verify::RequiredScope;
///
/// struct OrdersRead;
/// impl RequiredScope for OrdersRead {
///     const SCOPES: &'static [&'static str] = &["orders:read"];
/// }
/// ```
pub trait RequiredScope {
    /// Every one of these must be granted.
    const SCOPES: &'static [&'static str];
}

/// Like [`Authenticated`], but also requires the scopes of `S`: a handler
/// taking `Scoped<OrdersRead>` is never called without them, and the
/// caller gets `403 insufficient_scope`.
pub struct Scoped<S: RequiredScope> {
    claims: AccessClaims,
    // fn() -> S: a marker only, so Scoped is Send/Sync whatever S is.
    _scopes: PhantomData<fn() -> S>,
}

impl<S: RequiredScope> Scoped<S> {
    /// Checks the scopes of `S` on an authenticated request.
    pub fn from_authenticated(auth: Authenticated) -> Result<Self, AuthError> {
        auth.require_scopes(S::SCOPES)?;
        Ok(Self {
            claims: auth.0,
            _scopes: PhantomData,
        })
    }

    /// The verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }

    /// The verified claims, owned.
    pub fn into_inner(self) -> AccessClaims {
        self.claims
    }
}

impl<S: RequiredScope> Deref for Scoped<S> {
    type Target = AccessClaims;

    fn deref(&self) -> &AccessClaims {
        &self.claims
    }
}

impl<S: RequiredScope> fmt::Debug for Scoped<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("scopes", &S::SCOPES)
            .field("claims", &self.claims)
            .finish()
    }
}

/// Splits `Authorization: <scheme> <token>` (scheme case-insensitive).
fn credentials(header: Option<&str>) -> Option<(Scheme, &str)> {
    let (scheme, token) = header?.split_once(' ')?;
    let token = token.trim();
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return None;
    };
    (!token.is_empty()).then_some((scheme, token))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Verifier {
    /// Authenticates a request: a bearer token, or a DPoP-bound token with
    /// its proof (`htm`, `htu`, `ath`, `cnf.jkt`, `iat`, unseen `jti`). A
    /// bound token sent as `Bearer` is refused, as is an unbound one sent
    /// as `DPoP`. The revocation list is consulted when it is on.
    pub async fn authenticate(&self, request: &Presented) -> Result<Authenticated, AuthError> {
        let (scheme, token) =
            credentials(request.authorization.as_deref()).ok_or(AuthError::MissingToken)?;
        // With the DPoP scheme, a missing or doubled proof is refused before
        // any signature work.
        let proof = match (scheme, request.dpop.as_slice()) {
            (Scheme::Bearer, _) => None,
            (Scheme::Dpop, [one]) => Some(one.as_str()),
            (Scheme::Dpop, []) => {
                return Err(AuthError::InvalidProof(InvalidProof("no DPoP proof")));
            }
            (Scheme::Dpop, _) => {
                return Err(AuthError::InvalidProof(InvalidProof(
                    "more than one DPoP header",
                )));
            }
        };
        let claims = self
            .verify(token)
            .await
            .map_err(|e| AuthError::invalid(scheme, e))?;
        match (proof, claims.cnf.as_ref()) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(AuthError::InvalidToken {
                    scheme: Scheme::Dpop,
                    reason: VerifyError::Invalid("a DPoP-bound token sent as Bearer".into()),
                });
            }
            (Some(_), None) => {
                return Err(AuthError::InvalidToken {
                    scheme: Scheme::Dpop,
                    reason: VerifyError::Invalid("an unbound token sent as DPoP".into()),
                });
            }
            (Some(proof), Some(cnf)) => {
                let url = self.request_url(request);
                let expected = Expected {
                    method: &request.method,
                    url: &url,
                    now: unix_now(),
                    access_token: Some(token),
                    jkt: Some(&cnf.jkt),
                };
                self.proofs()
                    .check(proof, &expected)
                    .map_err(AuthError::InvalidProof)?;
            }
        }
        Ok(Authenticated(claims))
    }

    /// The URL a proof's `htu` must name: the public origin when one is
    /// configured, else what the request says about itself.
    fn request_url(&self, request: &Presented) -> String {
        match self.public_origin() {
            Some(origin) => format!("{origin}{}", request.path),
            None => format!(
                "{}://{}{}",
                request.scheme,
                request.host.as_deref().unwrap_or_default(),
                request.path
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_follow_rfc_6750_and_9449() {
        let algs = r#"algs="ES256 RS256 PS256 EdDSA Ed25519""#;
        let answer = |e: AuthError| (e.status(), e.challenges());
        assert_eq!(
            answer(AuthError::MissingToken),
            (401, vec!["Bearer".into(), format!("DPoP {algs}")])
        );
        assert_eq!(
            answer(AuthError::invalid(Scheme::Bearer, VerifyError::Revoked)),
            (401, vec![r#"Bearer error="invalid_token""#.into()])
        );
        assert_eq!(
            answer(AuthError::invalid(Scheme::Dpop, VerifyError::Revoked)),
            (401, vec![format!(r#"DPoP error="invalid_token", {algs}"#)])
        );
        assert_eq!(
            answer(AuthError::InvalidProof(InvalidProof("x"))),
            (
                401,
                vec![format!(r#"DPoP error="invalid_dpop_proof", {algs}"#)]
            )
        );
        let scope = |scope: &str, scheme| AuthError::InsufficientScope {
            scope: scope.into(),
            scheme,
        };
        assert_eq!(
            answer(scope("orders:read", Scheme::Bearer)),
            (
                403,
                vec![r#"Bearer error="insufficient_scope", scope="orders:read""#.into()]
            )
        );
        assert_eq!(
            answer(scope("a\"b", Scheme::Bearer)),
            (403, vec![r#"Bearer error="insufficient_scope""#.into()])
        );
        assert_eq!(
            answer(scope("o", Scheme::Dpop)),
            (
                403,
                vec![format!(
                    r#"DPoP error="insufficient_scope", {algs}, scope="o""#
                )]
            )
        );
        let down = AuthError::invalid(Scheme::Bearer, VerifyError::Jwks("down".into()));
        assert_eq!(answer(down), (503, vec![]));
        assert_eq!(answer(AuthError::NotConfigured), (500, vec![]));
    }

    #[test]
    fn bodies_do_not_leak_the_reason() {
        let body = |e: VerifyError| AuthError::invalid(Scheme::Bearer, e).body();
        let expired = body(VerifyError::Invalid("expired".into()));
        assert_eq!(expired, body(VerifyError::Revoked));
        assert_eq!(expired, body(VerifyError::UnknownKey));
        assert!(expired.contains(r#""error":"invalid_token""#), "{expired}");
    }

    #[test]
    fn authorization_header_parsing() {
        fn c(v: &str) -> Option<(Scheme, &str)> {
            credentials(Some(v))
        }
        assert_eq!(c("Bearer abc"), Some((Scheme::Bearer, "abc")));
        assert_eq!(c("bearer  abc "), Some((Scheme::Bearer, "abc")));
        assert_eq!(c("DPoP abc"), Some((Scheme::Dpop, "abc")));
        assert_eq!(c("dpop abc"), Some((Scheme::Dpop, "abc")));
        assert_eq!(c("Basic abc"), None);
        assert_eq!(c("Bearer "), None);
        assert_eq!(c("Bearerabc"), None);
        assert_eq!(credentials(None), None);
    }
}
