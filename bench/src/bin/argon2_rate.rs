//! Raw argon2id verifies per second on this machine: one thread per core,
//! each verifying a correct secret against a PHC hash of the given cost in a
//! loop, for a few seconds. This is the most any server can do for requests
//! that each need one argon2 verify (tokenmint's cold exchange), so the
//! harness reports cold exchanges/s as a fraction of it.
//!
//! The verify is exactly tokenmint's: parse the PHC string, then
//! `Argon2::default().verify_password` with the cost recorded in it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokenmint_bench::{Argon2Cost, Flags};

const USAGE: &str =
    "argon2_rate [--argon2 19456,2,1] [--seconds 5] [--threads N (default: all cores)]";

fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&["argon2", "seconds", "threads"], &[], USAGE)?;
    let cost: Argon2Cost = flags
        .get("argon2")
        .unwrap_or("19456,2,1")
        .parse()
        .map_err(|e| anyhow::anyhow!("--argon2: {e}"))?;
    let seconds: f64 = flags.parsed_or("seconds", 5.0)?;
    let threads: usize = flags.parsed_or(
        "threads",
        std::thread::available_parallelism().map_or(2, usize::from),
    )?;
    if !(seconds > 0.0 && seconds <= 600.0) || threads == 0 || threads > 256 {
        anyhow::bail!("--seconds must be in (0, 600] and --threads in [1, 256]");
    }

    let params = Params::new(cost.m_kib, cost.t, cost.p, None)
        .map_err(|e| anyhow::anyhow!("--argon2: {e}"))?;
    let secret = b"tms_live_benchmark-secret-of-a-realistic-length-0123456789";
    let salt = SaltString::generate(&mut OsRng);
    let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(secret, &salt)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string();

    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut mine = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let ok = PasswordHash::new(&phc)
                        .map(|parsed| Argon2::default().verify_password(secret, &parsed).is_ok())
                        .unwrap_or(false);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    mine += 1;
                }
                done.fetch_add(mine, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    // Count until the last verify finished, so the rate is not inflated by
    // the work that ran past the stop flag.
    let elapsed = started.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    if failures.load(Ordering::Relaxed) > 0 {
        anyhow::bail!("a verify of the correct secret failed");
    }
    let rate = total as f64 / elapsed;
    println!(
        "ARGON2 verifies_per_s={rate:.1} verifies={total} seconds={elapsed:.2} threads={threads} m_kib={} t={} p={} ms_per_verify_per_thread={:.2}",
        cost.m_kib,
        cost.t,
        cost.p,
        1000.0 * elapsed * threads as f64 / total.max(1) as f64
    );
    Ok(())
}
