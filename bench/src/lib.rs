//! Benchmark helpers (see bench/README.md): the small pieces the binaries in
//! `src/bin/` share — flag parsing, the pairs file, argon2 parameters, key
//! rows, and an ES256 key for the JWTs the harness signs (DPoP proofs,
//! client assertions, external identity tokens).

use std::collections::HashMap;
use std::fmt::Display;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokenmint::db::{Db, DbError, write_transaction};
use tokenmint::keys::credentials::CredentialType;
use tokenmint::keys::{ApiKey, Environment, now_micros, store};
use uuid::Uuid;

/// `--name value` flags (and `--name=value`), plus valueless switches. Only
/// the names a binary lists are accepted, so a typo stops the run instead of
/// being ignored.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses the process arguments; `allowed` are the flag names without
    /// `--`, `switches` the names of flags that take no value.
    pub fn from_env(allowed: &[&str], switches: &[&str], usage: &str) -> anyhow::Result<Self> {
        Self::parse(std::env::args().skip(1), allowed, switches, usage)
    }

    /// Parses `args` (see [`Flags::from_env`]).
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        allowed: &[&str],
        switches: &[&str],
        usage: &str,
    ) -> anyhow::Result<Self> {
        let mut values = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument {arg:?}\n{usage}");
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None if switches.contains(&name) => (name.to_owned(), "1".to_owned()),
                None => {
                    let v = args
                        .next()
                        .with_context(|| format!("--{name} needs a value\n{usage}"))?;
                    (name.to_owned(), v)
                }
            };
            if !allowed.contains(&name.as_str()) && !switches.contains(&name.as_str()) {
                bail!("unknown flag --{name}\n{usage}");
            }
            values.insert(name, value);
        }
        Ok(Self { values })
    }

    /// The raw value of a flag, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A required flag.
    pub fn required(&self, name: &str) -> anyhow::Result<&str> {
        self.get(name)
            .with_context(|| format!("--{name} is required"))
    }

    /// Whether a switch was given (`--name`, or `--name=` anything but 0).
    pub fn switch(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != "0")
    }

    /// A flag parsed as `T`, or `default` when absent.
    pub fn parsed_or<T>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| anyhow::anyhow!("--{name} {v:?}: {e}")),
        }
    }
}

/// argon2id cost as `m,t,p` (memory in KiB, iterations, lanes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Cost {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl FromStr for Argon2Cost {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [m, t, p] = parts.as_slice() else {
            return Err("expected m,t,p (e.g. 19456,2,1)".to_owned());
        };
        let num = |v: &str| v.parse::<u32>().map_err(|e| format!("{v:?}: {e}"));
        Ok(Self {
            m_kib: num(m)?,
            t: num(t)?,
            p: num(p)?,
        })
    }
}

impl Display for Argon2Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "m={},t={},p={}", self.m_kib, self.t, self.p)
    }
}

/// Reads whitespace-separated columns, one record a line; blank lines and
/// `#` comments are skipped. Every record must have exactly `columns` fields.
pub fn read_columns(path: &Path, columns: usize) -> anyhow::Result<Vec<Vec<String>>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if fields.len() != columns {
            bail!(
                "{}:{}: expected {columns} fields, found {}",
                path.display(),
                n + 1,
                fields.len()
            );
        }
        out.push(fields);
    }
    Ok(out)
}

/// A live key row named `name`, as the admin API would create it; a secret
/// key when `secret_hash` is given, else one without a secret (the caller
/// sets its `credential_type` and `jwks` or `federation`).
pub fn bench_key(name: String, api_key: String, scopes: &[String], secret_hash: String) -> ApiKey {
    let id = Uuid::new_v4();
    let now = now_micros();
    ApiKey {
        id,
        api_key,
        name,
        subject: id.to_string(),
        scopes: scopes.to_vec(),
        environment: Environment::Live,
        secret_hash,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        allowed_ips: Vec::new(),
        rate_limit_per_minute: None,
        audiences: Vec::new(),
        token_ttl_seconds: None,
        claims: serde_json::Map::new(),
        metadata: serde_json::Map::new(),
        expires_at: None,
        created_at: now,
        updated_at: now,
        last_used_at: None,
        revoked_at: None,
        require_dpop: false,
        credential_type: CredentialType::Secret,
        jwks: None,
        federation: Vec::new(),
    }
}

/// Inserts `keys` in one write transaction, through tokenmint's own store.
pub fn insert_keys<'a>(db: &Db, keys: impl IntoIterator<Item = &'a ApiKey>) -> anyhow::Result<()> {
    let mut conn = db.get().map_err(|e| anyhow!("database: {e}"))?;
    write_transaction(&mut conn, |conn| -> Result<(), DbError> {
        for key in keys {
            store::insert(conn, key)?;
        }
        Ok(())
    })
    .map_err(|e| anyhow!("insert: {e}"))
}

/// A JWS algorithm the harness signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys (what GitHub Actions
    /// and Kubernetes sign their tokens with).
    Rs256,
}

impl Alg {
    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }
}

impl FromStr for Alg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(Self::Es256),
            "RS256" => Ok(Self::Rs256),
            other => Err(format!("{other:?}: expected ES256 or RS256")),
        }
    }
}

enum Pair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

