//! The local SQLite database: one writer connection, a pool of reader connections,
//! and the row encryption in between.
//!
//! WAL mode lets readers run while a writer commits; the writer connection is behind a
//! mutex so writes from one process are serialised, and `BEGIN IMMEDIATE` plus a busy
//! timeout serialises writers of different processes.

mod durability;
pub mod expiry;
pub mod iter;
pub mod names;
pub mod open_lock;
pub mod range;
pub(crate) mod relocate;
pub mod schema;

use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use std::collections::HashMap;

use crate::crypto::seal::{
    has_expiry, stored_value_len, RowCipher, Sealer, KEY_OVERHEAD, VALUE_OVERHEAD,
};
use crate::error::{Error, Result};

pub use durability::Durability;
pub use expiry::Clock;
use expiry::ExpiryIndex;
pub use iter::{Direction, Iter};
pub use range::KeyRange;

/// Largest key accepted, in bytes (Badger's limit was about 64 KiB too).
pub const MAX_KEY_LEN: usize = 65_000;
/// Largest value accepted, in bytes: SQLite's default blob limit (1e9) minus our overhead
/// (the margin of `KEY_OVERHEAD` also covers the 8 bytes of an expiry: format 0x02).
pub const MAX_VALUE_LEN: usize = 1_000_000_000 - VALUE_OVERHEAD - KEY_OVERHEAD;
/// Reader connections kept open when idle.
const MAX_IDLE_READERS: usize = 8;
/// The sorted plaintext key list is kept for the next listing while it is at most
/// this large (key bytes plus per-key bookkeeping): above it, each listing decrypts.
/// A million 16-byte keys count 40 MB: prefix listings stay binary searches there.
const KEYS_CACHE_MAX_BYTES: usize = 64 << 20;

/// One change of a write: `Some(value)` sets, `None` deletes. A set with `expires_at`
/// (unix milliseconds) expires then; one whose expiry has already passed deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub expires_at: Option<u64>,
}

impl Op {
    /// Sets `key` to `value`, without expiry.
    pub fn set(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Op {
        Op {
            key: key.into(),
            value: Some(value.into()),
            expires_at: None,
        }
    }

    /// Deletes `key`.
    pub fn delete(key: impl Into<Vec<u8>>) -> Op {
        Op {
            key: key.into(),
            value: None,
            expires_at: None,
        }
    }
}

/// Where [`Kv::get_into`](crate::Kv::get_into) left the value.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The value is the first `n` bytes of the caller's buffer.
    InBuffer(usize),
    /// The value did not fit the buffer.
    Owned(Vec<u8>),
}

/// An open database file.
pub struct Store {
    path: PathBuf,
    sealer: Sealer,
    durability: Durability,
    /// How every connection opens the file: not [`schema::Access::ReadWrite`] when
    /// opened by [`Store::open_read_only`] (then [`Store::write`] refuses).
    access: schema::Access,
    writer: Mutex<Connection>,
    idle_readers: Mutex<Vec<ReaderConn>>,
    next_reader_id: AtomicU64,
    keys_cache: Mutex<Option<KeysCache>>,
    /// What reads compare expiries with.
    clock: Clock,
    /// Keys known to expire, which writes purge when due.
    expiring: Mutex<ExpiryIndex>,
    /// Held while any connection of this store is open: the last field, so dropped
    /// after them.
    open_lock: Option<open_lock::OpenLock>,
}

/// A reader connection and its identity in this store (for the keys cache).
struct ReaderConn {
    id: u64,
    conn: Connection,
}

/// The last full key listing, valid while `PRAGMA data_version` on reader `reader_id`
/// still returns `data_version`: SQLite changes it whenever another connection (our
/// writer, another process, a restore from sync) has committed since, and reader
/// connections never write. Decrypting every key was most of a listing's cost.
struct KeysCache {
    reader_id: u64,
    data_version: i64,
    list: KeyList,
}

/// Every plaintext key of a snapshot, sorted, with the expiries of those that have one
/// (learnt from the format byte of each row; only those rows are decrypted). Which keys
/// are visible is decided when it is read, by the clock then, so a cached list never
/// outlives an expiry.
#[derive(Clone, Default)]
pub(crate) struct KeyList {
    keys: Arc<Vec<Vec<u8>>>,
    expiries: Arc<HashMap<Vec<u8>, u64>>,
    earliest: Option<u64>,
    /// The last list without the expired keys, shared by the clones of this list (the
    /// cached one among them), so listings after an expiry filter once, not each time.
    unexpired: Arc<Mutex<Option<Unexpired>>>,
}

