//! Encrypt keys on the wire: unwrapping the server's wrapped keys with the SSH identity
//! and wrapping new ones (`charm/client/crypt.go` v0.12.6).
//!
//! The local key cache `<data path>/charm_kv_keys.json` is [`crate::keyring`]'s file;
//! [`load_cached_keys`] and [`store_cached_keys`] are its entry points for the cloud
//! client. Format: JSON `{"keys":[{"id":"<uuid>","key":"<base64 sasquatch>",
//! "created_at":"<RFC 3339>"|null}]}` in server order (index 0 is the default key);
//! each `key` is exactly what the server stores: standard padded base64 of a sasquatch
//! file wrapping the 88-character key text for the user's SSH public key. Mode 0600,
//! replaced atomically.

use base64::Engine as _;

use crate::config::Config;
use crate::crypto::sasquatch::{self, Identity, Recipient};
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};
use crate::identity::SshIdentity;
use crate::keyring::{self, WrappedKey};

/// File name of the key cache inside the data path.
pub const KEY_CACHE_FILE: &str = keyring::KEYS_FILE;

/// The plaintext encrypt keys in the cache of `config`'s data path, unwrapped with
/// `identity`; empty when there is no cache yet.
pub fn load_cached_keys(config: &Config, identity: &SshIdentity) -> Result<Vec<EncryptKey>> {
    keyring::load(config, identity)
}

/// Replaces the cache of `config`'s data path with `keys` (in that order), each
/// wrapped for `identity`'s public key.
pub fn store_cached_keys(
    config: &Config,
    identity: &SshIdentity,
    keys: &[EncryptKey],
) -> Result<()> {
    keyring::store(config, identity, keys)
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
    use std::fs;
    use std::path::Path;

    fn setup() -> (tempfile::TempDir, Config, SshIdentity) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: Some(dir.path().to_owned()),
            ..Config::default()
        };
        let identity = SshIdentity::load_or_generate(&config).unwrap();
        (dir, config, identity)
    }

    fn cache_path(data_path: &std::path::Path) -> std::path::PathBuf {
        data_path.join(KEY_CACHE_FILE)
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct CacheFile {
        keys: Vec<WrappedKey>,
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
        // tests/vectors/README.md: K wrapped by Go's sasquatch for the test identity.
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
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
