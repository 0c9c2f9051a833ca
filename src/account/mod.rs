//! The account: the SSH identity and the encrypt keys of one data path, and the one
//! place that decides which keys a database uses, from the local key cache and the
//! Charm server.
//!
//! Layers: this module uses [`crate::cloud`] (a client that never touches these files)
//! and [`crate::crypto::keywrap`] (pure wrapping); neither imports it back.
//!
//! Guarantees (see `docs/cloud-client.md`, "The account's keys"):
//! - First use is atomic across threads and processes: the identity, the first key and
//!   every cache rewrite happen under one lock file with a re-read after taking it.
//! - The key cache only grows; a server's list adds keys but never removes one.
//! - Key 0 is pinned once this device has synced with the account.
//! - Keys are wrapped only for our own public key, whatever the server names.

pub mod backup;
mod files;
pub mod identity;
pub mod keycache;
pub mod link;
pub mod pending;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(any(test, feature = "unstable-internals"))]
pub use files::LOCK_FILE;
pub use identity::SshIdentity;
pub use keycache::KeyCache;
#[cfg(any(test, feature = "unstable-internals"))]
pub use keycache::KEYS_FILE;
pub use link::{LinkOptions, LinkOutcome, LinkPrompt, LinkReport, LinkRequest, LinkedKey};

use crate::cloud::{self, AuthInfo, CharmClient, KeySource, WrappedKey};
use crate::config::Config;
use crate::crypto::keywrap;
use crate::crypto::sasquatch::Identity;
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};
use files::AccountLock;
use keycache::wrap_for;

/// Attempts of a step that failed with a transient server error (a new account's
/// first logins collide inside `charm serve`), and the first pause between them; the
/// pause doubles each time.
const TRANSIENT_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// One data path's identity and keys.
pub struct Account {
    config: Config,
    data_path: PathBuf,
    identity: SshIdentity,
    /// The server list last resolved and the keys it gave, so that requests between
    /// changes cost no file access.
    resolved: Mutex<Option<Resolved>>,
}

