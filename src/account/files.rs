//! The account's files in the data path: one lock file that serialises every change to
//! them (across threads and processes), files that appear only complete, and reads that
//! cannot block or exhaust memory.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::config::create_private_dir;
use crate::error::{Error, Result};

/// Lock file inside the data path. Held while the identity is created and while the
/// key cache is re-read and rewritten.
pub const LOCK_FILE: &str = "charm_kv_account.lock";

/// An exclusive lock on the data path's account files; released on drop.
pub(crate) struct AccountLock {
    _file: fs::File,
}

impl AccountLock {
    /// Waits for the lock of `data_path` (creating the directory and lock file).
    /// `flock`-style: threads of one process exclude each other too, because each
    /// holder opens its own file description.
    pub(crate) fn acquire(data_path: &Path) -> Result<AccountLock> {
        create_private_dir(data_path)?;
        let path = data_path.join(LOCK_FILE);
        let file = crate::config::open_lock_file(&path)?;
        file.lock()
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(AccountLock { _file: file })
    }
}

/// Reads a file that must be a regular file of at most `limit` bytes. A FIFO, device
/// or directory at `path` is refused before it is opened (opening a FIFO would block,
/// reading `/dev/zero` would never end). `Ok(None)` when nothing is there.
pub(crate) fn read_regular(path: &Path, limit: u64, what: &str) -> Result<Option<Vec<u8>>> {
    let metadata = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {what} {}", path.display()), e)),
    };
    check_regular(&metadata, path, limit, what)?;
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {what} {}", path.display()), e)),
    };
    // The path may have been swapped since the check; the open file is what counts.
    let metadata = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {what} {}", path.display()), e))?;
    check_regular(&metadata, path, limit, what)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {what} {}", path.display()), e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit, what));
    }
    Ok(Some(bytes))
}

fn check_regular(metadata: &fs::Metadata, path: &Path, limit: u64, what: &str) -> Result<()> {
    if !metadata.is_file() {
        return Err(Error::invalid(format!(
            "{what} {} is not a regular file",
            path.display()
        )));
    }
    if metadata.len() > limit {
        return Err(too_large(path, limit, what));
    }
    Ok(())
}

fn too_large(path: &Path, limit: u64, what: &str) -> Error {
    Error::invalid(format!(
        "{what} {} is larger than {limit} bytes",
        path.display()
    ))
}

/// Creates `path` with `contents` (mode 0600) unless something already exists there:
/// the bytes go to a temporary file, are synced, and only then linked to `path`, so no
/// reader sees half a file and nothing is overwritten. `Ok(false)` if `path` existed.
pub(crate) fn create_complete(path: &Path, contents: &[u8]) -> Result<bool> {
    let tmp = write_temp(path, contents)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_parent(path)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(format!("creating {}", path.display()), e)),
    }
}

/// Replaces `path` with `contents` (mode 0600) via a synced temporary file and a
/// rename: a crash leaves the old or the new file, never half of one. Callers hold
/// the [`AccountLock`] and have re-read the old contents.
pub(crate) fn replace_complete(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = write_temp(path, contents)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    sync_parent(path)
}

/// A new, synced 0600 file beside `path` holding `contents`.
fn write_temp(path: &Path, contents: &[u8]) -> Result<PathBuf> {
    let dir = path.parent().expect("account files live in the data path");
    create_private_dir(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}-{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    private_mode(&mut options);
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(format!("writing {}", tmp.display()), e));
    }
    Ok(tmp)
}

/// A new directory entry is durable once its directory is synced.
fn sync_parent(path: &Path) -> Result<()> {
    let dir = path.parent().expect("account files live in the data path");
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}

fn private_mode(options: &mut fs::OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = options;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_complete_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(create_complete(&path, b"first").unwrap());
        assert!(!create_complete(&path, b"second").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temporary files left behind");
    }

    #[test]
    fn read_regular_refuses_special_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_regular(&dir.path().join("none"), 10, "key")
            .unwrap()
            .is_none());
        let err = read_regular(dir.path(), 10, "key").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let big = dir.path().join("big");
        fs::write(&big, [0u8; 11]).unwrap();
        let err = read_regular(&big, 10, "key").unwrap_err();
        assert!(err.to_string().contains("larger than 10 bytes"), "{err}");
        #[cfg(unix)]
        {
            let err = read_regular(Path::new("/dev/zero"), 10, "key").unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }
}
