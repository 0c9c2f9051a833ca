//! The sync algorithm of `docs/sync.md`, over any [`Remote`].

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::legacy::LegacyMerge;
use super::levels::{Plan, Shape};
use super::progress::{SyncPhase, SyncProgress};
use super::restore::{self, Provenance, SQLITE_MAGIC};
use super::snapshot;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::{names, schema};

/// The server side of one database, in plaintext terms. The Charm implementation
/// encrypts names and contents; see `crate::sync::charm`.
pub trait Remote {
    /// The counter's current value (`GET /v1/seq`).
    fn current_seq(&self) -> Result<u64>;
    /// Draws the next ticket (`POST /v1/seq`).
    fn next_seq(&self) -> Result<u64>;
    /// Sequences of the files stored for the database, ascending; empty if none.
    fn list(&self) -> Result<Vec<u64>>;
    /// Streams the decrypted contents of file `seq` into `out`, reporting
    /// `(bytes done, bytes total or 0)`.
    fn download(
        &self,
        seq: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()>;
    /// The size of file `seq` in the last listing (ciphertext bytes), if it was listed.
    fn listed_size(&self, seq: u64) -> Option<u64>;
    /// Encrypts and stores the file at `path` as `seq`.
    fn upload(&self, seq: u64, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()>;
    /// Removes file `seq`.
    fn remove(&self, seq: u64) -> Result<()>;
}

/// How long a pusher waits for the snapshots of tickets drawn before its own.
pub const DEFAULT_TICKET_WAIT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// First pause before downloading again a file that was still being written; doubles
/// up to [`POLL_INTERVAL`].
const SETTLE_DELAY: Duration = Duration::from_millis(20);
/// Tickets drawn in a row before a push gives up (each retry follows a newer snapshot).
const MAX_PUSH_ATTEMPTS: usize = 8;

/// One sync run over a store.
pub struct Engine<'a> {
    store: &'a Arc<Store>,
    remote: &'a dyn Remote,
    progress: &'a mut dyn FnMut(&SyncProgress),
    ticket_wait: Duration,
    /// The last listing of the remote files (ascending), made before the ticket was
    /// drawn: retention works from it instead of listing again after the upload.
    listed: Vec<u64>,
}

impl<'a> Engine<'a> {
    pub fn new(
        store: &'a Arc<Store>,
        remote: &'a dyn Remote,
        progress: &'a mut dyn FnMut(&SyncProgress),
        ticket_wait: Duration,
    ) -> Self {
        Engine {
            store,
            remote,
            progress,
            ticket_wait,
            listed: Vec::new(),
        }
    }

    /// Pull the newest snapshot if it is newer, then push pending writes.
    pub fn sync(&mut self) -> Result<()> {
        let _lock = SyncLock::acquire(self.store.path())?;
        self.pull()?;
        // Expired rows (ours, or brought by the pull) go before the push, locally only
        // (docs/sync.md, "Expiry").
        self.store.purge_expired()?;
        if self.push()? == Pushed::Nothing {
            // Everything uploaded is in our base: confirmed if the base is the newest
            // file on the server.
            let base = self.base()?;
            if self.listed.last() == Some(&base) {
                let uploaded = restore::local_state(&*self.store.reader()?)?.uploaded_seq;
                restore::confirm(self.store, uploaded)?;
            }
        }
        super::status::record_sync(self.store)?;
        Ok(())
    }

