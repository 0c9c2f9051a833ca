//! Databases a device wrote in local mode (no `CHARM_HOST`: `<data dir>/localhost/`)
//! joining the data path of the account it linked into (`<data dir>/<host>/`), so
//! that they sync with the account (`docs/cloud-client.md`, "Local-mode databases").
//!
//! Each database `N` of the local-mode data path:
//! - with no `N` in the account's data path, moves there (the file renamed while
//!   SQLite's exclusive lock shows nobody has it open, its WAL checkpointed into it,
//!   never over a file that appeared there: `store::relocate`), then forgets any
//!   remote state it had (`rejoin`): every row is a local write, pushed at the next
//!   sync;
//! - with an `N` there already, first moves the same way into `charm-kv/joining/`, then
//!   its rows are written into the account's `N` as local writes (the local-mode value
//!   wins for a key both hold, as local writes do at a sync), and the staged file is
//!   removed. A crash in between leaves the staged file, merged again (the same values:
//!   nothing lost, nothing twice) by the next join;
//! - in use by another process, stays, and the join stays due (`left`).
//!
//! The caller has made the local-mode encrypt keys part of `keys` (the moved files'
//! rows are sealed with them) and keeps the join recorded until nothing is `left`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::crypto::seal::Sealer;
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};
use crate::store::relocate::{self, Moved, Replace};
use crate::store::{names, Direction, Durability, Iter, Op, Store};

/// The staging folder inside the databases' folder (not a database: it is listed by
/// nothing that lists databases, which are files).
pub const STAGING_DIR: &str = "joining";

/// Rows written per transaction when merging.
const MERGE_CHUNK: usize = 1000;

/// What a join did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joined {
    /// Databases moved whole.
    pub moved: usize,
    /// Databases whose rows were merged into the account's database of that name.
    pub merged: usize,
    /// Databases another process had open, or that failed (see `problems`): still in
    /// local mode, to join later.
    pub left: usize,
    /// Why databases failed to join (the first few), each naming its database.
    pub problems: Vec<String>,
}

/// At most this many problems are kept.
const MAX_PROBLEMS: usize = 8;

impl Joined {
    fn note_failure(&mut self, name: &str, error: &Error) {
        self.left += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems
                .push(format!("{}: {error}", crate::error::quoted(name)));
        }
    }
}

/// Moves or merges every database of the data path `local` into the data path `host`
/// (see the module documentation), opening them with `keys`.
pub fn join_databases(
    local: &Path,
    host: &Path,
    keys: &[EncryptKey],
    durability: Durability,
) -> Result<Joined> {
    let mut joined = Joined::default();
    let staging = names::db_dir(host).join(STAGING_DIR);
    // Threads and processes opening databases at once after a link join one at a
    // time (a second finds nothing left to do).
    let _lock = lock(&names::db_dir(host))?;
    // Staged by a join a crash interrupted.
    for (name, staged) in staged_files(&staging)? {
        match merge_staged(&staged, host, &name, keys, durability) {
            Ok(()) => joined.merged += 1,
            Err(e) => joined.note_failure(&name, &e),
        }
    }
    for name in database_names(local)? {
        // One database that cannot join (a foreign file under its name, a row that
        // does not open) does not hold up the others.
        if let Err(e) = join_one(local, host, &name, keys, durability, &mut joined) {
            joined.note_failure(&name, &e);
        }
    }
    Ok(joined)
}

