//! The on-disk schema and connection settings.
//!
//! `kv` and `meta` are exactly the designed tables. `meta` rows:
//! - `max_version`: the last Charm sequence this database is based on (0 = never synced).
//! - `key_check`: fingerprint of the encrypt key the database was created with
//!   (see `crypto::seal`), so wrong keys fail at open.
//! - `format`: version of charm-kv's at-rest row format (1).
//! - `writer:<device id>`: in uploaded snapshots, the last local write of that device the
//!   snapshot contains (see `docs/sync.md`).
//! - `chain_start`, `chain_length`: the full snapshot the remote version is built on and
//!   how many deltas follow it; `delta_base` (in delta files only): the version a delta
//!   applies to (`docs/sync.md`, "Deltas").
//!
//! Two local-only tables, never uploaded and kept across restores (`docs/sync.md`):
//! - `sync_journal(seq, key)`: the stored key of every local write with its local write
//!   counter, appended in counter order (a key written again gets another row; older
//!   rows of a key go when confirmed, or when the journal is compacted); what a restore
//!   must re-apply on top of a remote snapshot.
//! - `sync_state(name, value)`: `device_id`, `write_seq` (the last counter handed out,
//!   unless a journal row holds a greater one: see [`write_seq`]) and `uploaded_seq`
//!   (writes up to this counter are in a snapshot we uploaded); the last successful sync
//!   (`crate::sync::status`).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::durability::Durability;
use crate::crypto::seal::Sealer;
use crate::error::{Error, Result};

pub const CREATE_KV: &str =
    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID";
pub const CREATE_META: &str =
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID";

/// Keyed by counter first, so a commit appends at the end of the B-tree instead of
/// landing at as many random places as it has keys (stored keys are random): half the
/// pages a batch dirtied before went to the journal.
pub const CREATE_SYNC_JOURNAL: &str = "CREATE TABLE IF NOT EXISTS sync_journal \
     (seq INTEGER NOT NULL, key BLOB NOT NULL, PRIMARY KEY (seq, key)) WITHOUT ROWID";
pub const CREATE_SYNC_STATE: &str = "CREATE TABLE IF NOT EXISTS sync_state \
     (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID";
/// Every stored key changed since `sync_state.changes_since`, with the remote version
/// that changed it last (deletions included): what a delta one level up holds.
pub const CREATE_SYNC_CHANGES: &str = "CREATE TABLE IF NOT EXISTS sync_changes \
     (key BLOB PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID";

pub const STATE_DEVICE_ID: &str = "device_id";
pub const STATE_WRITE_SEQ: &str = "write_seq";
pub const STATE_UPLOADED_SEQ: &str = "uploaded_seq";
/// Local writes up to this counter are in the newest file of the server (as of the last
/// sync): confirmed. Absent in databases from before it existed (then `uploaded_seq`).
pub const STATE_CONFIRMED_SEQ: &str = "confirmed_seq";
/// `sync_changes` holds every change after this version (absent: it is incomplete, as
/// in a database from before it existed, until the next full snapshot).
pub const STATE_CHANGES_SINCE: &str = "changes_since";
/// 1 once this device has seen its `meta.db_id` in a file on the server (restored one,
/// or its own upload confirmed); until then a file with another id replaces it (two
/// devices' first pushes raced).
pub const STATE_DB_ID_CONFIRMED: &str = "db_id_confirmed";

pub const META_MAX_VERSION: &str = "max_version";
pub const META_KEY_CHECK: &str = "key_check";
pub const META_FORMAT: &str = "format";
pub const FORMAT_VERSION: i64 = 1;
/// The `format` of an uploaded delta: the changes since `delta_base`, not a whole
/// database. A charm-kv that predates deltas rejects it instead of taking it for one.
pub const DELTA_FORMAT: i64 = 2;
pub const META_DELTA_BASE: &str = "delta_base";
pub const META_CHAIN_START: &str = "chain_start";
pub const META_CHAIN_LENGTH: &str = "chain_length";
/// Random id of the database, minted by its first push and inherited by every file and
/// device: a file of another database is refused.
pub const META_DB_ID: &str = "db_id";

