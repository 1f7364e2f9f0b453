//! Folders that hold secrets (the signing keys, the SQLite database): made
//! private to the server's user, and checked for what others could plant.

use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700 (whatever the umask
/// allows beyond it). An existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Why a path is unsafe to trust, if it is: writable by group or others
/// means another local user could replace what we read from it. Symbolic
/// links are followed: what counts is the file they point at.
pub fn writable_by_others(path: &Path) -> io::Result<Option<String>> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Ok(Some(format!(
                "is writable by group or others (mode {mode:o}); run chmod go-w on it"
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn private_dirs_ignore_a_permissive_umask() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        // SAFETY: umask is process-wide; this test restores it at once.
        let old = unsafe { libc::umask(0) };
        let made = create_private_dir(&dir);
        unsafe { libc::umask(old) };
        made.unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(writable_by_others(&dir).unwrap().is_none());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(writable_by_others(&dir).unwrap().is_some());
    }
}
