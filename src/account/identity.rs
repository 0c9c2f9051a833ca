//! The user's Charm SSH identity: `charm_ed25519` (or `charm_rsa`) in the data path.
//!
//! Found and generated as the Go client does (`charm/client/client.go` and `charmbracelet/keygen` v0.4.2): an existing
//! `CHARM_IDENTITY_KEY` wins; otherwise `<data path>/charm_<CHARM_KEY_TYPE>`; when neither
//! exists an Ed25519 pair is generated in OpenSSH format, private key mode 0600.
//! Unlike the Go client, the identity that logs in is also the one that unwraps the
//! encrypt keys, so `CHARM_IDENTITY_KEY` works for both.
//!
//! Generation happens under the account lock with a re-check after taking it, and the
//! key file appears only complete and never replaces one that exists: processes that
//! start together on a fresh data path all end up with the same identity.

use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, LineEnding, PrivateKey};

use super::files::{self, AccountLock};
use crate::config::Config;
use crate::crypto::openssh::parse_private_key;
use crate::error::{Error, Result};

/// Largest identity file read. An OpenSSH RSA-4096 private key is about 3.4 KiB.
pub const MAX_IDENTITY_FILE: u64 = 64 * 1024;

/// A loaded SSH identity.
#[derive(Clone)]
pub struct SshIdentity {
    key: PrivateKey,
    path: PathBuf,
    /// Unix permission bits of the file it was loaded from.
    mode: Option<u32>,
}

impl SshIdentity {
    /// Where the identity of `config` is looked for (the configured key type's file,
    /// then the generated one's) and the algorithm to generate, when no
    /// `CHARM_IDENTITY_KEY` names the file.
    fn candidates(config: &Config) -> Result<(PathBuf, PathBuf, Algorithm)> {
        crate::config::check_key_type(&config.key_type)?;
        let data_path = config.data_path()?;
        let configured = data_path.join(config.key_file_name());
        let algorithm = match config.key_type.to_ascii_lowercase().as_str() {
            "rsa" => Algorithm::Rsa { hash: None },
            _ => Algorithm::Ed25519,
        };
        // The Go client generates under the lower-cased type; so do we, but we then load
        // the file we wrote rather than re-globbing with the raw value (the Go client globs it too).
        let kind = if matches!(algorithm, Algorithm::Ed25519) {
            "ed25519"
        } else {
            "rsa"
        };
        let generated = data_path.join(format!("charm_{kind}"));
        Ok((configured, generated, algorithm))
    }

    /// Loads the identity the configuration names without creating anything:
    /// [`Error::Keys`] when there is none (a read-only open).
    pub fn load_existing(config: &Config) -> Result<Self> {
        if let Some(path) = &config.identity_key {
            return Self::load(path);
        }
        let (configured, generated, _) = Self::candidates(config)?;
        match Self::load_if_present(&configured)? {
            Some(identity) => Ok(identity),
            None => Self::load_if_present(&generated)?.ok_or_else(|| {
                Error::keys(format!(
                    "no SSH identity {} (a read-only open creates none)",
                    configured.display()
                ))
            }),
        }
    }

    /// Loads the identity the configuration names, generating an Ed25519 key in the
    /// data path when none exists (and no `CHARM_IDENTITY_KEY` is given).
    pub fn load_or_generate(config: &Config) -> Result<Self> {
        if let Some(path) = &config.identity_key {
            return Self::load(path);
        }
        let (configured, generated, algorithm) = Self::candidates(config)?;
        let data_path = config.data_path()?;
        let existing = || -> Result<Option<Self>> {
            match Self::load_if_present(&configured)? {
                Some(identity) => Ok(Some(identity)),
                None => Self::load_if_present(&generated),
            }
        };
        if let Some(identity) = existing()? {
            return Ok(identity);
        }
        let _lock = AccountLock::acquire(&data_path)?;
        // Another thread or process may have made it while we waited.
        if let Some(identity) = existing()? {
            return Ok(identity);
        }
        Self::generate(&generated, algorithm)
    }

