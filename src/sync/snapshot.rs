//! The upload forms of a database (`docs/sync.md`): a full snapshot, a consistent copy
//! of the `kv` and `meta` rows in a fresh file (no local tables, no free pages); or a delta, a
//! small database of the same shape holding only the rows changed since its base (an
//! empty value deletes). Both are stamped with their sequence, our writer mark and the
//! shape of the chain they belong to (`levels`).

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use crate::crypto::seal::Sealer;

use super::levels::Shape;
use crate::error::{Error, Result};
use crate::store::schema;
use crate::store::Store;

/// What a snapshot file contains of this device's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Local writes up to this counter are in the snapshot.
    pub included_seq: i64,
    /// Size of the file in bytes.
    pub size: u64,
}

/// Writes the snapshot for remote sequence `seq` to the new file `dest`.
///
/// The rows are copied into a fresh file rather than copying the database's pages: a
/// page copy would carry the free pages, which still hold the ciphertext of values
/// since overwritten or deleted, and the local tables. The fresh file holds the live
/// `kv` and `meta` rows and nothing else.
pub fn create(store: &Arc<Store>, dest: &Path, seq: u64) -> Result<SnapshotInfo> {
    from_live(store, dest, |conn| copy_live_rows(conn, seq))
}

/// Fills the new scratch file `dest` with `copy`, run with the live database attached
/// as `live`; `copy` returns the writer counter the file includes.
fn from_live(
    store: &Arc<Store>,
    dest: &Path,
    copy: impl FnOnce(&Connection) -> Result<i64>,
) -> Result<SnapshotInfo> {
    // The file's writer mark is `sync_state.write_seq` as the copy reads it, committed
    // before: the server counts the mark as included from the upload on, and an older
    // charm-kv, which reads only that row, hands out counters above it (a set keeps its
    // counter in the journal alone, `schema::write_seq`).
    {
        let mut writer = store.writer();
        let tx = writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        schema::fold_write_seq(&tx)?;
        tx.commit()?;
    }
    let conn = schema::open_scratch(dest)?;
    let live = store
        .path()
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not valid UTF-8", store.path().display())))?;
    conn.execute("ATTACH DATABASE ?1 AS live", [live])?;
    let copied = copy(&conn);
    let detached = conn.execute("DETACH DATABASE live", []);
    let included_seq = copied?;
    detached?;
    drop(conn);
    Ok(SnapshotInfo {
        included_seq,
        size: file_size(dest)?,
    })
}

/// A `sync_state` value of the attached live database.
fn live_state(conn: &Connection, name: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT value FROM live.sync_state WHERE name = ?1",
        [name],
        |r| r.get(0),
    )?)
}

/// Copies `live.kv` and `live.meta` into the scratch file's empty tables, stamped for
/// `seq`, in one transaction (one read snapshot of the live database, so rows and
/// counters agree). Returns the writer counter the copy includes.
fn copy_live_rows(conn: &Connection, seq: u64) -> Result<i64> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(schema::CREATE_KV, [])?;
    tx.execute(schema::CREATE_META, [])?;
    // The same table shape on both sides: SQLite copies the records without decoding.
    tx.execute("INSERT INTO main.kv SELECT * FROM live.kv", [])?;
    tx.execute("INSERT INTO main.meta SELECT * FROM live.meta", [])?;
    let device_id = live_state(&tx, schema::STATE_DEVICE_ID)?;
    // The recorded counter (folded in `from_live`), not the journal's: a counter at or
    // below it is never handed out again, by any version.
    let included_seq = live_state(&tx, schema::STATE_WRITE_SEQ)?;
    schema::meta_set(&tx, schema::META_MAX_VERSION, seq as i64)?;
    schema::meta_set(&tx, &schema::writer_mark(device_id), included_seq)?;
    Shape::full(seq).write(&tx)?;
    tx.commit()?;
    Ok(included_seq)
}

