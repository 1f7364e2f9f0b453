//! Claim checks shared by the JWTs other parties sign for us: client
//! assertions (RFC 7523) and external identity tokens (RFC 8693).

use serde_json::{Map, Value};

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECONDS: i64 = 60;
/// Longest `jti` accepted.
const MAX_JTI: usize = 256;

/// A NumericDate claim, as whole seconds.
fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, &'static str> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or("a time claim is not a number"),
    }
}

/// Checks `exp` (required), `nbf` and `iat` against `now`, and that the
/// token lives at most `max_lifetime` seconds (`exp − iat`, or `exp − now`
/// without `iat`). Returns `exp`.
pub fn time_window(
    claims: &Map<String, Value>,
    now: i64,
    max_lifetime: i64,
) -> Result<i64, &'static str> {
    let exp = seconds(claims, "exp")?.ok_or("no exp")?;
    if exp <= now - LEEWAY_SECONDS {
        return Err("expired");
    }
    if seconds(claims, "nbf")?.is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
        return Err("not valid yet");
    }
    let iat = seconds(claims, "iat")?;
    if iat.is_some_and(|iat| iat > now + LEEWAY_SECONDS) {
        return Err("issued in the future");
    }
    // However `iat` is set, nothing is valid past now + lifetime + leeway
    // (checked ops: the claims are the sender's, `exp` may be i64::MAX).
    let lifetime = exp.checked_sub(iat.unwrap_or(now));
    if lifetime.is_none_or(|l| l > max_lifetime) || exp > now + max_lifetime + LEEWAY_SECONDS {
        return Err("lives too long");
    }
    Ok(exp)
}

/// The `jti`, if present and a string of 1–256 characters.
pub fn jti(claims: &Map<String, Value>) -> Result<Option<&str>, &'static str> {
    match claims.get("jti") {
        None => Ok(None),
        Some(Value::String(j)) if !j.is_empty() && j.len() <= MAX_JTI => Ok(Some(j)),
        Some(_) => Err("jti is not a string of 1-256 characters"),
    }
}

/// Whether `aud` (a string or an array of strings) names one of `wanted`.
pub fn audience_has(claims: &Map<String, Value>, wanted: &[&str]) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => wanted.contains(&a.as_str()),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| wanted.contains(&a)),
        _ => false,
    }
}

/// How long a `jti` must be remembered: until `exp` plus the leeway.
pub fn replay_ttl(exp: i64, now: i64) -> std::time::Duration {
    std::time::Duration::from_secs(
        u64::try_from(exp - now + LEEWAY_SECONDS)
            .unwrap_or(1)
            .max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn time_window_checks() {
        let now = 1_000_000;
        let ok = claims(json!({"exp": now + 300, "iat": now}));
        assert_eq!(time_window(&ok, now, 300), Ok(now + 300));
        for (bad, why) in [
            (json!({"iat": now}), "no exp"),
            (json!({"exp": now - 61}), "expired"),
            (json!({"exp": now + 301, "iat": now}), "lives too long"),
            (json!({"exp": now + 301}), "lives too long"),
            (json!({"exp": now + 100, "nbf": now + 61}), "not valid yet"),
            (
                json!({"exp": now + 100, "iat": now + 61}),
                "issued in the future",
            ),
            (json!({"exp": "soon"}), "a time claim is not a number"),
            // Overflow cannot make an endless token look short.
            (json!({"exp": i64::MAX, "iat": -1}), "lives too long"),
            (json!({"exp": i64::MAX, "iat": i64::MIN}), "lives too long"),
            (json!({"exp": 1e300, "iat": now}), "lives too long"),
            (
                json!({"exp": now + 250, "iat": now - 100}),
                "lives too long",
            ),
        ] {
            assert_eq!(time_window(&claims(bad), now, 300), Err(why));
        }
        // Within the leeway.
        assert!(time_window(&claims(json!({"exp": now - 59})), now, 300).is_ok());
        assert!(time_window(&claims(json!({"exp": now as f64 + 10.5})), now, 300).is_ok());
    }

    #[test]
    fn audience_and_jti() {
        let c = claims(json!({"aud": ["x", "https://tm"], "jti": "j"}));
        assert!(audience_has(&c, &["https://tm"]));
        assert!(!audience_has(&c, &["https://other"]));
        assert!(audience_has(
            &claims(json!({"aud": "https://tm"})),
            &["https://tm", "y"]
        ));
        assert!(!audience_has(&claims(json!({"aud": 5})), &["5"]));
        assert_eq!(jti(&c), Ok(Some("j")));
        assert!(jti(&claims(json!({"jti": ""}))).is_err());
        assert!(jti(&claims(json!({"jti": 7}))).is_err());
        assert_eq!(jti(&claims(json!({}))), Ok(None));
    }
}
