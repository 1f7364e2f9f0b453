//! The keys folder: one PKCS#8 PEM file per key, named `{kid}.pem`, written
//! once with mode 0600 and never overwritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair,
};

use super::{SigningAlg, SigningError, SigningKey};

/// Generates a new private key as PKCS#8 DER.
pub fn generate_pkcs8(alg: SigningAlg) -> Result<Vec<u8>, SigningError> {
    let fail = || SigningError::BadKey {
        path: "(generated)".into(),
        why: "key generation failed".into(),
    };
    Ok(match alg {
        SigningAlg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| fail())?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDsa => Ed25519KeyPair::generate()
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| fail())?
            .as_ref()
            .to_vec(),
        SigningAlg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .and_then(|k| k.as_der())
            .map_err(|_| fail())?
            .as_ref()
            .to_vec(),
    })
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> SigningError {
    SigningError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// Writes a new key into `dir` (mode 0600, never overwriting) and returns it.
/// The file appears complete or not at all: it is written under a name the
/// folder's readers skip, then linked to `{kid}.pem`.
pub fn generate_into(dir: &Path, alg: SigningAlg) -> Result<SigningKey, SigningError> {
    crate::files::create_private_dir(dir).map_err(|e| io_err(dir, e))?;
    let der = generate_pkcs8(alg)?;
    let probe = SigningKey::from_pkcs8(&der, PathBuf::new(), SystemTime::now())?;
    let path = dir.join(format!("{}.pem", probe.kid));
    let partial = dir.join(format!(".{}.pem.partial", probe.kid));
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.clone()));
    let written = write_private(&partial, pem.as_bytes())
        .and_then(|_| fs::hard_link(&partial, &path))
        .map_err(|e| io_err(&path, e));
    let _ = fs::remove_file(&partial);
    written?;
    let created = fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    SigningKey::from_pkcs8(&der, path, created)
}

/// Creates `path` with mode 0600 (never overwriting) holding `bytes`, synced.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path)?;
    file.write_all(bytes).and_then(|_| file.sync_all())
}

/// The folder's keys, or a first key generated into an empty folder.
/// Replicas starting together on one empty shared folder take turns on a
/// lock file and look again before generating, so they end up with one key.
/// A folder that already holds a key is only read: it may be read-only.
pub fn load_or_generate(dir: &Path, alg: SigningAlg) -> Result<Vec<SigningKey>, SigningError> {
    let keys = load_dir(dir)?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    crate::files::create_private_dir(dir).map_err(|e| io_err(dir, e))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| io_err(&lock_path, e))?;
    lock.lock().map_err(|e| io_err(&lock_path, e))?;
    let keys = load_dir(dir)?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    let key = generate_into(dir, alg)?;
    tracing::info!(kid = %key.kid, alg = key.alg.as_str(), path = %key.path.display(), "generated a signing key");
    // The lock is released when `lock` is dropped, after the key is in place.
    Ok(vec![key])
}

/// The lock file replicas take before generating a first key.
const LOCK_FILE: &str = ".generate.lock";

/// What a revoked key's file is renamed to: `{name}.revoked`.
pub const REVOKED_SUFFIX: &str = "revoked";

/// What identifies the folder's key files as they are now: names, sizes and
/// modification times. A change means the folder must be read again.
pub type Listing = Vec<(std::ffi::OsString, u64, SystemTime)>;

/// The folder's listing (see [`Listing`]); symbolic links are followed, so a
/// Kubernetes secret mount swapping its `..data` link shows as a change.
pub fn listing(dir: &Path) -> Result<Listing, SigningError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_err(dir, e))?.path();
        if !is_key_file(&path) {
            continue;
        }
        let meta = fs::metadata(&path).map_err(|e| io_err(&path, e))?;
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        out.push((
            path.file_name().unwrap_or_default().to_owned(),
            meta.len(),
            mtime,
        ));
    }
    out.sort();
    Ok(out)
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some(ext)
}

/// A `.pem` file or a revoked one, not a hidden partial write.
fn is_key_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden && (has_extension(path, "pem") || has_extension(path, REVOKED_SUFFIX))
}

/// Every key in the folder, newest first.
pub fn load_dir(dir: &Path) -> Result<Vec<SigningKey>, SigningError> {
    load_matching(dir, |p| has_extension(p, "pem"))
}

