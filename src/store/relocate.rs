//! Moving a database out of the Go client's `kv` folder.
//!
//! Earlier charm-kv versions kept `<data path>/kv/N.sqlite`; the Go client's `charm link`
//! and `charm sync-keys` delete `<data path>/kv` whole. Opening database `N` moves its
//! file to `<data path>/charm-kv/N.sqlite` first, when no process has it open: under a
//! lock file (so processes opening it at once agree), the old file is opened in
//! SQLite's exclusive locking mode (which fails while any other connection has it
//! open), its WAL checkpointed into it and emptied, and the one file renamed while the
//! exclusive lock is held. A database in use stays where it is this time and moves at
//! a later open. The opener takes the file's open lock (`store::open_lock`) before the
//! relocation lock is let go, and a file whose open lock is held does not move.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::names;
use super::open_lock::{OpenLock, Unopened};
use crate::error::{Error, Result};

/// Name of the lock file in the databases' folder.
const LOCK_FILE: &str = ".relocate.lock";

/// Where database `name` of `data_path` is to be opened: in the databases' folder,
/// after moving it there from the old `kv` folder when it is still there and not in use;
/// in the old folder while another process uses it there. With the shared open lock
/// of that file, taken before the relocation lock is let go: a move by another process
/// cannot then take the file away before this one opens it.
pub fn relocate(data_path: &Path, name: &str) -> Result<(PathBuf, OpenLock)> {
    let new = names::db_path(data_path, name)?;
    let old = names::legacy_db_path(data_path, name)?;
    // The common case costs one `stat`.
    if !old.is_file() {
        let lock = OpenLock::shared(&new)?;
        return Ok((new, lock));
    }
    let dir = names::db_dir(data_path);
    crate::config::create_private_dir(&dir)?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = crate::config::open_lock_file(&lock_path)?;
    lock.lock()
        .map_err(|e| Error::io(format!("locking {}", lock_path.display()), e))?;
    let in_old = if new.exists() || !old.is_file() {
        // Moved meanwhile by another process (or both exist: the new one is the one
        // in use; the old one is left alone).
        false
    } else {
        match move_when_unused(&old, &new, Replace::Yes)? {
            Moved::Yes => false,
            Moved::InUse | Moved::TargetExists => true,
        }
    };
    if in_old {
        let open = OpenLock::shared(&old)?;
        // Unless deleted while this waited for its open lock (a deletion holds it):
        // then the database is created anew in the databases' folder, not in the Go
        // client's `kv` folder, which `charm link` deletes whole.
        if old.is_file() {
            drop(lock);
            return Ok((old, open));
        }
    }
    let open = OpenLock::shared(&new)?;
    drop(lock);
    Ok((new, open))
}

/// Where a read-only open reads database `name` of `data_path`: the databases' folder,
/// or the old `kv` folder when it is only there. Nothing is moved or created.
pub fn locate(data_path: &Path, name: &str) -> Result<PathBuf> {
    let new = names::db_path(data_path, name)?;
    let old = names::legacy_db_path(data_path, name)?;
    if !new.exists() && old.is_file() {
        return Ok(old);
    }
    Ok(new)
}

/// Whether a move may replace a file at its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// `rename`: callers made sure under a lock that nothing is there.
    Yes,
    /// Link the new name, then drop the old one: a file that appeared at the target
    /// meanwhile (a process creating the database there) is left as it is.
    No,
}

/// What [`move_when_unused`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The file is at the new name, its WAL checkpointed into it.
    Yes,
    /// Another connection has it open: nothing moved.
    InUse,
    /// ([`Replace::No`]) Something is at the new name: nothing moved.
    TargetExists,
}

