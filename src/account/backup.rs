//! Backing up and importing the SSH identity, in the Go client's formats
//! (`charm/cmd/backup_keys.go`, `charm/cmd/import_keys.go`, v0.12.6): a tar archive
//! whose entries are `<data path's last component>/charm_<type>` and `.../charm_<type>.pub`,
//! or the bare OpenSSH private key.
//!
//! An import writes the key files only complete, via temporary files and renames,
//! the private key last: a crash leaves the old identity or the new one, never half of
//! one. Before the private key changes, the key cache is re-wrapped for both
//! identities, so the local databases stay readable whichever of the two a crash
//! leaves.

use std::io::{Read, Write};
use std::path::Path;

use ssh_key::{LineEnding, PrivateKey};

use super::files::{self, AccountLock};
use super::identity::{SshIdentity, MAX_IDENTITY_FILE};
use super::keycache::KeyCache;
use crate::config::Config;
use crate::crypto::keywrap::WrappedKey;
use crate::crypto::openssh::parse_private_key;
use crate::crypto::sasquatch::{self, Identity, Recipient};
use crate::error::{Error, Result};

/// Largest backup read: two key files and their tar headers need a few KiB.
pub const MAX_BACKUP: u64 = 1 << 20;

/// Key file names a backup may hold, as the Go client's pattern
/// `charm_(rsa|ed25519)(.pub)?` matches them.
const KEY_FILES: [&str; 4] = [
    "charm_ed25519",
    "charm_ed25519.pub",
    "charm_rsa",
    "charm_rsa.pub",
];

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The identity was written (there was none, or `force` replaced another).
    Imported {
        /// The public key imported (`<type> <base64>`).
        public_key: String,
        /// The one it replaced, if any.
        replaced: Option<String>,
    },
    /// The data path already holds this identity: nothing was written.
    AlreadyPresent { public_key: String },
}

