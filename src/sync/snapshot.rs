//! The upload form of a database: a consistent copy, taken with SQLite's online backup
//! API, without the local-only tables, stamped with its sequence and our writer mark.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use crate::error::Result;
use crate::store::schema::{self, LOCAL_TABLES};
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
pub fn create(store: &Arc<Store>, dest: &Path, seq: u64) -> Result<SnapshotInfo> {
    store.copy_to_temporary(dest)?;
    let conn = Connection::open(dest)?;
    // A temporary file until uploaded: no fsyncs, and the rollback journal in memory
    // (a failure here discards the file).
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "journal_mode", "MEMORY")?;
    // Counters read from the copy itself, so they describe exactly what it holds.
    let device_id = schema::state_get(&conn, schema::STATE_DEVICE_ID)?;
    let included_seq = schema::state_get(&conn, schema::STATE_WRITE_SEQ)?;
    // secure_delete zeroes the pages of the dropped tables instead of leaving them in
    // the file's free list.
    conn.pragma_update(None, "secure_delete", true)?;
    let tx = conn.unchecked_transaction()?;
    for table in LOCAL_TABLES {
        tx.execute(&format!("DROP TABLE IF EXISTS {table}"), [])?;
    }
    schema::meta_set(&tx, schema::META_MAX_VERSION, seq as i64)?;
    schema::meta_set(&tx, &schema::writer_mark(device_id), included_seq)?;
    tx.commit()?;
    drop(conn);
    let size = std::fs::metadata(dest)
        .map_err(|e| crate::Error::io(format!("reading {}", dest.display()), e))?
        .len();
    Ok(SnapshotInfo { included_seq, size })
}