/// The keys of a [`KeyList`] without those expired at some moment: the visible keys at
/// every moment from `since` (the latest expiry it left out) until `until` (the next
/// expiry among the keys it kept, if any), as no expiry lies in between.
struct Unexpired {
    since: u64,
    until: Option<u64>,
    keys: Arc<Vec<Vec<u8>>>,
}

impl KeyList {
    fn new(mut keys: Vec<Vec<u8>>, expiries: HashMap<Vec<u8>, u64>) -> KeyList {
        keys.sort_unstable();
        KeyList {
            keys: Arc::new(keys),
            earliest: expiries.values().copied().min(),
            expiries: Arc::new(expiries),
            unexpired: Arc::default(),
        }
    }

    /// The keys not expired at `now_ms`: the list itself (no copy) until the first
    /// expiry in it passes, then one filtered copy until the next expiry passes.
    pub(crate) fn visible(&self, now_ms: u64) -> Arc<Vec<Vec<u8>>> {
        match self.earliest {
            Some(earliest) if earliest <= now_ms => {}
            _ => return Arc::clone(&self.keys),
        }
        let mut unexpired = lock(&self.unexpired);
        if let Some(list) = unexpired.as_ref() {
            if list.since <= now_ms && list.until.is_none_or(|until| now_ms < until) {
                return Arc::clone(&list.keys);
            }
        }
        let keys = Arc::new(
            self.keys
                .iter()
                .filter(|key| is_live(self.expiries.get(*key).copied(), now_ms))
                .cloned()
                .collect::<Vec<_>>(),
        );
        // `earliest` has passed, so `since` becomes a passed expiry.
        let (mut since, mut until) = (0, None::<u64>);
        for &at in self.expiries.values() {
            match is_live(Some(at), now_ms) {
                true => until = Some(until.map_or(at, |until| until.min(at))),
                false => since = since.max(at),
            }
        }
        *unexpired = Some(Unexpired {
            since,
            until,
            keys: Arc::clone(&keys),
        });
        keys
    }

    /// The expiry of `key`, if it has one.
    pub(crate) fn expiry_of(&self, key: &[u8]) -> Option<u64> {
        self.expiries.get(key).copied()
    }
}

/// Decides what a read of a row with expiry `at` sees at `now_ms`.
fn is_live(at: Option<u64>, now_ms: u64) -> bool {
    at.is_none_or(|at| at > now_ms)
}

impl Store {
    /// Opens (creating if needed) the database at `path`, checking that `sealer`'s keys
    /// are the ones it was written with; commits are [`Durability::Full`].
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn open(path: &Path, sealer: Sealer) -> Result<Store> {
        Store::open_with(path, sealer, Durability::Full)
    }

    /// [`Store::open`] with the given durability of commits.
    pub fn open_with(path: &Path, sealer: Sealer, durability: Durability) -> Result<Store> {
        if path.is_dir() {
            return Err(Error::invalid(format!(
                "{} is a directory, not a charm-kv database",
                path.display()
            )));
        }
        if let Some(dir) = path.parent() {
            crate::config::create_private_dir(dir)?;
        }
        create_private_file(path)?;
        let mut writer = schema::connect(path, schema::Role::Writer, durability)?;
        schema::initialize(&mut writer, &sealer)?;
        schema::claim_file_identity(&mut writer, path)?;
        Ok(Store {
            path: path.to_owned(),
            sealer,
            durability,
            access: schema::Access::ReadWrite,
            writer: Mutex::new(writer),
            idle_readers: Mutex::new(Vec::new()),
            next_reader_id: AtomicU64::new(0),
            keys_cache: Mutex::new(None),
            clock: Clock::system(),
            expiring: Mutex::new(ExpiryIndex::default()),
            open_lock: None,
        })
    }

