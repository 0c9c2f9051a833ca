//! [`Kv`]: the public handle of one database.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use crate::cloud::{deadline, CharmClient};
use crate::crypto::seal::Sealer;
use crate::crypto::EncryptKey;
use crate::sync::charm::CharmRemote;
use crate::sync::status::{self, RemoteStatus, StoreStatus};
use crate::sync::{SyncProgress, DEFAULT_TICKET_WAIT};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::store::open_lock::OpenLock;
use crate::store::{names, Direction, Fetched, Iter, KeyRange, Op, Store, MAX_VALUE_LEN};

/// The database `charm kv` uses when none is named; [`Kv::open`] with the empty name
/// opens it.
pub const DEFAULT_DATABASE: &str = "charm.sh.kv.user.default";

/// An encrypted key-value database.
///
/// `Kv` is cheap to clone; clones share one open database and are safe to use from many
/// threads at once. Reads never wait for writers; writes are serialised. Other processes
/// may open the same database at the same time.
#[derive(Clone)]
pub struct Kv {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    options: Options,
    data_path: PathBuf,
    state: RwLock<Option<Arc<Store>>>,
    /// The Charm client, made on first use (no network until then).
    client: OnceLock<Arc<CharmClient>>,
    /// Why the last automatic push failed, if it did.
    last_push_error: Mutex<Option<String>>,
}

impl Kv {
    /// Opens (creating if needed) database `name` with settings from the `CHARM_*`
    /// environment: local mode unless `CHARM_HOST` is set. The empty name opens
    /// [`DEFAULT_DATABASE`], as `charm kv` does without `@DB`.
    pub fn open(name: &str) -> Result<Kv> {
        Kv::open_with(name, &Options::from_env()?)
    }

    /// Opens (creating if needed) database `name` with explicit options; with
    /// [`Options::read_only`] the database must exist and nothing is created or written.
    /// The empty name opens [`DEFAULT_DATABASE`].
    ///
    /// A read-write open first finishes a pending re-homing (a link or an identity
    /// import that a crash interrupted: `docs/sync.md`, "Joining another account").
    pub fn open_with(name: &str, options: &Options) -> Result<Kv> {
        if !options.read_only && options.keys.is_none() {
            // Best effort: a database that cannot join now keeps the join due.
            let _ = join_local_databases(options);
        }
        let kv = Kv::open_one(name, options)?;
        if !options.read_only {
            kv.finish_pending_rejoin();
        }
        Ok(kv)
    }