struct Resolved {
    server: Vec<WrappedKey>,
    keys: Vec<EncryptKey>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("data_path", &self.data_path)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The keys a database of `config` opens with: the cached keys; with a server and an
/// empty cache, the account's (creating it); otherwise (local mode, or the server
/// unreachable) a new local key, which the first sync registers with the account.
pub fn keys_for_open(config: &Config) -> Result<Vec<EncryptKey>> {
    let account = Account::open(config)?;
    let cached = account.cached_keys()?;
    if !cached.is_empty() {
        return Ok(cached);
    }
    if config.server().is_some() {
        match account.client().and_then(|client| client.encrypt_keys()) {
            Ok(keys) => return Ok(keys),
            // Offline: a local key, registered after the account's own keys at the
            // first sync, so key 0 stays the account's.
            Err(Error::Network { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    account.local_keys()
}

/// The keys a read-only open uses: the cached keys, unwrapped with the existing
/// identity. Creates nothing and asks no server: [`Error::Keys`] when there are none.
pub fn keys_for_read_only(config: &Config) -> Result<Vec<EncryptKey>> {
    let data_path = config.data_path()?;
    let identity = SshIdentity::load_existing(config)?;
    let keys = KeyCache::read(&data_path)?.unwrap(&identity)?;
    if keys.is_empty() {
        return Err(Error::keys(format!(
            "no encrypt keys cached in {} (a read-only open creates none and asks no \
             server): open the database once read-write, or pass encrypt keys",
            keycache::cache_path(&data_path).display()
        )));
    }
    Ok(keys)
}

/// A client of `config`'s server for the account of `config`'s data path.
pub fn connect(config: &Config) -> Result<CharmClient> {
    // Local mode says so before anything is read from the data path.
    config.server().ok_or(Error::NotConfigured)?;
    Account::open(config)?.client()
}

/// [`connect`] with the existing identity only (for read-only handles).
pub fn connect_existing(config: &Config) -> Result<CharmClient> {
    config.server().ok_or(Error::NotConfigured)?;
    Account::open_existing(config)?.client()
}

impl Account {
    /// The account of `config`'s data path, loading its identity (or creating one:
    /// see [`SshIdentity::load_or_generate`]).
    pub fn open(config: &Config) -> Result<Arc<Account>> {
        Self::with_identity(config, SshIdentity::load_or_generate(config)?)
    }

    /// The account of `config`'s data path with its existing identity: [`Error::Keys`]
    /// when there is none (read-only handles create nothing).
    pub fn open_existing(config: &Config) -> Result<Arc<Account>> {
        Self::with_identity(config, SshIdentity::load_existing(config)?)
    }

    fn with_identity(config: &Config, identity: SshIdentity) -> Result<Arc<Account>> {
        Ok(Arc::new(Account {
            config: config.clone(),
            data_path: config.data_path()?,
            identity,
            resolved: Mutex::new(None),
        }))
    }

    /// The SSH identity that logs in and unwraps the encrypt keys.
    pub fn identity(&self) -> &SshIdentity {
        &self.identity
    }

    /// The configuration it was opened with.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data path of its files.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn data_path(&self) -> &std::path::Path {
        &self.data_path
    }

    /// The cached keys, unwrapped; empty when there is no cache.
    pub fn cached_keys(&self) -> Result<Vec<EncryptKey>> {
        KeyCache::read(&self.data_path)?.unwrap(&self.identity)
    }

    /// The cached keys, or (none cached) a new key, cached before it is returned.
    /// Threads and processes starting together all get the same first key.
    pub fn local_keys(&self) -> Result<Vec<EncryptKey>> {
        let cached = self.cached_keys()?;
        if !cached.is_empty() {
            return Ok(cached);
        }
        let _lock = AccountLock::acquire(&self.data_path)?;
        let mut cache = KeyCache::read(&self.data_path)?;
        if !cache.keys().is_empty() {
            return cache.unwrap(&self.identity);
        }
        let key = EncryptKey::generate();
        cache.add(wrap_for(&self.identity, &key)?);
        cache.write(&self.data_path)?;
        Ok(vec![key])
    }

    /// A client of the configured server that logs in with this identity and gets
    /// its encrypt keys from [`Account::sync_keys`].
    /// Time bounds come from the configuration (`Config::timeouts`).
    pub fn client(self: &Arc<Self>) -> Result<CharmClient> {
        let keys: Arc<dyn KeySource> = self.clone();
        CharmClient::new(&self.config, self.identity.private_key(), keys)
    }

    /// The account's keys in server order (key 0 encrypts), then any cached key the
    /// server lacks. Brings cache and server together:
    /// - the server must name our own public key ([`Error::Auth`] otherwise, before
    ///   anything is sent);
    /// - cached keys the server lacks are uploaded, wrapped for our own key, and must
    ///   be in the list read back ([`Error::Keys`] otherwise; nothing is dropped);
    /// - an account without keys gets one, cached before it is uploaded;
    /// - the server's keys are added to the cache, never the other way round;
    /// - once this device has synced, a different key 0 is refused ([`Error::Keys`]).
    ///
    /// A link a crash interrupted (`pending`) is finished or forgotten first
    /// (`Account::settle_pending_link`).
    pub fn sync_keys(&self, client: &CharmClient) -> Result<Vec<EncryptKey>> {
        self.settle_pending_link(client)?;
        self.sync_keys_now(client)
    }

    /// [`Account::sync_keys`] without settling a pending link.
    fn sync_keys_now(&self, client: &CharmClient) -> Result<Vec<EncryptKey>> {
        let mut resolved = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        let mut auth = self.auth(client, false)?;
        if let Some(r) = resolved.as_ref().filter(|r| r.server == auth.encrypt_keys) {
            return Ok(r.keys.clone());
        }
        let _lock = AccountLock::acquire(&self.data_path)?;
        let before = KeyCache::read(&self.data_path)?;
        let mut cache = before.clone();
        if !lacking(&cache, &auth).is_empty() {
            // Another process may have uploaded them while we waited for the lock.
            auth = self.auth(client, true)?;
        }
        if auth.encrypt_keys.is_empty() && cache.keys().is_empty() {
            // A new account: the key is cached (and so never lost) before it leaves.
            let key = EncryptKey::generate();
            cache.add(wrap_for(&self.identity, &key)?);
            cache.write(&self.data_path)?;
        }
        let cached = cache.unwrap(&self.identity)?;
        let auth = self.upload_lacking(client, &cache, &cached, auth)?;
        let server_key0 = &auth
            .encrypt_keys
            .first()
            .ok_or_else(|| Error::keys("the Charm server lists no encrypt key"))?
            .id;
        let key0 = self.check_pinned_key0(&cache, &auth.encrypt_keys, server_key0)?;
        let unwrapper = Identity::from_private_key(self.identity.private_key())?;
        let server_keys = auth
            .encrypt_keys
            .iter()
            .map(|w| keywrap::unwrap(w, &unwrapper))
            .collect::<Result<Vec<_>>>()?;
        for key in &server_keys {
            if !cache.contains(key.id()) {
                cache.add(wrap_for(&self.identity, key)?);
            }
        }
        let mut server_keys = server_keys;
        // The pinned key 0 first (see `check_pinned_key0`).
        if let Some(at) = server_keys.iter().position(|k| k.id() == key0) {
            server_keys[..=at].rotate_right(1);
        }
        let key0 = key0.to_owned();
        let server_order: Vec<&str> = server_keys.iter().map(EncryptKey::id).collect();
        cache.order_like(&server_order);
        if cache.synced_key0().is_none() {
            cache.pin_key0(&key0);
        }
        if cache != before {
            cache.write(&self.data_path)?;
        }
        let mut keys = server_keys;
        for key in cached {
            if !keys.iter().any(|k| k.id() == key.id()) {
                keys.push(key);
            }
        }
        *resolved = Some(Resolved {
            server: auth.encrypt_keys.clone(),
            keys: keys.clone(),
        });
        Ok(keys)
    }

    /// Uploads the cached keys `auth` does not list (the pinned key 0 first), wrapped
    /// for our own key, and returns the list read back, which must hold every one.
    fn upload_lacking(
        &self,
        client: &CharmClient,
        cache: &KeyCache,
        cached: &[EncryptKey],
        auth: Arc<AuthInfo>,
    ) -> Result<Arc<AuthInfo>> {
        let upload = lacking(cache, &auth);
        if upload.is_empty() {
            return Ok(auth);
        }
        let own = self.identity.authorized_key();
        for id in pinned_first(&upload, cache.synced_key0()) {
            let key = cached.iter().find(|k| k.id() == id).expect("a cached key");
            let wrapped = wrap_for(&self.identity, key)?;
            retry_transient(|| client.add_encrypt_key(&wrapped, &own))?;
        }
        let auth = self.auth(client, true)?;
        let dropped = lacking(cache, &auth);
        if !dropped.is_empty() {
            return Err(Error::keys(format!(
                "the Charm server accepted encrypt key(s) {} but does not list them; \
                 they stay in the local key cache and the next sync uploads them again",
                dropped.join(", ")
            )));
        }
        Ok(auth)
    }

    /// The key 0 this device uses: the server's, or once pinned, the pinned one. A
    /// server listing other keys before the pinned key is refused unless this device
    /// holds every one of them already: its own keys from before it joined the account
    /// (a link that merged its former account, where the server orders by creation
    /// time and those may be older; `docs/cloud-client.md`, "Key 0 is pinned").
    fn check_pinned_key0<'a>(
        &self,
        cache: &KeyCache,
        listed: &'a [WrappedKey],
        server_key0: &'a str,
    ) -> Result<&'a str> {
        let Some(pinned) = cache.synced_key0() else {
            return Ok(server_key0);
        };
        if pinned == server_key0 {
            return Ok(server_key0);
        }
        if let Some(at) = listed.iter().position(|k| k.id == pinned) {
            if listed[..at].iter().all(|k| cache.contains(&k.id)) {
                return Ok(&listed[at].id);
            }
        }
        Err(Error::keys(format!(
            "the Charm server names encrypt key {server_key0} as the account's key 0, but \
             this device synced with key 0 {pinned}; refusing to switch (new rows and \
             server files would be sealed with a key the server chose). If the account's \
             key 0 really changed, remove \"synced_key0\" from {} to adopt the server's \
             (docs/cloud-client.md, \"Key 0 is pinned\")",
            keycache::cache_path(&self.data_path).display()
        )))
    }

    /// `api-auth` (fresh if `renew`), retried on transient server errors, and refused
    /// when the server names a public key other than ours.
    fn auth(&self, client: &CharmClient, renew: bool) -> Result<Arc<AuthInfo>> {
        if renew {
            client.invalidate_auth();
        }
        let auth = retry_transient(|| client.auth())?;
        if let Some(named) = &auth.public_key {
            if !self.is_own_public_key(named) {
                client.invalidate_auth();
                return Err(Error::auth(format!(
                    "the Charm server says this account's SSH key is {named:?}, but we logged \
                     in with {:?}; refusing to wrap encrypt keys for a key we do not hold",
                    self.identity.authorized_key()
                )));
            }
        }
        Ok(auth)
    }

    fn is_own_public_key(&self, named: &str) -> bool {
        ssh_key::PublicKey::from_openssh(named.trim())
            .is_ok_and(|k| k.key_data() == self.identity.private_key().public_key().key_data())
    }
}

impl KeySource for Account {
    fn encrypt_keys(&self, client: &CharmClient) -> Result<Vec<EncryptKey>> {
        self.sync_keys(client)
    }
}

/// Ids of cached keys missing from the server's list, in cache order.
fn lacking(cache: &KeyCache, auth: &AuthInfo) -> Vec<String> {
    cache
        .keys()
        .iter()
        .filter(|k| !auth.encrypt_keys.iter().any(|s| s.id == k.id))
        .map(|k| k.id.clone())
        .collect()
}

/// `ids` with the pinned key 0 first: re-uploaded to a server that lost the keys,
/// the pinned key is the oldest again.
fn pinned_first<'a>(ids: &'a [String], pinned: Option<&str>) -> Vec<&'a str> {
    let mut ordered: Vec<&str> = ids.iter().map(String::as_str).collect();
    ordered.sort_by_key(|id| Some(*id) != pinned);
    ordered
}