/// Moves or merges database `name` of `local` into `host`, counting it in `joined`.
fn join_one(
    local: &Path,
    host: &Path,
    name: &str,
    keys: &[EncryptKey],
    durability: Durability,
    joined: &mut Joined,
) -> Result<()> {
    let db_dir = names::db_dir(host);
    let staging = db_dir.join(STAGING_DIR);
    let source = relocate::relocate(local, name)?;
    let target = relocate::relocate(host, name)?;
    if source != names::db_path(local, name)? || target != names::db_path(host, name)? {
        // In use in the old `kv` folder: moves out of it first, at a later join.
        joined.left += 1;
        return Ok(());
    }
    crate::config::create_private_dir(&db_dir)?;
    if target.exists() && same_file(&source, &target)? {
        // A crash after the target name was linked and before the old one went.
        remove_files(&source);
        joined.moved += 1;
        return Ok(());
    }
    if !target.exists() {
        match relocate::move_when_unused(&source, &target, Replace::No)? {
            Moved::Yes => {
                forget_remote(&target, keys, durability)?;
                joined.moved += 1;
                return Ok(());
            }
            Moved::InUse => {
                joined.left += 1;
                return Ok(());
            }
            // Created meanwhile: merged below.
            Moved::TargetExists => {}
        }
    }
    crate::config::create_private_dir(&staging)?;
    let staged = staging.join(format!("{name}{}", names::DB_SUFFIX));
    match relocate::move_when_unused(&source, &staged, Replace::No)? {
        Moved::Yes => {
            merge_staged(&staged, host, name, keys, durability)?;
            joined.merged += 1;
        }
        Moved::InUse | Moved::TargetExists => joined.left += 1,
    }
    Ok(())
}

