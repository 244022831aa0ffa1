//! Signing keys as owner-only files: `<data dir>/keys/<kid>.key`, mode 0600,
//! in a 0700 directory. Written to a temporary file, fsynced, renamed, and the
//! directory fsynced, so a crash leaves either the old key or the new one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::codec;
use crate::model::SigningKeyRecord;
use crate::{StoreError, StoreResult};

const KEY_SUFFIX: &str = ".key";

fn io(context: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |e| StoreError::Io(std::io::Error::new(e.kind(), format!("{context}: {e}")))
}

pub(crate) fn ensure_dir(dir: &Path) -> StoreResult<()> {
    crate::private_fs::ensure_dir(dir).map_err(io(format!("cannot create {}", dir.display())))
}

fn valid_kid(kid: &str) -> StoreResult<()> {
    if kid.is_empty()
        || kid.len() > 128
        || !kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(StoreError::Backend(format!(
            "signing key id {kid:?} is not a base64url string"
        )));
    }
    Ok(())
}

pub(crate) fn save(dir: &Path, key: &SigningKeyRecord) -> StoreResult<()> {
    valid_kid(&key.kid)?;
    let path = dir.join(format!("{}{KEY_SUFFIX}", key.kid));
    let tmp = dir.join(format!(".{}.tmp", key.kid));
    write_private(&tmp, &codec::encode_key(key))?;
    fs::rename(&tmp, &path).map_err(io(format!("cannot rename to {}", path.display())))?;
    sync_dir(dir)
}

pub(crate) fn delete(dir: &Path, kid: &str) -> StoreResult<()> {
    valid_kid(kid)?;
    let path = dir.join(format!("{kid}{KEY_SUFFIX}"));
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("cannot delete {}", path.display()))(e)),
    }
}

pub(crate) fn load_all(dir: &Path) -> StoreResult<Vec<SigningKeyRecord>> {
    let mut keys = Vec::new();
    let entries = fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("cannot read {}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(KEY_SUFFIX) || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(io(format!("cannot stat {}", path.display())))?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "signing key file was readable by others; restricting it to 0600");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(io(format!("cannot restrict {}", path.display())))?;
        }
        let bytes = fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
        keys.push(codec::decode_key(&bytes)?);
    }
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    Ok(keys)
}

/// A 32-byte server secret in `<dir>/<name>.secret` (0600): created from
/// `candidate` if absent (atomically: the first writer wins), else read.
pub(crate) fn secret(dir: &Path, name: &str, candidate: [u8; 32]) -> StoreResult<[u8; 32]> {
    valid_kid(name)?;
    let path = dir.join(format!("{name}.secret"));
    let read = |path: &Path| -> StoreResult<[u8; 32]> {
        let bytes = fs::read(path).map_err(io(format!("cannot read {}", path.display())))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| StoreError::Corrupt(format!("{} is not a 32-byte secret", path.display())))
    };
    if path.exists() {
        return read(&path);
    }
    // A name of its own per caller: concurrent first calls must not share it.
    let tag: String = candidate[..6].iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{name}.secret.{tag}.tmp"));
    write_private(&tmp, &candidate)?;
    // hard_link fails if the target exists: the first writer wins.
    match fs::hard_link(&tmp, &path) {
        Ok(()) => {
            let _ = fs::remove_file(&tmp);
            sync_dir(dir)?;
            Ok(candidate)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(&tmp);
            read(&path)
        }
        Err(e) => Err(io(format!("cannot create {}", path.display()))(e)),
    }
}

/// Writes `bytes` to a new owner-only (0600) file and fsyncs it.
fn write_private(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let mut f = crate::private_fs::create_file(path)
        .map_err(io(format!("cannot write {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("cannot write {}", path.display())))
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync {}", dir.display())))
}