    /// Rebuilds the local copy from the newest remote snapshot. Without `force`, refuses
    /// while writes are pending; with it, they are discarded.
    pub fn reset(&mut self, force: bool) -> Result<()> {
        let _lock = SyncLock::acquire(self.store.path())?;
        let pending = self.pending()?;
        if pending > 0 && !force {
            return Err(Error::PendingWrites(pending));
        }
        if force {
            let mut conn = self.store.writer();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let written = schema::fold_write_seq(&tx)?;
            tx.execute("DELETE FROM sync_journal", [])?;
            schema::state_set(&tx, schema::STATE_UPLOADED_SEQ, written)?;
            tx.commit()?;
        }
        let files = self.remote.list()?;
        if files.is_empty() {
            let mut conn = self.store.writer();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM kv", [])?;
            schema::meta_set(&tx, schema::META_MAX_VERSION, 0)?;
            tx.commit()?;
            return Ok(());
        }
        match self.restore_newest(&files, true) {
            Err(Error::NotReady { message, source }) if message.ends_with(MISSING_BASE) => {
                Err(Error::Corrupt { message, source })
            }
            other => other,
        }
    }

    /// Writes not confirmed on the server.
    fn pending(&self) -> Result<u64> {
        Ok(restore::local_state(&*self.store.reader()?)?.pending)
    }

    /// Writes not in any file this device uploaded.
    fn unpushed(&self) -> Result<u64> {
        Ok(restore::local_state(&*self.store.reader()?)?.unpushed)
    }

    fn base(&self) -> Result<u64> {
        Ok(self
            .store
            .meta(schema::META_MAX_VERSION)?
            .unwrap_or(0)
            .max(0) as u64)
    }

    /// Restores the newest remote file if it is newer than the local base.
    fn pull(&mut self) -> Result<()> {
        let files = self.list()?;
        match files.last() {
            Some(&newest) if newest > self.base()? => self.restore_listed(files),
            _ => Ok(()),
        }
    }