/// Every revoked key in the folder (`*.pem.revoked`), newest first.
pub fn load_revoked(dir: &Path) -> Result<Vec<SigningKey>, SigningError> {
    load_matching(dir, |p| {
        has_extension(p, REVOKED_SUFFIX) && has_extension(&p.with_extension(""), "pem")
    })
}

fn load_matching(
    dir: &Path,
    wanted: impl Fn(&Path) -> bool,
) -> Result<Vec<SigningKey>, SigningError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    // The newest file signs: a folder or file others can write to would let
    // any local user plant the signer.
    if let Some(why) = crate::files::writable_by_others(dir).map_err(|e| io_err(dir, e))? {
        return Err(io_err(dir, why));
    }
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_err(dir, e))?.path();
        if is_key_file(&path) && wanted(&path) {
            keys.push(read_key(path)?);
        }
    }
    keys.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.path.cmp(&a.path)));
    keys.dedup_by(|a, b| a.kid == b.kid);
    Ok(keys)
}

/// Reads and parses one key file.
fn read_key(path: PathBuf) -> Result<SigningKey, SigningError> {
    // Symbolic links (a Kubernetes secret mount is made of them) are
    // followed; the file they point at must be safe.
    if let Some(why) = crate::files::writable_by_others(&path).map_err(|e| io_err(&path, e))? {
        return Err(SigningError::BadKey {
            path: path.display().to_string(),
            why,
        });
    }
    let meta = fs::metadata(&path).map_err(|e| io_err(&path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "signing key is readable by group or others; chmod 600 it");
        }
    }
    let text = fs::read(&path).map_err(|e| io_err(&path, e))?;
    let parsed = pem::parse(&text).map_err(|e| SigningError::BadKey {
        path: path.display().to_string(),
        why: format!("not PEM: {e}"),
    })?;
    if parsed.tag() != "PRIVATE KEY" {
        return Err(SigningError::BadKey {
            path: path.display().to_string(),
            why: format!(
                "expected a PKCS#8 \"PRIVATE KEY\" block, got {:?}",
                parsed.tag()
            ),
        });
    }
    let created = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    SigningKey::from_pkcs8(parsed.contents(), path, created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_the_folder() {
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256] {
            let dir = tempfile::tempdir().unwrap();
            let made = generate_into(dir.path(), alg).unwrap();
            let loaded = load_dir(dir.path()).unwrap();
            assert_eq!(loaded.len(), 1);
            assert_eq!(loaded[0].kid, made.kid);
            assert_eq!(loaded[0].alg, alg);
            assert_eq!(
                made.path.file_name().unwrap().to_str().unwrap(),
                format!("{}.pem", made.kid)
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    fs::metadata(&made.path).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
        }
    }

    #[test]
    fn a_non_pkcs8_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("junk.pem"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("junk.pem"), "{err}");
    }

    #[test]
    fn replicas_starting_together_on_an_empty_folder_make_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("keys");
        let kids: Vec<String> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..4)
                .map(|_| s.spawn(|| load_or_generate(&folder, SigningAlg::Es256).unwrap()))
                .collect();
            starts
                .into_iter()
                .map(|h| h.join().unwrap()[0].kid.clone())
                .collect()
        });
        assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
        assert_eq!(load_dir(&folder).unwrap().len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_with_a_key_is_only_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let made = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        let names = |p: &Path| {
            let mut n: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            n.sort();
            n
        };
        let before = names(dir.path());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
        let loaded = load_or_generate(dir.path(), SigningAlg::Es256);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(loaded.unwrap()[0].kid, made.kid);
        assert_eq!(names(dir.path()), before, "no lock file, no writes");
    }

    #[test]
    fn revoked_and_partial_files_are_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        let b = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        fs::rename(&a.path, dir.path().join(format!("{}.pem.revoked", a.kid))).unwrap();
        fs::write(dir.path().join(".x.pem.partial"), "-----BEGIN").unwrap();
        let kids = |keys: Vec<SigningKey>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
        assert_eq!(kids(load_dir(dir.path()).unwrap()), [b.kid]);
        assert_eq!(kids(load_revoked(dir.path()).unwrap()), [a.kid]);
        assert_eq!(listing(dir.path()).unwrap().len(), 2);
    }
}