    /// [`Kv::open_with`] without the re-homing of the other databases.
    fn open_one(name: &str, options: &Options) -> Result<Kv> {
        let name = if name.is_empty() {
            DEFAULT_DATABASE
        } else {
            name
        };
        names::validate(name)?;
        // The same checks as the environment's, for settings made with the builder.
        options.config.validate()?;
        // Absolute, so that no path derived from it (the sync's attached files too) can
        // start with `file:` and be read by SQLite as a URI.
        let data_path = options.config.data_path()?;
        let data_path = std::path::absolute(&data_path).map_err(|e| {
            Error::io(
                format!(
                    "resolving the data path {}",
                    crate::error::quoted(&data_path.to_string_lossy())
                ),
                e,
            )
        })?;
        // The first open with a server fetches the account's keys: several requests,
        // bounded together like a sync.
        let keys = match &options.keys {
            Some(keys) => keys.clone(),
            // Read-only: the cached keys or nothing; no identity, key or server request.
            None if options.read_only => crate::account::keys_for_read_only(&options.config)?,
            None => deadline::within(options.config.timeouts.sync, || {
                crate::account::keys_for_open(&options.config)
            })?,
        };
        let sealer = Sealer::new(&keys)?;
        let store = if options.read_only {
            // Read where it is: nothing moved, created, cleaned or written.
            let db_path = crate::store::relocate::locate(&data_path, name)?;
            let lock = OpenLock::shared_if_present(&db_path);
            Store::open_read_only(&db_path, sealer, options.durability).map_err(|e| match e {
                Error::DatabaseNotFound(_) => Error::DatabaseNotFound(format!(
                    "{} in {} (a read-only open creates none)",
                    crate::error::quoted(name),
                    names::db_dir(&data_path).display()
                )),
                other => other,
            })?
            .with_clock(options.clock.clone())
            .holding(lock)
        } else {
            // With the open lock, taken before the first connection: a deletion under
            // way finishes first.
            let (db_path, lock) = crate::store::relocate::relocate(&data_path, name)?;
            let store = Store::open_with(&db_path, sealer, options.durability)?
                .with_clock(options.clock.clone())
                .holding(Some(lock));
            crate::sync::clean_stale_temp_files(&db_path)?;
            store
        };
        let kv = Kv {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                options: options.clone(),
                data_path,
                state: RwLock::new(Some(Arc::new(store))),
                client: OnceLock::new(),
                last_push_error: Mutex::new(None),
            }),
        };
        if !options.read_only {
            kv.rehome_if_pending()?;
        }
        Ok(kv)
    }

    /// Re-homes this database if a re-homing is due and it has not gone through it
    /// yet (`sync::rejoin`): before any sync, so that its rows reach the account the
    /// device is in now. One file read when none is due.
    ///
    /// Not while a link is unsettled (a link record left by a crash or a failed
    /// request, `account::pending`): the re-homing it noted is due only if the link
    /// happened, and re-homing for a link that did not would turn every row into a
    /// local write that overwrites newer values of the same account at the next sync.
    /// [`Kv::settle_link_then_rehome`] (a sync) asks the server first.
    fn rehome_if_pending(&self) -> Result<()> {
        if link_unsettled(&self.shared.data_path) {
            return Ok(());
        }
        if let Some(token) = crate::sync::rejoin::pending(&self.shared.data_path)? {
            crate::sync::rejoin::rehome(&self.store()?, token)?;
        }
        Ok(())
    }

    /// Before a sync: settles a link left unsettled by asking the server (a link that
    /// did not happen drops the re-homing it noted; one that did finishes its local
    /// part), then re-homes if that is still due. A server that cannot be reached
    /// fails the sync with nothing re-homed.
    fn settle_link_then_rehome(&self) -> Result<()> {
        let data_path = &self.shared.data_path;
        if link_unsettled(data_path) {
            let account = crate::account::Account::open(&self.shared.options.config)?;
            if let Some(token) = account.settle_link()? {
                crate::sync::rejoin::finish_pending(data_path, token)?;
            }
        }
        self.rehome_if_pending()
    }

    /// With a re-homing due, re-homes every other database of the data path and then
    /// removes the marker. Best effort: a database that fails to open keeps the
    /// marker, and is re-homed by its own open or sync (which re-home first), so
    /// nothing depends on this pass finishing.
    fn finish_pending_rejoin(&self) {
        let data_path = &self.shared.data_path;
        if link_unsettled(data_path) {
            return;
        }
        let Ok(Some(token)) = crate::sync::rejoin::pending(data_path) else {
            return;
        };
        let _ = rejoin_all(&self.shared.options, token, Some(&self.shared.name))
            .and_then(|_| crate::sync::rejoin::finish_pending(data_path, token));
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The Charm data path this database lives under, made absolute at open (so that
    /// no path SQLite sees can start with `file:` and be read as a URI).
    pub fn data_path(&self) -> &Path {
        &self.shared.data_path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    pub(crate) fn store(&self) -> Result<Arc<Store>> {
        let state = self
            .shared
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.as_ref().cloned().ok_or(Error::Closed)
    }

    /// Runs `f` on the open store without taking a reference to it: `close` waits for
    /// it (point reads use this; it saves two atomic reference-count updates each).
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let state = self
            .shared
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(state.as_deref().ok_or(Error::Closed)?)
    }

    /// The database file.
    pub fn path(&self) -> Result<PathBuf> {
        Ok(self.store()?.path().to_owned())
    }

    /// The value of `key`, or [`Error::NotFound`]. Every call taking a key refuses the
    /// empty key with [`Error::InvalidArgument`], as Charm's kv (Badger) does.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Vec<u8>> {
        self.with_store(|store| store.get(key.as_ref()))
    }

    /// The value of `key` decrypted into `buf` when it fits (no allocation), otherwise
    /// returned owned; [`Error::NotFound`] when missing. For hot read loops.
    pub fn get_into(&self, key: impl AsRef<[u8]>, buf: &mut [u8]) -> Result<Fetched> {
        self.with_store(|store| store.get_into(key.as_ref(), buf))
    }

    /// Sets `key` (not empty) to `value` (any bytes, empty allowed). Durable when it returns (with
    /// the default [`crate::Durability::Full`]; see [`Options::durability`]).
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        // Sizes before the copies: an oversized value is refused without copying it.
        crate::store::check_key(key.as_ref())?;
        crate::store::check_value(value.as_ref())?;
        self.apply(vec![Op::set(key.as_ref(), value.as_ref())])
    }

    /// Sets `key` to `value`, expiring `ttl` from now: from then on every read (get,
    /// listing, iteration, export) treats it as absent, here and on every device it
    /// syncs to (the expiry is encrypted inside the value). A zero TTL, or one ending
    /// after the year 9999, is [`Error::InvalidArgument`].
    pub fn set_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<()> {
        let expires_at = crate::store::expiry::expiry_after(self.now_ms(), ttl)?;
        self.set_expiring(key, value, expires_at)
    }

    /// Sets `key` to `value`, expiring at `at` (as Redis's `EXPIREAT`): a time already
    /// passed deletes the key. Times before 1970 or after the year 9999 are
    /// [`Error::InvalidArgument`].
    pub fn set_expiring_at(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        at: SystemTime,
    ) -> Result<()> {
        self.set_expiring(key, value, expiry_of_time(at)?)
    }

    /// [`Kv::set_expiring_at`] with the expiry in unix milliseconds (1 to the end of
    /// the year 9999), as the C ABI and the bindings give it.
    pub fn set_expiring_at_unix_ms(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        at_unix_ms: i64,
    ) -> Result<()> {
        self.set_expiring(key, value, crate::store::expiry::check_expiry(at_unix_ms)?)
    }

    fn set_expiring(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expires_at: u64,
    ) -> Result<()> {
        crate::store::check_key(key.as_ref())?;
        crate::store::check_value(value.as_ref())?;
        self.apply(vec![Op {
            key: key.as_ref().to_vec(),
            value: Some(value.as_ref().to_vec()),
            expires_at: Some(expires_at),
        }])
    }

    /// The time left before `key` expires: `None` when it has no expiry,
    /// [`Error::NotFound`] when it is missing (or expired). Never zero: under a
    /// millisecond left counts as one.
    pub fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<Duration>> {
        let now = self.now_ms();
        Ok(self
            .expires_at_unix_ms(key)?
            .map(|at| Duration::from_millis((at as u64).saturating_sub(now).max(1))))
    }

    /// When `key` expires: `None` when it has no expiry, [`Error::NotFound`] when it
    /// is missing (or expired).
    pub fn expires_at(&self, key: impl AsRef<[u8]>) -> Result<Option<SystemTime>> {
        Ok(self
            .expires_at_unix_ms(key)?
            .map(|at| SystemTime::UNIX_EPOCH + Duration::from_millis(at as u64)))
    }

    /// [`Kv::expires_at`] in unix milliseconds.
    pub fn expires_at_unix_ms(&self, key: impl AsRef<[u8]>) -> Result<Option<i64>> {
        // Expiries are at most MAX_EXPIRY_MS, far inside i64.
        self.with_store(|store| store.expiry(key.as_ref()))
            .map(|at| at.map(|at| at as i64))
    }

    /// Makes `key` expire `ttl` from now, keeping its value ([`Error::NotFound`] when
    /// it is missing or expired; a TTL as for [`Kv::set_with_ttl`]).
    pub fn expire(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<()> {
        let expires_at = crate::store::expiry::expiry_after(self.now_ms(), ttl)?;
        self.set_expiry(key.as_ref(), Some(expires_at))
    }

    /// Makes `key` expire at `at` (a time passed deletes it); [`Error::NotFound`]
    /// when it is missing or expired.
    pub fn expire_at(&self, key: impl AsRef<[u8]>, at: SystemTime) -> Result<()> {
        self.set_expiry(key.as_ref(), Some(expiry_of_time(at)?))
    }

    /// [`Kv::expire_at`] with the time in unix milliseconds (1 to the end of 9999).
    pub fn expire_at_unix_ms(&self, key: impl AsRef<[u8]>, at_unix_ms: i64) -> Result<()> {
        let at = crate::store::expiry::check_expiry(at_unix_ms)?;
        self.set_expiry(key.as_ref(), Some(at))
    }

    /// Removes the expiry of `key`, keeping its value. A key without expiry is left as
    /// it is (success, nothing written); a missing or expired one is
    /// [`Error::NotFound`].
    pub fn persist(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.set_expiry(key.as_ref(), None)
    }

    fn set_expiry(&self, key: &[u8], expires_at: Option<u64>) -> Result<()> {
        self.refuse_if_read_only("writing")?;
        self.store()?.set_expiry(key, expires_at)?;
        self.after_write();
        Ok(())
    }

    /// Now, for expiries, in unix milliseconds.
    pub(crate) fn now_ms(&self) -> u64 {
        self.shared.options.clock.now_ms()
    }

    /// Sets `key` to everything `reader` yields.
    pub fn set_reader(&self, key: impl AsRef<[u8]>, reader: impl Read) -> Result<()> {
        let mut value = Vec::new();
        let limit = MAX_VALUE_LEN as u64 + 1;
        reader
            .take(limit)
            .read_to_end(&mut value)
            .map_err(|e| Error::io("reading the value", e))?;
        if value.len() as u64 == limit {
            return Err(Error::invalid(format!(
                "value is larger than the limit of {MAX_VALUE_LEN} bytes"
            )));
        }
        self.set(key, value)
    }

    /// Deletes `key`; deleting a missing key is not an error.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.apply(vec![Op::delete(key.as_ref())])
    }

    /// All keys, ascending byte order.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        self.store()?.keys()
    }

    /// The keys in `range` (a prefix, a start key, a direction), in its order. From
    /// the sorted key list when nothing was written since the last listing: then a
    /// prefix costs two binary searches plus the copies of the keys it returns.
    pub fn keys_in(&self, range: &KeyRange) -> Result<Vec<Vec<u8>>> {
        self.with_keys(|keys| {
            let selected = range.select(keys);
            match range.order() {
                Direction::Forward => selected.to_vec(),
                Direction::Reverse => selected.iter().rev().cloned().collect(),
            }
        })
    }

    /// The keys that start with `prefix`, ascending (see [`Kv::keys_in`]).
    pub fn keys_with_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<Vec<u8>>> {
        self.keys_in(&KeyRange::all().prefix(prefix))
    }

    /// Calls `f` with every key in ascending byte order, without copying the list (it
    /// is shared with later listings while nothing is written).
    pub fn with_keys<T>(&self, f: impl FnOnce(&[Vec<u8>]) -> T) -> Result<T> {
        self.store()?.with_keys(f)
    }

    /// All `(key, value)` pairs in ascending key order, from one consistent snapshot.
    pub fn iter(&self) -> Result<Iter> {
        self.iter_with(Direction::Forward, true)
    }

    /// Pairs in the given order; with `with_values == false` values come back empty and
    /// are not read.
    pub fn iter_with(&self, direction: Direction, with_values: bool) -> Result<Iter> {
        Iter::new(&self.store()?, direction, with_values)
    }

    /// The `(key, value)` pairs of `range` in its order, from one consistent snapshot
    /// (values empty and not read when `with_values == false`). A prefix or start key
    /// is found by binary search in the sorted key list when it is still valid (no
    /// write since the last listing or iteration); otherwise every key is decrypted
    /// once, and the list kept for the next call.
    pub fn iter_in(&self, range: &KeyRange, with_values: bool) -> Result<Iter> {
        Iter::in_range(&self.store()?, range, with_values)
    }

    /// Writes a consistent copy of the database file (still encrypted) to `dest`, which
    /// must not exist. Readers and writers carry on meanwhile.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<()> {
        self.store()?.backup_to(dest.as_ref())
    }

    /// A write batch: many sets and deletes committed atomically in one transaction.
    pub fn batch(&self) -> Batch {
        Batch::new(self.clone())
    }

    /// Applies changes atomically: the single write path of every mutation.
    pub(crate) fn apply(&self, ops: Vec<Op>) -> Result<()> {
        self.refuse_if_read_only("writing")?;
        if ops.is_empty() {
            return Ok(());
        }
        self.store()?.write(&ops)?;
        self.after_write();
        Ok(())
    }

    /// The automatic push after a write, when configured.
    fn after_write(&self) {
        if self.shared.options.auto_push && self.shared.options.config.server().is_some() {
            // The write is durable and journaled; pushing is best effort, and a failure
            // leaves it pending for the next write or sync.
            let outcome = self.sync().err().map(|e| e.to_string());
            *crate::store::lock(&self.shared.last_push_error) = outcome;
        }
    }

    /// Whether it was opened read-only ([`Options::read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.shared.options.read_only
    }

    /// [`Error::ReadOnly`] for `what` on a read-only handle (after [`Error::Closed`]).
    fn refuse_if_read_only(&self, what: &str) -> Result<()> {
        self.store()?;
        if self.shared.options.read_only {
            return Err(crate::store::read_only_refusal(what));
        }
        Ok(())
    }

    /// Why the last automatic push (after a write) failed; `None` after a success.
    pub fn last_push_error(&self) -> Option<String> {
        crate::store::lock(&self.shared.last_push_error).clone()
    }

    fn client(&self) -> Result<Arc<CharmClient>> {
        if let Some(client) = self.shared.client.get() {
            return Ok(Arc::clone(client));
        }
        let config = &self.shared.options.config;
        // A read-only handle only asks the server (status_with_remote): with the
        // identity that exists, never a new one.
        let client = Arc::new(match self.shared.options.read_only {
            true => crate::account::connect_existing(config)?,
            false => crate::account::connect(config)?,
        });
        Ok(Arc::clone(self.shared.client.get_or_init(|| client)))
    }

    /// The account's keys, reopening the store with them if they changed (a key added
    /// by another device, or the local key registered behind the account's).
    fn refresh_keys(&self, client: &CharmClient) -> Result<Arc<Store>> {
        let store = self.store()?;
        if self.shared.options.keys.is_some() {
            return Ok(store);
        }
        let keys: Vec<EncryptKey> = client.encrypt_keys()?;
        if store.sealer().is_for(&keys) {
            return Ok(store);
        }
        let lock = OpenLock::shared(store.path())?;
        let reopened = Arc::new(
            Store::open_with(store.path(), Sealer::new(&keys)?, store.durability())?
                .with_clock(store.clock().clone())
                .holding(Some(lock)),
        );
        let mut state = self
            .shared
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.as_mut() {
            Some(current) => *current = Arc::clone(&reopened),
            None => return Err(Error::Closed),
        }
        Ok(reopened)
    }

    /// Pulls the newest snapshot from the Charm server and pushes local writes.
    pub fn sync(&self) -> Result<()> {
        self.sync_with_progress(&mut |_| {})
    }

    /// [`Kv::sync`], reporting transfer progress to `progress` as it goes. The whole
    /// sync is bounded by the `sync` timeout of the options.
    pub fn sync_with_progress(&self, progress: &mut dyn FnMut(&SyncProgress)) -> Result<()> {
        self.refuse_if_read_only("syncing")?;
        self.settle_link_then_rehome()?;
        let client = self.client()?;
        let remote = CharmRemote::new(&client, &self.shared.name);
        deadline::within(self.sync_limit(), || {
            self.with_current_keys(&client, |store| {
                crate::sync::engine::Engine::new(store, &remote, progress, DEFAULT_TICKET_WAIT)
                    .sync()
            })
        })
    }

    /// Runs `step` on the store with the account's keys. On a `Keys` error it runs it
    /// once more if a fresh login brings other keys: another device may have added
    /// one (its rows open with no key we had) since this client logged in.
    fn with_current_keys(
        &self,
        client: &CharmClient,
        mut step: impl FnMut(&Arc<Store>) -> Result<()>,
    ) -> Result<()> {
        let store = self.refresh_keys(client)?;
        match step(&store) {
            Err(e @ Error::Keys { .. }) if self.shared.options.keys.is_none() => {
                client.invalidate_auth();
                let renewed = self.refresh_keys(client)?;
                if Arc::ptr_eq(&store, &renewed) {
                    return Err(e);
                }
                step(&renewed)
            }
            other => other,
        }
    }

    /// Syncs only when the last successful sync of this database file ended `max_age`
    /// or longer ago (or never, or at a time the clock has not reached yet). Returns
    /// whether it synced; deciding needs no network.
    pub fn sync_if_stale(&self, max_age: Duration) -> Result<bool> {
        self.refuse_if_read_only("syncing")?;
        if !self.sync_is_due(max_age)? {
            return Ok(false);
        }
        self.sync()?;
        Ok(true)
    }

    /// Whether [`Kv::sync_if_stale`] would sync now (no network).
    pub fn sync_is_due(&self, max_age: Duration) -> Result<bool> {
        let store = self.store()?;
        let last = status::last_sync(&*store.reader()?)?;
        Ok(status::is_stale(last, max_age, SystemTime::now()))
    }

    /// The database's state read locally, without network: last successful sync,
    /// pending writes, versions, chain, size on disk and a quick integrity check (which
    /// reads the whole file). The server is not asked ([`RemoteStatus::NotChecked`], or
    /// [`RemoteStatus::NotConfigured`] in local mode).
    pub fn status(&self) -> Result<StoreStatus> {
        let remote = match self.shared.options.config.server() {
            Some(_) => RemoteStatus::NotChecked,
            None => RemoteStatus::NotConfigured,
        };
        self.local_status(remote)
    }

    /// [`Kv::status`], also asking the server for its newest version: a server that
    /// fails to answer within the client's time limits is [`RemoteStatus::Unreachable`]
    /// with the error, not a failure of this call.
    pub fn status_with_remote(&self) -> Result<StoreStatus> {
        self.store()?;
        if self.shared.options.config.server().is_none() {
            return self.local_status(RemoteStatus::NotConfigured);
        }
        let remote = match self.client() {
            Ok(client) => status::ask(&CharmRemote::new(&client, &self.shared.name)),
            Err(e) => RemoteStatus::Unreachable(e),
        };
        self.local_status(remote)
    }

    fn local_status(&self, remote: RemoteStatus) -> Result<StoreStatus> {
        let store = self.store()?;
        let reader = store.reader()?;
        status::local(&reader, store.path(), remote)
    }

    /// [`Kv::status_with_remote`] against any remote.
    #[cfg(test)]
    pub(crate) fn status_via(&self, remote: &dyn crate::sync::Remote) -> Result<StoreStatus> {
        self.local_status(status::ask(remote))
    }

    /// [`Kv::sync_if_stale`] against any remote.
    #[cfg(test)]
    pub(crate) fn sync_if_stale_via(
        &self,
        remote: &dyn crate::sync::Remote,
        max_age: Duration,
    ) -> Result<bool> {
        if !self.sync_is_due(max_age)? {
            return Ok(false);
        }
        self.sync_via(remote, &mut |_| {}, DEFAULT_TICKET_WAIT)?;
        Ok(true)
    }

    /// Drops the local copy and rebuilds it from the newest remote snapshot. Refuses
    /// with [`Error::PendingWrites`] while local writes are not pushed, unless `force`
    /// (which discards them). Bounded like [`Kv::sync`].
    pub fn reset(&self, force: bool) -> Result<()> {
        self.refuse_if_read_only("resetting")?;
        let client = self.client()?;
        let remote = CharmRemote::new(&client, &self.shared.name);
        deadline::within(self.sync_limit(), || {
            self.with_current_keys(&client, |store| {
                crate::sync::engine::Engine::new(store, &remote, &mut |_| {}, DEFAULT_TICKET_WAIT)
                    .reset(force)
            })
        })
    }

    fn sync_limit(&self) -> std::time::Duration {
        self.shared.options.config.timeouts.sync
    }

    /// Runs a sync against any remote (the Charm server in production).
    #[cfg(test)]
    pub(crate) fn sync_via(
        &self,
        remote: &dyn crate::sync::Remote,
        progress: &mut dyn FnMut(&SyncProgress),
        ticket_wait: std::time::Duration,
    ) -> Result<()> {
        self.rehome_if_pending()?;
        let store = self.store()?;
        crate::sync::engine::Engine::new(&store, remote, progress, ticket_wait).sync()
    }

    /// Runs a reset against any remote.
    #[cfg(test)]
    pub(crate) fn reset_via(&self, remote: &dyn crate::sync::Remote, force: bool) -> Result<()> {
        let store = self.store()?;
        crate::sync::engine::Engine::new(
            &store,
            remote,
            &mut |_| {},
            crate::sync::DEFAULT_TICKET_WAIT,
        )
        .reset(force)
    }

    /// Number of committed local writes not yet confirmed on the server: not pushed,
    /// or pushed in a file that the last sync did not see to be the newest one (another
    /// device may have overtaken it; the next sync re-pushes what it lacks). In local
    /// mode: not yet pushed to any server; they will be once one is configured.
    pub fn pending_writes(&self) -> Result<u64> {
        let store = self.store()?;
        let reader = store.reader()?;
        Ok(crate::sync::restore::local_state(&reader)?.pending)
    }

    /// Closes the database for this handle and all its clones. Calls in flight finish
    /// first; later calls fail with [`Error::Closed`]. Closing twice is fine.
    pub fn close(&self) -> Result<()> {
        let mut state = self
            .shared
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.take();
        Ok(())
    }

    /// Whether [`Kv::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.store().is_err()
    }
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("name", &self.shared.name)
            .field("data_path", &self.shared.data_path)
            .finish_non_exhaustive()
    }
}

