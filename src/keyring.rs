//! The account's encrypt keys, kept in the data path so that opening a store and reading
//! never needs the network.
//!
//! `<data path>/charm_kv_keys.json` (mode 0600) holds the keys exactly as a Charm server
//! stores them: each key text wrapped to the SSH identity in a sasquatch file
//! (`ssh-ed25519` or `ssh-rsa` recipient), base64-encoded:
//!
//! ```json
//! {"keys":[{"id":"<uuid>","key":"<base64 sasquatch>","created_at":"<as the server sent it>"|null}]}
//! ```
//!
//! In local mode the first open creates one key the way the Go client does. When a
//! server is configured later, that key is the one registered with the account (by the
//! cloud client), so local data becomes syncable.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::config::{create_private_dir, Config};
use crate::crypto::sasquatch::{self, Identity, Recipient};
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};
use crate::identity::SshIdentity;
use crate::options::Options;

/// File name of the key cache inside the data path.
pub const KEYS_FILE: &str = "charm_kv_keys.json";

/// One wrapped key, as the server's `EncryptKey` JSON (without `public_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub id: String,
    /// Standard base64 (padded) of a sasquatch file wrapping the key text.
    pub key: String,
    pub created_at: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<WrappedKey>,
}

/// The encrypt keys a store opened with `options` uses, first one writing:
/// explicit keys, else the cached account keys, else (local mode) a new key.
pub fn resolve(options: &Options) -> Result<Vec<EncryptKey>> {
    if let Some(keys) = &options.keys {
        return Ok(keys.clone());
    }
    let config = &options.config;
    let identity = SshIdentity::load_or_generate(config)?;
    let cached = load(config, &identity)?;
    if !cached.is_empty() {
        return Ok(cached);
    }
    if config.server().is_some() {
        // First open with a server: ask the account for its keys (this caches them).
        match crate::cloud::CharmClient::new(config).and_then(|c| c.encrypt_keys()) {
            Ok(keys) => return Ok(keys),
            // Offline: work with a local key, which the first sync registers with the
            // account (after the account's own keys, so key 0 stays the account's).
            Err(Error::Network(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let key = EncryptKey::generate();
    store(config, &identity, std::slice::from_ref(&key))?;
    Ok(vec![key])
}

/// The keys cached in the data path, unwrapped with `identity` (empty if none).
pub fn load(config: &Config, identity: &SshIdentity) -> Result<Vec<EncryptKey>> {
    let path = keys_path(config)?;
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let file: KeysFile = serde_json::from_str(&text)
        .map_err(|e| Error::corrupt(format!("{} is not a key file: {e}", path.display())))?;
    unwrap_all(&file.keys, identity)
}

/// Unwraps server-format keys with the SSH identity, keeping their order.
pub fn unwrap_all(wrapped: &[WrappedKey], identity: &SshIdentity) -> Result<Vec<EncryptKey>> {
    let unwrapper = Identity::from_private_key(identity.private_key())?;
    wrapped
        .iter()
        .map(|w| {
            let file = base64::engine::general_purpose::STANDARD
                .decode(&w.key)
                .map_err(|_| Error::corrupt(format!("encrypt key {} is not base64", w.id)))?;
            let text = sasquatch::decrypt(&file, std::slice::from_ref(&unwrapper))?;
            let text = String::from_utf8(text)
                .map_err(|_| Error::corrupt(format!("encrypt key {} is not text", w.id)))?;
            EncryptKey::from_text(w.id.clone(), text, w.created_at.clone())
        })
        .collect()
}

/// Wraps `key` to an SSH public key in the server's format.
pub fn wrap(key: &EncryptKey, recipient: &Recipient) -> Result<WrappedKey> {
    let file = sasquatch::encrypt(key.text().as_bytes(), std::slice::from_ref(recipient))?;
    Ok(WrappedKey {
        id: key.id().to_owned(),
        key: base64::engine::general_purpose::STANDARD.encode(file),
        created_at: key.created_at().map(str::to_owned),
    })
}

/// Replaces the cached keys with `keys`, wrapped to `identity`; atomic on disk.
pub fn store(config: &Config, identity: &SshIdentity, keys: &[EncryptKey]) -> Result<()> {
    let recipient = Recipient::from_public_key(identity.private_key().public_key())?;
    let file = KeysFile {
        keys: keys
            .iter()
            .map(|k| wrap(k, &recipient))
            .collect::<Result<_>>()?,
    };
    store_wrapped(config, &file.keys)
}

/// Replaces the cached keys with already wrapped ones (as a server sent them).
pub fn store_wrapped(config: &Config, keys: &[WrappedKey]) -> Result<()> {
    let path = keys_path(config)?;
    let json = serde_json::to_vec_pretty(&KeysFile {
        keys: keys.to_vec(),
    })
    .map_err(|e| Error::Internal(format!("encoding key file: {e}")))?;
    write_atomically(&path, &json)
}

fn keys_path(config: &Config) -> Result<PathBuf> {
    Ok(config.data_path()?.join(KEYS_FILE))
}

/// Writes via a 0600 temporary file and a rename, so a crash leaves the old or the new
/// file, never half of one.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().expect("key file lives in the data path");
    create_private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{KEYS_FILE}.{}-{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path))
        // The rename is durable once the directory entry is.
        .and_then(|()| fs::File::open(dir).and_then(|d| d.sync_all()));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_options(dir: &Path) -> Options {
        let mut options = Options::new();
        options.data_dir(dir);
        options
    }

    #[test]
    fn local_mode_creates_one_wrapped_key_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = local_options(dir.path());
        let first = resolve(&options).unwrap();
        let again = resolve(&options).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].text(), again[0].text());
        assert_eq!(first[0].text().len(), 88);

        let path = dir.path().join("localhost").join(KEYS_FILE);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(first[0].text()), "key stored in plain text");
        assert!(!text.contains(&first[0].text()[..32]));
        let file: KeysFile = serde_json::from_str(&text).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&file.keys[0].key)
            .unwrap();
        assert!(raw.starts_with(b"charm.sh/v1\n-> ssh-ed25519 "));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn another_identity_cannot_unwrap_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let options = local_options(dir.path());
        resolve(&options).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let mut other = options.config.clone();
        other.data_dir = Some(other_dir.path().to_owned());
        let stranger = SshIdentity::load_or_generate(&other).unwrap();
        let err = load(&options.config, &stranger).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Keys, "{err}");
    }

    #[test]
    fn the_go_wrapped_test_key_unwraps() {
        // tests/vectors/README.md: a key wrapped by Go sasquatch for the test identity.
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let identity = SshIdentity::load(&vectors.join("vec_charm_ed25519")).unwrap();
        let file = fs::read(vectors.join("vec_ed25519.bin")).unwrap();
        let wrapped = WrappedKey {
            id: "k".into(),
            key: base64::engine::general_purpose::STANDARD.encode(file),
            created_at: None,
        };
        let keys = unwrap_all(&[wrapped], &identity).unwrap();
        assert_eq!(
            keys[0].text(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
        );
    }

    #[test]
    fn garbage_key_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let options = local_options(dir.path());
        let identity = SshIdentity::load_or_generate(&options.config).unwrap();
        fs::write(dir.path().join("localhost").join(KEYS_FILE), "{not json").unwrap();
        assert_eq!(
            load(&options.config, &identity).unwrap_err().kind(),
            crate::ErrorKind::Corrupt
        );
        assert_eq!(
            resolve(&options).unwrap_err().kind(),
            crate::ErrorKind::Corrupt
        );
    }
}