    /// Opens the existing database at `path` read-only: SQLite opens every connection
    /// `SQLITE_OPEN_READONLY`, and nothing is created or written (no directory, no file,
    /// no WAL switch, no schema or file identity rows), so it works on read-only media
    /// and in a directory the process cannot write. A missing file is
    /// [`Error::DatabaseNotFound`]; writes fail with [`Error::ReadOnly`].
    ///
    /// A WAL-mode file (every closed database) without its `-wal` reads with no other
    /// file only when opened `immutable` (docs/storage.md, "Read-only handles"): that is
    /// done where SQLite cannot create the `-wal` and `-shm` files, and only there,
    /// since an immutable reader would not see another process's writes.
    pub fn open_read_only(path: &Path, sealer: Sealer, durability: Durability) -> Result<Store> {
        if path.is_dir() {
            return Err(Error::invalid(format!(
                "{} is a directory, not a charm-kv database",
                path.display()
            )));
        }
        if !path.is_file() {
            return Err(Error::DatabaseNotFound(format!(
                "{} (a read-only open creates none)",
                crate::error::quoted(&path.to_string_lossy())
            )));
        }
        let open = |access| {
            let conn = schema::connect_with(path, schema::Role::Reader, durability, access)?;
            schema::check_read_only(&conn, &sealer)?;
            Ok::<_, Error>(conn)
        };
        let (writer, access) = match open(schema::Access::ReadOnly) {
            Ok(conn) => (conn, schema::Access::ReadOnly),
            // SQLite could neither find nor create the -wal and -shm files.
            Err(e) if cannot_open(&e) && !wal_exists(path) && is_wal_mode(path) => {
                let conn = open(schema::Access::Immutable)
                    .map_err(|e| read_only_open_error(path, e))?;
                (conn, schema::Access::Immutable)
            }
            Err(e) => return Err(read_only_open_error(path, e)),
        };
        Ok(Store {
            path: path.to_owned(),
            sealer,
            durability,
            access,
            writer: Mutex::new(writer),
            idle_readers: Mutex::new(Vec::new()),
            next_reader_id: AtomicU64::new(0),
            keys_cache: Mutex::new(None),
            clock: Clock::system(),
            expiring: Mutex::new(ExpiryIndex::default()),
            open_lock: None,
        })
    }

    /// The same store, holding `lock` until its connections are closed.
    pub fn holding(mut self, lock: Option<open_lock::OpenLock>) -> Store {
        self.open_lock = lock;
        self
    }

    /// The same store, reading time from `clock` (tests).
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// What expiries are compared with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether it was opened with [`Store::open_read_only`].
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn is_read_only(&self) -> bool {
        self.access != schema::Access::ReadWrite
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The row ciphers.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// How commits wait for the disk.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// A reader connection from the pool (returned to it on drop).
    pub fn reader(self: &Arc<Self>) -> Result<Reader> {
        Ok(Reader {
            conn: Some(self.pooled_conn()?),
            store: Arc::clone(self),
        })
    }

    /// A reader connection for the duration of a borrow of the store: what a point read
    /// uses, saving the reference count traffic of [`Store::reader`].
    fn reader_ref(&self) -> Result<Reader<&Store>> {
        Ok(Reader {
            conn: Some(self.pooled_conn()?),
            store: self,
        })
    }

    fn pooled_conn(&self) -> Result<ReaderConn> {
        let pooled = lock(&self.idle_readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = schema::connect_with(
                    &self.path,
                    schema::Role::Reader,
                    self.durability,
                    self.access,
                )?;
                ReaderConn {
                    id: self.next_reader_id.fetch_add(1, Ordering::Relaxed),
                    conn,
                }
            }
        };
        Ok(conn)
    }

    /// The writer connection, exclusively.
    pub fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// Point lookup by plaintext key; an expired key is [`Error::NotFound`].
    pub fn get(&self, key: &[u8]) -> Result<Vec<u8>> {
        self.get_entry(key).map(|(value, _)| value)
    }

    /// The value of `key` and its expiry (unix milliseconds).
    pub fn get_entry(&self, key: &[u8]) -> Result<(Vec<u8>, Option<u64>)> {
        let now = self.clock.now_ms();
        self.lookup(key, |cipher, stored_key, stored| {
            match cipher.open_entry(stored_key, stored)? {
                (_, at) if !is_live(at, now) => Err(Error::NotFound),
                entry => Ok(entry),
            }
        })
    }

    /// The expiry of `key` (unix milliseconds), `None` when it has none;
    /// [`Error::NotFound`] when it is missing or expired.
    pub fn expiry(&self, key: &[u8]) -> Result<Option<u64>> {
        self.get_entry(key).map(|(_, at)| at)
    }

