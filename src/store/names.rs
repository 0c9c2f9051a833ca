//! Database names and where their files live.
//!
//! A database `N` is the file `<data path>/charm-kv/N.sqlite` (plus SQLite's
//! `-wal`/`-shm`). Earlier versions kept it in `<data path>/kv/`, where the Go client
//! keeps its Badger *directories* `kv/N` — and which the Go client's `charm link` and
//! `charm sync-keys` delete whole; `store::relocate` moves such files out. The Go
//! client's directories are never touched.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File name suffix of a charm-kv database.
pub const DB_SUFFIX: &str = ".sqlite";
/// Longest accepted database name, in bytes (file names are limited to 255).
pub const MAX_NAME_LEN: usize = 200;

/// Checks that `name` can only ever name one file inside the `kv` folder.
pub fn validate(name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("is longer than 200 bytes")
    } else if name == "." || name == ".." {
        Some("is a relative directory name")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match problem {
        Some(why) => Err(Error::invalid(format!(
            "database name {} {why}",
            crate::error::quoted(name)
        ))),
        None => Ok(()),
    }
}

/// The folder of charm-kv's databases in a data path.
pub fn db_dir(data_path: &Path) -> PathBuf {
    data_path.join("charm-kv")
}

/// The Go client's `kv` folder, where earlier charm-kv versions kept databases too.
pub fn legacy_db_dir(data_path: &Path) -> PathBuf {
    data_path.join("kv")
}

/// The database file for `name` (validated).
pub fn db_path(data_path: &Path, name: &str) -> Result<PathBuf> {
    validate(name)?;
    Ok(db_dir(data_path).join(format!("{name}{DB_SUFFIX}")))
}

/// Where an earlier charm-kv kept the database file for `name` (validated).
pub fn legacy_db_path(data_path: &Path, name: &str) -> Result<PathBuf> {
    validate(name)?;
    Ok(legacy_db_dir(data_path).join(format!("{name}{DB_SUFFIX}")))
}

/// The database name a file in the `kv` folder holds, if it is one of ours.
pub fn name_of(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(DB_SUFFIX)
        .filter(|name| validate(name).is_ok())
}

/// Suffix of the lock file that serialises sync runs on one database.
pub const SYNC_LOCK_SUFFIX: &str = ".sync-lock";

/// Suffix of the lock file every open handle holds shared (`store::open_lock`). Not one
/// of [`db_files`]: it outlives the database.
pub const OPEN_LOCK_SUFFIX: &str = ".open-lock";

/// The open-lock file of the database file `db`.
pub fn open_lock_path(db: &Path) -> PathBuf {
    suffixed(db, OPEN_LOCK_SUFFIX)
}

/// The purposes of sync's temporary files; part of their names.
pub const SYNC_TEMP_PURPOSES: [&str; 3] = ["download", "upload", "legacy"];

/// Every file that belongs to the database file `db`: itself, SQLite's companions and
/// the sync lock file.
pub fn db_files(db: &Path) -> [PathBuf; 5] {
    ["", "-wal", "-shm", "-journal", SYNC_LOCK_SUFFIX].map(|suffix| suffixed(db, suffix))
}

/// The sync lock file of the database file `db`.
pub fn sync_lock_path(db: &Path) -> PathBuf {
    suffixed(db, SYNC_LOCK_SUFFIX)
}

/// A new, unique temporary file name next to the database file `db` (same file system,
/// same 0700 folder): `.<db file>.sync-<purpose>-<pid>-<16 hex digits>.tmp`.
pub fn sync_temp_path(db: &Path, purpose: &str) -> PathBuf {
    debug_assert!(SYNC_TEMP_PURPOSES.contains(&purpose));
    let dir = db.parent().unwrap_or(Path::new("."));
    let name = db.file_name().and_then(|n| n.to_str()).unwrap_or("db");
    dir.join(format!(
        ".{name}.sync-{purpose}-{}-{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ))
}

/// Whether `candidate` (a file name in the same folder) is a temporary file that
/// [`sync_temp_path`] made for the database file named `db_file`, or SQLite's rollback
/// journal of one. Exact: no database file (they end in `.sqlite`) ever matches.
pub fn is_sync_temp_of(db_file: &str, candidate: &str) -> bool {
    let Some(rest) = candidate
        .strip_prefix('.')
        .and_then(|c| c.strip_prefix(db_file))
        .and_then(|c| c.strip_prefix(".sync-"))
    else {
        return false;
    };
    let rest = rest.strip_suffix("-journal").unwrap_or(rest);
    let Some(rest) = rest.strip_suffix(".tmp") else {
        return false;
    };
    let mut parts = rest.split('-');
    let (Some(purpose), Some(pid), Some(random), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    SYNC_TEMP_PURPOSES.contains(&purpose)
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && random.len() == 16
        && random
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_our_own_temporary_files_match() {
        let db = Path::new("/d/kv/a.sqlite");
        for _ in 0..20 {
            let temp = sync_temp_path(db, "upload");
            let name = temp.file_name().unwrap().to_str().unwrap();
            assert!(is_sync_temp_of("a.sqlite", name), "{name}");
            assert!(is_sync_temp_of("a.sqlite", &format!("{name}-journal")));
            assert!(!is_sync_temp_of("b.sqlite", name));
        }
        // Databases (and their companions) whose names start like a temporary file of
        // `a` are other databases: never ours to delete.
        for other in [
            ".a.sqlite.sync-x.sqlite",
            ".a.sqlite.sync-x.sqlite-wal",
            ".a.sqlite.sync-upload-1-0123456789abcdef.tmp.sqlite",
            ".a.sqlite.sync-upload-1-0123456789abcdef.tmp.sqlite-wal",
            ".a.sqlite.sync-upload-1-0123456789abcdef.tmp-wal",
            ".a.sqlite.sync-upload-x-0123456789abcdef.tmp",
            ".a.sqlite.sync-upload-1-0123456789ABCDEF.tmp",
            ".a.sqlite.sync-other-1-0123456789abcdef.tmp",
            ".a.sqlite.sync-upload-1-0123456789abcdef-1.tmp",
            "a.sqlite",
            "a.sqlite.sync-lock",
        ] {
            assert!(!is_sync_temp_of("a.sqlite", other), "{other}");
        }
    }
    use super::*;

    #[test]
    fn escaping_and_empty_names_are_rejected() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a\\b",
            "x\0y",
            "tab\there",
            &"n".repeat(201),
        ] {
            let err = validate(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
        }
        for good in [
            "charm.sh.kv.user.default",
            "a",
            "..x",
            "ünïcode",
            "with space",
        ] {
            validate(good).unwrap();
        }
    }

    #[test]
    fn database_file_never_is_the_badger_directory() {
        let data = Path::new("/d/localhost");
        let file = db_path(data, "charm.sh.kv.user.default").unwrap();
        assert_eq!(
            file,
            Path::new("/d/localhost/charm-kv/charm.sh.kv.user.default.sqlite")
        );
        assert_ne!(file, legacy_db_dir(data).join("charm.sh.kv.user.default"));
        assert_eq!(name_of("x.sqlite"), Some("x"));
        assert_eq!(name_of("x.sqlite-wal"), None);
        assert_eq!(name_of("MANIFEST"), None);
    }
}
