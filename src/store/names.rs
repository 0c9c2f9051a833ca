//! Database names and where their files live.
//!
//! A database `N` is the file `<data path>/kv/N.sqlite` (plus SQLite's `-wal`/`-shm`).
//! The Go client kept a Badger *directory* at `<data path>/kv/N`; the suffix keeps the
//! two apart, and the old directory is never touched.

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
        Some(why) => Err(Error::invalid(format!("database name {name:?} {why}"))),
        None => Ok(()),
    }
}

/// The `kv` folder of a data path.
pub fn kv_dir(data_path: &Path) -> PathBuf {
    data_path.join("kv")
}

/// The database file for `name` (validated).
pub fn db_path(data_path: &Path, name: &str) -> Result<PathBuf> {
    validate(name)?;
    Ok(kv_dir(data_path).join(format!("{name}{DB_SUFFIX}")))
}

/// The database name a file in the `kv` folder holds, if it is one of ours.
pub fn name_of(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(DB_SUFFIX)
        .filter(|name| validate(name).is_ok())
}

#[cfg(test)]
mod tests {
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
            Path::new("/d/localhost/kv/charm.sh.kv.user.default.sqlite")
        );
        assert_ne!(file, kv_dir(data).join("charm.sh.kv.user.default"));
        assert_eq!(name_of("x.sqlite"), Some("x"));
        assert_eq!(name_of("x.sqlite-wal"), None);
        assert_eq!(name_of("MANIFEST"), None);
    }
}