    /// Point lookup that decrypts into `buf` when the value fits, without allocating.
    pub fn get_into(&self, key: &[u8], buf: &mut [u8]) -> Result<Fetched> {
        let now = self.clock.now_ms();
        self.lookup(key, |cipher, stored_key, stored| {
            let len = stored_value_len(stored)?;
            match buf.get_mut(..len) {
                Some(dest) => match cipher.open_value_into(stored_key, stored, dest)? {
                    at if !is_live(at, now) => {
                        dest.fill(0);
                        Err(Error::NotFound)
                    }
                    _ => Ok(Fetched::InBuffer(len)),
                },
                None => match cipher.open_entry(stored_key, stored)? {
                    (_, at) if !is_live(at, now) => Err(Error::NotFound),
                    (value, _) => Ok(Fetched::Owned(value)),
                },
            }
        })
    }

    /// Finds the stored row of `key` (under whichever of the account's keys sealed it)
    /// and hands it to `open` while the row is still borrowed from SQLite.
    fn lookup<T>(
        &self,
        key: &[u8],
        mut open: impl FnMut(&RowCipher, &[u8], &[u8]) -> Result<T>,
    ) -> Result<T> {
        check_key(key)?;
        let reader = self.reader_ref()?;
        let mut stmt = reader.prepare_cached("SELECT value FROM kv WHERE key = ?1")?;
        for cipher in self.sealer.ciphers() {
            let stored_key = cipher.seal_key(key);
            let found = stmt
                .query_row([&stored_key], |row| {
                    let stored = row.get_ref(0)?.as_blob()?;
                    Ok(open(cipher, &stored_key, stored))
                })
                .optional()?;
            if let Some(value) = found {
                return value;
            }
        }
        Err(Error::NotFound)
    }

    /// Applies `ops` atomically in one transaction, together with their entries in the
    /// sync journal, so a write is never durable without being recorded for sync. The
    /// same transaction purges the keys this store knows to have expired (not
    /// journaled: `docs/sync.md`, "Expiry").
    pub fn write(&self, ops: &[Op]) -> Result<()> {
        if self.access != schema::Access::ReadWrite {
            return Err(read_only_refusal("writing"));
        }
        for op in ops {
            check_key(&op.key)?;
            if let Some(value) = &op.value {
                check_value(value)?;
            }
        }
        let writer = self.sealer.writer();
        // Keys are sealed before the writer lock is taken (less time holding it), and
        // inserted in stored-key order: sealed keys are uniformly random, so a batch in
        // plaintext order jumps all over the B-tree, while sorted it walks it once from
        // left to right. The sort is stable: several ops on one key keep their order.
        let mut sealed: Vec<(Vec<u8>, &Op)> = ops
            .iter()
            .map(|op| (writer.seal_key(&op.key), op))
            .collect();
        sealed.sort_by(|a, b| a.0.cmp(&b.0));
        let conn = self.writer();
        let tx = schema::WriteTransaction::begin(&conn)?;
        let now = self.clock.now_ms();
        let purged = self.purge_due(&conn, now)?;
        self.write_sealed(&conn, &sealed, now)?;
        tx.commit()?;
        lock(&self.expiring).forget_due(&purged, now);
        self.note_expiries(ops);
        Ok(())
    }

    /// Sets the expiry of `key` (unix milliseconds; `None` removes it) by re-sealing
    /// its value, journaled like any write. [`Error::NotFound`] when the key is missing
    /// or expired; giving a key the expiry it has (no expiry included) changes nothing.
    /// An expiry already passed deletes the key.
    pub fn set_expiry(&self, key: &[u8], expires_at: Option<u64>) -> Result<()> {
        if self.access != schema::Access::ReadWrite {
            return Err(read_only_refusal("writing"));
        }
        check_key(key)?;
        let conn = self.writer();
        let tx = schema::WriteTransaction::begin(&conn)?;
        let now = self.clock.now_ms();
        let mut select = conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")?;
        let mut found = None;
        for cipher in self.sealer.ciphers() {
            let stored_key = cipher.seal_key(key);
            let stored: Option<Vec<u8>> = select
                .query_row([&stored_key], |row| row.get(0))
                .optional()?;
            if let Some(stored) = stored {
                found = Some(cipher.open_entry(&stored_key, &stored)?);
                break;
            }
        }
        let (value, current) = match found {
            Some((value, at)) if is_live(at, now) => (value, at),
            _ => return Err(Error::NotFound),
        };
        if current == expires_at {
            return Ok(());
        }
        let op = Op {
            key: key.to_vec(),
            value: Some(value),
            expires_at,
        };
        let purged = self.purge_due(&conn, now)?;
        self.write_sealed(
            &conn,
            &[(self.sealer.writer().seal_key(key), &op)],
            now,
        )?;
        tx.commit()?;
        lock(&self.expiring).forget_due(&purged, now);
        self.note_expiries(std::slice::from_ref(&op));
        Ok(())
    }

