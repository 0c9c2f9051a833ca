//! What `charm-kv status` reports about one database: the last successful sync, pending
//! writes, the chain the local version belongs to, the file's size and a quick
//! integrity check, all read locally; and, only when asked, the server's newest version.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use super::Remote;
use crate::error::{Error, Result};
use crate::store::{schema, Store};

/// `sync_state` row: when the last successful sync ended, in Unix milliseconds.
pub const STATE_LAST_SYNC_MS: &str = "last_sync_ms";
/// `sync_state` row: the local version (`meta.max_version`) that sync ended at.
pub const STATE_LAST_SYNC_VERSION: &str = "last_sync_version";

/// A snapshot of a database's sync and storage state.
#[derive(Debug)]
pub struct StoreStatus {
    /// The last successful sync of this database file, if any.
    pub last_sync: Option<LastSync>,
    /// The server version the local copy is based on (0: never synced).
    pub local_version: u64,
    /// Local writes not yet confirmed on the server (as [`crate::Kv::pending_writes`]).
    pub pending_writes: u64,
    /// The full snapshot and deltas the local version is built from, if it came from
    /// or went to a server.
    pub chain: Option<ChainShape>,
    /// Bytes on disk: the database file and its write-ahead log.
    pub size_bytes: u64,
    /// What SQLite's `PRAGMA quick_check` found: empty when the file is sound.
    pub integrity_problems: Vec<String>,
    /// The server's side, when it was asked.
    pub remote: RemoteStatus,
}

/// When the last successful sync ended and at which version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastSync {
    pub at: SystemTime,
    /// The local version right after it.
    pub version: u64,
}

/// The delta chain the local version belongs to (`docs/sync.md`, "Deltas").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainShape {
    /// The version of the full snapshot the chain starts with.
    pub start: u64,
    /// Deltas on top of it.
    pub deltas: u64,
}

/// The server's side of a [`StoreStatus`].
#[derive(Debug)]
pub enum RemoteStatus {
    /// Local mode: no server to ask.
    NotConfigured,
    /// A server is configured but was not asked (a local status).
    NotChecked,
    /// The server answered; `newest_version` is its newest file (0: none).
    Reachable { newest_version: u64 },
    /// Asking the server failed, within the client's time limits.
    Unreachable(Error),
}

impl StoreStatus {
    /// Whether the integrity check found nothing wrong.
    pub fn integrity_ok(&self) -> bool {
        self.integrity_problems.is_empty()
    }
}

/// Records a successful sync: `meta.max_version` and the time it ended.
pub(crate) fn record_sync(store: &Store) -> Result<()> {
    let mut conn = store.writer();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version = schema::meta_get(&tx, schema::META_MAX_VERSION)?.unwrap_or(0);
    schema::state_set(&tx, STATE_LAST_SYNC_MS, unix_ms(SystemTime::now()))?;
    schema::state_set(&tx, STATE_LAST_SYNC_VERSION, version)?;
    tx.commit()?;
    Ok(())
}

/// The last successful sync recorded in the database at `conn`.
pub(crate) fn last_sync(conn: &Connection) -> Result<Option<LastSync>> {
    let at = schema::state_get_or(conn, STATE_LAST_SYNC_MS, -1)?;
    if at < 0 {
        return Ok(None);
    }
    let version = schema::state_get_or(conn, STATE_LAST_SYNC_VERSION, 0)?;
    Ok(Some(LastSync {
        at: UNIX_EPOCH + Duration::from_millis(at as u64),
        version: version.max(0) as u64,
    }))
}

/// Whether a sync is due: never synced, synced `max_age` or longer before `now`, or
/// at a time after `now` (the clock was set back: better one sync too many).
pub(crate) fn is_stale(last: Option<LastSync>, max_age: Duration, now: SystemTime) -> bool {
    match last {
        None => true,
        Some(last) => match now.duration_since(last.at) {
            Ok(age) => age >= max_age,
            Err(_) => true,
        },
    }
}

/// The local part of the status (no network); `remote` is filled by the caller.
pub(crate) fn local(conn: &Connection, path: &Path, remote: RemoteStatus) -> Result<StoreStatus> {
    // One read transaction: counters and versions from the same commit.
    let tx = conn.unchecked_transaction()?;
    let pending_writes = super::restore::local_state(&tx)?.pending;
    let meta =
        |name| -> Result<Option<u64>> { Ok(schema::meta_get(&tx, name)?.map(|v| v.max(0) as u64)) };
    let local_version = meta(schema::META_MAX_VERSION)?.unwrap_or(0);
    let chain = match (
        meta(schema::META_CHAIN_START)?,
        meta(schema::META_CHAIN_LENGTH)?,
    ) {
        (Some(start), Some(deltas)) if start > 0 => Some(ChainShape { start, deltas }),
        _ => None,
    };
    let last_sync = last_sync(&tx)?;
    let integrity_problems = quick_check(&tx)?;
    tx.finish()?;
    Ok(StoreStatus {
        last_sync,
        local_version,
        pending_writes,
        chain,
        size_bytes: size_on_disk(path)?,
        integrity_problems,
        remote,
    })
}

/// Asks `remote` for its newest file; any failure is the answer, not an error.
pub(crate) fn ask(remote: &dyn Remote) -> RemoteStatus {
    match remote.list() {
        Ok(files) => RemoteStatus::Reachable {
            newest_version: files.last().copied().unwrap_or(0),
        },
        Err(e) => RemoteStatus::Unreachable(e),
    }
}

/// `PRAGMA quick_check`: "ok", or up to 10 problems (it reads the whole file).
fn quick_check(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check(10)")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(match rows.as_slice() {
        [only] if only == "ok" => Vec::new(),
        _ => rows,
    })
}

/// The database file plus its write-ahead log (which holds recent commits until a
/// checkpoint moves them into the file).
fn size_on_disk(db: &Path) -> Result<u64> {
    let mut total = 0;
    let [file, wal, ..] = crate::store::names::db_files(db);
    for path in [file, wal] {
        match std::fs::metadata(&path) {
            Ok(meta) => total += meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }
    Ok(total)
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_counts_from_the_last_sync_and_distrusts_future_times() {
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let last = Some(LastSync { at, version: 3 });
        let minute = Duration::from_secs(60);
        assert!(is_stale(None, minute, at));
        assert!(!is_stale(last, minute, at + Duration::from_secs(59)));
        assert!(is_stale(last, minute, at + minute));
        assert!(is_stale(last, Duration::ZERO, at));
        assert!(is_stale(last, minute, at - Duration::from_secs(1)));
    }
}