/// Runs `step`, retrying with doubling pauses while it fails transiently
/// ([`cloud::is_transient`]), at most [`TRANSIENT_ATTEMPTS`] times.
fn retry_transient<T>(mut step: impl FnMut() -> Result<T>) -> Result<T> {
    let mut pause = FIRST_BACKOFF;
    for _ in 1..TRANSIENT_ATTEMPTS {
        match step() {
            Err(e) if cloud::is_transient(&e) => {
                // Jitter keeps colliding processes from colliding again.
                let jitter = Duration::from_millis(rand::random::<u64>() % 50);
                std::thread::sleep(pause + jitter);
                pause *= 2;
            }
            other => return other,
        }
    }
    step()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn local_config(dir: &Path) -> Config {
        Config {
            data_dir: Some(dir.to_owned()),
            ..Config::default()
        }
    }

    #[test]
    fn local_mode_creates_one_key_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = local_config(dir.path());
        let first = keys_for_open(&config).unwrap();
        let again = keys_for_open(&config).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].text(), again[0].text());
        assert_eq!(first[0].text().len(), 88);
    }

    #[test]
    fn threads_starting_together_share_the_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = local_config(dir.path());
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| scope.spawn(|| keys_for_open(&config)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap()[0].id().to_owned())
                .collect()
        });
        let cached = keys_for_open(&config).unwrap();
        assert_eq!(cached.len(), 1);
        assert!(ids.iter().all(|id| id == cached[0].id()), "{ids:?}");
    }

    #[test]
    fn garbage_key_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let config = local_config(dir.path());
        Account::open(&config).unwrap();
        std::fs::write(dir.path().join("localhost").join(KEYS_FILE), "{not json").unwrap();
        assert_eq!(
            keys_for_open(&config).unwrap_err().kind(),
            crate::ErrorKind::Corrupt
        );
    }

    #[test]
    fn pinned_key_goes_first() {
        let ids = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(pinned_first(&ids, Some("b")), ["b", "a", "c"]);
        assert_eq!(pinned_first(&ids, None), ["a", "b", "c"]);
    }
}