/// An expiry time as unix milliseconds, refused before 1970 or after the year 9999.
pub(crate) fn expiry_of_time(at: SystemTime) -> Result<u64> {
    let ms = crate::store::expiry::unix_ms(at)
        .and_then(|ms| i64::try_from(ms).ok())
        .ok_or_else(|| Error::invalid("an expiry before 1970 or far beyond the year 9999"))?;
    crate::store::expiry::check_expiry(ms)
}

/// The SSH identity file of the account in the data path of `options` and its
/// permission bits, when group or others may read it (ssh refuses such keys; the CLI
/// warns): whoever reads it can unwrap every encrypt key of the account. `None` when
/// only its owner may read it, or when the account cannot be opened.
pub fn identity_readable_by_others(options: &Options) -> Option<(PathBuf, u32)> {
    let account = crate::account::Account::open(options.config()).ok()?;
    let identity = account.identity();
    let mode = identity.loose_permissions()?;
    Some((identity.path().to_owned(), mode))
}

/// Re-homes, for the re-homing `token`, every database of `options`' data path but
/// `skip` (already done by its caller); returns the rows journaled
/// (`sync::rejoin::rehome`). Stops at the first database that fails.
pub(crate) fn rejoin_all(options: &Options, token: i64, skip: Option<&str>) -> Result<u64> {
    let mut rows = 0;
    for name in list_databases(options)? {
        if Some(name.as_str()) == skip {
            continue;
        }
        let kv = Kv::open_one(&name, options)?;
        rows += crate::sync::rejoin::rehome(&kv.store()?, token)?.unwrap_or(0);
        kv.close()?;
    }
    Ok(rows)
}

