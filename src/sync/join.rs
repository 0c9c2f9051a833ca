//! Databases a device wrote in local mode (no `CHARM_HOST`: `<data dir>/localhost/`)
//! joining the data path of the account it linked into (`<data dir>/<host>/`), so
//! that they sync with the account (`docs/cloud-client.md`, "Local-mode databases").
//!
//! Each database `N` of the local-mode data path:
//! - with no `N` in the account's data path, moves there (the file moved while
//!   SQLite's exclusive lock shows nobody has it open, its WAL checkpointed into it,
//!   never over a file that appeared there: `store::relocate`) in two steps: first
//!   into `charm-kv/joining/moving/`, a folder no process opens databases in, where
//!   it forgets any remote state it had (`rejoin`: every row is a local write,
//!   pushed at the next sync), then to its place. A crash leaves it either where it
//!   was or in `moving/`, which the next join finishes first: no database ever
//!   reaches the account's data path still holding another account's sync state;
//! - with an `N` there already, first moves the same way into `charm-kv/joining/`, then
//!   its rows are written into the account's `N` as local writes (the local-mode value
//!   wins for a key both hold, as local writes do at a sync), each chunk deleted from
//!   the staged file once written, and the staged file removed. A merge that stops
//!   half-way leaves the staged file with the rows not merged yet, which the next join
//!   merges (so it never rewrites a value changed in the account's database since);
//!   rows that do not open are kept aside in `<name>.sqlite.unreadable`;
//! - in use by another process, stays, and the join stays due (`left`).
//!
//! The caller has made the local-mode encrypt keys part of `keys` (the moved files'
//! rows are sealed with them) and keeps the join recorded until nothing is `left`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::crypto::seal::Sealer;
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};
use crate::store::open_lock::OpenLock;
use crate::store::relocate::{self, Moved, Replace};
use crate::store::schema::{self, Access, Role};
use crate::store::{names, Direction, Durability, Iter, Op, Store};

/// The staging folder inside the databases' folder (not a database: it is listed by
/// nothing that lists databases, which are files).
pub const STAGING_DIR: &str = "joining";

/// The folder inside the staging folder where a database moving whole forgets its
/// remote state before it takes its place (see the module documentation).
pub const MOVING_DIR: &str = "moving";

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
    // Moving whole when a crash interrupted a join (before the staged files: one that
    // meets a database created meanwhile is staged and merged here).
    for (name, moving) in database_files(&staging.join(MOVING_DIR))? {
        if let Err(e) = finish_move(local, host, &name, &moving, keys, durability, &mut joined) {
            joined.note_failure(&name, &e);
        }
    }
    // Staged by a join a crash interrupted.
    for (name, staged) in staged_files(&staging)? {
        if staged_name_is_a_leftover(local, &name, &staged) {
            // A crash between the staging move's new name and its removal of the old
            // one: the local-mode name still holds the file, and a process may have
            // opened it there since (merging through the other name would give the
            // file a second WAL). This name goes; the database is staged again below.
            remove_files(&staged);
            continue;
        }
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
    // The source without its open lock (let go at once): the join moves that file
    // itself, which a lock of its own would refuse. The target's is held, as by any
    // handle: a deletion of it does not remove a file the join moves or merges into.
    let source = relocate::relocate(local, name)?.0;
    let (target, _target_lock) = relocate::relocate(host, name)?;
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
    if !keys_open(&source, keys, durability)? {
        // The local-mode keys could not be read: it stays where local mode reads it
        // (`Account::add_local_mode_keys`), instead of moving where neither mode sees
        // it and where the account's database of that name would be merged over later.
        joined.left += 1;
        return Ok(());
    }
    if !target.exists() {
        let moving = staging.join(MOVING_DIR).join(db_file_name(name));
        crate::config::create_private_dir(&staging.join(MOVING_DIR))?;
        return match relocate::move_when_unused(&source, &moving, Replace::No)? {
            Moved::Yes => {
                crate::config::crash_point("join-moved");
                finish_move(local, host, name, &moving, keys, durability, joined)
            }
            // In use; or (`TargetExists`) left in `moving/` by an earlier join that
            // could not finish it, a failure counted already.
            Moved::InUse | Moved::TargetExists => {
                joined.left += 1;
                Ok(())
            }
        };
    }
    stage_and_merge(&source, host, name, keys, durability, joined)
}