/// How long a writer waits for another process's write lock before giving up with
/// `Error::Busy`. Normal contention (many writers, short transactions) stays far below.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest pause between two tries for a lock another connection holds.
const BUSY_POLL_MAX: Duration = Duration::from_millis(2);

/// Waits for a lock another connection holds, like `busy_timeout(BUSY_TIMEOUT)` but
/// polling faster. SQLite's own handler backs off to 100 ms between tries: a process
/// waiting while others commit back to back rarely tries in the short gap between two
/// of their transactions: in the contention test (3 processes x 4 threads) the slowest
/// operation took 0.6–1.4 s; with pauses of 50 µs doubling up to 2 ms, 0.14–0.31 s at
/// the same throughput (docs/storage.md).
/// `tries` counts this wait's earlier calls, as for SQLite's handler; the pauses it
/// has asked for add up to the timeout (sleeps are never shorter, so the real wait is
/// at least [`BUSY_TIMEOUT`]).
fn wait_while_busy(tries: i32) -> bool {
    match busy_pause(u32::try_from(tries).unwrap_or(0)) {
        Some(pause) => {
            std::thread::sleep(pause);
            true
        }
        None => false,
    }
}

/// The pause before try `tries + 1` of one wait, or `None` once the pauses asked for
/// reach [`BUSY_TIMEOUT`].
fn busy_pause(tries: u32) -> Option<Duration> {
    let pause = |n: u32| (Duration::from_micros(50) * 2u32.saturating_pow(n)).min(BUSY_POLL_MAX);
    // Pauses double up to try `ramp`, then stay at the maximum.
    let ramp = (0..).find(|&n| pause(n) == BUSY_POLL_MAX).expect("the pause reaches its cap");
    let asked_before = if tries <= ramp {
        (0..tries).map(pause).sum()
    } else {
        (0..ramp).map(pause).sum::<Duration>() + BUSY_POLL_MAX * (tries - ramp)
    };
    (asked_before < BUSY_TIMEOUT).then(|| pause(tries))
}

/// Sets how `conn` waits for a lock of another connection to the same file.
pub fn wait_for_locks(conn: &Connection) -> Result<()> {
    conn.busy_handler(Some(wait_while_busy))?;
    Ok(())
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The one writer connection of a store.
    Writer,
    /// A pooled reader connection (`query_only`).
    Reader,
}

impl Role {
    /// SQLite page cache limit, KiB: an upper bound, filled as pages are read.
    /// Encrypted keys land at random places in the B-trees, so a batch touches pages all
    /// over the file: with SQLite's default 2 MiB a 10k-row batch into 100k rows spent
    /// most of its time re-reading and spilling pages (1.6x faster with 32 MiB). Point
    /// reads likewise: a 100k-key database (about 22 MB) fits a reader's 32 MiB, and
    /// with 8 MiB a get cost 10% more (a `pread` per missed page). Each connection has
    /// its own cache (docs/storage.md, "SQLite build"); readers are up to 8.
    pub fn cache_kib(self) -> i64 {
        match self {
            Role::Writer | Role::Reader => 32 * 1024,
        }
    }
}

/// WAL pages after which a commit checkpoints the WAL into the database (SQLite's
/// default is 1000, 4 MiB). Encrypted keys scatter a batch over the B-trees: a
/// 1000-key batch into 100k rows dirties about 1600 pages (`kv` and `sync_journal`), so
/// with the default every such commit also checkpointed, writing each page twice. At
/// 8192 pages (32 MiB) checkpoints come every few batches and write a page once for
/// all the commits that changed it: 1.6x the batch throughput at 100k keys (measured
/// side by side, docs/storage.md). The WAL file may grow to about that size.
pub const WRITER_CHECKPOINT_PAGES: i64 = 8192;

