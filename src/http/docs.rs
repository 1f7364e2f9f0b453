//! Error answers shared by many operations, for the OpenAPI document. Each
//! enum lists the statuses a group of checks can answer with; operations
//! name the groups that apply to them.

use utoipa::IntoResponses;

use crate::error::{OAuthErrorBody, Problem};

/// Bearer authentication and the database behind it.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AuthErrors {
    /// No bearer token, or one that is invalid, expired or of a key no longer active.
    #[response(status = 401, content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String)))]
    Unauthorized(Problem),
    /// The token lacks the scope this call needs.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The database (or the argon2 pool) is unavailable; retry shortly.
    #[response(status = 503, content_type = "application/problem+json",
        headers(("Retry-After" = String)))]
    Unavailable(Problem),
}

/// Reading and validating a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// Malformed JSON or a member of the wrong JSON type.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body did not arrive within `TOKENMINT_BODY_TIMEOUT_SECONDS`.
    #[response(status = 408, content_type = "application/problem+json")]
    TooSlow(Problem),
    /// The body is larger than 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Invalid values, missing required members or unknown members; `errors` names each.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Reading query parameters.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum QueryErrors {
    /// The query string is not valid form encoding.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// An unknown, repeated or invalid parameter; `errors` names each.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// A path `{id}` that is not a known key.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NotFound {
    /// No such key (a malformed id included).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// A change to a revoked key.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Conflict {
    /// The key is revoked and cannot be changed or rotated.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
}

/// The OAuth endpoints' errors (RFC 6749 §5.2 bodies).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum OAuthErrors {
    /// `invalid_request`, `invalid_scope`, `invalid_target` or `unsupported_grant_type`.
    #[response(status = 400)]
    BadRequest(OAuthErrorBody),
    /// `invalid_client`: unknown key, wrong secret, revoked, expired or address not allowed.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "Basic, when Basic was used")))]
    Unauthorized(OAuthErrorBody),
    /// The body did not arrive within `TOKENMINT_BODY_TIMEOUT_SECONDS`.
    #[response(status = 408)]
    TooSlow(OAuthErrorBody),
    /// The body is larger than 8 KiB.
    #[response(status = 413)]
    TooLarge(OAuthErrorBody),
    /// The body is neither JSON nor form-encoded.
    #[response(status = 415)]
    UnsupportedMediaType(OAuthErrorBody),
    /// `rate_limited`: the key's budget or the caller's failure budget is spent.
    #[response(status = 429, headers(("Retry-After" = String, description = "Whole seconds")))]
    RateLimited(OAuthErrorBody),
    /// `temporarily_unavailable`: database or argon2 pool busy; retry shortly.
    #[response(status = 503, headers(("Retry-After" = String)))]
    Unavailable(OAuthErrorBody),
}
