//! Verified secrets shared by the replicas (SPEC §9.2): once any replica
//! has run argon2 on a key's secret, the others skip it until the proof
//! expires, so a key costs one argon2 verify per lifetime for the cluster.
//!
//! A proof in Redis is `HMAC-SHA256(cluster key, key id ‖ stored hash ‖
//! secret)` under `proof:{key id}:{fingerprint of the stored hash}`. The
//! cluster key is derived from `cluster.key` in the keys folder, which is
//! in neither Redis nor the database: a Redis dump holds MACs nobody can
//! test a guessed secret against without that file (docs/SECURITY.md). A
//! rotation changes the stored hash, so an old proof never vouches for a
//! secret that no longer works.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::Redis;

/// The file in the keys folder the cluster key is derived from.
pub const CLUSTER_KEY_FILE: &str = "cluster.key";
/// Fewest bytes of key material the file must hold.
const MIN_KEY_BYTES: usize = 32;

/// Proofs of verified secrets, kept in Redis for `ttl`.
pub struct SharedProofs {
    redis: Arc<Redis>,
    key: hmac::Key,
    ttl: Duration,
}

impl SharedProofs {
    /// Proofs under the key derived from `material` (the cluster key file).
    pub fn new(redis: Arc<Redis>, material: &[u8], ttl: Duration) -> Self {
        let mut input = b"tokenmint cluster proofs v1\n".to_vec();
        input.extend_from_slice(material);
        let derived = digest::digest(&digest::SHA256, &input);
        Self {
            redis,
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            ttl,
        }
    }

    fn name(id: Uuid, stored_hash: &str) -> String {
        let fp = digest::digest(&digest::SHA256, stored_hash.as_bytes());
        format!("proof:{id}:{}", B64.encode(&fp.as_ref()[..16]))
    }

    fn mac(&self, id: Uuid, stored_hash: &str, secret: &SecretString) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(id.as_bytes());
        ctx.update(stored_hash.as_bytes());
        ctx.update(b"\0");
        ctx.update(secret.expose_secret().as_bytes());
        ctx.sign()
    }

    /// Index into `hashes` of the stored hash some replica verified this
    /// secret against, if any (constant-time comparison). Redis being
    /// unreachable reads as "not verified": argon2 decides, as without it.
    pub async fn verified_index(
        &self,
        id: Uuid,
        hashes: &[&str],
        secret: &SecretString,
    ) -> Option<usize> {
        for (i, hash) in hashes.iter().enumerate() {
            let Some(Some(known)) = self.redis.get(&Self::name(id, hash)).await else {
                continue;
            };
            let mac = self.mac(id, hash, secret);
            if bool::from(known.as_slice().ct_eq(mac.as_ref())) {
                return Some(i);
            }
        }
        None
    }

    /// Records for the cluster that `secret` matched `stored_hash`.
    pub async fn mark(&self, id: Uuid, stored_hash: &str, secret: &SecretString) {
        let mac = self.mac(id, stored_hash, secret);
        self.redis
            .set(&Self::name(id, stored_hash), mac.as_ref(), self.ttl)
            .await;
    }
}

/// The cluster key material from `dir/cluster.key`, created (random, mode
/// 0600) when missing and the folder is writable. Replicas starting
/// together agree: the file appears whole or not at all (a hard link of a
/// finished temporary file), and a loser reads the winner's. `None` when
/// the folder is read-only and holds no such file: proofs stay per replica.
pub fn load_or_create_key(dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let path = dir.join(CLUSTER_KEY_FILE);
    match read_key(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other.map(Some),
    }
    crate::files::create_private_dir(dir)?;
    let random: [u8; 32] = crate::keys::format::random_bytes();
    let tmp = dir.join(format!(
        ".{CLUSTER_KEY_FILE}.{}.tmp",
        B64.encode(crate::keys::format::random_bytes::<9>())
    ));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(format!("{}\n", B64.encode(random)).as_bytes())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&tmp, &path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    read_key(&path).map(Some)
}

fn read_key(path: &Path) -> io::Result<Vec<u8>> {
    if let Some(why) = crate::files::writable_by_others(path)? {
        return Err(io::Error::other(format!("{}: {why}", path.display())));
    }
    let text = fs::read(path)?;
    let material = text.trim_ascii().to_vec();
    if material.len() < MIN_KEY_BYTES {
        return Err(io::Error::other(format!(
            "{} holds {} bytes; at least {MIN_KEY_BYTES} random bytes are needed",
            path.display(),
            material.len()
        )));
    }
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_starting_together_share_one_cluster_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| s.spawn(|| load_or_create_key(dir.path()).unwrap().unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0]), "one key for all");
        assert!(keys[0].len() >= MIN_KEY_BYTES);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [CLUSTER_KEY_FILE], "no temporary files left");
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_folder_without_a_key_shares_no_proofs() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
        // root ignores the mode: the test means nothing there.
        if fs::write(dir.path().join("probe"), b"x").is_ok() {
            eprintln!("SKIPPED: running as root, folder modes are not enforced");
            return;
        }
        assert_eq!(load_or_create_key(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_short_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CLUSTER_KEY_FILE), "short\n").unwrap();
        let err = load_or_create_key(dir.path()).unwrap_err().to_string();
        assert!(err.contains("at least 32"), "{err}");
    }

    #[test]
    fn a_proof_is_bound_to_the_cluster_key_the_hash_and_the_secret() {
        let redis = Arc::new(Redis::new("redis://127.0.0.1:1", "x:").unwrap());
        let a = SharedProofs::new(redis.clone(), &[1; 32], Duration::from_secs(60));
        let b = SharedProofs::new(redis, &[2; 32], Duration::from_secs(60));
        let id = Uuid::new_v4();
        let secret = SecretString::from("s".to_owned());
        let tag = |p: &SharedProofs, h: &str, s: &SecretString| p.mac(id, h, s).as_ref().to_vec();
        assert_ne!(tag(&a, "h1", &secret), tag(&b, "h1", &secret));
        assert_ne!(tag(&a, "h1", &secret), tag(&a, "h2", &secret));
        assert_ne!(
            tag(&a, "h1", &secret),
            tag(&a, "h1", &SecretString::from("t".to_owned()))
        );
        assert_eq!(tag(&a, "h1", &secret), tag(&a, "h1", &secret));
    }
}