    /// The rows and journal entries of `sealed` (stored key, op), in the open write
    /// transaction on `conn`.
    fn write_sealed(&self, conn: &Connection, sealed: &[(Vec<u8>, &Op)], now: u64) -> Result<()> {
        let (writer, older) = self.sealer.ciphers().split_first().expect("one key");
        let mut insert =
            conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?;
        let mut delete = conn.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
        let mut journal =
            conn.prepare_cached("INSERT OR IGNORE INTO sync_journal (seq, key) VALUES (?1, ?2)")?;
        let seq = schema::write_seq(conn)? + 1;
        for (stored_key, op) in sealed {
            // A key may still be stored under an older encrypt key: remove that
            // copy so the plaintext key maps to exactly one row.
            for cipher in older {
                delete.execute([cipher.seal_key(&op.key)])?;
            }
            match &op.value {
                // A set whose expiry has passed already is a delete (as Redis's EXPIREAT
                // in the past): nothing invisible is left to purge.
                Some(value) if is_live(op.expires_at, now) => {
                    let sealed = writer.seal_entry(stored_key, value, op.expires_at);
                    insert.execute((stored_key, &sealed))?;
                }
                _ => {
                    delete.execute([stored_key])?;
                }
            }
            journal.execute((seq, stored_key))?;
        }
        // The counter lives in the journal rows alone (`schema::write_seq`).
        schema::note_journal_rows(conn, seq, sealed.len() as i64)?;
        Ok(())
    }

    /// Records the expiries `ops` left (after their commit).
    fn note_expiries(&self, ops: &[Op]) {
        let mut index = lock(&self.expiring);
        for op in ops {
            index.note(&op.key, op.expires_at.filter(|_| op.value.is_some()));
        }
    }

    /// Deletes, in the open write transaction on `conn`, the rows of the keys this
    /// store knows to have expired by `now`, after checking each row's own expiry (the
    /// key may have been written again since). Not journaled: every device already
    /// treats an expired value as absent, and a journaled delete would be re-applied
    /// over a newer value from another device (`docs/sync.md`, "Expiry").
    ///
    /// Returns the due keys, for the caller to forget once its transaction commits
    /// (a rollback leaves them due).
    fn purge_due(&self, conn: &Connection, now: u64) -> Result<Vec<Vec<u8>>> {
        let due = lock(&self.expiring).due(now);
        if due.is_empty() {
            return Ok(due);
        }
        let mut select = conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")?;
        let mut delete = conn.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
        for key in &due {
            for cipher in self.sealer.ciphers() {
                let stored_key = cipher.seal_key(key);
                let stored: Option<Vec<u8>> = select
                    .query_row([&stored_key], |row| row.get(0))
                    .optional()?;
                let expired = stored.is_some_and(|stored| {
                    has_expiry(&stored)
                        && matches!(cipher.open_entry(&stored_key, &stored), Ok((_, at)) if !is_live(at, now))
                });
                if expired {
                    delete.execute([&stored_key])?;
                }
            }
        }
        Ok(due)
    }

