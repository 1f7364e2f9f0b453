//! Inserts benchmark API keys straight into a tokenmint database, through the
//! tokenmint library (so rows are exactly what the server writes).
//!
//! Fresh keys: `--count N --argon2 m,t,p`: N new keys whose secrets are hashed
//! with that argon2id cost on a few threads. Reused keys: `--from FILE` (a
//! `--hashes-out` file of an earlier run): the same pairs and hashes again,
//! with no argon2 work, so two databases can get identical cold keys without
//! paying the expensive hashes twice.
//!
//! Outputs: `--out FILE` (`api_key api_secret` a line, what the load scripts
//! read), `--hashes-out FILE` (`api_key api_secret phc`), `--wrong-out FILE`
//! (`api_key wrong_secret`: well-formed secrets with a valid checksum that are
//! not the key's, so each one costs the server a full argon2 verify).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use tokenmint::config::DatabaseUrl;
use tokenmint::db::Db;
use tokenmint::keys::format::{new_api_key, new_api_secret};
use tokenmint::keys::hash::{Argon2Params, SecretHasher};
use tokenmint::keys::{ApiKey, Environment};
use tokenmint_bench::{Argon2Cost, Flags, bench_key, insert_keys, read_columns};

const USAGE: &str = "\
seed --database-url URL (--count N --argon2 m,t,p | --from HASHES_FILE) --out FILE
     [--hashes-out FILE] [--wrong-out FILE] [--threads N] [--batch N]
     [--scopes \"read write\"] [--prefix tm]";

/// One key ready to insert, with the secret the load scripts will send.
struct Seeded {
    key: ApiKey,
    secret: SecretString,
}

fn api_key(scopes: &[String], api_key: String, secret_hash: String, n: usize) -> ApiKey {
    bench_key(format!("bench-{n}"), api_key, scopes, secret_hash)
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(path).with_context(|| {
        format!("cannot create {}", path.display())
    })?))
}

struct Outputs {
    pairs: BufWriter<File>,
    hashes: Option<BufWriter<File>>,
    wrong: Option<BufWriter<File>>,
}

impl Outputs {
    fn write(&mut self, s: &Seeded, prefix: &str) -> anyhow::Result<()> {
        let secret = s.secret.expose_secret();
        writeln!(self.pairs, "{} {secret}", s.key.api_key)?;
        if let Some(h) = &mut self.hashes {
            writeln!(h, "{} {secret} {}", s.key.api_key, s.key.secret_hash)?;
        }
        if let Some(w) = &mut self.wrong {
            let wrong = new_api_secret(prefix, Environment::Live);
            writeln!(w, "{} {}", s.key.api_key, wrong.expose_secret())?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.pairs.flush()?;
        if let Some(h) = &mut self.hashes {
            h.flush()?;
        }
        if let Some(w) = &mut self.wrong {
            w.flush()?;
        }
        Ok(())
    }
}

/// Inserts `batch` in one write transaction.
fn insert_batch(db: &Db, batch: &[Seeded]) -> anyhow::Result<()> {
    insert_keys(db, batch.iter().map(|s| &s.key))
}

fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(
        &[
            "database-url",
            "count",
            "argon2",
            "from",
            "out",
            "hashes-out",
            "wrong-out",
            "threads",
            "batch",
            "scopes",
            "prefix",
        ],
        &[],
        USAGE,
    )?;
    let url = DatabaseUrl::parse(flags.required("database-url")?)
        .map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
    let out = PathBuf::from(flags.required("out")?);
    let threads: usize = flags.parsed_or(
        "threads",
        std::thread::available_parallelism().map_or(2, usize::from),
    )?;
    let batch_size: usize = flags.parsed_or("batch", 1000)?;
    let prefix = flags.get("prefix").unwrap_or("tm").to_owned();
    let scopes: Vec<String> = flags
        .get("scopes")
        .unwrap_or("read write")
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let db = Db::connect(&url)?;
    db.migrate()?;

    let mut outputs = Outputs {
        pairs: create(&out)?,
        hashes: flags
            .get("hashes-out")
            .map(Path::new)
            .map(create)
            .transpose()?,
        wrong: flags
            .get("wrong-out")
            .map(Path::new)
            .map(create)
            .transpose()?,
    };
    let started = Instant::now();

    // Producers (hashing threads, or the reader of a hashes file) feed one
    // inserter, which writes batches in transactions on this thread.
    let (tx, rx) = mpsc::sync_channel::<anyhow::Result<Seeded>>(batch_size * 2);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Owned here, so an early return drops it and unblocks the producers
        // before the scope joins them.
        let rx = rx;
        let total;
        let what;
        if let Some(from) = flags.get("from") {
            let rows = read_columns(Path::new(from), 3)?;
            total = rows.len();
            what = format!("reused from {from}");
            let scopes = scopes.clone();
            scope.spawn(move || {
                for (n, row) in rows.into_iter().enumerate() {
                    let [k, s, h]: [String; 3] = match row.try_into() {
                        Ok(a) => a,
                        Err(_) => return,
                    };
                    let seeded = Seeded {
                        key: api_key(&scopes, k, h, n),
                        secret: SecretString::from(s),
                    };
                    if tx.send(Ok(seeded)).is_err() {
                        return;
                    }
                }
            });
        } else {
            total = flags.parsed_or("count", 0usize)?;
            if total == 0 {
                anyhow::bail!("--count N (N > 0) or --from FILE is required\n{USAGE}");
            }
            let cost: Argon2Cost = flags
                .required("argon2")?
                .parse()
                .map_err(|e| anyhow::anyhow!("--argon2: {e}"))?;
            what = format!("argon2id {cost}");
            let hasher = SecretHasher::new(Argon2Params {
                m_kib: cost.m_kib,
                t: cost.t,
                p: cost.p,
            })
            .map_err(|e| anyhow::anyhow!("--argon2: {e}"))?;
            let workers = threads.clamp(1, 64);
            for w in 0..workers {
                let (tx, hasher, prefix, scopes) =
                    (tx.clone(), hasher.clone(), prefix.clone(), scopes.clone());
                scope.spawn(move || {
                    for n in (w..total).step_by(workers) {
                        let secret = new_api_secret(&prefix, Environment::Live);
                        let seeded = hasher
                            .hash(&secret)
                            .map(|hash| Seeded {
                                key: api_key(
                                    &scopes,
                                    new_api_key(&prefix, Environment::Live),
                                    hash,
                                    n,
                                ),
                                secret,
                            })
                            .map_err(|e| anyhow::anyhow!("hashing: {e}"));
                        if tx.send(seeded).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
        }
        let mut inserted = 0usize;
        let mut batch = Vec::with_capacity(batch_size);
        let mut last_report = Instant::now();
        for seeded in rx.iter() {
            let seeded = seeded?;
            outputs.write(&seeded, &prefix)?;
            batch.push(seeded);
            if batch.len() >= batch_size {
                insert_batch(&db, &batch)?;
                inserted += batch.len();
                batch.clear();
                if last_report.elapsed().as_secs() >= 5 {
                    eprintln!("seed: {inserted}/{total} keys inserted");
                    last_report = Instant::now();
                }
            }
        }
        if !batch.is_empty() {
            insert_batch(&db, &batch)?;
            inserted += batch.len();
        }
        if inserted != total {
            anyhow::bail!("only {inserted} of {total} keys were produced");
        }
        eprintln!(
            "seed: {inserted} keys ({what}) in {:.1} s -> {}",
            started.elapsed().as_secs_f64(),
            out.display()
        );
        Ok(())
    })?;
    outputs.finish()
}
