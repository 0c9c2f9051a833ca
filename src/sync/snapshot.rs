//! The upload forms of a database (`docs/sync.md`): a full snapshot, a consistent copy
//! of the `kv` and `meta` rows in a fresh file (no local tables, no free pages); or a delta, a
//! small database of the same shape holding only the rows of the pending writes (an
//! empty value deletes). Both are stamped with their sequence and our writer mark.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use crate::crypto::seal::Sealer;

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
    let conn = schema::open_scratch(dest)?;
    let live = store
        .path()
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not valid UTF-8", store.path().display())))?;
    conn.execute("ATTACH DATABASE ?1 AS live", [live])?;
    let copied = copy_live_rows(&conn, seq);
    let detached = conn.execute("DETACH DATABASE live", []);
    let included_seq = copied?;
    detached?;
    drop(conn);
    Ok(SnapshotInfo {
        included_seq,
        size: file_size(dest)?,
    })
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
    let state = |name: &str| -> Result<i64> {
        Ok(tx.query_row(
            "SELECT value FROM live.sync_state WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?)
    };
    let device_id = state(schema::STATE_DEVICE_ID)?;
    let included_seq = state(schema::STATE_WRITE_SEQ)?;
    schema::meta_set(&tx, schema::META_MAX_VERSION, seq as i64)?;
    schema::meta_set(&tx, &schema::writer_mark(device_id), included_seq)?;
    schema::meta_set(&tx, schema::META_CHAIN_START, seq as i64)?;
    schema::meta_set(&tx, schema::META_CHAIN_LENGTH, 0)?;
    tx.commit()?;
    Ok(included_seq)
}

/// Writes to the new file `dest` the delta for remote sequence `seq` on top of version
/// `base` (the local `max_version`): every pending write's row as it is now, deletions
/// as empty values, deletions of each key's copies under the account's older keys, and
/// the local `meta` with the chain extended by one.
pub fn create_delta(store: &Arc<Store>, dest: &Path, seq: u64, base: u64) -> Result<SnapshotInfo> {
    let reader = store.reader()?;
    // One read transaction: the rows, the counters and the meta rows agree.
    let read = reader.unchecked_transaction()?;
    let device_id = schema::state_get(&read, schema::STATE_DEVICE_ID)?;
    let included_seq = schema::state_get(&read, schema::STATE_WRITE_SEQ)?;
    let uploaded = schema::state_get(&read, schema::STATE_UPLOADED_SEQ)?;
    let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    {
        let mut stmt = read.prepare(
            "SELECT j.key, kv.value FROM sync_journal AS j LEFT JOIN kv ON kv.key = j.key
             WHERE j.seq > ?1",
        )?;
        let mut found = stmt.query([uploaded])?;
        while let Some(row) = found.next()? {
            let key: Vec<u8> = row.get(0)?;
            let value: Option<Vec<u8>> = row.get(1)?;
            // A local write removed the key's copies under the account's other keys:
            // so must the delta, or they would survive on the devices applying it.
            rows.extend(copies_under_other_keys(store.sealer(), &key).map(|k| (k, Vec::new())));
            rows.push((key, value.unwrap_or_default()));
        }
    }
    let mut meta: Vec<(String, i64)> = read
        .prepare("SELECT name, value FROM meta")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    read.finish()?;
    drop(reader);
    let chain_length = meta
        .iter()
        .find(|(name, _)| name == schema::META_CHAIN_LENGTH)
        .map_or(0, |(_, value)| *value);
    meta.retain(|(name, _)| name != schema::META_DELTA_BASE);

    let conn = schema::open_scratch(dest)?;
    let tx = conn.unchecked_transaction()?;
    tx.execute(schema::CREATE_KV, [])?;
    tx.execute(schema::CREATE_META, [])?;
    {
        let mut insert = tx.prepare("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?;
        for (key, value) in &rows {
            insert.execute((key, value))?;
        }
    }
    for (name, value) in &meta {
        schema::meta_set(&tx, name, *value)?;
    }
    schema::meta_set(&tx, schema::META_FORMAT, schema::DELTA_FORMAT)?;
    schema::meta_set(&tx, schema::META_DELTA_BASE, base as i64)?;
    schema::meta_set(&tx, schema::META_MAX_VERSION, seq as i64)?;
    schema::meta_set(&tx, &schema::writer_mark(device_id), included_seq)?;
    schema::meta_set(&tx, schema::META_CHAIN_LENGTH, chain_length + 1)?;
    tx.commit()?;
    drop(conn);
    Ok(SnapshotInfo {
        included_seq,
        size: file_size(dest)?,
    })
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