/// Moves the database file `old` to `new` unless another connection has it open, or a
/// handle has taken its open lock to open one (`store::open_lock`).
pub fn move_when_unused(old: &Path, new: &Path, replace: Replace) -> Result<Moved> {
    let _unopened = match OpenLock::unless_open(old)? {
        Unopened::Yes(lock) => lock,
        Unopened::No => return Ok(Moved::InUse),
    };
    let conn = Connection::open_with_flags(
        super::schema::plain_path(old),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // rusqlite opens with a 5 s busy timeout: a file in use would hold every opener
    // (which waits for the relocation lock meanwhile) for that long.
    conn.busy_timeout(std::time::Duration::ZERO)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    // Fails at once with "database is locked" while another connection has it open.
    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match checkpoint {
        Ok((0, _, _)) => {}
        Ok(_) => return Ok(Moved::InUse),
        Err(e) => {
            return match Error::from(e) {
                Error::Busy { .. } => Ok(Moved::InUse),
                other => Err(other),
            }
        }
    }
    // Only a charm-kv database moves: anything else stays where it is, for the open
    // to refuse it there.
    super::schema::check_ours(&conn)?;
    // Everything is in the main file now, and the exclusive lock keeps it so: rename
    // it while holding the lock (an opener of the new name waits for it).
    let moving = format!("moving {} to {}", old.display(), new.display());
    match replace {
        Replace::Yes => std::fs::rename(old, new).map_err(|e| Error::io(moving, e))?,
        Replace::No => {
            match std::fs::hard_link(old, new) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Ok(Moved::TargetExists)
                }
                Err(e) => return Err(Error::io(moving, e)),
            }
            std::fs::remove_file(old).map_err(|e| Error::io(moving, e))?;
        }
    }
    drop(conn);
    // The old name's empty WAL, shared memory and sync lock file.
    for file in names::db_files(old).into_iter().skip(1) {
        let _ = std::fs::remove_file(file);
    }
    Ok(Moved::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncryptKey, Kv, Options};

    fn options(dir: &Path, key: &EncryptKey) -> Options {
        let mut options = Options::new();
        options.data_dir(dir).encrypt_keys(vec![key.clone()]);
        options
    }

    /// Puts database `name` of `dir` where an earlier version kept it, with committed
    /// writes still in its WAL.
    fn in_old_place(dir: &Path, key: &EncryptKey, name: &str) -> PathBuf {
        let kv = Kv::open_with(name, &options(dir, key)).unwrap();
        let path = kv.path().unwrap();
        // A second handle keeps the WAL from being checkpointed at close.
        let keep = Connection::open(&path).unwrap();
        keep.query_row("SELECT count(*) FROM kv", [], |r| r.get::<_, i64>(0))
            .unwrap();
        for i in 0..50 {
            kv.set(format!("k{i}"), format!("v{i}")).unwrap();
        }
        let old_dir = names::legacy_db_dir(path.parent().unwrap().parent().unwrap());
        std::fs::create_dir_all(&old_dir).unwrap();
        let old = old_dir.join(path.file_name().unwrap());
        for (from, to) in names::db_files(&path).iter().zip(names::db_files(&old)) {
            if from.exists() {
                std::fs::copy(from, to).unwrap();
            }
        }
        kv.close().unwrap();
        drop(keep);
        for file in names::db_files(&path) {
            let _ = std::fs::remove_file(file);
        }
        assert!(
            std::fs::metadata(names::db_files(&old)[1].clone())
                .unwrap()
                .len()
                > 0
        );
        old
    }

    #[test]
    fn a_database_in_the_old_folder_moves_with_its_wal_contents() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let old = in_old_place(dir.path(), &key, "db");
        let kv = Kv::open_with("db", &options(dir.path(), &key)).unwrap();
        assert_eq!(
            kv.path().unwrap().parent().unwrap().file_name().unwrap(),
            "charm-kv"
        );
        assert!(!old.exists(), "moved, not copied");
        for i in 0..50 {
            assert_eq!(
                kv.get(format!("k{i}")).unwrap(),
                format!("v{i}").into_bytes()
            );
        }
        for companion in names::db_files(&old) {
            assert!(!companion.exists(), "{} left behind", companion.display());
        }
    }

    #[test]
    fn a_database_in_use_in_the_old_folder_stays_until_it_is_free() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let old = in_old_place(dir.path(), &key, "db");
        // Another process (an earlier version) has it open.
        let other = Connection::open(&old).unwrap();
        other
            .query_row("SELECT count(*) FROM kv", [], |r| r.get::<_, i64>(0))
            .unwrap();
        let data_path = dir.path().join("localhost");
        assert_eq!(relocate(&data_path, "db").unwrap().0, old);
        let kv = Kv::open_with("db", &options(dir.path(), &key)).unwrap();
        assert_eq!(kv.path().unwrap(), old);
        assert_eq!(kv.get("k7").unwrap(), b"v7");
        kv.close().unwrap();
        drop(other);
        let kv = Kv::open_with("db", &options(dir.path(), &key)).unwrap();
        assert_ne!(kv.path().unwrap(), old);
        assert_eq!(kv.get("k49").unwrap(), b"v49");
        assert!(!old.exists());
    }

    #[test]
    fn a_file_told_to_one_opener_is_not_moved_before_it_opens_it() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let old = in_old_place(dir.path(), &key, "db");
        let data_path = dir.path().join("localhost");
        let other = Connection::open(&old).unwrap();
        other
            .query_row("SELECT count(*) FROM kv", [], |r| r.get::<_, i64>(0))
            .unwrap();
        // In use: this opener is told the old name, and has not opened it yet when the
        // other connection closes and another opener comes.
        let (told, lock) = relocate(&data_path, "db").unwrap();
        assert_eq!(told, old);
        drop(other);
        assert_eq!(relocate(&data_path, "db").unwrap().0, old, "moved under an opener");
        assert!(old.is_file());
        drop(lock);
        assert_eq!(relocate(&data_path, "db").unwrap().0, names::db_path(&data_path, "db").unwrap());
    }

    #[test]
    fn processes_opening_at_once_agree_on_one_file() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        in_old_place(dir.path(), &key, "db");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (dir, key) = (dir.path().to_owned(), key.clone());
                std::thread::spawn(move || {
                    let kv = Kv::open_with("db", &options(&dir, &key)).unwrap();
                    kv.set(format!("t{i}"), "x").unwrap();
                    kv.path().unwrap()
                })
            })
            .collect();
        let paths: Vec<PathBuf> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let kv = Kv::open_with("db", &options(dir.path(), &key)).unwrap();
        for i in 0..8 {
            assert_eq!(kv.get(format!("t{i}")).unwrap(), b"x", "write {i} lost");
        }
        assert_eq!(kv.get("k0").unwrap(), b"v0");
        let moved = kv.path().unwrap();
        assert!(paths.iter().all(|p| p == &moved), "{paths:?}");
    }

    #[test]
    fn a_foreign_file_in_the_old_folder_is_refused_where_it_is() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let old_dir = dir.path().join("localhost/kv");
        std::fs::create_dir_all(&old_dir).unwrap();
        let old = old_dir.join("notes.sqlite");
        Connection::open(&old)
            .unwrap()
            .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
        let before = std::fs::read(&old).unwrap();
        let err = Kv::open_with("notes", &options(dir.path(), &key)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "{err}");
        assert_eq!(std::fs::read(&old).unwrap(), before, "left as it was");
        assert!(!names::db_path(&dir.path().join("localhost"), "notes")
            .unwrap()
            .exists());
    }

    /// An opener that waited for a deletion of the old folder's file must not create
    /// the database anew in the Go client's `kv` folder (which `charm link` deletes
    /// whole), but in the databases' folder.
    #[test]
    fn an_opener_that_waited_for_a_deletion_opens_in_the_new_folder() {
        let key = EncryptKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let old = in_old_place(dir.path(), &key, "db");
        let data_path = dir.path().join("localhost");
        // A deletion under way (`kv::delete_database`): the lock, then the files.
        let deleting = OpenLock::exclusive_now(&old, "db").unwrap();
        let opening = std::thread::spawn({
            let data_path = data_path.clone();
            move || relocate(&data_path, "db").map(|(at, _)| at)
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        for file in names::db_files(&old) {
            let _ = std::fs::remove_file(file);
        }
        drop(deleting);
        assert_eq!(
            opening.join().unwrap().unwrap(),
            names::db_path(&data_path, "db").unwrap()
        );
    }
}