/// Writes the tar archive of `charm backup-keys` for `config`'s data path to `out`.
pub fn backup_keys(config: &Config, out: impl Write) -> Result<()> {
    let data_path = config.data_path()?;
    let base = data_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let present: Vec<&str> = KEY_FILES
        .iter()
        .copied()
        .filter(|name| data_path.join(name).is_file())
        .collect();
    if present.len() < 2 {
        return Err(Error::invalid(format!(
            "no SSH identity to back up in {} (it needs charm_<type> and charm_<type>.pub)",
            data_path.display()
        )));
    }
    let mut archive = tar::Builder::new(out);
    for name in present {
        let path = data_path.join(name);
        let bytes = files::read_regular(&path, MAX_IDENTITY_FILE, "SSH key")?
            .ok_or_else(|| Error::invalid(format!("{} vanished", path.display())))?;
        let metadata = std::fs::metadata(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let mut header = tar::Header::new_ustar();
        header.set_metadata(&metadata);
        header.set_size(bytes.len() as u64);
        let entry = format!("{base}/{name}");
        archive
            .append_data(&mut header, &entry, &bytes[..])
            .map_err(|e| Error::io(format!("writing the backup entry {entry}"), e))?;
    }
    archive
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(|e| Error::io("writing the backup", e))
}

/// The private key file alone (`charm backup-keys -o -`): refused unless the data
/// path holds exactly one.
pub fn backup_private_key(config: &Config) -> Result<Vec<u8>> {
    let data_path = config.data_path()?;
    let found: Vec<_> = ["charm_ed25519", "charm_rsa"]
        .iter()
        .map(|name| data_path.join(name))
        .filter(|path| path.is_file())
        .collect();
    match found.as_slice() {
        [path] => files::read_regular(path, MAX_IDENTITY_FILE, "SSH key")?
            .ok_or_else(|| Error::invalid(format!("{} vanished", path.display()))),
        other => Err(Error::invalid(format!(
            "backup to stdout only works with 1 key, {} holds {}",
            data_path.display(),
            other.len()
        ))),
    }
}

/// Imports a backup (a `backup-keys` tar archive, or a bare OpenSSH private key) into
/// `config`'s data path. A different identity already there is replaced only with
/// `force`; the key cache then stays readable (see the module docs).
///
/// `before_replace` runs (under the account lock) just before another identity is
/// replaced: the caller records that the databases must be re-homed. An error from
/// it ends the import with nothing replaced.
pub fn import_keys(
    config: &Config,
    input: impl Read,
    force: bool,
    before_replace: &mut dyn FnMut() -> Result<()>,
) -> Result<ImportOutcome> {
    if config.identity_key.is_some() {
        return Err(Error::invalid(
            "CHARM_IDENTITY_KEY names the identity file; import-keys writes the data path's \
             and would not be used",
        ));
    }
    let mut bytes = Vec::new();
    input
        .take(MAX_BACKUP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading the backup", e))?;
    if bytes.len() as u64 > MAX_BACKUP {
        return Err(Error::invalid(format!(
            "the backup is larger than {MAX_BACKUP} bytes; a key backup is a few KiB"
        )));
    }
    let (name, private_text) = read_backup(&bytes)?;
    let key = parse_private_key(&private_text)
        .map_err(|e| Error::invalid("the backup's private key does not parse").caused_by(e))?;
    if key.is_encrypted() {
        return Err(Error::invalid(
            "the backup's private key is passphrase-protected, which charm-kv does not support",
        ));
    }
    let kind = match key.algorithm() {
        ssh_key::Algorithm::Ed25519 => "ed25519",
        ssh_key::Algorithm::Rsa { .. } => "rsa",
        other => {
            return Err(Error::invalid(format!(
                "the backup holds a {other} key; Charm accepts ssh-ed25519 and ssh-rsa"
            )))
        }
    };
    let file_name = format!("charm_{kind}");
    if name.as_deref().is_some_and(|n| n != file_name) {
        return Err(Error::invalid(format!(
            "the backup's {} holds a {kind} key",
            name.unwrap_or_default()
        )));
    }
    if file_name != config.key_file_name() {
        return Err(Error::invalid(format!(
            "the backup holds a {kind} key but CHARM_KEY_TYPE selects {}; set \
             CHARM_KEY_TYPE={kind}",
            config.key_file_name()
        )));
    }
    let data_path = config.data_path()?;
    let public_key = authorized_key(&key)?;
    let _lock = AccountLock::acquire(&data_path)?;
    let existing = match SshIdentity::load_existing(config) {
        Ok(identity) => Some(identity),
        Err(e)
            if e.kind() == crate::ErrorKind::Keys && e.to_string().contains("no SSH identity") =>
        {
            None
        }
        Err(e) if !force => return Err(e),
        Err(_) => None,
    };
    if let Some(old) = &existing {
        if old.private_key().public_key().key_data() == key.public_key().key_data() {
            return Ok(ImportOutcome::AlreadyPresent { public_key });
        }
        if !force {
            return Err(Error::invalid(format!(
                "{} already holds another identity ({}); importing would replace it. \
                 Back it up first (backup-keys), then import with --force",
                data_path.display(),
                old.authorized_key()
            )));
        }
        before_replace()?;
        rewrap_cache(&data_path, old, &key)?;
    }
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::internal("encoding SSH key").caused_by(e))?;
    let path = data_path.join(&file_name);
    files::replace_complete(
        &path.with_file_name(format!("{file_name}.pub")),
        format!("{public_key}\n").as_bytes(),
    )?;
    // The commit point: until this rename the old identity is in place.
    files::replace_complete(&path, private.as_bytes())?;
    Ok(ImportOutcome::Imported {
        public_key,
        replaced: existing.map(|old| old.authorized_key()),
    })
}

/// The private key of a backup and the file name it had in the archive (`None` for
/// a bare key).
fn read_backup(bytes: &[u8]) -> Result<(Option<String>, String)> {
    let is_tar = bytes.len() >= 262 && &bytes[257..262] == b"ustar";
    if !is_tar {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::invalid("the backup is neither a tar archive nor a key"))?;
        return Ok((None, text.to_owned()));
    }
    let mut archive = tar::Archive::new(bytes);
    let entries = archive
        .entries()
        .map_err(|e| Error::invalid("the backup is not a readable tar").caused_by(e))?;
    let mut private: Option<(String, String)> = None;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| Error::invalid("the backup is not a readable tar").caused_by(e))?;
        let path = entry
            .path()
            .map_err(|e| Error::invalid("a backup entry has a bad name").caused_by(e))?
            .into_owned();
        let base = Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !matches!(base.as_str(), "charm_ed25519" | "charm_rsa") {
            // `.pub` files are derived again from the private key; anything else is
            // not part of an identity.
            continue;
        }
        if private.is_some() {
            return Err(Error::invalid(
                "the backup holds more than one private key; import one with `-` from stdin",
            ));
        }
        let mut text = String::new();
        entry
            .by_ref()
            .take(MAX_IDENTITY_FILE)
            .read_to_string(&mut text)
            .map_err(|e| Error::invalid(format!("the backup's {base} is not text")).caused_by(e))?;
        private = Some((base, text));
    }
    let (name, text) = private
        .ok_or_else(|| Error::invalid("the backup holds no charm_ed25519 or charm_rsa key"))?;
    Ok((Some(name), text))
}

