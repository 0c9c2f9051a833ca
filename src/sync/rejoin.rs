//! A database whose device joined another account (a link that merged its former
//! account away, or an imported identity of another account): its sync state
//! describes files the device can no longer reach, so it is forgotten, and every row
//! becomes a local write again. The next sync then treats the account's copy (if
//! any) as new, keeps every local row on top of it (local writes win, as always) and
//! pushes them: the union, nothing lost (`docs/sync.md`, "Joining another account").

use std::sync::Arc;

use rusqlite::TransactionBehavior;

use crate::error::Result;
use crate::store::schema;
use crate::store::Store;

/// Forgets `store`'s remote state and journals every row as one new local write,
/// in one transaction. Returns the number of rows journaled.
pub fn forget_remote(store: &Arc<Store>) -> Result<u64> {
    let mut conn = store.writer();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let seq = schema::state_get(&tx, schema::STATE_WRITE_SEQ)? + 1;
    let rows = tx.execute(
        "INSERT OR IGNORE INTO sync_journal (seq, key) SELECT ?1, key FROM kv",
        [seq],
    )?;
    schema::state_set(&tx, schema::STATE_WRITE_SEQ, seq)?;
    schema::note_journal_rows(&tx, rows as i64)?;
    // The remote version, the chain, the database id and the writer marks all name
    // the former account's files; `key_check` and `format` describe this file.
    tx.execute(
        "DELETE FROM meta WHERE name NOT IN (?1, ?2)",
        [schema::META_KEY_CHECK, schema::META_FORMAT],
    )?;
    schema::meta_set(&tx, schema::META_MAX_VERSION, 0)?;
    tx.execute("DELETE FROM sync_changes", [])?;
    tx.execute(
        "DELETE FROM sync_state WHERE name = ?1",
        [schema::STATE_CHANGES_SINCE],
    )?;
    schema::state_set(&tx, schema::STATE_DB_ID_CONFIRMED, 0)?;
    tx.commit()?;
    Ok(rows as u64)
}
