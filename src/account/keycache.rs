//! The account's encrypt keys, kept in the data path so that opening a store and reading
//! never needs the network.
//!
//! `<data path>/charm_kv_keys.json` (mode 0600) holds the keys exactly as a Charm server
//! stores them: each key text wrapped to the SSH identity in a sasquatch file
//! (`ssh-ed25519` or `ssh-rsa` recipient), base64-encoded, plus the id of the
//! account's key 0 once this device has synced with the account:
//!
//! ```json
//! {"keys":[{"id":"<uuid>","key":"<base64 sasquatch>","created_at":"<as the server sent it>"|null}],
//!  "synced_key0":"<uuid>"}
//! ```
//!
//! The cache only grows: [`KeyCache::add`] is the only way a key gets in, and nothing
//! takes one out, because any cached key may have sealed local rows. Every rewrite
//! happens under the account lock after a re-read ([`super::files`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files;
use super::identity::SshIdentity;
use crate::crypto::keywrap::{self, WrappedKey};
use crate::crypto::sasquatch::{Identity, Recipient};
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};

/// File name of the key cache inside the data path.
pub const KEYS_FILE: &str = "charm_kv_keys.json";

/// Largest key cache read; one entry is about 400 bytes.
const MAX_KEYS_FILE: u64 = 4 << 20;

/// The key cache's contents, still wrapped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCache {
    keys: Vec<WrappedKey>,
    /// Set when this device first synced with the account: the id of the account's
    /// key 0 then. A server naming another key 0 later is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    synced_key0: Option<String>,
}

impl KeyCache {
    /// Reads the cache of `data_path`; empty when there is none yet. The file is
    /// replaced atomically, so this needs no lock.
    pub fn read(data_path: &Path) -> Result<KeyCache> {
        let path = cache_path(data_path);
        let Some(bytes) = files::read_regular(&path, MAX_KEYS_FILE, "key cache")? else {
            return Ok(KeyCache::default());
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| {
                Error::corrupt(format!("{} is not a key file", path.display())).caused_by(e)
            })
    }

    /// Writes the cache of `data_path`. Callers hold the account lock and have
    /// re-read the cache under it, so this never drops what another process added.
    pub(crate) fn write(&self, data_path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal("encoding the key cache").caused_by(e))?;
        files::replace_complete(&cache_path(data_path), &json)
    }

    /// The wrapped keys; the first one seals.
    pub fn keys(&self) -> &[WrappedKey] {
        &self.keys
    }

    /// True if a key with this id is cached.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Adds a key unless one with its id is cached; true if added.
    pub(crate) fn add(&mut self, key: WrappedKey) -> bool {
        if self.contains(&key.id) {
            return false;
        }
        self.keys.push(key);
        true
    }

    /// Moves the keys named in `ids` to the front, in that order (the server's order,
    /// so that key 0 seals offline too); the others keep theirs. Nothing is removed.
    pub(crate) fn order_like(&mut self, ids: &[&str]) {
        let rank = |key: &WrappedKey| ids.iter().position(|id| *id == key.id).unwrap_or(ids.len());
        self.keys.sort_by_key(rank);
    }

    /// The account's key 0 when this device first synced, if it has.
    pub fn synced_key0(&self) -> Option<&str> {
        self.synced_key0.as_deref()
    }

    /// Records the account's key 0 at the first sync.
    pub(crate) fn pin_key0(&mut self, id: &str) {
        self.synced_key0 = Some(id.to_owned());
    }

    /// Every cached key, unwrapped with `identity`, in cache order.
    pub fn unwrap(&self, identity: &SshIdentity) -> Result<Vec<EncryptKey>> {
        self.unwrap_with(&Identity::from_private_key(identity.private_key())?)
    }

    /// [`KeyCache::unwrap`] with a sasquatch identity.
    pub(crate) fn unwrap_with(&self, unwrapper: &Identity) -> Result<Vec<EncryptKey>> {
        self.keys
            .iter()
            .map(|w| keywrap::unwrap(w, unwrapper))
            .collect()
    }
}

/// Wraps `key` for `identity`'s own public key: the only key an encrypt key is ever
/// wrapped for, whether for the cache or for the server.
pub(crate) fn wrap_for(identity: &SshIdentity, key: &EncryptKey) -> Result<WrappedKey> {
    let recipient = Recipient::from_public_key(identity.private_key().public_key())?;
    keywrap::wrap(key, &recipient)
}