/// How a connection opens the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-write, creating the file if missing: a plain path.
    ReadWrite,
    /// `SQLITE_OPEN_READONLY`, a plain path: the file must exist and nothing is written
    /// to it. A WAL-mode file still needs its `-wal` and `-shm` to exist or be creatable.
    ReadOnly,
    /// `SQLITE_OPEN_READONLY` with `immutable=1`, through a URI built here from the
    /// absolute path: SQLite reads the file alone, with no lock, no `-wal` and no
    /// `-shm`, and assumes nobody changes it (docs/storage.md, "Read-only handles").
    /// Only for a WAL-mode file without its `-wal` where those files cannot be made.
    Immutable,
}

/// Opens a read-write connection to the database at `path` (created if missing) with
/// the pragmas every connection uses.
///
/// `synchronous` follows `durability`: with `FULL` (the default) each commit fsyncs the
/// WAL, so an acknowledged write survives the process being killed and the machine
/// losing power; `NORMAL` survives a killed process but may lose the last commits on
/// power loss.
pub fn connect(path: &Path, role: Role, durability: Durability) -> Result<Connection> {
    connect_with(path, role, durability, Access::ReadWrite)
}

/// [`connect`] with the given access; a read-only one writes nothing (not even a
/// journal mode).
pub fn connect_with(
    path: &Path,
    role: Role,
    durability: Durability,
    access: Access,
) -> Result<Connection> {
    let read_only = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = match access {
        // A plain path, never a URI: `file:x?mode=memory` is a file name like any other.
        Access::ReadWrite => Connection::open_with_flags(
            plain_path(path),
            OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE,
        )?,
        Access::ReadOnly => Connection::open_with_flags(plain_path(path), read_only)?,
        // The one URI charm-kv opens, and it builds every byte of it.
        Access::Immutable => Connection::open_with_flags(
            immutable_uri(path)?,
            read_only | OpenFlags::SQLITE_OPEN_URI,
        )?,
    };
    wait_for_locks(&conn)?;
    conn.pragma_update(None, "synchronous", durability.synchronous())?;
    // Negative: a size in KiB rather than in pages.
    conn.pragma_update(None, "cache_size", -role.cache_kib())?;
    if role == Role::Reader || access != Access::ReadWrite {
        conn.pragma_update(None, "query_only", true)?;
    }
    if role == Role::Writer {
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
    }
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// `file:` URI opening `path` with `immutable=1`. Every byte of the absolute path is
/// percent-encoded, so nothing in it (`?`, `#`, `%`, a `file:` component, a non-UTF-8
/// byte) can add a parameter or name another file: SQLite decodes it back to exactly
/// these bytes.
pub fn immutable_uri(path: &Path) -> Result<String> {
    use std::fmt::Write;
    let absolute = std::path::absolute(path)
        .map_err(|e| Error::io(format!("resolving {}", path.display()), e))?;
    let bytes = absolute.as_os_str().as_encoded_bytes();
    let mut uri = String::with_capacity(5 + 3 * bytes.len() + 12);
    uri.push_str("file:");
    for byte in bytes {
        write!(uri, "%{byte:02X}").expect("writing to a String");
    }
    uri.push_str("?immutable=1");
    Ok(uri)
}

/// `path` in a form SQLite never reads as a URI. The bundled SQLite is built with
/// `SQLITE_USE_URI`, so any name starting with `file:` is a URI even without
/// `SQLITE_OPEN_URI` (`file:victim.db` would open `victim.db`, `file:b?mode=memory` no
/// file at all): a relative path gets a `./` prefix; absolute paths start with `/`.
pub fn plain_path(path: &Path) -> std::borrow::Cow<'_, Path> {
    if path.is_relative() {
        std::borrow::Cow::Owned(Path::new(".").join(path))
    } else {
        std::borrow::Cow::Borrowed(path)
    }
}

/// Opens a new file `path` (created exclusively, mode 0600) for a temporary database
/// that sync fills and uploads: no fsyncs and the rollback journal in memory, since a
/// failure discards the file. `path` is a plain path, never a URI.
pub fn open_scratch(path: &Path) -> Result<Connection> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_READ_WRITE;
    let conn = Connection::open_with_flags(plain_path(path), flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "trusted_schema", false)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "journal_mode", "MEMORY")?;
    Ok(conn)
}

