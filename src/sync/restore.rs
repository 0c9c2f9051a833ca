//! Bringing a downloaded snapshot into the live database.
//!
//! The candidate file is checked first (integrity, shape, only the expected schema
//! objects, our keys), then its rows replace the live `kv` and `meta` inside one
//! `BEGIN IMMEDIATE` transaction on the live database, in which the local writes the
//! snapshot lacks are re-applied. Other connections and processes keep reading the old
//! contents until the commit and see the new ones after it; no file is ever renamed over
//! the live database, and on any failure it is untouched (`docs/sync.md`).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::crypto::seal::Sealer;
use crate::error::{Error, Result};
use crate::store::schema;
use crate::store::Store;

/// The SQLite file header: how a snapshot is told from a legacy Badger stream.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What a verified candidate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The remote sequence it was uploaded as.
    pub max_version: i64,
    /// This device's writer mark in it (0 when absent).
    pub our_mark: i64,
    /// For a delta, the version it applies to; `None` for a full snapshot.
    pub delta_base: Option<i64>,
    /// The database id it carries (absent in files of older versions).
    pub db_id: Option<i64>,
    /// For a delta, the versions besides its base it also applies to (`levels`).
    pub merged: Vec<u64>,
}

/// Checks a downloaded snapshot before anything touches the live database.
pub fn verify(path: &Path, sealer: &Sealer, device_id: i64) -> Result<Candidate> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::corrupt("snapshot is not a SQLite database").caused_by(e))?;
    conn.pragma_update(None, "trusted_schema", false)?;
    let check: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
        .map_err(|e| Error::corrupt("snapshot failed its integrity check").caused_by(e))?;
    if check != "ok" {
        return Err(Error::corrupt(format!(
            "snapshot failed its integrity check: {check}"
        )));
    }
    let mut stmt = conn.prepare("SELECT type, name FROM sqlite_master ORDER BY name")?;
    let objects: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let expected = [("table", "kv"), ("table", "meta")];
    if objects.len() != 2
        || objects
            .iter()
            .zip(expected)
            .any(|(a, b)| (a.0.as_str(), a.1.as_str()) != b)
    {
        return Err(Error::corrupt(format!(
            "snapshot has unexpected schema objects {objects:?}"
        )));
    }
    let format = schema::verify_formats(
        &conn,
        sealer,
        &[schema::FORMAT_VERSION, schema::DELTA_FORMAT],
    )?;
    let delta_base = schema::meta_get(&conn, schema::META_DELTA_BASE)?;
    let delta_base = match (format == schema::DELTA_FORMAT, delta_base) {
        (true, Some(base)) if base >= 0 => Some(base),
        (false, None) => None,
        _ => {
            return Err(Error::corrupt(
                "snapshot has an inconsistent delta_base row",
            ))
        }
    };
    // Every row key must open with our keys: a snapshot of another account fails here
    // (the key_check above normally catches it first). Only deltas hold deletions.
    let mut keys = conn.prepare("SELECT key, length(value) FROM kv")?;
    let mut rows = keys.query([])?;
    while let Some(row) = rows.next()? {
        sealer.open_key(row.get_ref(0)?.as_blob()?)?;
        if delta_base.is_none() && row.get::<_, i64>(1)? == 0 {
            return Err(Error::corrupt("snapshot holds a row without a value"));
        }
    }
    let max_version = schema::meta_get(&conn, schema::META_MAX_VERSION)?.unwrap_or(0);
    let our_mark = schema::meta_get(&conn, &schema::writer_mark(device_id))?.unwrap_or(0);
    let db_id = schema::meta_get(&conn, schema::META_DB_ID)?;
    let merged = crate::sync::levels::read_merged(&conn)?;
    Ok(Candidate {
        max_version,
        our_mark,
        delta_base,
        db_id,
        merged,
    })
}

