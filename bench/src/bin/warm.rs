//! One pass over a pairs file: each `api_key api_secret` (or client id and
//! secret) is exchanged exactly once, on a few keep-alive connections, and
//! every answer must be `200` with an access token. The harness uses it to
//! warm tokenmint's caches before a warm case (so the case measures the warm
//! path, not first lookups) and to prove that a server really issues tokens
//! before it is measured (`--show-header` prints one decoded JWT header).
//!
//! With `--dpop HTU`, every request carries a fresh DPoP proof (ES256, one
//! key per connection, `htu` as given), to measure what proofs cost.
//!
//! A deliberately small HTTP/1.1 client over `std::net::TcpStream` (bodies
//! with `Content-Length` only), so the harness needs nothing else. It only
//! ever connects to the address in `--url`; the harness passes 127.0.0.1.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokenmint_bench::{Alg, Flags, JwtKey, encode_header, jwt_header, read_columns};

const USAGE: &str = "\
warm --url http://127.0.0.1:PORT/auth/token --pairs FILE [--form json|basic]
     [--concurrency 8] [--limit N] [--show-header] [--max-seconds 300]
     [--dpop TOKEN_ENDPOINT_URL]";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Json,
    Basic,
}

struct Target {
    addr: String,
    host: String,
    path: String,
}

fn parse_url(url: &str) -> anyhow::Result<Target> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must start with http://")?;
    let (addr, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if addr.is_empty() {
        bail!("--url has no host");
    }
    Ok(Target {
        addr: addr.to_owned(),
        host: addr.to_owned(),
        path: path.to_owned(),
    })
}

/// A DPoP client key: proofs for `POST htu` (RFC 9449 §4.2).
struct DpopClient {
    key: JwtKey,
    header: String,
    htu: String,
}

impl DpopClient {
    fn new(htu: &str) -> anyhow::Result<Self> {
        let key = JwtKey::generate(Alg::Es256)?;
        let header = encode_header(
            &serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}),
        );
        Ok(Self {
            key,
            header,
            htu: htu.to_owned(),
        })
    }

    fn proof(&self) -> anyhow::Result<String> {
        let claims = serde_json::json!({"htm": "POST", "htu": self.htu,
            "iat": chrono::Utc::now().timestamp(), "jti": uuid::Uuid::new_v4().to_string()});
        self.key.sign_jwt(&self.header, &claims)
    }
}

fn request(t: &Target, form: Form, key: &str, secret: &str, proof: Option<&str>) -> Vec<u8> {
    let (content_type, auth, body) = match form {
        Form::Json => (
            "application/json",
            String::new(),
            serde_json::json!({ "api_key": key, "api_secret": secret }).to_string(),
        ),
        // Our ids and secrets are [A-Za-z0-9_], which form-urlencoding leaves
        // as they are (RFC 6749 §2.3.1).
        Form::Basic => (
            "application/x-www-form-urlencoded",
            format!(
                "Authorization: Basic {}\r\n",
                STANDARD.encode(format!("{key}:{secret}"))
            ),
            "grant_type=client_credentials".to_owned(),
        ),
    };
    let dpop = proof.map_or(String::new(), |p| format!("DPoP: {p}\r\n"));
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n{auth}{dpop}Content-Length: {}\r\nAccept: application/json\r\n\r\n{body}",
        t.path,
        t.host,
        body.len()
    )
    .into_bytes()
}

struct Response {
    status: u16,
    body: Vec<u8>,
    close: bool,
}

fn read_response(reader: &mut BufReader<TcpStream>) -> anyhow::Result<Response> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let mut length = None;
    let mut close = false;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("connection closed in headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "transfer-encoding" => bail!("chunked responses are not supported"),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length.unwrap_or(0)];
    reader.read_exact(&mut body)?;
    Ok(Response {
        status,
        body,
        close,
    })
}

fn connect(t: &Target) -> anyhow::Result<(TcpStream, BufReader<TcpStream>)> {
    let stream = TcpStream::connect(&t.addr).with_context(|| format!("connect {}", t.addr))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let reader = BufReader::new(stream.try_clone()?);
    Ok((stream, reader))
}