/// The database names of a data path: files in its databases' folder and in the old
/// `kv` folder, sorted, each once.
fn database_names(data_path: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for dir in [names::db_dir(data_path), names::legacy_db_dir(data_path)] {
        for (name, _) in database_files(&dir)? {
            found.push(name);
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn staged_files(staging: &Path) -> Result<Vec<(String, PathBuf)>> {
    database_files(staging)
}

/// `(name, path)` of the database files directly in `dir` (none if it is missing).
fn database_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if let (true, Some(file)) = (is_file, entry.file_name().to_str()) {
            if let Some(name) = names::name_of(file) {
                found.push((name.to_owned(), entry.path()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Writes every row of the staged database file into database `name` of `host` as
/// local writes, then removes the staged file. Any row that does not open stops it
/// with the staged file kept.
fn merge_staged(
    staged: &Path,
    host: &Path,
    name: &str,
    keys: &[EncryptKey],
    durability: Durability,
) -> Result<()> {
    {
        let source = Arc::new(Store::open_with(staged, Sealer::new(keys)?, durability)?);
        let target = Store::open_with(&names::db_path(host, name)?, Sealer::new(keys)?, durability)?;
        let mut ops = Vec::with_capacity(MERGE_CHUNK);
        let mut rows = Iter::new(&source, Direction::Forward, true)?;
        // An expiry travels with its row (an expired row is not listed at all).
        while let Some(row) = rows.next_entry() {
            let (key, value, expires_at) = row?;
            ops.push(Op {
                key,
                value: Some(value),
                expires_at,
            });
            if ops.len() == MERGE_CHUNK {
                target.write(&ops)?;
                ops.clear();
            }
        }
        if !ops.is_empty() {
            target.write(&ops)?;
        }
    }
    remove_files(staged);
    Ok(())
}

/// A moved database may have synced with another server's account under this name
/// (local mode and `CHARM_HOST=localhost` share a data path): its sync state is
/// forgotten and every row journaled, so the next sync pushes it into this account.
fn forget_remote(db: &Path, keys: &[EncryptKey], durability: Durability) -> Result<()> {
    let store = Arc::new(Store::open_with(db, Sealer::new(keys)?, durability)?);
    let token = (rand::random::<u64>() >> 1).max(1) as i64;
    super::rejoin::rehome(&store, token)?;
    Ok(())
}

/// Name of the lock file that serialises joins, in the databases' folder.
const LOCK_FILE: &str = ".join.lock";

/// Waits for the join lock of the databases' folder `db_dir` (released on drop).
fn lock(db_dir: &Path) -> Result<std::fs::File> {
    crate::config::create_private_dir(db_dir)?;
    let path = db_dir.join(LOCK_FILE);
    let mut options = std::fs::File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    file.lock()
        .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
    Ok(file)
}

fn remove_files(db: &Path) {
    for file in names::db_files(db) {
        let _ = std::fs::remove_file(file);
    }
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &Path| {
        std::fs::metadata(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
    };
    let (a, b) = (meta(a)?, meta(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kv, Options};

    /// Options for the data path `<dir>/<host>` (`localhost` without one), offline.
    fn options(dir: &Path, host: Option<&str>, keys: &[EncryptKey]) -> Options {
        let mut options = Options::new();
        options
            .data_dir(dir)
            .host(host.map(str::to_owned))
            .local(true)
            .encrypt_keys(keys.to_vec());
        options
    }

    fn set(options: &Options, db: &str, pairs: &[(&str, &str)]) {
        let kv = Kv::open_with(db, options).unwrap();
        for (k, v) in pairs {
            kv.set(k, v).unwrap();
        }
        kv.close().unwrap();
    }

    fn contents(options: &Options, db: &str) -> Vec<(String, String)> {
        let kv = Kv::open_with(db, options).unwrap();
        kv.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (
                    String::from_utf8(k).unwrap(),
                    String::from_utf8(v).unwrap(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn local_databases_move_or_merge_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (local_key, host_key) = (EncryptKey::generate(), EncryptKey::generate());
        let local = options(dir.path(), None, std::slice::from_ref(&local_key));
        set(&local, "notes", &[("a", "local"), ("both", "local")]);
        set(&local, "solo", &[("x", "1")]);
        let host_only = options(dir.path(), Some("h"), std::slice::from_ref(&host_key));
        set(&host_only, "notes", &[("b", "host"), ("both", "host")]);

        let keys = [host_key.clone(), local_key.clone()];
        let (local_path, host_path) = (dir.path().join("localhost"), dir.path().join("h"));
        let joined = join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap();
        assert_eq!(
            joined,
            Joined {
                moved: 1,
                merged: 1,
                left: 0,
                problems: Vec::new(),
            }
        );
        let host = options(dir.path(), Some("h"), &keys);
        assert_eq!(
            contents(&host, "notes"),
            pairs(&[("a", "local"), ("b", "host"), ("both", "local")])
        );
        assert_eq!(contents(&host, "solo"), pairs(&[("x", "1")]));
        assert!(database_names(&local_path).unwrap().is_empty());
        assert!(staged_files(&names::db_dir(&host_path).join(STAGING_DIR))
            .unwrap()
            .is_empty());
        // Every row is a local write, for the next sync to push.
        let kv = Kv::open_with("solo", &host).unwrap();
        assert_eq!(kv.pending_writes().unwrap(), 1);
        // Nothing left: a second join does nothing.
        let again = join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap();
        assert_eq!(again, Joined::default());
    }

    #[test]
    fn a_database_in_use_stays_and_a_staged_one_is_merged_by_the_next_join() {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptKey::generate();
        let local = options(dir.path(), None, std::slice::from_ref(&key));
        set(&local, "busy", &[("k", "v")]);
        set(&local, "staged", &[("s", "local")]);
        let host = options(dir.path(), Some("h"), std::slice::from_ref(&key));
        set(&host, "staged", &[("t", "host")]);
        let (local_path, host_path) = (dir.path().join("localhost"), dir.path().join("h"));
        // A join that a crash stopped after staging `staged`.
        let staging = names::db_dir(&host_path).join(STAGING_DIR);
        std::fs::create_dir_all(&staging).unwrap();
        let staged = staging.join("staged.sqlite");
        assert_eq!(
            relocate::move_when_unused(
                &names::db_path(&local_path, "staged").unwrap(),
                &staged,
                Replace::No
            )
            .unwrap(),
            Moved::Yes
        );
        let busy = Kv::open_with("busy", &local).unwrap();
        let keys = [key.clone()];
        let joined = join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap();
        assert_eq!(
            joined,
            Joined {
                moved: 0,
                merged: 1,
                left: 1,
                problems: Vec::new(),
            }
        );
        assert_eq!(
            contents(&host, "staged"),
            pairs(&[("s", "local"), ("t", "host")])
        );
        assert!(!staged.exists());
        assert_eq!(busy.get("k").unwrap(), b"v", "left where it is");
        busy.close().unwrap();
        let joined = join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap();
        assert_eq!(joined.moved, 1);
        assert_eq!(contents(&host, "busy"), pairs(&[("k", "v")]));
    }
}