/// How much of a file's own description `apply` holds it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// A file of the server's newest chain: its stored sequence must be its name, and
    /// its database id this database's.
    Server,
    /// `reset`: the same, except that another database id is adopted (the way back
    /// after the remote database was deleted and made anew).
    Reset,
    /// Built here from legacy Badger backups (which carry no id).
    Legacy,
}

/// Replaces the live `kv` and `meta` with the candidate's (a delta: merges its rows into
/// them, and then only onto the version it was made for), re-applying local writes newer
/// than the candidate's mark for this device, and records `seq` (the remote file it came
/// from) as the new `max_version`. Returns the candidate's description.
pub fn apply(store: &Store, path: &Path, seq: u64, provenance: Provenance) -> Result<Candidate> {
    let mut conn = store.writer();
    let device_id = schema::state_get(&conn, schema::STATE_DEVICE_ID)?;
    let mut candidate = verify(path, store.sealer(), device_id)?;
    check_binding(
        &conn,
        seq,
        candidate.max_version,
        candidate.db_id,
        provenance,
    )?;
    let path_text = path
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not valid UTF-8", path.display())))?;
    conn.execute("ATTACH DATABASE ?1 AS snap", [path_text])?;
    let result = mark_under_former_ids(&conn, candidate.our_mark).and_then(|mark| {
        candidate.our_mark = mark;
        replace(&mut conn, store.sealer(), &candidate, seq)
    });
    let detached = conn.execute("DETACH DATABASE snap", []);
    result?;
    detached?;
    Ok(candidate)
}

/// This file's writes are this device's under former device ids too (the database file
/// was copied or restored from a backup, `schema::claim_file_identity`), up to where it
/// stopped writing as each: the mark to compare the journal with is the highest.
fn mark_under_former_ids(conn: &Connection, mark: i64) -> Result<i64> {
    let aliases = schema::former_device_ids(conn)?;
    let mut stmt = conn.prepare("SELECT value FROM snap.meta WHERE name = ?1")?;
    let mut best = mark;
    for (id, upto) in aliases {
        let found: Option<i64> = stmt
            .query_row([schema::writer_mark(id)], |r| r.get(0))
            .optional()?;
        if let Some(former) = found {
            best = best.max(former.min(upto));
        }
    }
    Ok(best)
}