/// How often one pair is sent again after a 429 before it counts as failed.
const MAX_429_RETRIES: u32 = 50;

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    retried_429: u64,
    first_failure: Option<String>,
    header: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(
        &[
            "url",
            "pairs",
            "form",
            "concurrency",
            "limit",
            "max-seconds",
            "dpop",
        ],
        &["show-header"],
        USAGE,
    )?;
    let target = parse_url(flags.required("url")?)?;
    let form = match flags.get("form").unwrap_or("json") {
        "json" => Form::Json,
        "basic" => Form::Basic,
        other => bail!("--form {other:?}: expected json or basic"),
    };
    let concurrency: usize = flags.parsed_or("concurrency", 8)?;
    let max_seconds: u64 = flags.parsed_or("max-seconds", 300)?;
    let show_header = flags.switch("show-header");
    let dpop_htu = flags.get("dpop").map(str::to_owned);
    let mut pairs = read_columns(Path::new(flags.required("pairs")?), 2)?;
    if let Some(limit) = flags.get("limit") {
        let limit: usize = limit.parse().map_err(|e| anyhow::anyhow!("--limit: {e}"))?;
        pairs.truncate(limit);
    }
    if pairs.is_empty() {
        bail!("no pairs to send");
    }
    let concurrency = concurrency.clamp(1, 256).min(pairs.len());
    let deadline = Instant::now() + Duration::from_secs(max_seconds);
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();

    std::thread::scope(|scope| {
        for worker in 0..concurrency {
            let (pairs, target, tally, dpop_htu) = (&pairs, &target, &tally, &dpop_htu);
            scope.spawn(move || {
                let dpop = dpop_htu.as_deref().map(DpopClient::new).transpose();
                let mut conn = None;
                let mut local = Tally::default();
                for pair in pairs.iter().skip(worker).step_by(concurrency) {
                    if Instant::now() > deadline {
                        local.transport_errors += 1;
                        local
                            .first_failure
                            .get_or_insert("time limit reached".into());
                        break;
                    }
                    let [key, secret] = pair.as_slice() else {
                        continue;
                    };
                    let proof = match &dpop {
                        Ok(Some(client)) => client.proof().map(Some),
                        Ok(None) => Ok(None),
                        Err(e) => Err(anyhow::anyhow!("{e}")),
                    };
                    let proof = match proof {
                        Ok(p) => p,
                        Err(e) => {
                            local.transport_errors += 1;
                            local.first_failure.get_or_insert_with(|| e.to_string());
                            break;
                        }
                    };
                    let mut req = request(target, form, key, secret, proof.as_deref());
                    let mut outcome = Err(anyhow::anyhow!("not sent"));
                    // A first exchange runs argon2, and the server admits only
                    // a few argon2 jobs per address at once (the rest get a
                    // 429): those pairs are sent again, a bounded number of
                    // times, and counted apart.
                    for _ in 0..MAX_429_RETRIES {
                        // One retry on a fresh connection (a server may close an
                        // idle keep-alive connection at any time).
                        for _ in 0..2 {
                            if conn.is_none() {
                                conn = connect(target).ok();
                            }
                            let Some((stream, reader)) = conn.as_mut() else {
                                outcome = Err(anyhow::anyhow!("cannot connect to {}", target.addr));
                                break;
                            };
                            outcome = stream
                                .write_all(&req)
                                .map_err(anyhow::Error::from)
                                .and_then(|()| read_response(reader));
                            if outcome.is_ok() {
                                break;
                            }
                            conn = None;
                        }
                        match &outcome {
                            Ok(res) if res.status == 429 => {
                                local.retried_429 += 1;
                                // A proof is good once: a resend needs a new one.
                                if let Ok(Some(client)) = &dpop
                                    && let Ok(p) = client.proof()
                                {
                                    req = request(target, form, key, secret, Some(&p));
                                }
                                if res.close {
                                    conn = None;
                                }
                            }
                            _ => break,
                        }
                    }
                    match outcome {
                        Ok(res) => {
                            *local.statuses.entry(res.status).or_default() += 1;
                            if res.close {
                                conn = None;
                            }
                            let token = serde_json::from_slice::<serde_json::Value>(&res.body)
                                .ok()
                                .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned));
                            match (res.status, token) {
                                (200, Some(token)) => {
                                    if show_header && local.header.is_none() {
                                        local.header = Some(
                                            jwt_header(&token)
                                                .unwrap_or_else(|e| format!("(undecodable: {e})")),
                                        );
                                    }
                                }
                                (status, _) => {
                                    local.first_failure.get_or_insert_with(|| {
                                        let body = String::from_utf8_lossy(&res.body);
                                        let body: String = body.chars().take(300).collect();
                                        format!("status {status}: {body}")
                                    });
                                }
                            }
                        }
                        Err(e) => {
                            local.transport_errors += 1;
                            local.first_failure.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                if let Ok(mut all) = tally.lock() {
                    for (status, n) in local.statuses {
                        *all.statuses.entry(status).or_default() += n;
                    }
                    all.transport_errors += local.transport_errors;
                    all.retried_429 += local.retried_429;
                    if all.first_failure.is_none() {
                        all.first_failure = local.first_failure;
                    }
                    if all.header.is_none() {
                        all.header = local.header;
                    }
                }
            });
        }
    });

    let tally = tally
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let ok = tally.statuses.get(&200).copied().unwrap_or(0);
    let sent: u64 = tally.statuses.values().sum::<u64>() + tally.transport_errors;
    let statuses: Vec<String> = tally
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect();
    if let Some(h) = &tally.header {
        println!("JWT header: {h}");
    }
    println!(
        "WARM pairs={} ok={ok} statuses={} retried_429={} transport_errors={} seconds={elapsed:.2} rate={:.0}",
        pairs.len(),
        statuses.join(","),
        tally.retried_429,
        tally.transport_errors,
        sent as f64 / elapsed.max(1e-9)
    );
    if ok != pairs.len() as u64 {
        bail!(
            "{} of {} exchanges failed; first: {}",
            pairs.len() as u64 - ok,
            pairs.len(),
            tally.first_failure.unwrap_or_default()
        );
    }
    Ok(())
}