/// Whether one of `keys` is the encrypt key the database at `path` was created with
/// (its `key_check`), read through a read-only connection closed on return (a file
/// with no `key_check` yet holds nothing a key could fail to open).
fn keys_open(path: &Path, keys: &[EncryptKey], durability: Durability) -> Result<bool> {
    let conn = schema::connect_with(path, Role::Reader, durability, Access::ReadOnly)?;
    let check = schema::meta_get(&conn, schema::META_KEY_CHECK)?;
    Ok(check.is_none_or(|check| Sealer::new(keys).is_ok_and(|s| s.knows_check(check))))
}

/// Whether the staged file `staged` of database `name` is also the local-mode file
/// (a move interrupted after its new name was linked).
fn staged_name_is_a_leftover(local: &Path, name: &str, staged: &Path) -> bool {
    names::db_path(local, name)
        .is_ok_and(|source| source.exists() && same_file(staged, &source).unwrap_or(false))
}

/// The file name of database `name` (validated by the caller).
fn db_file_name(name: &str) -> String {
    format!("{name}{}", names::DB_SUFFIX)
}

/// Moves the database file `from` into the staging folder and merges its rows into
/// database `name` of `host` (see the module documentation).
fn stage_and_merge(
    from: &Path,
    host: &Path,
    name: &str,
    keys: &[EncryptKey],
    durability: Durability,
    joined: &mut Joined,
) -> Result<()> {
    let staging = names::db_dir(host).join(STAGING_DIR);
    crate::config::create_private_dir(&staging)?;
    let staged = staging.join(db_file_name(name));
    match relocate::move_when_unused(from, &staged, Replace::No)? {
        Moved::Yes => {
            merge_staged(&staged, host, name, keys, durability)?;
            joined.merged += 1;
        }
        Moved::InUse | Moved::TargetExists => joined.left += 1,
    }
    Ok(())
}