    /// Deletes every expired row (a full scan; what a sync does, never a plain write)
    /// and returns how many; not journaled, as [`Store::purge_due`]. Also refreshes
    /// the index of keys known to expire. The scan runs in a read transaction, so
    /// writers wait only for the deletes (each row's expiry read again first).
    pub fn purge_expired(self: &Arc<Self>) -> Result<usize> {
        if self.access != schema::Access::ReadWrite {
            return Err(read_only_refusal("purging expired keys"));
        }
        let now = self.clock.now_ms();
        let mut expired = Vec::new();
        let mut index = ExpiryIndex::default();
        {
            let mut reader = self.reader()?;
            let tx = reader.transaction()?;
            self.scan_rows(&tx, |stored_key, opened| {
                if let Some((key, cipher, Some(at))) = opened {
                    match is_live(Some(at), now) {
                        true => index.note(&key, Some(at)),
                        false => expired.push((stored_key.to_vec(), cipher)),
                    }
                }
            })?;
            tx.finish()?;
        }
        let mut purged = 0;
        if !expired.is_empty() {
            let conn = self.writer();
            let tx = schema::WriteTransaction::begin(&conn)?;
            let mut select = conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")?;
            let mut delete = conn.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
            let ciphers = self.sealer.ciphers();
            for (stored_key, cipher) in &expired {
                let stored: Option<Vec<u8>> = select
                    .query_row([stored_key], |row| row.get(0))
                    .optional()?;
                // Rewritten since the scan (by another handle): left alone.
                let still_expired = stored.is_some_and(|stored| {
                    matches!(ciphers[*cipher].open_entry(stored_key, &stored),
                        Ok((_, at)) if !is_live(at, now))
                });
                if still_expired {
                    purged += delete.execute([stored_key])?;
                }
            }
            drop((select, delete));
            tx.commit()?;
        }
        // Merged, not replaced: a write of this store may have noted an expiry since
        // the scan. (A stale entry costs a re-check: a purge reads each row first.)
        lock(&self.expiring).merge(index);
        Ok(purged)
    }

    /// Calls `each` with every row's stored key and, when one of the ciphers opens it,
    /// its plaintext key, the index of that cipher and its expiry. Only rows whose
    /// format says they have an expiry are decrypted; one that fails to (damaged) is
    /// given without expiry, and reading it reports the damage.
    pub(crate) fn scan_rows(
        &self,
        conn: &Connection,
        mut each: impl FnMut(&[u8], Option<(Vec<u8>, usize, Option<u64>)>),
    ) -> Result<()> {
        let mut stmt = conn.prepare_cached("SELECT key, value FROM kv")?;
        let mut rows = stmt.query([])?;
        let ciphers = self.sealer.ciphers();
        while let Some(row) = rows.next()? {
            let stored_key = row.get_ref(0)?.as_blob()?;
            match self.sealer.open_key(stored_key) {
                Ok((key, cipher)) => {
                    // A value that is not a blob (damaged) is listed; reading it reports
                    // the damage, as for any other row that fails to decrypt.
                    let expires_at = match row.get_ref(1)?.as_blob() {
                        Ok(stored) if has_expiry(stored) => ciphers[cipher]
                            .open_entry(stored_key, stored)
                            .ok()
                            .and_then(|(_, at)| at),
                        _ => None,
                    };
                    each(stored_key, Some((key, cipher, expires_at)));
                }
                Err(_) => each(stored_key, None),
            }
        }
        Ok(())
    }

    /// All plaintext keys in ascending byte order, read in one snapshot.
    pub fn keys(self: &Arc<Self>) -> Result<Vec<Vec<u8>>> {
        Ok(self.sorted_keys()?.as_ref().clone())
    }

    /// Hands the sorted key list to `f` without copying it.
    pub fn with_keys<T>(self: &Arc<Self>, f: impl FnOnce(&[Vec<u8>]) -> T) -> Result<T> {
        Ok(f(&self.sorted_keys()?))
    }

    /// The sorted list of the keys not expired now, from the cache when nothing has
    /// been committed since it was made on the same reader connection.
    fn sorted_keys(self: &Arc<Self>) -> Result<Arc<Vec<Vec<u8>>>> {
        let mut reader = self.reader()?;
        let reader_id = reader.id();
        let tx = reader.transaction()?;
        let data_version: i64 = tx.pragma_query_value(None, "data_version", |row| row.get(0))?;
        if let Some(list) = self.cached_keys(reader_id, data_version) {
            return Ok(list.visible(self.clock.now_ms()));
        }
        let mut keys = Vec::new();
        let mut expiries = HashMap::new();
        let mut unreadable = 0usize;
        self.scan_rows(&tx, |_, opened| match opened {
            Some((key, _, at)) => {
                if let Some(at) = at {
                    expiries.insert(key.clone(), at);
                }
                keys.push(key);
            }
            None => unreadable += 1,
        })?;
        tx.finish()?;
        // All or nothing: a list that silently lacks keys would read as "these keys do
        // not exist". The iterator reads the others and reports each unreadable row.
        if unreadable > 0 {
            return Err(Error::corrupt(format!(
                "{unreadable} of {} stored keys do not decrypt with the encrypt keys that \
                 passed this database's key check (rows written with another key, or \
                 altered); iterate to read the other rows",
                unreadable + keys.len()
            )));
        }
        let list = self.remember_keys(reader_id, data_version, keys, expiries);
        Ok(list.visible(self.clock.now_ms()))
    }

