//! Encrypt keys: unwrapping the server's wrapped keys with the SSH identity, wrapping
//! new ones, and the local key cache `<data path>/charm_kv_keys.json`
//! (`charm-protocol.md` §4).
//!
//! Cache format (shared with local mode, which creates the first key when there is no
//! server): JSON `{"keys":[{"id":"<uuid>","key":"<base64 sasquatch>","created_at":"<RFC
//! 3339>"|null}]}`, keys in server order (index 0 is the default key). Each `key` is
//! exactly what the server stores: standard padded base64 of a sasquatch file that wraps
//! the 88-character key text for the user's SSH public key, so the cache holds no
//! plaintext and server entries are stored verbatim. The file is mode 0600 and is
//! replaced atomically (temporary file, fsync, rename).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::auth::WrappedKey;
use crate::config::{create_private_dir, Config};
use crate::crypto::sasquatch::{self, Identity, Recipient};
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};
use crate::identity::SshIdentity;

/// File name of the key cache inside the data path.
pub const KEY_CACHE_FILE: &str = "charm_kv_keys.json";

/// Largest key cache we read (a wrapped Ed25519 key is ~470 bytes of JSON; RSA-4096
/// ~1 KiB).
const MAX_CACHE_LEN: u64 = 4 << 20;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    keys: Vec<WrappedKey>,
}

/// The plaintext encrypt keys in the cache of `config`'s data path, unwrapped with
/// `identity`; empty when there is no cache yet.
pub fn load_cached_keys(config: &Config, identity: &SshIdentity) -> Result<Vec<EncryptKey>> {
    let wrapped = read_cache(&config.data_path()?)?;
    let identity = Identity::from_private_key(identity.private_key())?;
    wrapped.iter().map(|w| unwrap_key(w, &identity)).collect()
}

