//! What the warm path of the exchange needs, held in memory: key records by
//! `api_key`, and proof that a presented secret already passed argon2.
//!
//! A record is fresh for `record_ttl` after it was read, and until a flush
//! (notices may have been missed). Past that it is re-read, but kept a
//! while longer: when the database cannot be reached the exchange may
//! serve it stale (SPEC §9.4). A change notice for a key drops its record
//! outright: a record known to be wrong is never served.
//!
//! The proof is an HMAC-SHA256 of the secret under a random per-process key,
//! stored under (key id, fingerprint of the stored hash). Nothing reversible
//! is kept, and a rotation changes the stored hash, so a stale proof can
//! never vouch for a secret that no longer works.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use moka::sync::Cache;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::ApiKey;

type Fingerprint = [u8; 16];

/// A key record (`None` remembers that an `api_key` does not exist) and
/// when it was read.
#[derive(Clone)]
struct Record {
    key: Option<Arc<ApiKey>>,
    read: Instant,
    flushes: u64,
}

/// Sizes and ages of the caches.
#[derive(Clone, Copy, Debug)]
pub struct CacheLimits {
    /// Most key records (and most verified secrets) held.
    pub max_entries: u64,
    /// Safety net: a record is re-read at least this often even if no
    /// invalidation arrives.
    pub record_ttl: Duration,
    /// How long a verified secret skips argon2.
    pub verified_ttl: Duration,
    /// How long past `record_ttl` a record is kept to be served while the
    /// database cannot be reached.
    pub stale_if_error: Duration,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            record_ttl: Duration::from_secs(30),
            verified_ttl: Duration::from_secs(15 * 60),
            stale_if_error: Duration::from_secs(120),
        }
    }
}

/// The in-memory caches of the exchange.
pub struct KeyCache {
    records: Cache<String, Record>,
    record_ttl: Duration,
    stale_if_error: Duration,
    /// Bumped by [`KeyCache::invalidate_all`]: records read before it are
    /// stale.
    flushes: AtomicU64,
    verified: Cache<(Uuid, Fingerprint), [u8; 32]>,
    mac_key: hmac::Key,
    /// Bumped by every invalidation: a lookup that read the database before
    /// an invalidation must not store what it read after it.
    generation: AtomicU64,
}

fn fingerprint(stored_hash: &str) -> Fingerprint {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, stored_hash.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.as_ref()[..16]);
    out
}

impl KeyCache {
    /// Empty caches with a fresh random MAC key.
    pub fn new(limits: CacheLimits) -> Self {
        let key_bytes: [u8; 32] = super::format::random_bytes();
        Self {
            records: Cache::builder()
                .max_capacity(limits.max_entries)
                .time_to_live(limits.record_ttl + limits.stale_if_error)
                .build(),
            record_ttl: limits.record_ttl,
            stale_if_error: limits.stale_if_error,
            flushes: AtomicU64::new(0),
            verified: Cache::builder()
                .max_capacity(limits.max_entries)
                .time_to_live(limits.verified_ttl)
                .build(),
            mac_key: hmac::Key::new(hmac::HMAC_SHA256, &key_bytes),
            generation: AtomicU64::new(0),
        }
    }

    /// A fresh cached record: `Some(None)` means "known not to exist".
    pub fn record(&self, api_key: &str) -> Option<Option<Arc<ApiKey>>> {
        self.records
            .get(api_key)
            .filter(|r| {
                r.read.elapsed() < self.record_ttl
                    && r.flushes == self.flushes.load(Ordering::SeqCst)
            })
            .map(|r| r.key)
    }

    /// How long after the database was last reached a stale record may
    /// still be served.
    pub fn stale_if_error(&self) -> Duration {
        self.stale_if_error
    }

    /// A cached record however old (within `record_ttl + stale_if_error`),
    /// for when the database cannot be reached.
    pub fn stale_record(&self, api_key: &str) -> Option<Option<Arc<ApiKey>>> {
        self.records.get(api_key).map(|r| r.key)
    }