/// Finishes moving database `name` whole from `local` to `host`: the file `moving`
/// (in `joining/moving/`, where no other process opens it) forgets its remote state,
/// then takes its place, or is merged into a database `name` created there meanwhile.
/// Taken up again after a crash at any step: forgetting again only journals the rows
/// again.
fn finish_move(
    local: &Path,
    host: &Path,
    name: &str,
    moving: &Path,
    keys: &[EncryptKey],
    durability: Durability,
    joined: &mut Joined,
) -> Result<()> {
    let source = names::db_path(local, name)?;
    let target = names::db_path(host, name)?;
    let staged = names::db_dir(host).join(STAGING_DIR).join(db_file_name(name));
    // A crash between a move's new name and its removal of the old one: the other
    // name holds the file (and a process may have opened it there since), so this one
    // goes. Back in local mode it moves again; staged, it is merged next.
    for other in [&source, &target, &staged] {
        if other.exists() && same_file(moving, other)? {
            remove_files(moving);
            if other == &target {
                joined.moved += 1;
            }
            return Ok(());
        }
    }
    forget_remote(moving, keys, durability)?;
    // Held while the file takes its place (see `join_one`).
    let (at, _target_lock) = relocate::relocate(host, name)?;
    if at != target {
        // The account's `N` is in use in the old `kv` folder: merged at a later join.
        joined.left += 1;
        return Ok(());
    }
    match relocate::move_when_unused(moving, &target, Replace::No)? {
        Moved::Yes => joined.moved += 1,
        // Created meanwhile.
        Moved::TargetExists => stage_and_merge(moving, host, name, keys, durability, joined)?,
        Moved::InUse => joined.left += 1,
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
/// local writes, then removes the staged file.
///
/// A chunk of rows written to the target is deleted from the staged file right after,
/// so a merge that stops half-way (a crash, a busy or full disk) and is taken up by a
/// later join writes only what it had not written yet: it never puts back a value the
/// user has changed in the target since. (A crash between a chunk's two commits
/// writes that one chunk again.) Rows that do not open can never be merged: the rows
/// that do are, and the file is then kept beside the queue as
/// `<name>.sqlite.unreadable` with those rows, named in the error, instead of being
/// merged again at every open.
fn merge_staged(
    staged: &Path,
    host: &Path,
    name: &str,
    keys: &[EncryptKey],
    durability: Durability,
) -> Result<()> {
    let unreadable = {
        let source = Arc::new(Store::open_with(staged, Sealer::new(keys)?, durability)?);
        // With the target's open lock, as any handle: a deletion under way finishes
        // first, and none unlinks the file while rows go into it (and out of `staged`).
        let target_path = names::db_path(host, name)?;
        let target_lock = OpenLock::shared(&target_path)?;
        let target = Store::open_with(&target_path, Sealer::new(keys)?, durability)?
            .holding(Some(target_lock));
        let mut ops = Vec::with_capacity(MERGE_CHUNK);
        let mut unreadable = 0usize;
        let mut rows = Iter::new(&source, Direction::Forward, true)?;
        // An expiry travels with its row (an expired row is not listed at all).
        while let Some(row) = rows.next_entry() {
            let Ok((key, value, expires_at)) = row else {
                // Rows that do not open come last (`Iter`).
                unreadable += 1;
                continue;
            };
            ops.push(Op {
                key,
                value: Some(value),
                expires_at,
            });
            if ops.len() == MERGE_CHUNK {
                merge_chunk(&source, &target, &mut ops)?;
            }
        }
        merge_chunk(&source, &target, &mut ops)?;
        unreadable
    };
    if unreadable > 0 {
        let kept = staged.with_extension("sqlite.unreadable");
        for (from, suffix) in names::db_files(staged).into_iter().zip(["", "-wal", "-shm"]) {
            let to = PathBuf::from(format!("{}{suffix}", kept.display()));
            if from.exists() {
                std::fs::rename(&from, &to)
                    .map_err(|e| Error::io(format!("moving {} aside", from.display()), e))?;
            }
        }
        return Err(Error::corrupt(format!(
            "{unreadable} row(s) of the local-mode database could not be read with this \
             device's keys and were not merged; the other rows were. They are kept in {}",
            kept.display()
        )));
    }
    remove_files(staged);
    Ok(())
}

/// Writes `ops` into `target`, then deletes their keys from `source`, and empties
/// `ops`.
fn merge_chunk(source: &Store, target: &Store, ops: &mut Vec<Op>) -> Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    target.write(ops)?;
    let merged: Vec<Op> = ops.drain(..).map(|op| Op::delete(op.key)).collect();
    source.write(&merged)
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
    let file = crate::config::open_lock_file(&path)?;
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

    /// Stages local-mode database `name` as a join that a crash stopped right after
    /// staging it would have left it; returns the staged file.
    fn staged_by_a_crashed_join(local_path: &Path, host_path: &Path, name: &str) -> PathBuf {
        let staging = names::db_dir(host_path).join(STAGING_DIR);
        std::fs::create_dir_all(&staging).unwrap();
        let staged = staging.join(format!("{name}.sqlite"));
        let moved = relocate::move_when_unused(
            &names::db_path(local_path, name).unwrap(),
            &staged,
            Replace::No,
        );
        assert_eq!(moved.unwrap(), Moved::Yes);
        staged
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
        let staged = staged_by_a_crashed_join(&local_path, &host_path, "staged");
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

    /// A database the join's keys do not open (the local-mode keys could not be read:
    /// `Account::add_local_mode_keys` promises the databases then stay where they are,
    /// readable in local mode) must not vanish into `joining/moving/`: there neither
    /// mode sees it, and the next open of its name in the account creates an empty one,
    /// which a later join would then overwrite with the old rows.
    #[test]
    fn a_database_the_keys_do_not_open_stays_in_local_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (local_key, host_key) = (EncryptKey::generate(), EncryptKey::generate());
        let local = options(dir.path(), None, std::slice::from_ref(&local_key));
        set(&local, "notes", &[("a", "1")]);
        let (local_path, host_path) = (dir.path().join("localhost"), dir.path().join("h"));
        let joined =
            join_databases(&local_path, &host_path, &[host_key], Durability::Full).unwrap();
        assert_eq!(joined.left, 1, "{joined:?}");
        assert_eq!(
            contents(&local, "notes"),
            pairs(&[("a", "1")]),
            "still readable in local mode ({joined:?})"
        );
    }

    /// A data dir whose local-mode path holds `databases`, with the account's path `h`
    /// and an empty `joining/moving/` there, as a crashed join leaves them.
    struct Crashed {
        dir: tempfile::TempDir,
        key: EncryptKey,
        local_path: PathBuf,
        host_path: PathBuf,
        moving_dir: PathBuf,
    }

    fn crashed_join(databases: &[(&str, &[(&str, &str)])]) -> Crashed {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptKey::generate();
        let local = options(dir.path(), None, std::slice::from_ref(&key));
        for (name, rows) in databases {
            set(&local, name, rows);
        }
        let (local_path, host_path) = (dir.path().join("localhost"), dir.path().join("h"));
        let moving_dir = names::db_dir(&host_path)
            .join(STAGING_DIR)
            .join(MOVING_DIR);
        std::fs::create_dir_all(&moving_dir).unwrap();
        Crashed {
            dir,
            key,
            local_path,
            host_path,
            moving_dir,
        }
    }

    /// A file left in `joining/moving/` by a crash, when the account's database of that
    /// name was created meanwhile: merged into it (nothing replaced, nothing lost), and
    /// the crash's second move interrupted half-way (the file under both names) is
    /// only unlinked from `moving/`.
    #[test]
    fn a_moving_leftover_meets_a_target_created_meanwhile() {
        let Crashed {
            dir,
            key,
            local_path,
            host_path,
            moving_dir,
        } = crashed_join(&[
            ("late", &[("a", "local"), ("both", "local")]),
            ("half", &[("h", "1")]),
        ]);
        for name in ["late", "half"] {
            let from = names::db_path(&local_path, name).unwrap();
            let to = moving_dir.join(format!("{name}.sqlite"));
            assert_eq!(
                relocate::move_when_unused(&from, &to, Replace::No).unwrap(),
                Moved::Yes
            );
        }
        // `half` crashed inside its second move: linked at its place too.
        let half_target = names::db_path(&host_path, "half").unwrap();
        std::fs::create_dir_all(half_target.parent().unwrap()).unwrap();
        std::fs::hard_link(moving_dir.join("half.sqlite"), &half_target).unwrap();
        let host = options(dir.path(), Some("h"), std::slice::from_ref(&key));
        set(&host, "late", &[("b", "host"), ("both", "host")]);
        let joined =
            join_databases(&local_path, &host_path, std::slice::from_ref(&key), Durability::Full).unwrap();
        assert_eq!((joined.moved, joined.merged, joined.left), (1, 1, 0), "{joined:?}");
        assert_eq!(
            contents(&host, "late"),
            pairs(&[("a", "local"), ("b", "host"), ("both", "local")])
        );
        assert_eq!(contents(&host, "half"), pairs(&[("h", "1")]));
        assert!(database_files(&moving_dir).unwrap().is_empty());
    }

    /// A crash after a database moved into `joining/moving/`, before it forgot its
    /// remote state: the next join forgets it and moves it to its place. A crash
    /// inside the first move (the file under both names) leaves the local-mode name,
    /// from which it moves again.
    #[test]
    fn a_move_a_crash_interrupted_is_finished_by_the_next_join() {
        let Crashed {
            dir,
            key,
            local_path,
            host_path,
            moving_dir,
        } = crashed_join(&[("synced", &[("a", "1"), ("b", "2")]), ("linked", &[("c", "3")])]);
        // "synced" had synced with another account, and moved before the crash.
        let synced = names::db_path(&local_path, "synced").unwrap();
        let conn = rusqlite::Connection::open(&synced).unwrap();
        crate::store::schema::meta_set(&conn, crate::store::schema::META_MAX_VERSION, 42)
            .unwrap();
        drop(conn);
        let moving = moving_dir.join("synced.sqlite");
        assert_eq!(
            relocate::move_when_unused(&synced, &moving, Replace::No).unwrap(),
            Moved::Yes
        );
        // "linked" was under both names when the process died.
        let linked = names::db_path(&local_path, "linked").unwrap();
        std::fs::hard_link(&linked, moving_dir.join("linked.sqlite")).unwrap();

        let keys = [key.clone()];
        let joined = join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap();
        assert_eq!(joined.moved, 2, "{joined:?}");
        assert_eq!(joined.left, 0, "{joined:?}");
        assert!(database_files(&moving_dir).unwrap().is_empty());
        assert!(database_names(&local_path).unwrap().is_empty());
        let host = options(dir.path(), Some("h"), &keys);
        assert_eq!(contents(&host, "synced"), pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(contents(&host, "linked"), pairs(&[("c", "3")]));
        let kv = Kv::open_with("synced", &host).unwrap();
        assert_eq!(
            kv.store()
                .unwrap()
                .meta(crate::store::schema::META_MAX_VERSION)
                .unwrap(),
            Some(0),
            "the other account's version is forgotten"
        );
        assert_eq!(kv.pending_writes().unwrap(), 2);
    }

    /// A crash inside the staging move (the file under its local-mode name and its
    /// staged name): the staged name goes and the database is staged and merged from
    /// its local-mode name, once, instead of being opened under both names.
    #[test]
    fn a_staging_move_a_crash_interrupted_is_merged_once_from_its_local_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptKey::generate();
        let keys = [key.clone()];
        let local = options(dir.path(), None, &keys);
        set(&local, "notes", &[("a", "local"), ("both", "local")]);
        let host = options(dir.path(), Some("h"), &keys);
        set(&host, "notes", &[("b", "host"), ("both", "host")]);
        let (local_path, host_path) = (dir.path().join("localhost"), dir.path().join("h"));
        let staging = names::db_dir(&host_path).join(STAGING_DIR);
        std::fs::create_dir_all(&staging).unwrap();
        let source = names::db_path(&local_path, "notes").unwrap();
        std::fs::hard_link(&source, staging.join("notes.sqlite")).unwrap();
        // A local-mode process writes through its name meanwhile.
        set(&local, "notes", &[("later", "local")]);

        let joined = join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap();
        assert_eq!((joined.merged, joined.left), (1, 0), "{joined:?}");
        assert!(staged_files(&staging).unwrap().is_empty());
        assert!(database_names(&local_path).unwrap().is_empty());
        assert_eq!(
            contents(&host, "notes"),
            pairs(&[
                ("a", "local"),
                ("b", "host"),
                ("both", "local"),
                ("later", "local")
            ])
        );
    }

    /// A merge stopped by a row that does not open merges the other rows once, keeps
    /// the bad row aside, and is not merged again: a value the user writes in the
    /// account's database afterwards stays.
    #[test]
    fn a_merge_that_meets_an_unreadable_row_does_not_revert_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptKey::generate();
        let local = options(dir.path(), None, std::slice::from_ref(&key));
        set(&local, "notes", &[("k", "local")]);
        {
            // More rows than one merge chunk, after "k" in key order.
            let kv = Kv::open_with("notes", &local).unwrap();
            let mut batch = kv.batch();
            for i in 0..1500 {
                batch.set(format!("z{i:05}"), "filler");
            }
            batch.commit().unwrap();
            kv.close().unwrap();
        }
        // One damaged row in the local-mode database (a stored key no cipher opens).
        let local_path = dir.path().join("localhost");
        {
            let path = names::db_path(&local_path, "notes").unwrap();
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2)",
                (vec![7u8; 40], vec![1u8; 60]),
            )
            .unwrap();
        }
        let host = options(dir.path(), Some("h"), std::slice::from_ref(&key));
        set(&host, "notes", &[("k", "host")]);
        let host_path = dir.path().join("h");
        let keys = [key.clone()];
        let first = join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap();
        assert_eq!(first.left, 1, "{first:?}");
        assert!(first.problems[0].contains("1 row(s)"), "{first:?}");
        {
            let kv = Kv::open_with("notes", &host).unwrap();
            assert_eq!(kv.get("k").unwrap(), b"local");
            assert_eq!(kv.get("z01499").unwrap(), b"filler");
        }
        let kept = names::db_dir(&host_path)
            .join(STAGING_DIR)
            .join("notes.sqlite.unreadable");
        assert!(kept.is_file(), "the unreadable row is kept aside");
        // The user writes a newer value in the account's database; the next join
        // finds nothing left to merge.
        set(&host, "notes", &[("k", "newer")]);
        let second = join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap();
        assert_eq!(second, Joined::default());
        let kv = Kv::open_with("notes", &host).unwrap();
        assert_eq!(kv.get("k").unwrap(), b"newer", "a later join reverted a newer write");
    }

    /// A merge writes into the account's database like any handle: a deletion of it
    /// (which holds its open lock exclusively while it removes the files) must not
    /// unlink the file under the merge, whose rows are then gone from the staged file
    /// too.
    #[test]
    fn a_merge_waits_for_a_deletion_of_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptKey::generate();
        let local = options(dir.path(), None, std::slice::from_ref(&key));
        set(&local, "staged", &[("s", "local")]);
        let host = options(dir.path(), Some("h"), std::slice::from_ref(&key));
        set(&host, "staged", &[("t", "host")]);
        let (local_path, host_path) = (dir.path().join("localhost"), dir.path().join("h"));
        staged_by_a_crashed_join(&local_path, &host_path, "staged");
        // A deletion under way (`kv::delete_database`): the lock, then the files.
        let target = names::db_path(&host_path, "staged").unwrap();
        let deleting = OpenLock::exclusive_now(&target, "staged").unwrap();
        let joining = std::thread::spawn({
            let keys = [key.clone()];
            move || join_databases(&local_path, &host_path, &keys, Durability::Full).unwrap()
        });
        // Time for a merge that does not wait to write into the file.
        std::thread::sleep(std::time::Duration::from_millis(300));
        for file in names::db_files(&target) {
            let _ = std::fs::remove_file(file);
        }
        drop(deleting);
        assert_eq!(joining.join().unwrap().merged, 1);
        assert_eq!(
            contents(&host, "staged"),
            pairs(&[("s", "local")]),
            "the local-mode rows merged after the deletion"
        );
    }
}
