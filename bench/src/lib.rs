//! Benchmark helpers (see bench/README.md): the small pieces the binaries in
//! `src/bin/` share — flag parsing, the pairs file, argon2 parameters.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
    fn jwt_header_decodes() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        assert_eq!(
            jwt_header(&format!("{h}.e30.sig")).unwrap(),
            r#"{"alg":"ES256"}"#
        );
        assert!(jwt_header("nope").is_err());
    }
}