fn replace(conn: &mut Connection, sealer: &Sealer, candidate: &Candidate, seq: u64) -> Result<()> {
    // The write lock is taken before reading what to keep, so no write can slip in
    // between.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if let Some(base) = candidate.delta_base {
        let local = schema::meta_get(&tx, schema::META_MAX_VERSION)?.unwrap_or(0);
        if local != base && !candidate.merged.contains(&(local.max(0) as u64)) {
            return Err(Error::corrupt(format!(
                "a delta on version {base} cannot apply to version {local}"
            )));
        }
    }
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS restore_keep (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID;
         DELETE FROM temp.restore_keep;",
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO temp.restore_keep (key, value)
         SELECT j.key, kv.value FROM sync_journal AS j LEFT JOIN main.kv AS kv ON kv.key = j.key
         WHERE j.seq > ?1",
        [candidate.our_mark],
    )?;
    if candidate.delta_base.is_some() {
        // A delta carries its writer's whole `meta` as of its version: it replaces ours
        // (but for the format of this file).
        tx.execute_batch(
            "INSERT OR REPLACE INTO main.kv (key, value)
                 SELECT key, value FROM snap.kv WHERE length(value) > 0;
             DELETE FROM main.kv WHERE key IN (SELECT key FROM snap.kv WHERE length(value) = 0);
             DELETE FROM main.meta WHERE name <> 'format';
             INSERT OR REPLACE INTO main.meta (name, value)
                 SELECT name, value FROM snap.meta WHERE name NOT IN ('format', 'delta_base')
                 AND NOT (name >= 'merged:' AND name < 'merged;');",
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO main.sync_changes (key, version) SELECT key, ?1 FROM snap.kv",
            [seq as i64],
        )?;
    } else {
        tx.execute_batch(
            "DELETE FROM main.kv;
             INSERT INTO main.kv (key, value) SELECT key, value FROM snap.kv;
             DELETE FROM main.meta;
             INSERT INTO main.meta (name, value) SELECT name, value FROM snap.meta
                 WHERE NOT (name >= 'merged:' AND name < 'merged;');
             DELETE FROM main.sync_changes;",
        )?;
        schema::state_set(&tx, schema::STATE_CHANGES_SINCE, seq as i64)?;
    }
    tx.execute_batch(
        "INSERT OR REPLACE INTO main.kv (key, value)
             SELECT key, value FROM temp.restore_keep WHERE value IS NOT NULL;
         DELETE FROM main.kv WHERE key IN (SELECT key FROM temp.restore_keep WHERE value IS NULL);",
    )?;
    if sealer.ciphers().len() > 1 {
        remove_copies_under_older_keys(&tx, sealer)?;
    }
    // The file name is the truth about which sequence this is.
    schema::meta_set(&tx, schema::META_MAX_VERSION, seq as i64)?;
    let uploaded = schema::state_get(&tx, schema::STATE_UPLOADED_SEQ)?;
    // Writes the snapshot lacks count as not pushed again, and not confirmed.
    schema::state_set(
        &tx,
        schema::STATE_UPLOADED_SEQ,
        uploaded.min(candidate.our_mark),
    )?;
    let confirmed = schema::state_get_or(&tx, schema::STATE_CONFIRMED_SEQ, uploaded)?;
    schema::state_set(
        &tx,
        schema::STATE_CONFIRMED_SEQ,
        confirmed.min(candidate.our_mark),
    )?;
    if candidate.db_id.is_some() {
        // The id came from the server's chain (the meta rows above carry it).
        schema::state_set(&tx, schema::STATE_DB_ID_CONFIRMED, 1)?;
    }
    tx.execute("DELETE FROM temp.restore_keep", [])?;
    tx.commit()?;
    Ok(())
}

/// A re-applied key may exist in the snapshot under another of the account's keys: the
/// local write wins, so those copies go. The journal's stored key may itself be sealed
/// with any of the keys (a write made offline under this device's own key, before it
/// adopted the account's key 0).
fn remove_copies_under_older_keys(conn: &Connection, sealer: &Sealer) -> Result<()> {
    let mut keys = conn.prepare("SELECT key FROM temp.restore_keep")?;
    let stored: Vec<Vec<u8>> = keys
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = conn.prepare("DELETE FROM main.kv WHERE key = ?1")?;
    for stored_key in stored {
        let Ok((plain, sealed_by)) = sealer.open_key(&stored_key) else {
            continue;
        };
        for (i, cipher) in sealer.ciphers().iter().enumerate() {
            if i != sealed_by {
                delete.execute([cipher.seal_key(&plain)])?;
            }
        }
    }
    Ok(())
}

/// Records that this device's writes up to `mark` are in the newest remote file, and
/// forgets their journal entries.
pub fn confirm(store: &Store, mark: i64) -> Result<()> {
    let mut conn = store.writer();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let uploaded = schema::state_get(&tx, schema::STATE_UPLOADED_SEQ)?;
    // Rows are written only when they change: an idle sync commits nothing (no fsync).
    let confirmed = schema::state_get_or(&tx, schema::STATE_CONFIRMED_SEQ, uploaded)?;
    if mark > confirmed {
        schema::state_set(&tx, schema::STATE_CONFIRMED_SEQ, mark)?;
    }
    if schema::meta_get(&tx, schema::META_DB_ID)?.is_some()
        && schema::state_get_or(&tx, schema::STATE_DB_ID_CONFIRMED, 0)? != 1
    {
        schema::state_set(&tx, schema::STATE_DB_ID_CONFIRMED, 1)?;
    }
    schema::fold_write_seq(&tx)?;
    tx.execute("DELETE FROM sync_journal WHERE seq <= ?1", [mark])?;
    tx.commit()?;
    Ok(())
}