/// Re-wraps every cached key for both `old` and `new`, and forgets the pinned key 0
/// (the new identity may be in another account, whose key 0 the next sync pins).
fn rewrap_cache(data_path: &Path, old: &SshIdentity, new: &PrivateKey) -> Result<()> {
    let cache = KeyCache::read(data_path)?;
    if cache.keys().is_empty() {
        return Ok(());
    }
    let keys = cache.unwrap(old)?;
    let recipients = [
        Recipient::from_public_key(old.private_key().public_key())?,
        Recipient::from_public_key(new.public_key())?,
    ];
    let mut rewrapped = KeyCache::default();
    for key in &keys {
        let file = sasquatch::encrypt(key.text().as_bytes(), &recipients)?;
        rewrapped.add(WrappedKey {
            id: key.id().to_owned(),
            key: {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(file)
            },
            created_at: key.created_at().map(str::to_owned),
        });
    }
    // Proves the new identity opens every key before anything is replaced.
    rewrapped.unwrap_with(&Identity::from_private_key(new)?)?;
    rewrapped.write(data_path)
}

fn authorized_key(key: &PrivateKey) -> Result<String> {
    let mut public = key.public_key().clone();
    public.set_comment("");
    Ok(public
        .to_openssh()
        .map_err(|e| Error::internal("encoding SSH public key").caused_by(e))?
        .trim_end()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path) -> Config {
        Config {
            data_dir: Some(dir.to_owned()),
            ..Config::default()
        }
    }

    #[test]
    fn backup_then_import_elsewhere_gives_the_same_identity() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let identity = SshIdentity::load_or_generate(&config_in(a.path())).unwrap();
        let mut tar = Vec::new();
        backup_keys(&config_in(a.path()), &mut tar).unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["localhost/charm_ed25519", "localhost/charm_ed25519.pub"]
        );
        let outcome = import_keys(&config_in(b.path()), &tar[..], false, &mut || Ok(())).unwrap();
        assert!(matches!(
            outcome,
            ImportOutcome::Imported { replaced: None, .. }
        ));
        let imported = SshIdentity::load_existing(&config_in(b.path())).unwrap();
        assert_eq!(imported.authorized_key(), identity.authorized_key());
        assert_eq!(
            import_keys(&config_in(b.path()), &tar[..], false, &mut || Ok(())).unwrap(),
            ImportOutcome::AlreadyPresent {
                public_key: identity.authorized_key()
            }
        );
        let bare = backup_private_key(&config_in(a.path())).unwrap();
        let c = tempfile::tempdir().unwrap();
        import_keys(&config_in(c.path()), &bare[..], false, &mut || Ok(())).unwrap();
        assert_eq!(
            SshIdentity::load_existing(&config_in(c.path()))
                .unwrap()
                .authorized_key(),
            identity.authorized_key()
        );
    }

    #[test]
    fn a_different_identity_needs_force_and_the_cache_stays_readable() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        SshIdentity::load_or_generate(&config_in(a.path())).unwrap();
        let b_config = config_in(b.path());
        let account = super::super::Account::open(&b_config).unwrap();
        let local = account.local_keys().unwrap();
        let before = std::fs::read(account.identity().path()).unwrap();
        let tar = {
            let mut tar = Vec::new();
            backup_keys(&config_in(a.path()), &mut tar).unwrap();
            tar
        };
        let err = import_keys(&b_config, &tar[..], false, &mut || Ok(())).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(std::fs::read(account.identity().path()).unwrap(), before);

        import_keys(&b_config, &tar[..], true, &mut || Ok(())).unwrap();
        let reopened = super::super::Account::open(&b_config).unwrap();
        let keys = reopened.cached_keys().unwrap();
        assert_eq!(keys[0].text(), local[0].text());
        assert_ne!(std::fs::read(reopened.identity().path()).unwrap(), before);
    }

    #[test]
    fn garbage_changes_nothing() {
        let b = tempfile::tempdir().unwrap();
        let config = config_in(b.path());
        for input in [&b"not a key"[..], &[0u8; 1024][..]] {
            let err = import_keys(&config, input, true, &mut || Ok(())).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{err}");
        }
        assert!(!config.data_path().unwrap().join("charm_ed25519").exists());
    }
}
