//! Trust-on-first-use pinning of Charm server host keys.
//!
//! The Go client does not check host keys at all. charm-kv remembers the key a server
//! presented the first time in `<data path>/charm_kv_known_hosts` and refuses a
//! different key later. One line per server, `host:port key-type base64-key`; lines
//! starting with `#` and blank lines are ignored. Remove a line (or the file) after a
//! legitimate server key change.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File name of the pin file inside the data path.
pub const KNOWN_HOSTS_FILE: &str = "charm_kv_known_hosts";

/// What the pin file says about a server key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The key is the pinned one.
    Known,
    /// No key was pinned for this server; it has now been recorded.
    Pinned,
    /// A different key is pinned for this server.
    Mismatch { pinned: String },
}

/// The pin file of one data path.
#[derive(Debug, Clone)]
pub(crate) struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    pub(crate) fn new(data_path: &Path) -> Self {
        KnownHosts {
            path: data_path.join(KNOWN_HOSTS_FILE),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Checks `key` (`<type> <base64>`) for `host:port`, pinning it when the server is new.
    pub(crate) fn check(&self, host: &str, port: u16, key: &str) -> Result<Verdict> {
        let name = format!("{host}:{port}");
        if let Some(pinned) = self.lookup(&name)? {
            return Ok(if pinned == key {
                Verdict::Known
            } else {
                Verdict::Mismatch { pinned }
            });
        }
        self.append(&format!("{name} {key}\n"))?;
        Ok(Verdict::Pinned)
    }

    fn lookup(&self, name: &str) -> Result<Option<String>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", self.path.display()), e)),
        };
        // The first entry for a server wins, so a racing second pin cannot override it.
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .find(|(host, _)| *host == name)
            .map(|(_, key)| key.trim().to_owned()))
    }

    fn append(&self, line: &str) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::config::create_private_dir(dir)?;
        }
        let mut options = fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        // One write of one short line with O_APPEND: concurrent pins do not interleave.
        options
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_key_is_pinned_then_enforced_per_port() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = KnownHosts::new(dir.path());
        assert_eq!(
            hosts.check("h", 1, "ssh-ed25519 AAAA").unwrap(),
            Verdict::Pinned
        );
        assert_eq!(
            hosts.check("h", 1, "ssh-ed25519 AAAA").unwrap(),
            Verdict::Known
        );
        assert_eq!(
            hosts.check("h", 1, "ssh-ed25519 BBBB").unwrap(),
            Verdict::Mismatch {
                pinned: "ssh-ed25519 AAAA".into()
            }
        );
        assert_eq!(
            hosts.check("h", 2, "ssh-ed25519 BBBB").unwrap(),
            Verdict::Pinned
        );
        let text = fs::read_to_string(hosts.path()).unwrap();
        assert_eq!(text, "h:1 ssh-ed25519 AAAA\nh:2 ssh-ed25519 BBBB\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(hosts.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