/// What a downloaded file says about itself, read before the full verification that
/// [`apply`] does: to find the files a delta builds on, and to refuse a misnamed or
/// foreign file before any file of its chain is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// `None` for a full snapshot.
    pub delta_base: Option<u64>,
    pub max_version: i64,
    pub db_id: Option<i64>,
    /// For a delta, the versions besides its base it also applies to.
    pub merged: Vec<u64>,
}

/// Reads a downloaded file's [`FileMeta`].
pub fn file_meta(path: &Path) -> Result<FileMeta> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::corrupt("snapshot is not a SQLite database").caused_by(e))?;
    conn.pragma_update(None, "trusted_schema", false)?;
    let get = |name: &str| -> Result<Option<i64>> {
        conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| Error::corrupt("snapshot has no readable meta table").caused_by(e))
    };
    let delta_base = match get(schema::META_DELTA_BASE)? {
        Some(base) if base < 0 => return Err(Error::corrupt("snapshot has a negative delta_base")),
        base => base.map(|b| b as u64),
    };
    Ok(FileMeta {
        delta_base,
        max_version: get(schema::META_MAX_VERSION)?.unwrap_or(0),
        db_id: get(schema::META_DB_ID)?,
        merged: crate::sync::levels::read_merged(&conn)?,
    })
}

/// Refuses a file that is not what its name `seq` says, or (from the server's chain)
/// belongs to another database than this one: a server can rename, copy and delete
/// files (it cannot forge them), which would roll back or mix up every device that
/// applied them.
pub fn check_binding(
    conn: &Connection,
    seq: u64,
    max_version: i64,
    db_id: Option<i64>,
    provenance: Provenance,
) -> Result<()> {
    if max_version != seq as i64 {
        return Err(Error::corrupt(format!(
            "file {seq} on the server holds version {max_version} (renamed or replayed); \
             nothing applied"
        )));
    }
    if provenance != Provenance::Server {
        return Ok(());
    }
    let ours = schema::meta_get(conn, schema::META_DB_ID)?;
    let confirmed = schema::state_get_or(conn, schema::STATE_DB_ID_CONFIRMED, 0)? == 1;
    match (ours, db_id) {
        (Some(ours), Some(theirs)) if ours != theirs && confirmed => Err(Error::corrupt(format!(
            "file {seq} on the server belongs to database id {theirs}, not this database's \
             {ours}; nothing applied (`reset --force` adopts it)"
        ))),
        (Some(ours), None) if confirmed => Err(Error::corrupt(format!(
            "file {seq} on the server has no database id, and this database's is {ours}; \
             nothing applied"
        ))),
        _ => Ok(()),
    }
}

/// Whether a file starts like a SQLite database.
pub fn is_sqlite(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(SQLITE_MAGIC)
}

/// This device's sync counters for one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalState {
    /// The device's writer id inside this database file.
    pub device_id: i64,
    /// Counter of the last local write.
    pub write_seq: i64,
    /// Local writes up to this counter are in a file this device uploaded.
    pub uploaded_seq: i64,
    /// Local writes up to this counter are in the newest file on the server.
    pub confirmed_seq: i64,
    /// Local writes not yet uploaded in any file.
    pub unpushed: u64,
    /// Local writes not yet confirmed: not uploaded, or uploaded in a file that was not
    /// (yet) seen to be the newest on the server.
    pub pending: u64,
}