/// Prepares a writer connection: WAL mode, the designed tables, the meta rows, and the
/// checks that this is our database and our keys open it.
pub fn initialize(conn: &mut Connection, sealer: &Sealer) -> Result<()> {
    // Snapshots from a server are attached to this connection: never let a schema
    // object in one run SQL functions with side effects.
    conn.pragma_update(None, "trusted_schema", false)?;
    // Before anything is written (switching to WAL rewrites the file header): only an
    // empty database or a charm-kv one, of this version or an older one, is adopted.
    check_ours(conn)?;
    // A file stays in WAL mode when closed: only a new one, or one an older charm-kv
    // closed in rollback mode, is switched (a journal transaction with fsyncs).
    let current: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    let mode = if current.eq_ignore_ascii_case("wal") {
        current
    } else {
        switch_to_wal(conn)?
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::internal(format!(
            "SQLite refused WAL mode (journal_mode is {mode})"
        )));
    }
    // An existing database only needs reading: no write transaction (and no fsync) at
    // every open.
    if is_complete(conn)? {
        return verify(conn, sealer);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let existing: i64 = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sync_state'",
        [],
        |r| r.get(0),
    )?;
    tx.execute(CREATE_KV, [])?;
    tx.execute(CREATE_META, [])?;
    let insert = "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)";
    tx.execute(insert, (META_MAX_VERSION, 0i64))?;
    tx.execute(insert, (META_KEY_CHECK, sealer.writer().check()))?;
    tx.execute(insert, (META_FORMAT, FORMAT_VERSION))?;
    migrate_journal(&tx)?;
    tx.execute(CREATE_SYNC_JOURNAL, [])?;
    tx.execute(CREATE_SYNC_STATE, [])?;
    let insert_state = "INSERT OR IGNORE INTO sync_state (name, value) VALUES (?1, ?2)";
    // Random and non-negative, so it prints the same everywhere.
    let device_id = (rand::random::<u64>() >> 1) as i64;
    tx.execute(insert_state, (STATE_DEVICE_ID, device_id))?;
    tx.execute(insert_state, (STATE_WRITE_SEQ, 0i64))?;
    tx.execute(insert_state, (STATE_UPLOADED_SEQ, 0i64))?;
    // A database from before confirmed_seq: what it uploaded counted as confirmed.
    tx.execute(
        "INSERT OR IGNORE INTO sync_state (name, value) \
         SELECT ?1, value FROM sync_state WHERE name = ?2",
        (STATE_CONFIRMED_SEQ, STATE_UPLOADED_SEQ),
    )?;
    tx.execute(CREATE_SYNC_CHANGES, [])?;
    if existing == 0 {
        // A new, empty database: no change it does not know of.
        tx.execute(insert_state, (STATE_CHANGES_SINCE, 0i64))?;
    }
    verify(&tx, sealer)?;
    tx.commit()?;
    Ok(())
}

/// Checks a read-only connection as [`initialize`] does a writer, without writing:
/// only a complete charm-kv database of this format that `sealer`'s keys open passes.
/// One that [`initialize`] would still have to complete (an empty file, or one from an
/// older charm-kv) is [`Error::ReadOnly`].
pub fn check_read_only(conn: &Connection, sealer: &Sealer) -> Result<()> {
    conn.pragma_update(None, "trusted_schema", false)?;
    check_ours(conn)?;
    if !is_complete(conn)? {
        return Err(Error::read_only(
            "the database is empty or from an older charm-kv and needs writing first: \
             open it once read-write",
        ));
    }
    verify(conn, sealer)
}