/// Replaces the cache of `config`'s data path with `keys` (in that order), each
/// wrapped for `identity`'s public key.
pub fn store_cached_keys(
    config: &Config,
    identity: &SshIdentity,
    keys: &[EncryptKey],
) -> Result<()> {
    let public_key = identity.authorized_key();
    let wrapped = keys
        .iter()
        .map(|key| {
            Ok(WrappedKey {
                id: key.id().to_owned(),
                key: wrap_key(key, &public_key)?,
                created_at: key.created_at().map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    write_cache(&config.data_path()?, &wrapped)
}

/// The cache file of a data path.
pub fn cache_path(data_path: &Path) -> PathBuf {
    data_path.join(KEY_CACHE_FILE)
}

/// The wrapped keys in the cache; empty when it does not exist.
pub(crate) fn read_cache(data_path: &Path) -> Result<Vec<WrappedKey>> {
    let path = cache_path(data_path);
    let file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let mut text = Vec::new();
    file.take(MAX_CACHE_LEN + 1)
        .read_to_end(&mut text)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if text.len() as u64 > MAX_CACHE_LEN {
        return Err(Error::corrupt(format!(
            "{} is larger than {MAX_CACHE_LEN} bytes",
            path.display()
        )));
    }
    let cache: CacheFile = serde_json::from_slice(&text)
        .map_err(|e| Error::corrupt(format!("{} is not a key cache: {e}", path.display())))?;
    Ok(cache.keys)
}

/// Atomically replaces the cache with `keys`.
pub(crate) fn write_cache(data_path: &Path, keys: &[WrappedKey]) -> Result<()> {
    create_private_dir(data_path)?;
    let path = cache_path(data_path);
    let json = serde_json::to_vec_pretty(&CacheFile {
        keys: keys.to_vec(),
    })
    .map_err(|e| Error::Internal(format!("encoding the key cache: {e}")))?;
    let tmp = data_path.join(format!(
        ".{KEY_CACHE_FILE}.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let result = write_new_private(&tmp, &json).and_then(|()| {
        fs::rename(&tmp, &path).map_err(|e| Error::io(format!("replacing {}", path.display()), e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the rename itself durable; best effort where directories cannot be synced.
    if let Ok(dir) = fs::File::open(data_path) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_new_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Wraps `key`'s text for the SSH public key `public_key` (`<type> <base64>`), as the
/// server stores it: padded standard base64 of a sasquatch file.
pub fn wrap_key(key: &EncryptKey, public_key: &str) -> Result<String> {
    let recipient = Recipient::from_authorized_key(public_key)?;
    let file = sasquatch::encrypt(key.text().as_bytes(), &[recipient])?;
    Ok(base64::engine::general_purpose::STANDARD.encode(file))
}

/// Unwraps one server or cache entry with the SSH identity.
pub(crate) fn unwrap_key(wrapped: &WrappedKey, identity: &Identity) -> Result<EncryptKey> {
    let file = base64::engine::general_purpose::STANDARD
        .decode(wrapped.key.trim())
        .map_err(|e| Error::corrupt(format!("encrypt key {} is not base64: {e}", wrapped.id)))?;
    let text = sasquatch::decrypt(&file, std::slice::from_ref(identity)).map_err(|e| match e {
        Error::Keys(why) => Error::Keys(format!(
            "encrypt key {} is not wrapped for this SSH key ({why})",
            wrapped.id
        )),
        other => other,
    })?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::corrupt(format!("encrypt key {} is not text", wrapped.id)))?;
    EncryptKey::from_text(wrapped.id.clone(), text, wrapped.created_at.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Config, SshIdentity) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: Some(dir.path().to_owned()),
            ..Config::default()
        };
        let identity = SshIdentity::load_or_generate(&config).unwrap();
        (dir, config, identity)
    }

    #[test]
    fn cache_round_trips_in_order_with_mode_0600() {
        let (_dir, config, identity) = setup();
        assert!(load_cached_keys(&config, &identity).unwrap().is_empty());
        let a = EncryptKey::generate();
        let b = EncryptKey::from_text(
            "b",
            EncryptKey::generate().text(),
            Some("2024-01-01T00:00:00Z".into()),
        )
        .unwrap();
        store_cached_keys(&config, &identity, &[a.clone(), b.clone()]).unwrap();
        let loaded = load_cached_keys(&config, &identity).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!((loaded[0].id(), loaded[0].text()), (a.id(), a.text()));
        assert_eq!(loaded[1].created_at(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(loaded[0].created_at(), None);
        let path = cache_path(&config.data_path().unwrap());
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["keys"][0]["created_at"], serde_json::Value::Null);
        assert!(
            !json.to_string().contains(a.text()),
            "plaintext key in the cache"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn another_identity_cannot_unwrap_the_cache() {
        let (_dir, config, identity) = setup();
        store_cached_keys(&config, &identity, &[EncryptKey::generate()]).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = SshIdentity::load_or_generate(&Config {
            data_dir: Some(other_dir.path().to_owned()),
            ..Config::default()
        })
        .unwrap();
        let err = load_cached_keys(&config, &other).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Keys, "{err}");
    }

    #[test]
    fn damaged_cache_is_corrupt() {
        let (_dir, config, identity) = setup();
        let path = cache_path(&config.data_path().unwrap());
        fs::write(&path, "{\"keys\":[{\"id\":\"x\",\"key\":\"@@@\"}]}").unwrap();
        let err = load_cached_keys(&config, &identity).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "{err}");
        fs::write(&path, "not json").unwrap();
        let err = load_cached_keys(&config, &identity).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "{err}");
        // A valid base64 sasquatch file whose payload was tampered with.
        store_cached_keys(&config, &identity, &[EncryptKey::generate()]).unwrap();
        let mut cache: CacheFile = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut file = b64.decode(&cache.keys[0].key).unwrap();
        let last = file.len() - 1;
        file[last] ^= 1;
        cache.keys[0].key = b64.encode(file);
        fs::write(&path, serde_json::to_vec(&cache).unwrap()).unwrap();
        let err = load_cached_keys(&config, &identity).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "{err}");
    }

    #[test]
    fn unwraps_the_go_wrapped_test_vector() {
        // charm-protocol.md §A.3: K wrapped by Go's sasquatch for the test identity.
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/docs/vectors");
        let ssh = SshIdentity::load(&vectors.join("vec_charm_ed25519")).unwrap();
        let file = fs::read(vectors.join("vec_ed25519.bin")).unwrap();
        let wrapped = WrappedKey {
            id: "v".into(),
            key: base64::engine::general_purpose::STANDARD.encode(file),
            created_at: None,
        };
        let identity = Identity::from_private_key(ssh.private_key()).unwrap();
        let key = unwrap_key(&wrapped, &identity).unwrap();
        assert_eq!(
            key.text(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
        );
    }
}
