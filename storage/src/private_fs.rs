//! Owner-only files and directories. Everything Portcullis keeps on disk is
//! secret or leads to a secret (password hashes, sessions, signing keys,
//! mailed tokens), so every directory it creates is 0700 and every file
//! 0600, whatever the process umask. The binary also sets its umask to 077,
//! which covers the files libraries create on their own (fjall's).

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory Portcullis creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Portcullis creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents as 0700, and restricts an existing
/// `dir` that others may enter (made by an older version, or by hand) to
/// 0700. A directory owned by another user (the root of a mounted volume)
/// cannot be restricted, and a shared one (sticky bit: `/tmp`) must not be:
/// both are logged, not errors, because what Portcullis creates inside is
/// private anyway.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    if mode & 0o1000 != 0 {
        tracing::warn!(
            path = %dir.display(),
            mode = format!("{mode:o}"),
            "directory is shared (sticky bit): not restricting it; give Portcullis a directory of its own"
        );
        return Ok(());
    }
    match fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)) {
        Ok(()) => {
            tracing::info!(path = %dir.display(), was = format!("{mode:o}"), "restricted directory to 0700");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{mode:o}"),
                "directory is open to other users and owned by another user; restrict it to 0700"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Opens `path` for writing, created or truncated, as a 0600 file (an
/// existing file, a leftover temporary one, is restricted too).
pub fn create_file(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn directories_are_created_and_restricted_to_the_owner() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a").join("b");
        ensure_dir(&deep).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700, "parents too");
        assert_eq!(mode(&deep), 0o700);
        // Made open by an older version: restricted.
        fs::set_permissions(&deep, Permissions::from_mode(0o755)).unwrap();
        ensure_dir(&deep).unwrap();
        assert_eq!(mode(&deep), 0o700);
        // A shared directory (like /tmp) is left as it is.
        let shared = root.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, Permissions::from_mode(0o1777)).unwrap();
        ensure_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o1777);
    }

    #[test]
    fn files_are_owner_only_even_when_they_existed() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("f");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        use std::io::Write as _;
        create_file(&path).unwrap().write_all(b"new").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let fresh = root.path().join("g");
        create_file(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }
}