/// `PRAGMA journal_mode=WAL`, retried: on a brand-new file that several connections
/// open at once, SQLite answers "database is locked" at once instead of waiting for the
/// busy timeout.
fn switch_to_wal(conn: &Connection) -> Result<String> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
            Ok(mode) => return Ok(mode),
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Every table a charm-kv database may hold; older versions had a subset (at least `kv`
/// and `meta`), and nothing else. A new table must be added here, or databases holding
/// it are refused as foreign by [`check_ours`].
const OUR_TABLES: [&str; 5] = ["kv", "meta", "sync_journal", "sync_state", "sync_changes"];

/// Fails with [`Error::Corrupt`] unless the database is empty or holds only our tables
/// (`kv` and `meta` at least, with their designed columns): a foreign SQLite database,
/// or one with a view or an index of its own, is never adopted.
pub(crate) fn check_ours(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare("SELECT type, name FROM main.sqlite_master")?;
    let objects: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if objects.is_empty() {
        return Ok(());
    }
    for (kind, name) in &objects {
        // SQLite's own objects (`sqlite_stat1` after an ANALYZE, say) are not foreign:
        // the `sqlite_` prefix is reserved, so nothing else can carry it.
        let ours = (kind == "table" && OUR_TABLES.contains(&name.as_str()))
            || ((kind == "table" || kind == "index") && name.starts_with("sqlite_"));
        if !ours {
            return Err(Error::corrupt(format!(
                "the database holds the {} {}: not a charm-kv database",
                crate::error::quoted(kind),
                crate::error::quoted(name)
            )));
        }
    }
    for table in ["kv", "meta"] {
        if !objects.iter().any(|(_, name)| name == table) {
            return Err(Error::corrupt(format!(
                "the database has no {table} table: not a charm-kv database"
            )));
        }
    }
    check_columns(conn)
}

/// `sync_state` rows counting journal rows for compaction: the rows the last compaction
/// left, the write counter it ran at, and the rows appended since beyond one per
/// counter (a batch appends a row per key under one counter). A set appends one row
/// under a new counter, so it counts itself without writing a row here.
/// (`journal_appended` was a running total written by every commit before; it is no
/// longer read.)
const STATE_JOURNAL_COMPACTED: &str = "journal_compacted";
const STATE_JOURNAL_COMPACTED_AT: &str = "journal_compacted_at";
const STATE_JOURNAL_EXTRA: &str = "journal_extra";
/// Single sets check for compaction when their counter is a multiple of this.
const JOURNAL_CHECK_EVERY: i64 = 64;

/// Counts `appended` new journal rows written under counter `seq`, and compacts the
/// journal (only each key's newest row stays) once it has grown past twice what the
/// last compaction left, plus 64k rows: a database that never syncs (local mode) keeps
/// every write's row otherwise. The cost is one scan now and then, amortised over the
/// rows appended since.
pub fn note_journal_rows(conn: &Connection, seq: i64, appended: i64) -> Result<()> {
    if appended <= 1 && seq % JOURNAL_CHECK_EVERY != 0 {
        // A single set: checked every so many counters (three reads saved per set).
        return Ok(());
    }
    let left = state_get_or(conn, STATE_JOURNAL_COMPACTED, 0)?;
    let since = state_get_or(conn, STATE_JOURNAL_COMPACTED_AT, 0)?;
    let extra = state_get_or(conn, STATE_JOURNAL_EXTRA, 0)? + (appended - 1).max(0);
    let total = left + (seq - since) + extra;
    if total <= 2 * left + 65_536 {
        if appended > 1 {
            state_set(conn, STATE_JOURNAL_EXTRA, extra)?;
        }
        return Ok(());
    }
    fold_write_seq(conn)?;
    conn.execute_batch(
        "DELETE FROM sync_journal WHERE (seq, key) NOT IN \
         (SELECT max(seq), key FROM sync_journal GROUP BY key)",
    )?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM sync_journal", [], |r| r.get(0))?;
    state_set(conn, STATE_JOURNAL_COMPACTED, rows)?;
    state_set(conn, STATE_JOURNAL_COMPACTED_AT, seq)?;
    state_set(conn, STATE_JOURNAL_EXTRA, 0)
}

/// The counter of the last local write: the newest journal row's, or
/// `sync_state.write_seq` when that is greater (the journal may be empty).
///
/// A set records its counter only in its journal row, which saves the commit a page
/// (docs/storage.md, "Durability and concurrency"). Whatever deletes journal rows,
/// records counters as uploaded or stamps a snapshot first folds the counter into
/// `sync_state` ([`fold_write_seq`]), and so does closing a store,
/// so `sync_state.write_seq` never falls below a counter the server counts as
/// included: an older charm-kv, which reads only `sync_state`, still hands out
/// counters above every uploaded one.
pub fn write_seq(conn: &Connection) -> Result<i64> {
    let recorded = state_get(conn, STATE_WRITE_SEQ)?;
    let journaled: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM sync_journal")?
        .query_row([], |r| r.get(0))?;
    Ok(journaled.map_or(recorded, |journaled| journaled.max(recorded)))
}

/// Records [`write_seq`] in `sync_state` (in the caller's write transaction) and
/// returns it: before journal rows are deleted or a counter is recorded as uploaded.
pub fn fold_write_seq(conn: &Connection) -> Result<i64> {
    let seq = write_seq(conn)?;
    if state_get(conn, STATE_WRITE_SEQ)? != seq {
        state_set(conn, STATE_WRITE_SEQ, seq)?;
    }
    Ok(seq)
}

/// Whether `sync_journal` has the current layout (keyed by counter, then key).
fn journal_is_by_counter(conn: &Connection) -> Result<bool> {
    let first: Option<String> = conn
        .query_row(
            "SELECT name FROM pragma_table_info('sync_journal') WHERE pk = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(first.as_deref() == Some("seq"))
}

/// Rewrites a journal of the earlier layout (`key` primary key, one row per key) in the
/// current one, inside the caller's transaction.
fn migrate_journal(conn: &Connection) -> Result<()> {
    let exists: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sync_journal'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 || journal_is_by_counter(conn)? {
        return Ok(());
    }
    conn.execute_batch("ALTER TABLE sync_journal RENAME TO sync_journal_earlier;")?;
    conn.execute(CREATE_SYNC_JOURNAL, [])?;
    conn.execute_batch(
        "INSERT INTO sync_journal (seq, key) SELECT seq, key FROM sync_journal_earlier;
         DROP TABLE sync_journal_earlier;",
    )?;
    Ok(())
}

/// Whether all tables and the rows `initialize` creates exist.
fn is_complete(conn: &Connection) -> Result<bool> {
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
         AND name IN ('kv', 'meta', 'sync_journal', 'sync_state', 'sync_changes')",
        [],
        |r| r.get(0),
    )?;
    if tables != 5 || !journal_is_by_counter(conn)? {
        return Ok(false);
    }
    let rows: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM meta WHERE name IN ('max_version', 'key_check', 'format')) \
              + (SELECT count(*) FROM sync_state \
                 WHERE name IN ('device_id', 'write_seq', 'uploaded_seq'))",
        [],
        |r| r.get(0),
    )?;
    Ok(rows == 6)
}