    /// Loads an unencrypted OpenSSH or PEM private key from `path`, which must be a
    /// regular file of at most [`MAX_IDENTITY_FILE`] bytes.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_if_present(path)?.ok_or_else(|| {
            Error::io(
                format!("reading SSH key {}", path.display()),
                std::io::ErrorKind::NotFound.into(),
            )
        })
    }

    fn load_if_present(path: &Path) -> Result<Option<Self>> {
        let Some(bytes) = files::read_regular(path, MAX_IDENTITY_FILE, "SSH key")? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes)
            // No source: a FromUtf8Error holds the bytes, here a private key.
            .map_err(|_| Error::keys(format!("SSH key {} is not text", path.display())))?;
        let key = parse_private_key(&text)
            .map_err(|e| {
                Error::keys(format!("cannot parse SSH key {}", path.display())).caused_by(e)
            })?;
        if key.is_encrypted() {
            return Err(Error::keys(format!(
                "SSH key {} is passphrase-protected, which charm-kv does not support",
                path.display()
            )));
        }
        match key.algorithm() {
            Algorithm::Ed25519 | Algorithm::Rsa { .. } => {}
            other => {
                return Err(Error::keys(format!(
                    "SSH key {} is {other}; Charm accepts ssh-ed25519 and ssh-rsa",
                    path.display()
                )))
            }
        }
        Ok(Some(SshIdentity {
            key,
            path: path.to_owned(),
            mode: file_mode(path),
        }))
    }

    /// Writes a new key pair; called under the account lock after a re-check. The
    /// private key file appears complete or not at all, and if one appeared anyway
    /// (a client that does not take our lock, such as the Go one) that one is used.
    fn generate(path: &Path, algorithm: Algorithm) -> Result<Self> {
        let mut rng = rand::rngs::OsRng;
        let key = match algorithm {
            Algorithm::Rsa { .. } => {
                let rsa = ssh_key::private::RsaKeypair::random(&mut rng, 4096)
                    .map_err(|e| Error::internal("generating RSA key").caused_by(e))?;
                PrivateKey::from(rsa)
            }
            _ => PrivateKey::random(&mut rng, Algorithm::Ed25519)
                .map_err(|e| Error::internal("generating Ed25519 key").caused_by(e))?,
        };
        let private = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| Error::internal("encoding SSH key").caused_by(e))?;
        let public = key
            .public_key()
            .to_openssh()
            .map_err(|e| Error::internal("encoding SSH public key").caused_by(e))?;
        let public = match user_at_host() {
            Some(comment) => format!("{public} {comment}\n"),
            None => public,
        };
        if !files::create_complete(path, private.as_bytes())? {
            return Self::load(path);
        }
        // The public half is derived from the private key just created, so replacing a
        // stale one left by an interrupted run loses nothing.
        files::replace_complete(&path.with_file_name(pub_name(path)), public.as_bytes())?;
        Ok(SshIdentity {
            key,
            path: path.to_owned(),
            mode: file_mode(path),
        })
    }

    /// The permission bits of the key file when group or others may read it (ssh
    /// refuses such keys; the CLI warns).
    pub fn loose_permissions(&self) -> Option<u32> {
        self.mode.filter(|mode| mode & 0o044 != 0)
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// Where the key was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The server's name for this key: `<type> <base64 wire key>`, no comment
    /// (`charm/server/auth.go`).
    pub fn authorized_key(&self) -> String {
        let mut public = self.key.public_key().clone();
        public.set_comment("");
        public
            .to_openssh()
            .expect("encoding an in-memory public key cannot fail")
            .trim_end()
            .to_owned()
    }
}

impl std::fmt::Debug for SshIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshIdentity")
            .field("path", &self.path)
            .field("public_key", &self.authorized_key())
            .finish()
    }
}

fn pub_name(path: &Path) -> String {
    format!(
        "{}.pub",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

fn user_at_host() -> Option<String> {
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty())?;
    let host = std::fs::read_to_string("/etc/hostname").ok()?;
    let host = host.trim();
    (!host.is_empty()).then(|| format!("{user}@{host}"))
}

fn file_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn config_in(dir: &Path) -> Config {
        Config {
            data_dir: Some(dir.to_owned()),
            ..Config::default()
        }
    }

    #[test]
    fn generates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let first = SshIdentity::load_or_generate(&config).unwrap();
        let second = SshIdentity::load_or_generate(&config).unwrap();
        assert_eq!(first.authorized_key(), second.authorized_key());
        assert!(first.authorized_key().starts_with("ssh-ed25519 AAAA"));
        assert_eq!(first.authorized_key().split(' ').count(), 2);
        let path = dir.path().join("localhost/charm_ed25519");
        assert_eq!(first.path(), path);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&path.with_file_name("charm_ed25519.pub")), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }

    #[test]
    fn loads_the_go_generated_test_identity() {
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let identity = SshIdentity::load(&vectors.join("vec_charm_ed25519")).unwrap();
        let expected = fs::read_to_string(vectors.join("vec_charm_ed25519.pub")).unwrap();
        assert!(expected.starts_with(&identity.authorized_key()));
    }

    #[test]
    fn garbage_key_file_is_a_keys_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("charm_ed25519");
        fs::write(&path, "not a key").unwrap();
        let err = SshIdentity::load(&path).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Keys);
    }

    #[test]
    fn threads_starting_together_share_one_identity() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let keys: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| scope.spawn(|| SshIdentity::load_or_generate(&config)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap().authorized_key())
                .collect()
        });
        let on_disk = SshIdentity::load_or_generate(&config)
            .unwrap()
            .authorized_key();
        assert!(keys.iter().all(|k| *k == on_disk), "{keys:?}");
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        for path in [fifo.as_path(), Path::new("/dev/zero")] {
            let err = SshIdentity::load(path).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let big = dir.path().join("big");
        fs::write(&big, vec![b'a'; MAX_IDENTITY_FILE as usize + 1]).unwrap();
        let err = SshIdentity::load(&big).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn readable_by_others_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let identity = SshIdentity::load_or_generate(&config).unwrap();
        assert_eq!(identity.loose_permissions(), None);
        fs::set_permissions(identity.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let reloaded = SshIdentity::load_or_generate(&config).unwrap();
        assert_eq!(reloaded.loose_permissions(), Some(0o644));
    }

    /// An SSH key file that does not parse is a keys error whose source is the
    /// parser's error.
    #[test]
    fn an_unparsable_key_keeps_the_parse_error_as_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("charm_ed25519");
        fs::write(
            &path,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = SshIdentity::load(&path).err().unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::Keys, "{err}");
        let cause = crate::error::source_of::<ssh_key::Error>(&err).expect("ssh-key source");
        assert!(err.to_string().ends_with(&cause.to_string()), "{err}");
    }
}
