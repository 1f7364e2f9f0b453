//! The shapes of `api_key` and `api_secret`.
//!
//! `api_key`    = `<prefix>_<env>_<24 base62>`: a public identifier.
//! `api_secret` = `<prefix>s_<env>_<43 base62><6 base62 CRC32>`: 43 characters
//! of base62 from the OS CSPRNG carry 256 bits; the CRC32 of everything before
//! it lets us refuse a mistyped or truncated secret before any database or
//! argon2 work, and lets secret scanners recognise a leaked one.

use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};
use secrecy::{ExposeSecret, SecretString};

use super::Environment;

const KEY_BODY_LEN: usize = 24;
const SECRET_BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_base62(len: usize) -> String {
    // `unwrap_err` is impossible: OsRng failing means the OS has no entropy,
    // and we would rather abort than mint a weak secret.
    let mut rng = OsRng.unwrap_err();
    Alphanumeric.sample_string(&mut rng, len)
}

fn checksum(data: &str) -> String {
    let mut n = crc32fast::hash(data.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Makes a new public `api_key`.
pub fn new_api_key(prefix: &str, env: Environment) -> String {
    format!("{prefix}_{}_{}", env.as_str(), random_base62(KEY_BODY_LEN))
}

/// Makes a new `api_secret`.
pub fn new_api_secret(prefix: &str, env: Environment) -> SecretString {
    let body = format!(
        "{prefix}s_{}_{}",
        env.as_str(),
        random_base62(SECRET_BODY_LEN)
    );
    let sum = checksum(&body);
    SecretString::from(body + &sum)
}

/// Cheap structural check of a presented secret: shape and checksum. It says
/// nothing about whether the secret is right.
pub fn secret_is_well_formed(prefix: &str, secret: &SecretString) -> bool {
    let s = secret.expose_secret();
    let Some(rest) = s.strip_prefix(prefix).and_then(|r| r.strip_prefix("s_")) else {
        return false;
    };
    let Some((env, tail)) = rest.split_once('_') else {
        return false;
    };
    if Environment::parse(env).is_none()
        || tail.len() != SECRET_BODY_LEN + CHECKSUM_LEN
        || !tail.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, sum) = s.split_at(s.len() - CHECKSUM_LEN);
    checksum(body).as_bytes() == sum.as_bytes()
}

/// The environment named inside an `api_key`, if it is well formed.
pub fn api_key_is_well_formed(prefix: &str, key: &str) -> bool {
    let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) else {
        return false;
    };
    match rest.split_once('_') {
        Some((env, body)) => {
            Environment::parse(env).is_some()
                && body.len() == KEY_BODY_LEN
                && body.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// Random bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    OsRng.unwrap_err().fill_bytes(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_have_the_documented_shape() {
        let key = new_api_key("tm", Environment::Live);
        assert!(key.starts_with("tm_live_"));
        assert!(api_key_is_well_formed("tm", &key));
        let secret = new_api_secret("tm", Environment::Test);
        let s = secret.expose_secret();
        assert!(s.starts_with("tms_test_"));
        assert_eq!(s.len(), "tms_test_".len() + SECRET_BODY_LEN + CHECKSUM_LEN);
        assert!(secret_is_well_formed("tm", &secret));
        assert!(!secret_is_well_formed("acme", &secret));
    }

    #[test]
    fn a_mistyped_or_truncated_secret_fails_the_checksum() {
        let secret = new_api_secret("tm", Environment::Live);
        let s = secret.expose_secret().to_owned();
        let truncated = SecretString::from(s[..s.len() - 1].to_owned());
        assert!(!secret_is_well_formed("tm", &truncated));
        // Change one character of the random body.
        let mut bytes = s.clone().into_bytes();
        let i = "tms_live_".len() + 5;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = SecretString::from(String::from_utf8(bytes).unwrap());
        assert!(!secret_is_well_formed("tm", &typo));
        assert!(!secret_is_well_formed(
            "tm",
            &SecretString::from("".to_owned())
        ));
        assert!(!secret_is_well_formed(
            "tm",
            &SecretString::from("tms_live_".to_owned())
        ));
    }

    #[test]
    fn secrets_do_not_repeat() {
        let a = new_api_secret("tm", Environment::Live);
        let b = new_api_secret("tm", Environment::Live);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