/// When a link recorded that this device's local-mode databases are to join the
/// data path of `options` (`account::pending`), moves or merges them there
/// ([`crate::sync::join`]), with the local-mode keys in the key cache first, and
/// removes the record once none is left. Returns what it did.
pub(crate) fn join_local_databases(options: &Options) -> Result<crate::sync::join::Joined> {
    use crate::account::pending;
    let config = &options.config;
    let data_path = config.data_path()?;
    let link_unsettled = pending::pending_path(&data_path).is_file();
    if !link_unsettled && !pending::join_local_due(&data_path) {
        return Ok(Default::default());
    }
    let account = crate::account::Account::open(config)?;
    if link_unsettled && config.server().is_some() {
        // A link a crash interrupted: finished first (it records the join), so that
        // this open already finds every database where it belongs, or forgotten with
        // its re-homing before that re-homes anything. Offline, or with the account's
        // keys not there yet, the next sync finishes it.
        if let Ok(Some(token)) = account.settle_link() {
            // It did not link: the re-homing recorded for it is not due.
            let _ = crate::sync::rejoin::finish_pending(&data_path, token);
        }
    }
    if !pending::join_local_due(&data_path) {
        return Ok(Default::default());
    }
    let Some(local) = account.local_mode_config() else {
        pending::clear_join_local(&data_path)?;
        return Ok(Default::default());
    };
    account.adopt_local_mode_keys()?;
    let mut keys = account.cached_keys()?;
    // The account's key 0 seals the merged rows.
    if let Some(key0) = crate::account::KeyCache::read(&data_path)?.synced_key0() {
        if let Some(at) = keys.iter().position(|k| k.id() == key0) {
            keys[..=at].rotate_right(1);
        }
    }
    let joined =
        crate::sync::join::join_databases(&local.data_path()?, &data_path, &keys, options.durability)?;
    if joined.left == 0 {
        pending::clear_join_local(&data_path)?;
    }
    Ok(joined)
}