    /// The invalidation generation; take it before reading the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers a record (or its absence) read at `generation`, unless an
    /// invalidation happened since: the read may predate that change.
    pub fn put_record(&self, api_key: String, key: Option<Arc<ApiKey>>, generation: u64) {
        let record = Record {
            key,
            read: Instant::now(),
            flushes: self.flushes.load(Ordering::SeqCst),
        };
        self.records.insert(api_key.clone(), record);
        // Checked after the insert: an invalidation racing with it either
        // bumped the generation first (we undo the insert) or removes the
        // entry itself.
        if self.generation() != generation {
            self.records.invalidate(&api_key);
        }
    }

    /// Drops one record (after a change anywhere).
    pub fn invalidate(&self, api_key: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.records.invalidate(api_key);
    }

    /// Makes every record stale (when change notices may have been
    /// missed): each is re-read before it is used again, but kept to be
    /// served while the database cannot be reached.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.flushes.fetch_add(1, Ordering::SeqCst);
    }

    fn mac(&self, secret: &SecretString) -> [u8; 32] {
        let tag = hmac::sign(&self.mac_key, secret.expose_secret().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Index into `hashes` of the stored hash this secret was already
    /// verified against, if any. Constant-time comparison.
    pub fn verified_index(
        &self,
        id: Uuid,
        hashes: &[&str],
        secret: &SecretString,
    ) -> Option<usize> {
        let mac = self.mac(secret);
        hashes.iter().position(|h| {
            self.verified
                .get(&(id, fingerprint(h)))
                .is_some_and(|known| bool::from(known.ct_eq(&mac)))
        })
    }

    /// Records that `secret` matched `stored_hash` under argon2.
    pub fn mark_verified(&self, id: Uuid, stored_hash: &str, secret: &SecretString) {
        self.verified
            .insert((id, fingerprint(stored_hash)), self.mac(secret));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_secret_is_remembered_only_for_its_hash() {
        let cache = KeyCache::new(CacheLimits::default());
        let id = Uuid::new_v4();
        let secret = SecretString::from("s3cret".to_owned());
        assert_eq!(cache.verified_index(id, &["h1"], &secret), None);
        cache.mark_verified(id, "h1", &secret);
        assert_eq!(cache.verified_index(id, &["h1"], &secret), Some(0));
        assert_eq!(cache.verified_index(id, &["h2", "h1"], &secret), Some(1));
        // A rotation changes the stored hash: the proof no longer applies.
        assert_eq!(cache.verified_index(id, &["h2"], &secret), None);
        // Another secret, or another key, never matches.
        assert_eq!(
            cache.verified_index(id, &["h1"], &SecretString::from("other".to_owned())),
            None
        );
        assert_eq!(cache.verified_index(Uuid::new_v4(), &["h1"], &secret), None);
    }

    #[test]
    fn a_read_overtaken_by_an_invalidation_is_not_cached() {
        let cache = KeyCache::new(CacheLimits::default());
        let before = cache.generation();
        // A change commits and is announced while our database read runs...
        cache.invalidate("tm_live_x");
        // ...so the (possibly stale) result must not be kept.
        cache.put_record("tm_live_x".into(), None, before);
        assert!(cache.record("tm_live_x").is_none());
        let now = cache.generation();
        cache.put_record("tm_live_x".into(), None, now);
        assert!(cache.record("tm_live_x").is_some());
    }

    #[test]
    fn a_flush_makes_records_stale_but_keeps_them_for_outages() {
        let cache = KeyCache::new(CacheLimits::default());
        cache.put_record("tm_live_x".into(), None, cache.generation());
        assert!(cache.record("tm_live_x").is_some());
        cache.invalidate_all();
        assert!(cache.record("tm_live_x").is_none(), "must be re-read");
        assert!(
            cache.stale_record("tm_live_x").is_some(),
            "kept for outages"
        );
        // A notice for the key itself drops it: never served again.
        cache.invalidate("tm_live_x");
        assert!(cache.stale_record("tm_live_x").is_none());
    }

    #[test]
    fn two_processes_never_share_proofs() {
        let (a, b) = (
            KeyCache::new(CacheLimits::default()),
            KeyCache::new(CacheLimits::default()),
        );
        let secret = SecretString::from("x".to_owned());
        assert_ne!(a.mac(&secret), b.mac(&secret));
    }
}