/// Checks shape, format and keys of an open database (also used on restore candidates).
pub fn verify(conn: &Connection, sealer: &Sealer) -> Result<()> {
    verify_formats(conn, sealer, &[FORMAT_VERSION]).map(|_| ())
}

/// [`verify`], accepting any of `formats`; returns the file's.
pub fn verify_formats(conn: &Connection, sealer: &Sealer, formats: &[i64]) -> Result<i64> {
    check_columns(conn)?;
    let format = match meta_get(conn, META_FORMAT)? {
        Some(format) if formats.contains(&format) => format,
        other => {
            return Err(Error::corrupt(format!(
                "database format {other:?} is not supported by this charm-kv (expects {formats:?})"
            )))
        }
    };
    match meta_get(conn, META_KEY_CHECK)? {
        Some(check) if sealer.knows_check(check) => Ok(format),
        Some(_) => Err(Error::keys(
            "the database was encrypted with an encrypt key this account does not have",
        )),
        None => Err(Error::corrupt("database has no key_check row")),
    }
}

/// `kv` and `meta` have exactly their designed columns.
fn check_columns(conn: &Connection) -> Result<()> {
    for (table, columns) in [("kv", ["key", "value"]), ("meta", ["name", "value"])] {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let found: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<_>>()?;
        if found != columns {
            let found: Vec<String> = found.iter().map(|c| crate::error::quoted(c)).collect();
            return Err(Error::corrupt(format!(
                "table {table} has columns [{}], expected {columns:?}: not a charm-kv database",
                found.join(", ")
            )));
        }
    }
    Ok(())
}