    /// The cached key list, if it was made on reader `reader_id` at `data_version` (so
    /// nothing was committed since).
    pub(crate) fn cached_keys(&self, reader_id: u64, data_version: i64) -> Option<KeyList> {
        lock(&self.keys_cache).as_ref().and_then(|cache| {
            (cache.reader_id == reader_id && cache.data_version == data_version)
                .then(|| cache.list.clone())
        })
    }

    /// Keeps every plaintext key of the snapshot at `data_version` on reader
    /// `reader_id` (and the expiries among them) as the cached list, when it is small
    /// enough, and notes the expiries for the purge of later writes.
    pub(crate) fn remember_keys(
        &self,
        reader_id: u64,
        data_version: i64,
        keys: Vec<Vec<u8>>,
        expiries: HashMap<Vec<u8>, u64>,
    ) -> KeyList {
        {
            let mut index = lock(&self.expiring);
            for (key, &at) in &expiries {
                index.note(key, Some(at));
            }
        }
        let bytes: usize = keys
            .iter()
            .map(|key| key.len() + std::mem::size_of::<Vec<u8>>())
            .sum();
        let list = KeyList::new(keys, expiries);
        *lock(&self.keys_cache) = (bytes <= KEYS_CACHE_MAX_BYTES).then(|| KeysCache {
            reader_id,
            data_version,
            list: list.clone(),
        });
        list
    }

    /// Writes a consistent copy of the whole database to the new file `dest` with
    /// SQLite's online backup API, durable when it returns. One read transaction covers
    /// the copy, so it neither waits for nor blocks writers (WAL), and it never restarts.
    /// `dest` is a plain path, never a URI, and must not exist.
    pub fn backup_to(self: &Arc<Self>, dest: &Path) -> Result<()> {
        create_new_private_file(dest)?;
        let reader = self.reader()?;
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX | rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE;
        let mut target = Connection::open_with_flags(schema::plain_path(dest), flags)?;
        {
            use rusqlite::backup::{Backup, StepResult};
            let backup = Backup::new(&reader, &mut target)?;
            let deadline = std::time::Instant::now() + schema::BUSY_TIMEOUT;
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked
                        if std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    other => return Err(Error::busy(format!("online backup stopped: {other:?}"))),
                }
            }
        }
        // The copy inherits WAL mode; fold it into one self-contained file.
        target.pragma_update(None, "journal_mode", "DELETE")?;
        Ok(())
    }

    /// A `meta` value.
    pub fn meta(self: &Arc<Self>, name: &str) -> Result<Option<i64>> {
        schema::meta_get(&*self.reader()?, name)
    }
}

/// The [`Error::ReadOnly`] of an operation that would write.
pub(crate) fn read_only_refusal(what: &str) -> Error {
    Error::read_only(format!("{what} through a handle opened read-only"))
}

/// Whether `err` is SQLite (or the file system) failing to open or read the file.
fn cannot_open(err: &Error) -> bool {
    matches!(err, Error::Database(_) | Error::Io { .. })
}

fn wal_exists(path: &Path) -> bool {
    let [_, wal, ..] = names::db_files(path);
    fs::symlink_metadata(wal).is_ok()
}

/// Explains the case where SQLite cannot read a WAL-mode file without writing next to
/// it: its `-wal` exists (a process has it open, or was killed) but the `-shm` can be
/// neither read nor created. An immutable open would read the file without the commits
/// still in the `-wal`, so it is not tried.
fn read_only_open_error(path: &Path, err: Error) -> Error {
    if !(cannot_open(&err) && wal_exists(path) && is_wal_mode(path)) {
        return err;
    }
    Error::read_only(format!(
        "{} is in WAL mode with a -wal file (a process has it open, or one was killed) \
         that SQLite cannot read without creating or writing the -shm file next to it \
         (open it read-write once where it can be written)",
        path.display()
    ))
    .caused_by(err)
}

/// Whether the header of the database file says WAL mode (bytes 18 and 19 are 2).
fn is_wal_mode(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[18] == 2 && header[19] == 2)
}