/// Names of the charm-kv databases in the data path of `options`, sorted (also those
/// an earlier version left in the Go client's `kv` folder, not opened since).
pub fn list_databases(options: &Options) -> Result<Vec<String>> {
    let data_path = options.config.data_path()?;
    let mut found = Vec::new();
    for dir in [names::db_dir(&data_path), names::legacy_db_dir(&data_path)] {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
                if let Some(db) = names::name_of(name) {
                    found.push(db.to_owned());
                }
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Deletes database `name`: with a server, its snapshots on the server first (so the
/// next sync cannot bring it back), then its local file and SQLite's companions.
/// [`Error::Busy`], before anything is deleted, while a handle in this or another
/// process has it open (`store::open_lock`); an open that comes meanwhile waits for the
/// deletion and creates the database anew.
pub fn delete_database(options: &Options, name: &str) -> Result<()> {
    if options.read_only {
        return Err(crate::store::read_only_refusal("deleting a database"));
    }
    let data_path = options.config.data_path()?;
    let path = names::db_path(&data_path, name)?;
    let old_path = names::legacy_db_path(&data_path, name)?;
    let local = path.is_file() || old_path.is_file();
    let server = options.config.server().is_some();
    if !server && !local {
        return Err(Error::DatabaseNotFound(format!(
            "{} in {}",
            crate::error::quoted(name),
            names::db_dir(&data_path).display()
        )));
    }
    // Held until the files are gone, and taken before the server copies go: a database
    // in use is left whole, here and there. The old folder's lock only where an older
    // charm-kv's file is (a handle there holds it).
    crate::config::create_private_dir(&names::db_dir(&data_path))?;
    let _held = OpenLock::exclusive_now(&path, name)?;
    let _held_old = match old_path.is_file() {
        true => Some(OpenLock::exclusive_now(&old_path, name)?),
        false => None,
    };
    if server {
        let client = crate::account::connect(&options.config)?;
        deadline::within(options.config.timeouts.sync, || {
            CharmRemote::new(&client, name).remove_all()
        })?;
    }
    for file in names::db_files(&path)
        .into_iter()
        .chain(names::db_files(&old_path))
    {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", file.display()), e)),
        }
    }
    Ok(())
}

/// Whether a link record is left in `data_path` (`account::pending`): a link whose
/// outcome this device does not know yet.
fn link_unsettled(data_path: &Path) -> bool {
    crate::account::pending::pending_path(data_path).is_file()
}