pub fn meta_get(conn: &Connection, name: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

pub fn meta_set(conn: &Connection, name: &str, value: i64) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)")?
        .execute((name, value))?;
    Ok(())
}

/// A `BEGIN IMMEDIATE` transaction through cached statements: rusqlite's
/// `Transaction` parses `BEGIN` and `COMMIT` anew each time, a measurable part of a
/// single set. Rolled back on drop unless committed.
pub struct WriteTransaction<'c> {
    conn: &'c Connection,
    committed: bool,
}

impl<'c> WriteTransaction<'c> {
    pub fn begin(conn: &'c Connection) -> Result<WriteTransaction<'c>> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(WriteTransaction {
            conn,
            committed: false,
        })
    }

    pub fn commit(mut self) -> Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for WriteTransaction<'_> {
    fn drop(&mut self) {
        if !self.committed && !self.conn.is_autocommit() {
            // Best effort, as rusqlite's own: a failed rollback leaves SQLite to roll
            // the transaction back when the connection next begins one or closes.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

pub fn state_get(conn: &Connection, name: &str) -> Result<i64> {
    conn.prepare_cached("SELECT value FROM sync_state WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::corrupt(format!("sync_state has no {name} row")))
}

/// A `sync_state` value, or `default` when the row is absent.
pub fn state_get_or(conn: &Connection, name: &str, default: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT value FROM sync_state WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .unwrap_or(default))
}

pub fn state_set(conn: &Connection, name: &str, value: i64) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO sync_state (name, value) VALUES (?1, ?2)")?
        .execute((name, value))?;
    Ok(())
}

/// Where the database file lies (file system and inode). A copy of the file, or a
/// backup put in its place, lies elsewhere: it must write as a new device, or both
/// copies would reuse sequence numbers that the server already counts as included.
pub const STATE_FILE_IDENTITY: &str = "file_identity";
/// Prefix of `sync_state` rows `former:<device id>` = the `write_seq` at which this file
/// stopped writing as that device.
const FORMER_PREFIX: &str = "former:";

/// Gives the database file a new device id if it was copied or restored from a backup
/// since the last open (its file identity changed), remembering the old id as former.
/// Cheap when nothing changed: one `stat` and one row read.
pub fn claim_file_identity(conn: &mut Connection, path: &Path) -> Result<()> {
    let Some(identity) = file_identity(path)? else {
        return Ok(());
    };
    if state_get_or(conn, STATE_FILE_IDENTITY, !identity)? == identity {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let recorded: Option<i64> = tx
        .query_row(
            "SELECT value FROM sync_state WHERE name = ?1",
            [STATE_FILE_IDENTITY],
            |r| r.get(0),
        )
        .optional()?;
    match recorded {
        Some(recorded) if recorded == identity => {}
        // First open by a version that records it: this file is this device's.
        None => state_set(&tx, STATE_FILE_IDENTITY, identity)?,
        Some(_) => {
            let old = state_get(&tx, STATE_DEVICE_ID)?;
            let upto = write_seq(&tx)?;
            state_set(&tx, &format!("{FORMER_PREFIX}{old}"), upto)?;
            state_set(&tx, STATE_DEVICE_ID, (rand::random::<u64>() >> 1) as i64)?;
            state_set(&tx, STATE_FILE_IDENTITY, identity)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The device ids this file wrote as before, each with the last `write_seq` it wrote.
pub fn former_device_ids(conn: &Connection) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, value FROM main.sync_state WHERE name >= 'former:' AND name < 'former;'",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut found = Vec::new();
    for row in rows {
        let (name, upto) = row?;
        let id = name[FORMER_PREFIX.len()..]
            .parse()
            .map_err(|_| Error::corrupt(format!("sync_state has a malformed row {name:?}")))?;
        found.push((id, upto));
    }
    Ok(found)
}

#[cfg(unix)]
fn file_identity(path: &Path) -> Result<Option<i64>> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::metadata(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mixed = meta.dev().wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ meta.ino();
    Ok(Some((mixed >> 1) as i64))
}

/// Elsewhere the standard library has no stable file identity: copies are not detected.
#[cfg(not(unix))]
fn file_identity(_path: &Path) -> Result<Option<i64>> {
    Ok(None)
}

/// The `meta` name of a device's writer mark.
pub fn writer_mark(device_id: i64) -> String {
    format!("writer:{device_id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_transaction_not_committed_is_rolled_back_and_the_next_one_begins() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        {
            let _tx = WriteTransaction::begin(&conn).unwrap();
            conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
            // Dropped here, as on an error half-way through a write.
        }
        assert!(conn.is_autocommit(), "the transaction was left open");
        let tx = WriteTransaction::begin(&conn).unwrap();
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        tx.commit().unwrap();
        let rows: Vec<i64> = conn
            .prepare("SELECT x FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, [2]);
    }

    #[test]
    fn lock_waits_poll_fast_and_give_up_at_the_busy_timeout() {
        let pauses: Vec<Duration> = (0..).map_while(busy_pause).collect();
        let micros: Vec<u128> = pauses.iter().take(8).map(Duration::as_micros).collect();
        assert_eq!(micros, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        let asked: Duration = pauses.iter().sum();
        assert!(asked >= BUSY_TIMEOUT && asked < BUSY_TIMEOUT + BUSY_POLL_MAX, "{asked:?}");
        assert_eq!(busy_pause(u32::MAX), None);
    }

    #[test]
    fn a_writer_waits_for_another_connections_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let holder = connect(&path, Role::Writer, Durability::Full).unwrap();
        switch_to_wal(&holder).unwrap();
        holder.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let waiter = connect(&path, Role::Writer, Durability::Full).unwrap();
        let tx = WriteTransaction::begin(&holder).unwrap();
        holder.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let waiting = std::thread::spawn(move || {
            let tx = WriteTransaction::begin(&waiter).unwrap();
            waiter.execute("INSERT INTO t VALUES (2)", []).unwrap();
            tx.commit().unwrap();
            std::time::Instant::now()
        });
        std::thread::sleep(Duration::from_millis(100));
        let released = std::time::Instant::now();
        tx.commit().unwrap();
        let wrote = waiting.join().unwrap();
        assert!(wrote >= released, "wrote while the lock was held");
        let rows: i64 = holder.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2);
    }

    #[test]
    fn the_immutable_uri_encodes_every_byte_and_opens_exactly_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("file:x?mode=memory&immutable=0#f %41 ü");
        std::fs::create_dir(&odd).unwrap();
        let path = odd.join("db?vfs=none");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42)")
            .unwrap();
        drop(conn);
        let uri = immutable_uri(&path).unwrap();
        let encoded = uri
            .strip_prefix("file:")
            .and_then(|rest| rest.strip_suffix("?immutable=1"))
            .unwrap();
        assert_eq!(encoded.len(), 3 * path.as_os_str().len(), "{uri}");
        assert!(
            encoded
                .as_bytes()
                .chunks(3)
                .all(|c| c[0] == b'%' && c[1..].iter().all(u8::is_ascii_hexdigit)),
            "{uri}"
        );
        let conn = connect_with(&path, Role::Reader, Durability::Full, Access::Immutable).unwrap();
        let x: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 42);
        // A relative path is made absolute first.
        let relative = immutable_uri(Path::new("a.db")).unwrap();
        assert!(relative.starts_with("file:%2F"), "{relative}");
    }
}