/// Writes to the new file `dest` the delta for remote sequence `seq` on top of version
/// `base`: every pending write's row as it is now, with `changed_since` also every row
/// this device knows to have changed after that version (`sync_changes`: a delta one
/// level up, see `levels`); deletions as empty values, deletions of each pending key's
/// copies under the account's other keys, and the local `meta`. Rows are copied in one
/// read transaction of the live database, never held in memory.
pub fn create_delta(
    store: &Arc<Store>,
    dest: &Path,
    seq: u64,
    base: u64,
    changed_since: Option<u64>,
) -> Result<SnapshotInfo> {
    from_live(store, dest, |conn| {
        copy_delta_rows(conn, store.sealer(), seq, base, changed_since)
    })
}

fn copy_delta_rows(
    conn: &Connection,
    sealer: &Sealer,
    seq: u64,
    base: u64,
    changed_since: Option<u64>,
) -> Result<i64> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(schema::CREATE_KV, [])?;
    tx.execute(schema::CREATE_META, [])?;
    let device_id = live_state(&tx, schema::STATE_DEVICE_ID)?;
    // The recorded counter (folded in `from_live`), not the journal's: a counter at or
    // below it is never handed out again, by any version.
    let included_seq = live_state(&tx, schema::STATE_WRITE_SEQ)?;
    let uploaded = live_state(&tx, schema::STATE_UPLOADED_SEQ)?;
    tx.execute(
        "INSERT OR REPLACE INTO main.kv (key, value)
         SELECT j.key, coalesce(kv.value, X'') FROM live.sync_journal AS j
         LEFT JOIN live.kv AS kv ON kv.key = j.key WHERE j.seq > ?1",
        [uploaded],
    )?;
    if let Some(since) = changed_since {
        tx.execute(
            "INSERT OR IGNORE INTO main.kv (key, value)
             SELECT c.key, coalesce(kv.value, X'') FROM live.sync_changes AS c
             LEFT JOIN live.kv AS kv ON kv.key = c.key WHERE c.version > ?1",
            [since as i64],
        )?;
    }
    if sealer.ciphers().len() > 1 {
        // A local write removed the key's copies under the account's other keys: so
        // must the delta, or they would survive on the devices applying it.
        let pending: Vec<Vec<u8>> = tx
            .prepare("SELECT key FROM live.sync_journal WHERE seq > ?1")?
            .query_map([uploaded], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut insert =
            tx.prepare("INSERT OR IGNORE INTO main.kv (key, value) VALUES (?1, X'')")?;
        for key in pending {
            for copy in copies_under_other_keys(sealer, &key) {
                insert.execute([copy])?;
            }
        }
    }
    tx.execute(
        "INSERT INTO main.meta (name, value) SELECT name, value FROM live.meta
         WHERE name <> ?1",
        [schema::META_DELTA_BASE],
    )?;
    schema::meta_set(&tx, schema::META_FORMAT, schema::DELTA_FORMAT)?;
    schema::meta_set(&tx, schema::META_DELTA_BASE, base as i64)?;
    schema::meta_set(&tx, schema::META_MAX_VERSION, seq as i64)?;
    schema::meta_set(&tx, &schema::writer_mark(device_id), included_seq)?;
    tx.commit()?;
    Ok(included_seq)
}

/// Writes the chain shape the file `path` (just created for upload) belongs to into its
/// `meta`; returns the file's size afterwards.
pub fn stamp_shape(path: &Path, shape: &Shape, merged: &[u64]) -> Result<u64> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "journal_mode", "MEMORY")?;
    let tx = conn.unchecked_transaction()?;
    shape.write(&tx)?;
    super::levels::write_merged(&tx, merged)?;
    tx.commit()?;
    drop(conn);
    file_size(path)
}

/// `stored_key` (sealed with any of the account's keys) sealed with each other key.
fn copies_under_other_keys<'a>(
    sealer: &'a Sealer,
    stored_key: &[u8],
) -> impl Iterator<Item = Vec<u8>> + 'a {
    let opened = match sealer.ciphers() {
        [_, _, ..] => sealer.open_key(stored_key).ok(),
        _ => None,
    };
    sealer
        .ciphers()
        .iter()
        .enumerate()
        .filter_map(move |(i, cipher)| match &opened {
            Some((plain, sealed_by)) if *sealed_by != i => Some(cipher.seal_key(plain)),
            _ => None,
        })
}

fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .map_err(|e| crate::Error::io(format!("reading {}", path.display()), e))?
        .len())
}
