//! Checkpoints off the write path.
//!
//! In WAL mode a commit appends pages to the `-wal` file and a checkpoint later copies
//! them into the database file and syncs it. SQLite's automatic checkpoint runs inside
//! the commit that crosses the threshold, so one write in a few thousand paid for
//! copying every page the others dirtied plus a database `fsync`: about 30% of the
//! time of a single `set` at 10k–100k keys (docs/storage.md, "Checkpoints").
//!
//! A store that writes therefore starts one thread with its own connection that runs
//! `PRAGMA wal_checkpoint(PASSIVE)` when the writer reports enough new WAL pages. A
//! passive checkpoint never blocks a writer or a reader (it copies only frames no
//! reader still needs), so the caller's write returns while another core copies. The
//! writer keeps SQLite's automatic checkpoint at [`super::schema::WRITER_CHECKPOINT_PAGES`]
//! as a backstop: if the thread is missing (it could not start, or the process forked
//! after opening) or cannot keep up, the WAL stays bounded exactly as before, and the
//! backstop then finds most pages already copied.
//!
//! Durability does not change: the WAL is the record of a commit either way, and a
//! checkpoint interrupted by a crash is finished by the next opener (SQLite's recovery).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::schema::{self, Role};
use super::{lock, Durability};


/// New WAL pages (an estimate counted by the writer) after which it wakes the thread:
/// a quarter of the backstop, so a background checkpoint normally runs three times
/// before the writer would checkpoint inline.
pub const WAKE_PAGES: u64 = (schema::WRITER_CHECKPOINT_PAGES as u64) / 4;

#[derive(Default)]
struct Signal {
    /// Pages written since the last wake-up (an estimate: see [`Checkpointer::wrote`]).
    pages: u64,
    wake: bool,
    stop: bool,
}

/// The background checkpoint thread of one store; stopped and joined on drop.
pub struct Checkpointer {
    shared: Arc<(Mutex<Signal>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread: a child forked after the open has no such
    /// thread, and must neither wait for it nor join it (that would never return).
    owner_pid: u32,
}

impl Checkpointer {
    /// Starts the thread for the database at `path`; `None` when the system refuses a
    /// thread (the backstop then checkpoints as SQLite always did).
    pub fn start(path: &Path, durability: Durability) -> Option<Checkpointer> {
        let shared = Arc::new((Mutex::new(Signal::default()), Condvar::new()));
        let thread_shared = Arc::clone(&shared);
        let path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("charm-kv-checkpoint".into())
            .spawn(move || run(&path, durability, &thread_shared))
            .ok()?;
        Some(Checkpointer {
            shared,
            thread: Some(thread),
            owner_pid: std::process::id(),
        })
    }

    /// Tells the thread that a commit appended about `pages` pages to the WAL; wakes it
    /// once [`WAKE_PAGES`] have accumulated. Cheap: one uncontended mutex, and never
    /// waits for it (the thread holds it only to read the flags; a count skipped now
    /// only delays the next checkpoint, which the backstop bounds anyway).
    pub fn wrote(&self, pages: u64) {
        let (signal, condvar) = &*self.shared;
        let Ok(mut signal) = signal.try_lock() else {
            return;
        };
        signal.pages += pages;
        if signal.pages >= WAKE_PAGES {
            signal.pages = 0;
            signal.wake = true;
            condvar.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if std::process::id() != self.owner_pid {
            return;
        }
        {
            let (signal, condvar) = &*self.shared;
            lock(signal).stop = true;
            condvar.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            // The thread only waits or checkpoints (bounded by the file's size); a panic
            // in it has nothing to report to the closing caller.
            let _ = thread.join();
        }
    }
}

fn run(path: &PathBuf, durability: Durability, shared: &(Mutex<Signal>, Condvar)) {
    let (signal, condvar) = shared;
    // Opened at the first wake-up: a store that never writes much never opens it.
    let mut conn = None;
    loop {
        {
            let mut state = lock(signal);
            while !state.wake && !state.stop {
                state = condvar.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.stop {
                return;
            }
            state.wake = false;
        }
        if conn.is_none() {
            conn = schema::connect(path, Role::Checkpointer, durability).ok();
        }
        if let Some(conn) = &conn {
            // Failure is not an error for anyone: "busy" means another connection is
            // checkpointing, and anything else leaves the work to the backstop.
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::crypto::seal::Sealer;
    use crate::crypto::EncryptKey;
    use crate::store::{Op, Store};

    /// Commits that together stay below SQLite's automatic checkpoint still reach the
    /// database file: the background thread copied them, and no commit paid for it.
    #[test]
    fn the_thread_checkpoints_before_the_backstop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let sealer = Sealer::new(&[EncryptKey::generate()]).unwrap();
        let store = Store::open_with(&path, sealer, Durability::Normal).unwrap();
        let file_len = || std::fs::metadata(&path).unwrap().len();
        let before = file_len();
        // Each one-key commit counts 3 pages: enough to wake the thread once, far from
        // the backstop's page count (each commit appends about 3 WAL pages).
        let commits = WAKE_PAGES / 3 + 1;
        assert!(3 * commits < schema::WRITER_CHECKPOINT_PAGES as u64 / 2);
        for i in 0..commits {
            store
                .write(&[Op {
                    key: format!("key {i}").into_bytes(),
                    value: Some(vec![7; 1000]),
                }])
                .unwrap();
        }
        // Pages enter the database file only through a checkpoint. A bounded wait for
        // the thread, not a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(30);
        while file_len() <= before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            file_len() > before,
            "no checkpoint ran: the database file is still {before} bytes"
        );
        // Dropping the store stops and joins the thread.
        drop(store);
    }
}
