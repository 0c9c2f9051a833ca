//! A database whose device joined another account (a link that merged its former
//! account away, or an imported identity of another account): its sync state
//! describes files the device can no longer reach, so it is forgotten, and every row
//! becomes a local write again. The next sync then treats the account's copy (if
//! any) as new, keeps every local row on top of it (local writes win, as always) and
//! pushes them: the union, nothing lost (`docs/sync.md`, "Joining another account").
//!
//! Crash safety: the device records that re-homing is due in a marker file
//! ([`mark_pending`], written atomically before the identity or the account changes
//! locally) holding a random token. Each database re-homes once per token (the token
//! is stored in the same transaction, [`rehome`]); every read-write open and every
//! sync re-homes its database first while a marker exists, and the marker is removed
//! ([`finish_pending`]) once every database has been re-homed. A crash anywhere in
//! between leaves the marker, so the next open or sync finishes the work.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::TransactionBehavior;

use crate::error::{Error, Result};
use crate::store::names;
use crate::store::schema;
use crate::store::Store;

/// The marker's file name, in the databases' folder (`<data path>/charm-kv/`).
pub const PENDING_FILE: &str = "rejoin-pending";

/// `sync_state` row: the token of the last re-homing this database went through.
const STATE_REJOINED: &str = "rejoined";

fn pending_path(data_path: &Path) -> PathBuf {
    names::db_dir(data_path).join(PENDING_FILE)
}

/// Records durably that every database of `data_path` must be re-homed; returns the
/// token. A marker already there (an unfinished re-homing) is replaced: the new
/// token re-homes every database again, which the new account needs anyway.
pub fn mark_pending(data_path: &Path) -> Result<i64> {
    let token = loop {
        let t = (rand::random::<u64>() >> 1) as i64;
        if t != 0 {
            break t;
        }
    };
    let path = pending_path(data_path);
    let dir = names::db_dir(data_path);
    fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let tmp = dir.join(format!(
        ".{PENDING_FILE}.{}-{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{token}\n").as_bytes())
                .and_then(|()| f.sync_all())
        })
        .and_then(|()| fs::rename(&tmp, &path))
        .and_then(|()| fs::File::open(&dir).and_then(|d| d.sync_all()));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(token)
}

/// The token of a pending re-homing of `data_path`'s databases, if one is due. A
/// marker that does not parse counts as due (with token 1): skipping a due re-homing
/// would leave rows unpushed. (Re-homing is not free either: every row becomes a
/// local write that wins over the account's values at the next sync, which is why
/// nothing re-homes while a link's outcome is unknown: `Kv::rehome_if_pending`.)
pub fn pending(data_path: &Path) -> Result<Option<i64>> {
    let path = pending_path(data_path);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            text.trim()
                .parse::<i64>()
                .ok()
                .filter(|t| *t != 0)
                .unwrap_or(1),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Removes the marker if it still holds `token` (a newer re-homing keeps its own).
pub fn finish_pending(data_path: &Path, token: i64) -> Result<()> {
    if pending(data_path)? != Some(token) {
        return Ok(());
    }
    let path = pending_path(data_path);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

/// Re-homes `store` for the re-homing `token` unless it already was
/// ([`forget_remote`] and the token, in one transaction). Returns the rows journaled,
/// or `None` when it had been re-homed for `token` already.
pub fn rehome(store: &Arc<Store>, token: i64) -> Result<Option<u64>> {
    let mut conn = store.writer();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if schema::state_get_or(&tx, STATE_REJOINED, 0)? == token {
        return Ok(None);
    }
    let rows = forget_remote_in(&tx)?;
    schema::state_set(&tx, STATE_REJOINED, token)?;
    tx.commit()?;
    Ok(Some(rows))
}

fn forget_remote_in(tx: &rusqlite::Transaction<'_>) -> Result<u64> {
    let seq = schema::write_seq(tx)? + 1;
    let rows = tx.execute(
        "INSERT OR IGNORE INTO sync_journal (seq, key) SELECT ?1, key FROM kv",
        [seq],
    )?;
    schema::state_set(tx, schema::STATE_WRITE_SEQ, seq)?;
    schema::note_journal_rows(tx, seq, rows as i64)?;
    // The remote version, the chain, the database id and the writer marks all name
    // the former account's files; `key_check` and `format` describe this file.
    tx.execute(
        "DELETE FROM meta WHERE name NOT IN (?1, ?2)",
        [schema::META_KEY_CHECK, schema::META_FORMAT],
    )?;
    schema::meta_set(tx, schema::META_MAX_VERSION, 0)?;
    tx.execute("DELETE FROM sync_changes", [])?;
    tx.execute(
        "DELETE FROM sync_state WHERE name = ?1",
        [schema::STATE_CHANGES_SINCE],
    )?;
    schema::state_set(tx, schema::STATE_DB_ID_CONFIRMED, 0)?;
    Ok(rows as u64)
}