/// A JWT signing key (ES256 or RS256), kept as PKCS#8 so a later run can
/// load it again.
pub struct JwtKey {
    pair: Pair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl JwtKey {
    /// A fresh random key.
    pub fn generate(alg: Alg) -> anyhow::Result<Self> {
        let pkcs8 = match alg {
            Alg::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| anyhow!("cannot generate a P-256 key"))?
                    .as_ref()
                    .to_vec()
            }
            Alg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(|_| anyhow!("cannot generate an RSA key"))?
                .as_ref()
                .to_vec(),
        };
        Self::from_pkcs8(alg, &pkcs8)
    }

    /// A key saved with [`JwtKey::pkcs8`].
    pub fn from_pkcs8(alg: Alg, pkcs8: &[u8]) -> anyhow::Result<Self> {
        let pair = match alg {
            Alg::Es256 => Pair::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|_| anyhow!("not a P-256 PKCS#8 key"))?,
            ),
            Alg::Rs256 => Pair::Rs256(
                RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| anyhow!("not an RSA PKCS#8 key"))?,
            ),
        };
        Ok(Self {
            pair,
            pkcs8: pkcs8.to_vec(),
            rng: SystemRandom::new(),
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        match self.pair {
            Pair::Es256(_) => Alg::Es256,
            Pair::Rs256(_) => Alg::Rs256,
        }
    }

    /// The private key as PKCS#8 DER.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public JWK with its required members only.
    pub fn public_jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match &self.pair {
            Pair::Es256(pair) => {
                let point = pair.public_key().as_ref(); // 0x04 || x || y
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Pair::Rs256(pair) => {
                let public = pair.public_key();
                json!({"kty": "RSA",
                       "n": b64(public.modulus().big_endian_without_leading_zero()),
                       "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
        }
    }

    /// The RFC 7638 thumbprint (a common `kid`), as tokenmint computes it.
    pub fn thumbprint(&self) -> anyhow::Result<String> {
        let jwk = self.public_jwk();
        let members = jwk.as_object().context("a JWK is an object")?;
        tokenmint_verify::dpop::thumbprint(members).map_err(|e| anyhow!("thumbprint: {e:?}"))
    }

    /// A compact JWS of `claims` under `header_b64` (an already encoded
    /// header naming this key's algorithm).
    pub fn sign_jwt(&self, header_b64: &str, claims: &Value) -> anyhow::Result<String> {
        let mut jwt = format!(
            "{header_b64}.{}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = match &self.pair {
            Pair::Es256(pair) => pair
                .sign(&self.rng, jwt.as_bytes())
                .map_err(|_| anyhow!("signing failed"))?
                .as_ref()
                .to_vec(),
            Pair::Rs256(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, jwt.as_bytes(), &mut sig)
                    .map_err(|_| anyhow!("signing failed"))?;
                sig
            }
        };
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(jwt)
    }
}

/// The base64url of a JSON header, ready for [`JwtKey::sign_jwt`].
pub fn encode_header(header: &Value) -> String {
    URL_SAFE_NO_PAD.encode(header.to_string())
}

/// The decoded header of a compact JWT, as JSON text (for a sanity print).
pub fn jwt_header(token: &str) -> anyhow::Result<String> {
    let first = token.split('.').next().unwrap_or_default();
    if token.split('.').count() != 3 {
        bail!("not a compact JWS (expected three dot-separated parts)");
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(first)
        .context("JWT header is not base64url")?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).context("JWT header is not JSON")?;
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_cost_parses() {
        let c: Argon2Cost = "19456, 2,1".parse().unwrap();
        assert_eq!(
            c,
            Argon2Cost {
                m_kib: 19456,
                t: 2,
                p: 1
            }
        );
        assert!("1,2".parse::<Argon2Cost>().is_err());
        assert!("a,2,3".parse::<Argon2Cost>().is_err());
    }

    #[test]
    fn flags_parse_and_refuse_unknown_names() {
        let args = ["--count", "5", "--verbose", "--out=x"].map(String::from);
        let f = Flags::parse(args, &["count", "out"], &["verbose", "quiet"], "usage").unwrap();
        assert_eq!(f.parsed_or("count", 0u32).unwrap(), 5);
        assert_eq!(f.get("out"), Some("x"));
        assert!(f.switch("verbose"));
        assert!(!f.switch("quiet"));
        let bad = ["--nope", "1"].map(String::from);
        assert!(Flags::parse(bad, &["count"], &[], "usage").is_err());
    }

    #[test]
    fn jwt_keys_sign_reload_and_publish() {
        for alg in [Alg::Es256, Alg::Rs256] {
            let key = JwtKey::generate(alg).unwrap();
            let again = JwtKey::from_pkcs8(alg, key.pkcs8()).unwrap();
            assert_eq!(key.public_jwk(), again.public_jwk());
            let kid = key.thumbprint().unwrap();
            assert_eq!(kid.len(), 43);
            let header = encode_header(&json!({"alg": alg.name(), "kid": kid}));
            let jwt = key.sign_jwt(&header, &json!({"sub": "s"})).unwrap();
            let parts: Vec<&str> = jwt.split('.').collect();
            let sig_len = if alg == Alg::Es256 { 64 } else { 256 };
            assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), sig_len);
            // tokenmint's own parser takes the public JWK.
            let set = json!({ "keys": [key.public_jwk()] });
            assert!(tokenmint::keys::credentials::ClientJwks::parse(&set).is_ok());
        }
    }

    #[test]
    fn jwt_header_decodes() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        assert_eq!(
            jwt_header(&format!("{h}.e30.sig")).unwrap(),
            r#"{"alg":"ES256"}"#
        );
        assert!(jwt_header("nope").is_err());
    }
}
