//! Whether a database is open anywhere.
//!
//! Every handle on database file `D` holds a shared lock on `D.open-lock` (`flock`-style,
//! per open file description: two handles of one process hold two locks) for as long as
//! its connections are open. Deleting the database takes that lock exclusively without
//! waiting, and refuses while any handle holds it: unlinking a file that a connection
//! still has open would let that connection commit into a file no one will read again
//! (acknowledged writes lost). An open that comes while a deletion holds the lock waits
//! for it, then creates the database anew.
//!
//! The lock file itself is never removed: a process waiting on it would get its lock
//! on a file that is gone, while the next one locks a new file of the same name.

use std::fs::File;
use std::path::Path;

use super::names;
use crate::error::{Error, Result};

/// A held lock on a database's open-lock file; released when dropped.
#[derive(Debug)]
pub struct OpenLock {
    file: File,
}

impl OpenLock {
    /// The shared lock an open handle holds, taken before its first connection is
    /// opened. Waits while a deletion holds the lock (a deletion is bounded by the
    /// `sync` timeout).
    pub fn shared(db: &Path) -> Result<OpenLock> {
        let path = names::open_lock_path(db);
        if let Some(dir) = path.parent() {
            crate::config::create_private_dir(dir)?;
        }
        let file = crate::config::open_lock_file(&path)?;
        file.lock_shared()
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(OpenLock { file })
    }

    /// [`OpenLock::shared`] for a read-only handle, which creates nothing: the lock file
    /// if some read-write open made it, else `None`. Such a handle only reads, so a
    /// deletion under it loses no write.
    pub fn shared_if_present(db: &Path) -> Option<OpenLock> {
        let file = File::open(names::open_lock_path(db)).ok()?;
        file.lock_shared().ok()?;
        Some(OpenLock { file })
    }

    /// The exclusive lock a deletion holds while it removes the files, taken without
    /// waiting: [`Error::Busy`] while any handle has the database open.
    pub fn exclusive_now(db: &Path, name: &str) -> Result<OpenLock> {
        let path = names::open_lock_path(db);
        let file = crate::config::open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(OpenLock { file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::busy(format!(
                "{} is open (in this or another process): close it there first",
                crate::error::quoted(name)
            ))),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()), e))
            }
        }
    }
}

/// What [`OpenLock::unless_open`] found.
#[derive(Debug)]
pub enum Unopened {
    /// No handle holds the lock: this one is held until dropped (`None`: there is no
    /// lock file, so no handle of this version ever opened the database there).
    Yes(Option<OpenLock>),
    /// A handle holds it.
    No,
}

impl OpenLock {
    /// The exclusive lock, without waiting and creating nothing, for a move that must
    /// not happen under a handle (`store::relocate`): a handle that has taken the lock
    /// but not yet opened its first connection is in use too.
    pub fn unless_open(db: &Path) -> Result<Unopened> {
        let path = names::open_lock_path(db);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Unopened::Yes(None)),
            Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
        };
        match file.try_lock() {
            Ok(()) => Ok(Unopened::Yes(Some(OpenLock { file }))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(Unopened::No),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()), e))
            }
        }
    }
}

impl Drop for OpenLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deletion_is_refused_while_any_handle_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d").join("x.sqlite");
        let first = OpenLock::shared(&db).unwrap();
        let second = OpenLock::shared(&db).unwrap();
        let refused = OpenLock::exclusive_now(&db, "x").unwrap_err();
        assert!(matches!(refused, Error::Busy { .. }), "{refused}");
        assert!(
            refused.to_string().contains("busy: \"x\" is open"),
            "{refused}"
        );
        drop(first);
        assert!(OpenLock::exclusive_now(&db, "x").is_err(), "one handle is left");
        drop(second);
        let deleting = OpenLock::exclusive_now(&db, "x").unwrap();
        // An open waits for the deletion, then goes ahead.
        let opening = std::thread::spawn(move || OpenLock::shared(&db).map(drop));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!opening.is_finished(), "an open went ahead during a deletion");
        drop(deleting);
        opening.join().unwrap().unwrap();
    }
}