impl Drop for Store {
    /// Records the write counter in `sync_state` (a set keeps it in its journal row
    /// alone), best effort: an older charm-kv that opens this file next, or a copy of
    /// it, reads only that row (`schema::write_seq`). Waits at most a moment for another
    /// process's write lock; nothing is committed when the row is current.
    fn drop(&mut self) {
        if self.access != schema::Access::ReadWrite {
            return;
        }
        let conn = self
            .writer
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if conn.busy_timeout(CLOSE_FOLD_WAIT).is_err() {
            return;
        }
        let fold = || -> Result<()> {
            if schema::write_seq(conn)? == schema::state_get(conn, schema::STATE_WRITE_SEQ)? {
                return Ok(());
            }
            // As `normal` durability commits: no fsync of its own (the close's checkpoint
            // syncs it with everything else; a fold lost to a power cut leaves only the
            // hint as it was), while a checkpoint this commit may trigger still syncs
            // the WAL and the file as ever. (`OFF` would let that checkpoint copy
            // earlier commits into the file unsynced, and the close remove the WAL.)
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let tx = schema::WriteTransaction::begin(conn)?;
            schema::fold_write_seq(conn)?;
            tx.commit()
        };
        let _ = fold();
        let _ = conn.pragma_update(None, "synchronous", self.durability.synchronous());
    }
}

/// How long the fold at close waits for another process's write lock.
const CLOSE_FOLD_WAIT: Duration = Duration::from_millis(200);

/// A pooled read connection, holding its store (shared, or borrowed) to return to.
pub struct Reader<S: Deref<Target = Store> = Arc<Store>> {
    conn: Option<ReaderConn>,
    store: S,
}

impl<S: Deref<Target = Store>> Reader<S> {
    fn id(&self) -> u64 {
        self.conn.as_ref().expect("present until drop").id
    }
}

impl<S: Deref<Target = Store>> Deref for Reader<S> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn.as_ref().expect("present until drop").conn
    }
}

impl<S: Deref<Target = Store>> DerefMut for Reader<S> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn.as_mut().expect("present until drop").conn
    }
}

impl<S: Deref<Target = Store>> Drop for Reader<S> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // Only a connection outside any transaction goes back to the pool.
        if conn.conn.is_autocommit() {
            let mut idle = lock(&self.store.idle_readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave SQLite state half-done (transactions
    // roll back on drop), so a poisoned lock is still safe to use.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Refuses what no API accepts as a key: the empty key (Badger refused it too, with
/// "Key cannot be empty", and programs written for Charm's kv rely on that) and keys
/// over [`MAX_KEY_LEN`].
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key cannot be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "key is {} bytes; the limit is {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::invalid(format!(
            "value is {} bytes; the limit is {MAX_VALUE_LEN}",
            value.len()
        )));
    }
    Ok(())
}

/// Creates the empty file `path` with mode 0600; fails if anything exists there.
fn create_new_private_file(path: &Path) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::invalid(format!(
            "{} already exists",
            crate::error::quoted(&path.to_string_lossy())
        ))),
        Err(e) => Err(Error::io(format!("creating {}", path.display()), e)),
    }
}

/// Creates an empty file with mode 0600 unless it exists, so SQLite (which gives the
/// `-wal` and `-shm` files the database's mode) never creates a world-readable one.
///
/// It never opens an existing database file, nor the new one under its name: closing
/// any descriptor of a file drops every POSIX lock this process holds on it, SQLite's
/// included. Opening a second handle on a database this process already had open used
/// to drop the first handle's locks; another process then saw the file as unused, and
/// its last close checkpointed the WAL and (then) switched the file to rollback mode
/// under the first handle (disk I/O errors, and its later commits at risk). A last
/// close still checkpoints and removes the `-wal` and `-shm` files. So the file is
/// made under a temporary name and hard-linked into place (an atomic create-if-absent);
/// only where hard links are not supported is it created in place.
fn create_private_file(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let creating = |e| Error::io(format!("creating {}", path.display()), e);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // tempfile creates it with mode 0600 and removes it when dropped.
    let temporary = tempfile::Builder::new()
        .prefix(".charm-kv-create-")
        .tempfile_in(dir)
        .map_err(creating)?;
    match fs::hard_link(temporary.path(), path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => match create_new_private_file(path) {
            Err(Error::InvalidArgument { .. }) => Ok(()), // created meanwhile by another opener
            other => other,
        },
    }
}
