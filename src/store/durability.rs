//! How hard a commit waits for the disk: the one durability choice the store offers.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// What an acknowledged write survives. Both keep the database consistent (WAL mode);
/// they differ in what a power loss or OS crash may take back. See docs/storage.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// `synchronous=FULL`: every commit fsyncs the WAL before it returns. An
    /// acknowledged write survives a killed process, an OS crash and a power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits are written to the WAL without an fsync; the WAL
    /// is fsynced at checkpoints. A killed process loses nothing; an OS crash or power
    /// loss may take back the last commits (never corrupts, never half a commit).
    Normal,
}

impl Durability {
    /// The environment variable that chooses it.
    pub const ENV: &'static str = "CHARM_KV_DURABILITY";

    /// The value of SQLite's `synchronous` pragma.
    pub(crate) fn synchronous(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }

    /// The name used by `CHARM_KV_DURABILITY` and the bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Durability {
    type Err = Error;

    /// `full` or `normal` (any case).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            _ => Err(Error::invalid(format!(
                "durability {s:?} is neither \"full\" nor \"normal\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal::Sealer;
    use crate::crypto::EncryptKey;
    use crate::store::Store;

    /// The writer connection really runs with the chosen `synchronous` level (SQLite
    /// reports 2 for FULL, 1 for NORMAL).
    #[test]
    fn the_writer_commits_with_the_chosen_synchronous_level() {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptKey::generate();
        for (durability, level) in [(Durability::Full, 2), (Durability::Normal, 1)] {
            let path = dir.path().join(format!("{durability}.sqlite"));
            let store = Store::open_with(
                &path,
                Sealer::new(std::slice::from_ref(&key)).unwrap(),
                durability,
            )
            .unwrap();
            let synchronous: i64 = store
                .writer()
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            assert_eq!(synchronous, level, "{durability}");
            assert_eq!(store.durability(), durability);
        }
    }

    #[test]
    fn kv_options_choose_the_store_durability() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = crate::Options::new();
        options.data_dir(dir.path()).durability(Durability::Normal);
        let kv = crate::Kv::open_with("normal", &options).unwrap();
        let store = kv.store().unwrap();
        let synchronous: i64 = store
            .writer()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 1);
    }

    #[test]
    fn names_parse_in_any_case_and_others_are_refused() {
        assert_eq!("FULL".parse::<Durability>().unwrap(), Durability::Full);
        assert_eq!(" normal".parse::<Durability>().unwrap(), Durability::Normal);
        assert_eq!(Durability::default(), Durability::Full);
        for bad in ["", "off", "extra", "fast"] {
            assert!(bad.parse::<Durability>().is_err(), "{bad}");
        }
    }
}
