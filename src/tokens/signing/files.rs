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
pub fn generate_into(dir: &Path, alg: SigningAlg) -> Result<SigningKey, SigningError> {
    crate::files::create_private_dir(dir).map_err(|e| io_err(dir, e))?;
    let der = generate_pkcs8(alg)?;
    let probe = SigningKey::from_pkcs8(&der, PathBuf::new(), SystemTime::now())?;
    let path = dir.join(format!("{}.pem", probe.kid));
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.clone()));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&path).map_err(|e| io_err(&path, e))?;
    file.write_all(pem.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| io_err(&path, e))?;
    let created = file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    SigningKey::from_pkcs8(&der, path, created)
}

/// Every key in the folder, newest first.
pub fn load_dir(dir: &Path) -> Result<Vec<SigningKey>, SigningError> {
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
        if path.extension().and_then(|e| e.to_str()) != Some("pem") {
            continue;
        }
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
        keys.push(SigningKey::from_pkcs8(parsed.contents(), path, created)?);
    }
    keys.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.path.cmp(&a.path)));
    keys.dedup_by(|a, b| a.kid == b.kid);
    Ok(keys)
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
}