/// Where the cache of `data_path` lives.
pub fn cache_path(data_path: &Path) -> PathBuf {
    data_path.join(KEYS_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use base64::Engine as _;
    use std::fs;

    fn setup() -> (tempfile::TempDir, PathBuf, SshIdentity) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: Some(dir.path().to_owned()),
            ..Config::default()
        };
        let identity = SshIdentity::load_or_generate(&config).unwrap();
        (dir, config.data_path().unwrap(), identity)
    }

    #[test]
    fn round_trips_in_order_with_mode_0600_and_no_plaintext() {
        let (_dir, data_path, identity) = setup();
        assert!(KeyCache::read(&data_path).unwrap().keys().is_empty());
        let a = EncryptKey::generate();
        let b = EncryptKey::from_text(
            "b",
            EncryptKey::generate().text(),
            Some("2024-01-01T00:00:00Z".into()),
        )
        .unwrap();
        let mut cache = KeyCache::default();
        assert!(cache.add(wrap_for(&identity, &a).unwrap()));
        assert!(cache.add(wrap_for(&identity, &b).unwrap()));
        assert!(!cache.add(wrap_for(&identity, &a).unwrap()));
        cache.pin_key0(a.id());
        cache.write(&data_path).unwrap();

        let read = KeyCache::read(&data_path).unwrap();
        assert_eq!(read, cache);
        assert_eq!(read.synced_key0(), Some(a.id()));
        let keys = read.unwrap(&identity).unwrap();
        assert_eq!((keys[0].id(), keys[0].text()), (a.id(), a.text()));
        assert_eq!(keys[1].created_at(), Some("2024-01-01T00:00:00Z"));

        let path = cache_path(&data_path);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&a.text()[..32]), "key stored in plain text");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&read.keys()[0].key)
            .unwrap();
        assert!(raw.starts_with(b"charm.sh/v1\n-> ssh-ed25519 "));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = fs::read_dir(&data_path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn another_identity_cannot_unwrap_the_cache() {
        let (_dir, data_path, identity) = setup();
        let mut cache = KeyCache::default();
        cache.add(wrap_for(&identity, &EncryptKey::generate()).unwrap());
        cache.write(&data_path).unwrap();
        let (_other_dir, _, stranger) = setup();
        let err = KeyCache::read(&data_path)
            .unwrap()
            .unwrap(&stranger)
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Keys, "{err}");
    }

    #[test]
    fn a_cache_without_the_pin_field_still_reads() {
        let (_dir, data_path, _) = setup();
        fs::write(cache_path(&data_path), r#"{"keys":[]}"#).unwrap();
        assert_eq!(KeyCache::read(&data_path).unwrap(), KeyCache::default());
    }

    #[test]
    fn damaged_cache_is_corrupt() {
        let (_dir, data_path, identity) = setup();
        let path = cache_path(&data_path);
        fs::write(&path, "not json").unwrap();
        let err = KeyCache::read(&data_path).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "{err}");
        fs::write(
            &path,
            r#"{"keys":[{"id":"x","key":"@@@","created_at":null}]}"#,
        )
        .unwrap();
        let err = KeyCache::read(&data_path)
            .unwrap()
            .unwrap(&identity)
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "{err}");
    }

    #[test]
    fn the_go_wrapped_test_key_unwraps() {
        // tests/vectors/README.md: a key wrapped by Go sasquatch for the test identity.
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let identity = SshIdentity::load(&vectors.join("vec_charm_ed25519")).unwrap();
        let file = fs::read(vectors.join("vec_ed25519.bin")).unwrap();
        let mut cache = KeyCache::default();
        cache.add(WrappedKey {
            id: "k".into(),
            key: base64::engine::general_purpose::STANDARD.encode(file),
            created_at: None,
        });
        assert_eq!(
            cache.unwrap(&identity).unwrap()[0].text(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
        );
    }

    #[test]
    fn reordering_keeps_every_key() {
        let entry = |id: &str| WrappedKey {
            id: id.into(),
            key: String::new(),
            created_at: None,
        };
        let mut cache = KeyCache::default();
        for id in ["local", "x", "account"] {
            cache.add(entry(id));
        }
        cache.order_like(&["account", "gone"]);
        let ids: Vec<&str> = cache.keys().iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["account", "local", "x"]);
    }
}
