//! OAuth scopes (RFC 6749 §3.3): syntax, the reserved `tokenmint:*` scopes,
//! and down-scoping.

/// Full access to the admin API.
pub const ADMIN: &str = "tokenmint:admin";
/// Read-only access to the admin API.
pub const KEYS_READ: &str = "tokenmint:keys:read";
/// May call the introspection endpoint.
pub const INTROSPECT: &str = "tokenmint:introspect";
/// The reserved scopes, always allowed whatever the catalog says.
pub const RESERVED: [&str; 3] = [ADMIN, KEYS_READ, INTROSPECT];

/// Most scopes a key may carry.
pub const MAX_SCOPES: usize = 100;
/// Longest single scope token we accept.
pub const MAX_SCOPE_LEN: usize = 200;

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, bounded in length.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SCOPE_LEN
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Splits the space-separated wire form; no token is validated here.
pub fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|t| !t.is_empty())
}

/// Removes duplicates, keeping the first occurrence's position.
pub fn dedup(scopes: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Why a requested scope string was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ScopeRequestError {
    /// Not valid RFC 6749 syntax.
    Malformed,
    /// Names a scope the key does not have.
    NotGranted(String),
}

/// Down-scoping: the requested scopes must be a subset of the key's. The
/// answer keeps the key's order without duplicates; `None` or an empty request
/// means every scope of the key.
pub fn narrow(
    granted: &[String],
    requested: Option<&str>,
) -> Result<Vec<String>, ScopeRequestError> {
    // Only spaces separate scopes: "" or "  " asks for nothing, but "\t" is
    // malformed, not empty.
    let requested = match requested {
        Some(r) if r.split(' ').any(|t| !t.is_empty()) => r,
        _ => return Ok(granted.to_vec()),
    };
    // Only single spaces separate tokens on the wire; anything else is malformed.
    if requested
        .split(' ')
        .any(|t| !t.is_empty() && !is_scope_token(t))
    {
        return Err(ScopeRequestError::Malformed);
    }
    let asked: Vec<&str> = split(requested).collect();
    if let Some(missing) = asked.iter().find(|a| !granted.iter().any(|g| g == *a)) {
        return Err(ScopeRequestError::NotGranted((*missing).to_owned()));
    }
    Ok(granted
        .iter()
        .filter(|g| asked.contains(&g.as_str()))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scope_token_syntax() {
        assert!(is_scope_token("read:orders"));
        assert!(is_scope_token("tokenmint:admin"));
        assert!(!is_scope_token(""));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("quote\"d"));
        assert!(!is_scope_token("back\\slash"));
        assert!(!is_scope_token("é"));
        assert!(!is_scope_token(&"x".repeat(MAX_SCOPE_LEN + 1)));
    }

    #[test]
    fn narrowing_keeps_key_order_and_drops_duplicates() {
        let granted = v(&["a", "b", "c"]);
        assert_eq!(narrow(&granted, None).unwrap(), granted);
        assert_eq!(narrow(&granted, Some("")).unwrap(), granted);
        assert_eq!(narrow(&granted, Some("c a c")).unwrap(), v(&["a", "c"]));
        assert_eq!(
            narrow(&granted, Some("a d")),
            Err(ScopeRequestError::NotGranted("d".into()))
        );
        assert_eq!(
            narrow(&granted, Some("a\tb")),
            Err(ScopeRequestError::Malformed)
        );
        assert_eq!(narrow(&[], None).unwrap(), Vec::<String>::new());
        assert_eq!(
            narrow(&granted, Some("\t")),
            Err(ScopeRequestError::Malformed)
        );
        assert_eq!(narrow(&granted, Some("  ")).unwrap(), granted);
    }

    #[test]
    fn dedup_keeps_first_positions() {
        assert_eq!(dedup(v(&["b", "a", "b", "c", "a"])), v(&["b", "a", "c"]));
    }
}
