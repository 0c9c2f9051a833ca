//! The record of a link that has not finished: `<data path>/charm_kv_link_pending.json`.
//!
//! The joining device writes it (synced, renamed into place) before it sends the
//! request that can link it, and removes it once the link's local part is done: the
//! account's key 0 adopted and pinned, this device's keys shared with the account
//! (`Account::link_request`). A crash anywhere in between (before the server's answer
//! arrived, or while waiting for the account's keys) leaves it, and the next
//! [`super::Account::sync_keys`] (every sync, and an open that asks the server) asks
//! the server whether the link happened and finishes or forgets it
//! (`docs/cloud-client.md`, "Crash points of a link").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files;
use crate::crypto::keywrap::WrappedKey;
use crate::error::{Error, Result};

/// File name of the record inside the data path.
pub const LINK_PENDING_FILE: &str = "charm_kv_link_pending.json";

/// Largest record read (one wrapped key is about 400 bytes).
const MAX_FILE: u64 = 4 << 20;

/// What finishing the link needs to know about this device before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLink {
    /// The account this device was in before, when it had used the server; `None`
    /// for a device that never did (the server was not asked: that would create an
    /// account).
    pub previous_account: Option<String>,
    /// Ids of the encrypt keys this device held before: none of them is the account's
    /// key 0.
    pub known_keys: Vec<String>,
    /// The keys of its former account, wrapped for its own identity: kept in the key
    /// cache once the link happened, so that rows they sealed stay readable.
    pub former_keys: Vec<WrappedKey>,
    /// The re-homing the caller recorded for this link, if any
    /// ([`super::Account::note_link_rejoin`]): when the link turns out not to have
    /// happened, settling it hands the token back so that the caller can drop it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejoin_token: Option<i64>,
}

/// Where the record of `data_path` lives.
pub fn pending_path(data_path: &Path) -> PathBuf {
    data_path.join(LINK_PENDING_FILE)
}

/// The unfinished link of `data_path`, if any. A record that does not parse is
/// [`Error::Corrupt`]: guessing could adopt the wrong key 0.
pub fn read(data_path: &Path) -> Result<Option<PendingLink>> {
    let path = pending_path(data_path);
    let Some(bytes) = files::read_regular(&path, MAX_FILE, "link record")? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::corrupt(format!(
            "{} is not a link record ({e}); remove it and run `charm-kv sync-keys`",
            path.display()
        ))
    })
}

/// Records `link` durably (replacing an older record).
pub fn write(data_path: &Path, link: &PendingLink) -> Result<()> {
    let json = serde_json::to_vec_pretty(link)
        .map_err(|e| Error::internal("encoding the link record").caused_by(e))?;
    files::replace_complete(&pending_path(data_path), &json)
}

/// Removes the record; nothing there is fine.
pub fn remove(data_path: &Path) -> Result<()> {
    let path = pending_path(data_path);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

/// File name, inside the data path, of the record that this device's local-mode
/// databases (`<data dir>/localhost/`) are to join this data path: written by a link
/// before it shares the local-mode keys, removed once every one of them moved
/// (`Kv::open_with` finishes it).
pub const JOIN_LOCAL_FILE: &str = "charm_kv_join_local_pending";

/// Records durably that the local-mode databases are to join `data_path`.
pub fn mark_join_local(data_path: &Path) -> Result<()> {
    files::replace_complete(&data_path.join(JOIN_LOCAL_FILE), b"1\n")
}

/// Whether the local-mode databases are to join `data_path` (one `stat`).
pub fn join_local_due(data_path: &Path) -> bool {
    data_path.join(JOIN_LOCAL_FILE).is_file()
}

/// Removes the record that the local-mode databases are to join `data_path`.
pub fn clear_join_local(data_path: &Path) -> Result<()> {
    let path = data_path.join(JOIN_LOCAL_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_garbage_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let link = PendingLink {
            previous_account: Some("acct".into()),
            known_keys: vec!["k1".into()],
            former_keys: Vec::new(),
            rejoin_token: Some(7),
        };
        write(dir.path(), &link).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(link));
        remove(dir.path()).unwrap();
        remove(dir.path()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        std::fs::write(pending_path(dir.path()), "{half").unwrap();
        assert_eq!(
            read(dir.path()).unwrap_err().kind(),
            crate::ErrorKind::Corrupt
        );
    }
}