    /// [`Engine::restore_newest`] of a listing, listing again (a few times) when a file
    /// of the chain disappears meanwhile: a push made since superseded the chain, and
    /// its retention removed files we were about to read.
    fn restore_listed(&mut self, mut files: Vec<u64>) -> Result<()> {
        for attempt in 1.. {
            match self.restore_newest(&files, false) {
                // Every listing leaves out what the chain needs: the server does not
                // have it, whatever it lists.
                Err(Error::NotReady { message, source })
                    if attempt == 4 && message.ends_with(MISSING_BASE) =>
                {
                    return Err(Error::Corrupt {
                        message: format!("{message} (in {attempt} listings)"),
                        source,
                    })
                }
                Err(e) if attempt < 4 && vanished(&e) => {
                    files = self.list()?;
                    match files.last() {
                        Some(&newest) if newest > self.base()? => {}
                        _ => return Ok(()),
                    }
                }
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    /// Restores the newest of `files` (ascending): a full snapshot, or a delta with the
    /// files it builds on, back to the local version or to a full snapshot (all of them
    /// with `from_scratch`). Legacy Badger streams on top are merged and restored as one.
    fn restore_newest(&mut self, files: &[u64], from_scratch: bool) -> Result<()> {
        let newest = *files.last().expect("callers pass a non-empty list");
        let local = self.base()?;
        let provenance = match from_scratch {
            true => Provenance::Reset,
            false => Provenance::Server,
        };
        let mut legacy = Vec::new();
        let mut chain: Vec<(u64, TempFile)> = Vec::new();
        let mut next = Some(newest);
        let mut older = files.iter().rev().copied().skip(1);
        while let Some(seq) = next {
            let download = self.download(seq)?;
            if !download.is_sqlite()? {
                if !chain.is_empty() {
                    return Err(Error::corrupt(format!(
                        "the delta chain of {newest} reaches a legacy Badger backup ({seq})"
                    )));
                }
                legacy.push(download);
                next = older.next();
                continue;
            }
            if !legacy.is_empty() {
                return Err(Error::corrupt(
                    "legacy Badger backups are newer than a charm-kv snapshot on the server",
                ));
            }
            let meta = restore::file_meta(download.path())?;
            restore::check_binding(
                &*self.store.reader()?,
                seq,
                meta.max_version,
                meta.db_id,
                provenance,
            )?;
            let base = meta.delta_base;
            chain.push((seq, download));
            next = match base {
                None => None,
                // On our version, or on one it supersedes (a device that followed the
                // pushes it merges): nothing older is needed.
                Some(base) if !from_scratch && (base == local || meta.merged.contains(&local)) => {
                    None
                }
                Some(base) if base < seq && files.contains(&base) => Some(base),
                // Not in our listing: a listing torn by a concurrent push and its
                // retention, or a server dropping files. `restore_listed` lists again.
                Some(base) => {
                    return Err(Error::not_ready(format!(
                        "delta {seq} builds on {base}, which {MISSING_BASE}"
                    )))
                }
            };
        }
        if legacy.is_empty() {
            // Oldest first: a full snapshot (or the delta on our version), then the rest.
            for (seq, file) in chain.iter().rev() {
                restore::apply(self.store, file.path(), *seq, provenance)?;
            }
            return Ok(());
        }
        let candidate = TempFile::new(self.store.path(), "legacy")?;
        let mut merge = LegacyMerge::create(candidate.path(), self.store.sealer())?;
        for file in &legacy {
            merge.add_stream(std::io::BufReader::new(file.open()?))?;
        }
        merge.finish(newest)?;
        restore::apply(self.store, candidate.path(), newest, Provenance::Legacy)?;
        Ok(())
    }

    /// Downloads file `seq`, waiting for it to settle: a file the server is still
    /// writing looks shorter or longer than its listing, or fails to decrypt. Such a
    /// download is retried, listing again, while the file's listed length keeps
    /// changing, for at most the ticket wait. Two failures at one listed length mean the
    /// file is complete and damaged (or the server lies about it): `Corrupt`.
    fn download(&mut self, seq: u64) -> Result<TempFile> {
        let deadline = Instant::now() + self.ticket_wait;
        let mut delay = SETTLE_DELAY;
        // The listed length at which the last attempt failed.
        let mut failed_at: Option<Option<u64>> = None;
        loop {
            let error = match self.download_once(seq) {
                Ok(file) => return Ok(file),
                Err(e @ (Error::NotReady { .. } | Error::Corrupt { .. })) => e,
                Err(e) => return Err(e),
            };
            let size = self.remote.listed_size(seq);
            if failed_at == Some(size) {
                return Err(match error {
                    Error::NotReady { message, source } => Error::Corrupt {
                        message: format!("{message}, again at an unchanged listing"),
                        source,
                    },
                    other => other,
                });
            }
            failed_at = Some(size);
            if Instant::now() >= deadline {
                return Err(match error {
                    e @ Error::NotReady { .. } => e.reworded(|why| {
                        format!("{why} (still changing after {:?})", self.ticket_wait)
                    }),
                    other => other,
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(POLL_INTERVAL);
            // A fresh listing gives the file's current length.
            if !self.list()?.contains(&seq) {
                return Err(Error::not_ready(format!(
                    "file {seq} disappeared from the server while it was being read"
                )));
            }
        }
    }

    fn download_once(&mut self, seq: u64) -> Result<TempFile> {
        let file = TempFile::new(self.store.path(), "download")?;
        let mut out = BufWriter::new(file.create()?);
        let progress = &mut *self.progress;
        self.remote.download(seq, &mut out, &mut |done, total| {
            progress(&SyncProgress {
                phase: SyncPhase::Download,
                done,
                total,
            })
        })?;
        // No fsync: the file is read back at once and thrown away after; a crash loses
        // only it (the next open removes it), never anything of the database.
        out.into_inner()
            .map_err(|e| Error::io("writing a download", e.into_error()))?;
        Ok(file)
    }

    /// Pushes writes not yet uploaded, if any.
    fn push(&mut self) -> Result<Pushed> {
        for _ in 0..MAX_PUSH_ATTEMPTS {
            if self.unpushed()? == 0 {
                return Ok(Pushed::Nothing);
            }
            let base = self.base()?;
            let mut ticket = self.remote.next_seq()?;
            // A counter behind our base was reset on the server: catch up with it.
            let mut catch_up = 0u64;
            while ticket <= base {
                catch_up += 1;
                if catch_up > 100_000 {
                    return Err(Error::server(
                        0,
                        format!("sequence counter stays at {ticket}, below local version {base}"),
                    ));
                }
                ticket = self.remote.next_seq()?;
            }
            match self.push_with_ticket(base, ticket) {
                Ok(true) => return Ok(Pushed::Uploaded),
                // Pushers with later tickets got there first: ours is stale.
                Ok(false) => continue,
                Err(e) => {
                    // Nobody will ever upload this ticket: our next push must not wait
                    // for it. (Recorded on any failure before the upload completed.)
                    let conn = self.store.writer();
                    schema::state_set(&conn, &abandoned_name(ticket), ticket as i64)?;
                    return Err(e);
                }
            }
        }
        Err(Error::busy(format!(
            "gave up pushing after {MAX_PUSH_ATTEMPTS} tickets: other devices keep pushing"
        )))
    }

    /// Waits for the tickets before `ticket`, then uploads it. `Ok(false)` when later
    /// tickets overtook it; an error means its file was not uploaded.
    fn push_with_ticket(&mut self, base: u64, ticket: u64) -> Result<bool> {
        let base = if ticket > base + 1 {
            self.wait_for_earlier_tickets(base, ticket)?
        } else {
            base
        };
        if base >= ticket {
            return Ok(false);
        }
        self.upload(ticket)?;
        Ok(true)
    }

    /// Restores snapshots of tickets below `ticket` as they appear, for at most the
    /// ticket wait. Returns the new base.
    fn wait_for_earlier_tickets(&mut self, mut base: u64, ticket: u64) -> Result<u64> {
        let deadline = Instant::now() + self.ticket_wait;
        // A push takes tens of milliseconds: look again soon, then less often.
        let mut pause = SETTLE_DELAY;
        loop {
            let files = self.list()?;
            if let Some(&newest) = files.last() {
                if newest > base {
                    self.restore_listed(files)?;
                    base = self.base()?;
                }
            }
            if base + 1 >= ticket
                || self.only_own_abandoned_between(base, ticket)?
                || Instant::now() >= deadline
            {
                return Ok(base);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(POLL_INTERVAL);
        }
    }

    fn upload(&mut self, ticket: u64) -> Result<()> {
        self.ensure_db_id()?;
        let file = TempFile::new(self.store.path(), "upload")?;
        let base = self.base()?;
        let (shape, changes_since, database_bytes) = {
            let reader = self.store.reader()?;
            let shape = Shape::read(&reader)?;
            let since = schema::state_get_or(&reader, schema::STATE_CHANGES_SINCE, i64::MAX)?;
            let bytes: i64 = reader.query_row(
                "SELECT (page_count - freelist_count) * page_size \
                 FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
                [],
                |r| r.get(0),
            )?;
            (shape, since, bytes.max(0) as u64)
        };
        let plan = match &shape {
            Some(shape) if base > 0 => shape.plan(base, changes_since, &self.listed),
            _ => Plan::Full,
        };
        let mut delta = None;
        if let (Plan::Delta { level, base: from }, Some(shape)) = (plan, &shape) {
            let changed_since = (level > 0).then_some(from);
            let info =
                snapshot::create_delta(self.store, file.path(), ticket, from, changed_since)?;
            if shape.fits(level, info.size, database_bytes) {
                delta = Some((
                    info,
                    shape.after_delta(ticket, level, info.size),
                    shape.merged(level),
                ));
            } else {
                // The path a new device walks would outgrow its share: start anew.
                std::fs::remove_file(file.path())
                    .map_err(|e| Error::io(format!("removing {}", file.path().display()), e))?;
            }
        }
        let is_delta = delta.is_some();
        let (info, new_shape, merged) = match delta {
            Some(made) => made,
            None => (
                snapshot::create(self.store, file.path(), ticket)?,
                Shape::full(ticket),
                Vec::new(),
            ),
        };
        snapshot::stamp_shape(file.path(), &new_shape, &merged)?;
        let progress = &mut *self.progress;
        self.remote
            .upload(ticket, file.path(), &mut |done, total| {
                progress(&SyncProgress {
                    phase: SyncPhase::Upload,
                    done,
                    total,
                })
            })?;
        self.record_upload(ticket, file.path(), &new_shape, is_delta, info.included_seq)?;
        drop(file);
        self.apply_retention(ticket, shape.as_ref(), &new_shape)?;
        // No ticket drawn since ours: our file is the newest, and stays in the chain of
        // every later one. Otherwise the writes stay pending until a sync sees them in
        // the newest file.
        if self.remote.current_seq()? == ticket {
            restore::confirm(self.store, info.included_seq)?;
        }
        Ok(())
    }

    /// After the upload of `ticket` (the file at `path`): the local version, chain
    /// shape, writer mark and counters, and the changed rows a later merged delta holds.
    fn record_upload(
        &self,
        ticket: u64,
        path: &Path,
        shape: &Shape,
        is_delta: bool,
        included_seq: i64,
    ) -> Result<()> {
        let mut conn = self.store.writer();
        let path_text = path
            .to_str()
            .ok_or_else(|| Error::invalid(format!("{} is not valid UTF-8", path.display())))?;
        if is_delta {
            conn.execute("ATTACH DATABASE ?1 AS uploaded", [path_text])?;
        }
        let recorded = (|| -> Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            schema::meta_set(&tx, schema::META_MAX_VERSION, ticket as i64)?;
            shape.write(&tx)?;
            let device = schema::state_get(&tx, schema::STATE_DEVICE_ID)?;
            schema::meta_set(&tx, &schema::writer_mark(device), included_seq)?;
            let uploaded = schema::state_get(&tx, schema::STATE_UPLOADED_SEQ)?;
            // `sync_state.write_seq` stays at or above every uploaded counter.
            schema::fold_write_seq(&tx)?;
            schema::state_set(&tx, schema::STATE_UPLOADED_SEQ, uploaded.max(included_seq))?;
            if is_delta {
                tx.execute(
                    "INSERT OR REPLACE INTO main.sync_changes (key, version) \
                     SELECT key, ?1 FROM uploaded.kv",
                    [ticket as i64],
                )?;
            } else {
                tx.execute("DELETE FROM main.sync_changes", [])?;
                schema::state_set(&tx, schema::STATE_CHANGES_SINCE, ticket as i64)?;
            }
            tx.execute(
                "DELETE FROM sync_state WHERE name LIKE 'abandoned:%' AND value < ?1",
                [ticket as i64],
            )?;
            tx.commit()?;
            Ok(())
        })();
        if is_delta {
            let detached = conn.execute("DETACH DATABASE uploaded", []);
            recorded?;
            detached?;
            return Ok(());
        }
        recorded
    }

    /// Mints the database id before the database's first push (files carry `meta`).
    fn ensure_db_id(&self) -> Result<()> {
        let conn = self.store.writer();
        if schema::meta_get(&conn, schema::META_DB_ID)?.is_none() {
            let id = (rand::random::<u64>() >> 1) as i64;
            conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
                (schema::META_DB_ID, id),
            )?;
        }
        Ok(())
    }

    /// Whether every ticket strictly between `base` and `ticket` is one this device drew
    /// and failed to upload (so no snapshot will ever come for it).
    fn only_own_abandoned_between(&self, base: u64, ticket: u64) -> Result<bool> {
        let reader = self.store.reader()?;
        let mut stmt = reader.prepare_cached(
            "SELECT count(*) FROM sync_state WHERE name LIKE 'abandoned:%' AND value > ?1 AND value < ?2",
        )?;
        let own: i64 = stmt.query_row([base as i64, ticket as i64], |r| r.get(0))?;
        Ok(own as u64 == ticket - base - 1)
    }

    fn list(&mut self) -> Result<Vec<u64>> {
        let files = self.remote.list()?;
        self.listed.clone_from(&files);
        Ok(files)
    }

    /// Removes the files that no device can need any more, judged from the listing
    /// made before the ticket (one request less per push): everything older than our
    /// new file except the files on its chain's path and on the path of the file before
    /// it (what a device that listed just before us may be walking). Files uploaded
    /// since by other devices are not in the listing and stay; a later push removes
    /// what they superseded. When a path is unknown (a chain of an older charm-kv),
    /// everything from its full snapshot on stays.
    fn apply_retention(&mut self, ticket: u64, old: Option<&Shape>, new: &Shape) -> Result<()> {
        let Some(&previous) = self.listed.iter().filter(|&&s| s < ticket).max() else {
            return Ok(());
        };
        let mut keep = vec![previous];
        let mut keep_from = ticket;
        for shape in [old, Some(new)].into_iter().flatten() {
            match shape.files() {
                Some(files) => keep.extend(files),
                None => keep_from = keep_from.min(shape.start),
            }
        }
        if old.is_none() {
            // No local chain before this push: we know nothing of the old file's path.
            keep_from = keep_from.min(previous);
        }
        let stale: Vec<u64> = self
            .listed
            .iter()
            .copied()
            .filter(|&s| s < ticket && s < keep_from && !keep.contains(&s))
            .collect();
        for seq in &stale {
            self.remote.remove(*seq)?;
        }
        self.listed.retain(|s| !stale.contains(s));
        Ok(())
    }
}

/// The end of the message for a delta whose base a listing does not show.
const MISSING_BASE: &str = "the server's listing does not show";

/// Whether `e` says a listed file is gone from the server.
fn vanished(e: &Error) -> bool {
    match e {
        Error::Server { status: 404, .. } => true,
        Error::NotReady { message, .. } => {
            message.contains("disappeared") || message.ends_with(MISSING_BASE)
        }
        _ => false,
    }
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pushed {
    Nothing,
    Uploaded,
}

fn abandoned_name(ticket: u64) -> String {
    format!("abandoned:{ticket}")
}

/// Serialises sync runs on one database across threads and processes.
pub struct SyncLock {
    file: File,
}

impl SyncLock {
    pub fn acquire(db: &Path) -> Result<SyncLock> {
        let path = names::sync_lock_path(db);
        let file = crate::config::open_lock_file(&path)?;
        file.lock()
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(SyncLock { file })
    }
}

impl Drop for SyncLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Removes temporary files a crashed sync left next to `db`, unless a sync is running.
/// Only names that [`names::sync_temp_path`] makes are touched.
pub fn clean_stale_temp_files(db: &Path) -> Result<()> {
    let Ok(file) = crate::config::open_lock_file(&names::sync_lock_path(db)) else {
        return Ok(());
    };
    if file.try_lock().is_err() {
        return Ok(());
    }
    let (Some(dir), Some(name)) = (db.parent(), db.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| names::is_sync_temp_of(name, n))
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let _ = file.unlock();
    Ok(())
}

/// A temporary file next to the database (same file system, same 0700 folder), removed
/// when dropped. Names start with `.<db file>.sync-` so a later open can find leftovers.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn new(db: &Path, purpose: &str) -> Result<TempFile> {
        Ok(TempFile {
            path: names::sync_temp_path(db, purpose),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn create(&self) -> Result<File> {
        let mut options = File::options();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&self.path)
            .map_err(|e| Error::io(format!("creating {}", self.path.display()), e))
    }

    fn open(&self) -> Result<File> {
        File::open(&self.path).map_err(|e| Error::io(format!("opening {}", self.path.display()), e))
    }

    fn is_sqlite(&self) -> Result<bool> {
        let mut head = [0u8; SQLITE_MAGIC.len()];
        let mut file = self.open()?;
        let mut filled = 0;
        while filled < head.len() {
            match file.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(Error::io("reading a download", e)),
            }
        }
        Ok(restore::is_sqlite(&head[..filled]))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
