//! Options for opening a store: the Charm configuration plus charm-kv's own settings.

use std::path::PathBuf;

use crate::config::Config;
use crate::crypto::EncryptKey;
use crate::error::Result;
use crate::store::{Clock, Durability};
use crate::timeouts::Timeouts;

/// How to open a [`crate::Kv`]. Start from [`Options::from_env`] (what
/// [`crate::Kv::open`] uses) or [`Options::new`] (no environment), then adjust.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) config: Config,
    pub(crate) keys: Option<Vec<EncryptKey>>,
    pub(crate) auto_push: bool,
    pub(crate) durability: Durability,
    pub(crate) read_only: bool,
    /// What expiries are compared with: the system clock but in tests.
    pub(crate) clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// Defaults without reading the environment: local mode, platform data dir.
    pub fn new() -> Self {
        Options {
            config: Config::default(),
            keys: None,
            auto_push: true,
            durability: Durability::Full,
            read_only: false,
            clock: Clock::system(),
        }
    }

    /// Environment variable of [`Options::read_only`]: a boolean (`1`, `true`, `0`, ...).
    pub const READ_ONLY_ENV: &'static str = "CHARM_KV_READ_ONLY";

    /// Defaults from the `CHARM_*` environment variables (and `CHARM_KV_DURABILITY`,
    /// `CHARM_KV_READ_ONLY`).
    pub fn from_env() -> Result<Self> {
        let durability = match std::env::var(Durability::ENV) {
            Ok(v) if !v.is_empty() => v.parse().map_err(|_| {
                crate::Error::invalid(format!(
                    "{}={v:?} is neither \"full\" nor \"normal\"",
                    Durability::ENV
                ))
            })?,
            _ => Durability::Full,
        };
        let read_only = match std::env::var(Self::READ_ONLY_ENV) {
            Ok(v) if !v.is_empty() => crate::config::parse_bool(Self::READ_ONLY_ENV, &v)?,
            _ => false,
        };
        Ok(Options {
            config: Config::from_env()?,
            durability,
            read_only,
            ..Options::new()
        })
    }

    /// The resolved Charm configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Base data directory (`CHARM_DATA_DIR`); the host is appended to it.
    pub fn data_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// Charm server host (`CHARM_HOST`); `None` for local mode.
    pub fn host(&mut self, host: Option<String>) -> &mut Self {
        self.config.host = host.filter(|h| !h.is_empty());
        self
    }

    /// Charm server SSH port (`CHARM_SSH_PORT`).
    pub fn ssh_port(&mut self, port: u16) -> &mut Self {
        self.config.ssh_port = port;
        self
    }

    /// Charm server HTTP port (`CHARM_HTTP_PORT`).
    pub fn http_port(&mut self, port: u16) -> &mut Self {
        self.config.http_port = port;
        self
    }

    /// SSH private key to use instead of the data path's (`CHARM_IDENTITY_KEY`).
    pub fn identity_key(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.config.identity_key = Some(path.into());
        self
    }

    /// Key type to find or generate (`CHARM_KEY_TYPE`: `ed25519` or `rsa`).
    pub fn key_type(&mut self, key_type: impl Into<String>) -> &mut Self {
        self.config.key_type = key_type.into();
        self
    }

    /// Never contact a server, even when a host is configured.
    pub fn local(&mut self, local: bool) -> &mut Self {
        self.config.local = local;
        self
    }

    /// Bounds on every network step: connecting, each request, and a whole sync
    /// (`CHARM_KV_CONNECT_TIMEOUT`, `CHARM_KV_REQUEST_TIMEOUT`, `CHARM_KV_SYNC_TIMEOUT`).
    /// A write's automatic push is a sync: a write returns within the sync bound, with
    /// the write committed and, if the push failed, pending. Zero bounds are refused
    /// when the server is first contacted.
    pub fn timeouts(&mut self, timeouts: Timeouts) -> &mut Self {
        self.config.timeouts = timeouts;
        self
    }

    /// Refuse plain http to a server that is not on this machine
    /// (`CHARM_KV_REQUIRE_TLS`; default off). The server decides the scheme of its HTTP
    /// API; over plain http the JWT and the encrypted files cross the network readable.
    pub fn require_tls(&mut self, require: bool) -> &mut Self {
        self.config.require_tls = require;
        self
    }

    /// How a commit waits for the disk (`CHARM_KV_DURABILITY`): [`Durability::Full`]
    /// (the default: an acknowledged write survives a power loss) or
    /// [`Durability::Normal`] (faster; a power loss or OS crash may take back the last
    /// commits, a killed process loses nothing). See docs/storage.md.
    pub fn durability(&mut self, durability: Durability) -> &mut Self {
        self.durability = durability;
        self
    }

    /// Open read-only (`CHARM_KV_READ_ONLY`; default off): nothing is created, moved or
    /// written. The database must exist (else [`crate::Error::DatabaseNotFound`]); it is
    /// read where it is (also in the old `kv` folder); the identity and encrypt keys
    /// must be cached already (or given with [`Options::encrypt_keys`]), else
    /// [`crate::Error::Keys`]. SQLite opens the file read-only: no WAL switch and no
    /// schema writes, so it works on read-only media and in a data dir the process
    /// cannot write (there the file is opened `immutable`; where the directory can be
    /// written SQLite creates the `-wal`/`-shm` a WAL reader needs; docs/storage.md,
    /// "Read-only handles"). Writes, sync, reset and `delete_database` fail with
    /// [`crate::Error::ReadOnly`].
    pub fn read_only(&mut self, read_only: bool) -> &mut Self {
        self.read_only = read_only;
        self
    }

    /// Whether [`Options::read_only`] is on.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Push each write to the server right away (default `true`); turn off for batch
    /// jobs and call `sync()` at the end.
    pub fn auto_push(&mut self, auto_push: bool) -> &mut Self {
        self.auto_push = auto_push;
        self
    }

    /// Use these encrypt keys (first one writes) instead of the account's. For
    /// embedding charm-kv with keys managed elsewhere; sync still needs the account.
    pub fn encrypt_keys(&mut self, keys: Vec<EncryptKey>) -> &mut Self {
        self.keys = Some(keys);
        self
    }

    /// Reads "now" for expiries from `clock` instead of the system clock, so tests
    /// move time without sleeping. Test-only: not API.
    #[cfg(any(test, feature = "unstable-internals"))]
    #[doc(hidden)]
    pub fn clock(&mut self, clock: Clock) -> &mut Self {
        self.clock = clock;
        self
    }
}