/// This device's sync counters, read through `conn`.
pub fn local_state(conn: &Connection) -> Result<LocalState> {
    let device = schema::state_get(conn, schema::STATE_DEVICE_ID)?;
    let written = schema::write_seq(conn)?;
    let uploaded = schema::state_get(conn, schema::STATE_UPLOADED_SEQ)?;
    let confirmed = schema::state_get_or(conn, schema::STATE_CONFIRMED_SEQ, uploaded)?;
    let count_after = |seq: i64| -> Result<u64> {
        let count: i64 = conn
            .prepare_cached("SELECT count(DISTINCT key) FROM sync_journal WHERE seq > ?1")?
            .query_row([seq], |r| r.get(0))?;
        Ok(count as u64)
    };
    let unpushed = count_after(uploaded)?;
    let pending = if confirmed == uploaded {
        unpushed
    } else {
        count_after(confirmed)?
    };
    Ok(LocalState {
        device_id: device,
        write_seq: written,
        uploaded_seq: uploaded,
        confirmed_seq: confirmed,
        unpushed,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::snapshot;
    use crate::{EncryptKey, ErrorKind, Kv, Options};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn device(dir: &Path, key: &EncryptKey) -> Kv {
        let mut options = Options::new();
        options.data_dir(dir).encrypt_keys(vec![key.clone()]);
        Kv::open_with("db", &options).unwrap()
    }

    fn pending(kv: &Kv) -> u64 {
        let store = kv.store().unwrap();
        let conn = store.reader().unwrap();
        local_state(&conn).unwrap().pending
    }

    fn sync_state_rows(kv: &Kv) -> Vec<(String, i64)> {
        let store = kv.store().unwrap();
        let conn = store.reader().unwrap();
        let mut stmt = conn
            .prepare("SELECT name, value FROM sync_state ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_set_changes_no_sync_state_row_and_its_counter_outlives_the_journal() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let kv = device(dir.path(), &key);
        kv.set("a", "1").unwrap();
        let before = sync_state_rows(&kv);
        kv.set("b", "2").unwrap();
        kv.set("a", "3").unwrap();
        // The counter is in the journal rows alone: the commit dirties no page of
        // `sync_state`.
        assert_eq!(sync_state_rows(&kv), before);
        let store = kv.store().unwrap();
        let state = local_state(&store.reader().unwrap()).unwrap();
        assert_eq!((state.write_seq, state.pending), (3, 2));

        // A confirmation empties the journal; the counter survives it, so the next
        // write is pending again instead of reusing a confirmed counter.
        confirm(&store, 3).unwrap();
        let state = local_state(&store.reader().unwrap()).unwrap();
        assert_eq!((state.write_seq, state.pending), (3, 0));
        let recorded = |kv: &Kv| {
            sync_state_rows(kv)
                .into_iter()
                .find(|(name, _)| name == "write_seq")
                .unwrap()
                .1
        };
        // What an older charm-kv reads as the counter never falls below a confirmed one.
        assert_eq!(recorded(&kv), 3);
        kv.set("c", "4").unwrap();
        let state = local_state(&store.reader().unwrap()).unwrap();
        assert_eq!((state.write_seq, state.pending), (4, 1));
    }

    #[test]
    fn closing_records_the_counter_where_an_older_version_or_a_copy_reads_it() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let kv = device(dir.path(), &key);
        for i in 0..3 {
            kv.set(format!("k{i}"), "v").unwrap();
        }
        let path = kv.store().unwrap().path().to_path_buf();
        kv.close().unwrap();
        let conn = Connection::open(&path).unwrap();
        let recorded: i64 = conn
            .query_row(
                "SELECT value FROM sync_state WHERE name = 'write_seq'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(recorded, 3);
    }

    #[test]
    fn a_journal_that_never_syncs_is_compacted_to_each_keys_newest_row() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let kv = device(dir.path(), &key);
        let journal_rows = |kv: &Kv| -> i64 {
            let store = kv.store().unwrap();
            let conn = store.reader().unwrap();
            conn.query_row("SELECT count(*) FROM sync_journal", [], |r| r.get(0))
                .unwrap()
        };
        // The same 1000 keys written again and again, in batches (a row per key under
        // one counter) and single sets (a row and a counter each).
        let mut most = 0;
        for round in 0..80 {
            let mut batch = kv.batch();
            for i in 0..1000 {
                batch.set(format!("k{i}"), format!("{round}"));
            }
            batch.commit().unwrap();
            kv.set("k0", "single").unwrap();
            most = most.max(journal_rows(&kv));
        }
        assert!(
            most <= 2 * 1000 + 65_536 + 1001,
            "the journal grew to {most} rows"
        );
        assert!(journal_rows(&kv) < 80 * 1001, "never compacted");
        // Compaction keeps what a sync must push: every key, pending.
        let store = kv.store().unwrap();
        let state = local_state(&store.reader().unwrap()).unwrap();
        assert_eq!(state.pending, 1000);
        assert_eq!(kv.get("k1").unwrap(), b"79");
    }

    #[test]
    fn snapshot_moves_data_and_keeps_local_writes_on_top() {
        let key = EncryptKey::generate();
        let (a_dir, b_dir, tmp) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let a = device(a_dir.path(), &key);
        a.set("shared", "from a").unwrap();
        a.set("only-a", "1").unwrap();
        let snap = tmp.path().join("snap.sqlite");
        let info = snapshot::create(&a.store().unwrap(), &snap, 9).unwrap();
        assert_eq!(info.included_seq, 2);

        let b = device(b_dir.path(), &key);
        b.set("shared", "from b, later").unwrap();
        b.set("only-b", "2").unwrap();
        b.delete("only-a").unwrap();
        assert_eq!(pending(&b), 3);
        let candidate = apply(&b.store().unwrap(), &snap, 9, Provenance::Server).unwrap();
        assert_eq!(candidate.max_version, 9);
        assert_eq!(b.store().unwrap().meta("max_version").unwrap(), Some(9));
        assert_eq!(candidate.our_mark, 0);
        assert_eq!(b.get("shared").unwrap(), b"from b, later");
        assert_eq!(b.get("only-b").unwrap(), b"2");
        assert_eq!(b.get("only-a").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(pending(&b), 3, "local writes stay pending after a restore");

        // The snapshot carries no local table.
        let conn = Connection::open(&snap).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sync_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn writes_already_in_the_snapshot_are_not_re_applied() {
        let key = EncryptKey::generate();
        let (dir, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let kv = device(dir.path(), &key);
        kv.set("k", "mine").unwrap();
        let mine = tmp.path().join("mine.sqlite");
        snapshot::create(&kv.store().unwrap(), &mine, 9).unwrap();

        // Another device restores it, overwrites k, and snapshots again.
        let other_dir = tempfile::tempdir().unwrap();
        let other = device(other_dir.path(), &key);
        apply(&other.store().unwrap(), &mine, 9, Provenance::Server).unwrap();
        other.set("k", "theirs").unwrap();
        let theirs = tmp.path().join("theirs.sqlite");
        snapshot::create(&other.store().unwrap(), &theirs, 10).unwrap();

        let candidate = apply(&kv.store().unwrap(), &theirs, 10, Provenance::Server).unwrap();
        assert_eq!(candidate.our_mark, 1, "the mark of our write travelled");
        assert_eq!(kv.get("k").unwrap(), b"theirs");
    }

    #[test]
    fn bad_candidates_leave_the_live_database_untouched() {
        let key = EncryptKey::generate();
        let (dir, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let kv = device(dir.path(), &key);
        kv.set("k", "v").unwrap();
        let snap = tmp.path().join("snap.sqlite");
        snapshot::create(&kv.store().unwrap(), &snap, 9).unwrap();
        let target_dir = tempfile::tempdir().unwrap();
        let target = device(target_dir.path(), &key);
        target.set("local", "safe").unwrap();
        let store = target.store().unwrap();

        let mut bytes = std::fs::read(&snap).unwrap();
        // Page 2 onwards holds the tables' b-trees: scribble over the page headers.
        let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
        assert!(bytes.len() >= 3 * page);
        bytes[page..page + 12].fill(0x5a);
        bytes[2 * page..2 * page + 12].fill(0x5a);
        let damaged = tmp.path().join("damaged.sqlite");
        std::fs::write(&damaged, &bytes).unwrap();
        let garbage = tmp.path().join("garbage.sqlite");
        std::fs::write(&garbage, vec![7u8; 4096]).unwrap();
        let with_view = tmp.path().join("view.sqlite");
        std::fs::copy(&snap, &with_view).unwrap();
        Connection::open(&with_view)
            .unwrap()
            .execute("CREATE VIEW v AS SELECT 1", [])
            .unwrap();
        let other_key = tmp.path().join("other-key.sqlite");
        let stranger_dir = tempfile::tempdir().unwrap();
        let stranger = device(stranger_dir.path(), &EncryptKey::generate());
        stranger.set("x", "y").unwrap();
        snapshot::create(&stranger.store().unwrap(), &other_key, 9).unwrap();

        for (file, kind) in [
            (&damaged, ErrorKind::Corrupt),
            (&garbage, ErrorKind::Corrupt),
            (&with_view, ErrorKind::Corrupt),
            (&other_key, ErrorKind::Keys),
        ] {
            let err = apply(&store, file, 9, Provenance::Server).unwrap_err();
            assert_eq!(err.kind(), kind, "{}: {err}", file.display());
            assert_eq!(target.get("local").unwrap(), b"safe");
            assert_eq!(target.keys().unwrap(), vec![b"local".to_vec()]);
        }
        // Still fully usable, and a good candidate still applies.
        target.set("after", "ok").unwrap();
        apply(&store, &snap, 9, Provenance::Server).unwrap();
        assert_eq!(target.get("k").unwrap(), b"v");
        assert_eq!(target.get("after").unwrap(), b"ok");
    }

    #[test]
    fn readers_on_other_handles_keep_reading_during_a_restore() {
        let key = EncryptKey::generate();
        let (dir, src_dir, tmp) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let source = device(src_dir.path(), &key);
        let mut batch = source.batch();
        for i in 0..3000 {
            batch.set(format!("k{i:05}"), vec![b'n'; 100]);
        }
        batch.commit().unwrap();
        let snap = tmp.path().join("snap.sqlite");
        snapshot::create(&source.store().unwrap(), &snap, 9).unwrap();

        let kv = device(dir.path(), &key);
        let mut batch = kv.batch();
        for i in 0..3000 {
            batch.set(format!("k{i:05}"), vec![b'o'; 100]);
        }
        batch.commit().unwrap();
        // A second, independent handle on the same file (as another process would be).
        let other = device(dir.path(), &key);
        let stop = Arc::new(AtomicBool::new(false));
        let (first_read, after_first_read) = std::sync::mpsc::channel();
        let reader = {
            let (other, stop) = (other.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut first = true;
                loop {
                    let keys = other.keys().unwrap();
                    assert!(
                        keys.len() == 3000,
                        "saw a half-applied restore: {}",
                        keys.len()
                    );
                    let v = other.get("k01234").unwrap();
                    assert!(v == vec![b'o'; 100] || v == vec![b'n'; 100]);
                    if std::mem::take(&mut first) {
                        first_read.send(()).unwrap();
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            })
        };
        // The restore starts once the reader reads (on a loaded machine a thread may
        // not run for a while), and the reader goes on until after it ends.
        after_first_read.recv().unwrap();
        confirm(&kv.store().unwrap(), i64::MAX).unwrap();
        apply(&kv.store().unwrap(), &snap, 9, Provenance::Server).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        reader.join().expect("every read saw a whole database");
        assert_eq!(other.get("k01234").unwrap(), vec![b'n'; 100]);
    }
}
