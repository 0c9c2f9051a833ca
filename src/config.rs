//! Client configuration: the Go client's `CHARM_*` variables and the data path.
//!
//! `charm/client/client.go` v0.12.6 is the reference. One deliberate difference: with no
//! `CHARM_HOST` the Go client talks to the (sunset) Charm Cloud, while charm-kv runs in
//! local mode and keeps its files under the host component [`LOCAL_HOST`].

use std::env;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::timeouts::Timeouts;

/// Default SSH port of a Charm server.
pub const DEFAULT_SSH_PORT: u16 = 35353;
/// Default HTTP port of a Charm server.
pub const DEFAULT_HTTP_PORT: u16 = 35354;
/// Host component of the data path in local mode (no `CHARM_HOST`). It is the name a
/// Charm server started on the same machine answers to by default, so pointing
/// `CHARM_HOST=localhost` at one later reuses the same identity, keys and databases.
pub const LOCAL_HOST: &str = "localhost";

/// Where a Charm server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    pub host: String,
    pub ssh_port: u16,
    pub http_port: u16,
}

/// Every `CHARM_*` client setting, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `CHARM_HOST`; `None` means no server (local mode).
    pub host: Option<String>,
    /// `CHARM_SSH_PORT`.
    pub ssh_port: u16,
    /// `CHARM_HTTP_PORT`.
    pub http_port: u16,
    /// `CHARM_DATA_DIR`: base directory; the host is still appended.
    pub data_dir: Option<PathBuf>,
    /// `CHARM_KEY_TYPE`: which `charm_<type>` key file to use (`ed25519` or `rsa`).
    pub key_type: String,
    /// `CHARM_IDENTITY_KEY`: a private key to use instead of the data path's.
    pub identity_key: Option<PathBuf>,
    /// `CHARM_DEBUG`.
    pub debug: bool,
    /// `CHARM_LOGFILE`.
    pub logfile: Option<PathBuf>,
    /// Stay offline even when a host is set (data still lives under that host).
    pub local: bool,
    /// Bounds on every network step (`CHARM_KV_*_TIMEOUT`).
    pub timeouts: Timeouts,
    /// `CHARM_KV_REQUIRE_TLS`: refuse to talk plain http to a server that is not on
    /// this machine (the JWT and the files would cross the network unprotected).
    pub require_tls: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: None,
            ssh_port: DEFAULT_SSH_PORT,
            http_port: DEFAULT_HTTP_PORT,
            data_dir: None,
            key_type: "ed25519".to_owned(),
            identity_key: None,
            debug: false,
            logfile: None,
            local: false,
            timeouts: Timeouts::default(),
            require_tls: false,
        }
    }
}

impl Config {
    /// Reads the `CHARM_*` variables. A malformed number or boolean is an error, as in
    /// the Go client; empty variables count as unset.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Same as [`Config::from_env`] over any variable source (tests use a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let mut config = Config {
            host: get("CHARM_HOST"),
            ..Config::default()
        };
        if let Some(v) = get("CHARM_SSH_PORT") {
            config.ssh_port = parse_port("CHARM_SSH_PORT", &v)?;
        }
        if let Some(v) = get("CHARM_HTTP_PORT") {
            config.http_port = parse_port("CHARM_HTTP_PORT", &v)?;
        }
        config.data_dir = get("CHARM_DATA_DIR").map(PathBuf::from);
        if let Some(v) = get("CHARM_KEY_TYPE") {
            config.key_type = v;
        }
        config.identity_key = get("CHARM_IDENTITY_KEY").map(|p| expand_tilde(&p));
        if let Some(v) = get("CHARM_DEBUG") {
            config.debug = parse_bool("CHARM_DEBUG", &v)?;
        }
        config.logfile = get("CHARM_LOGFILE").map(PathBuf::from);
        config.timeouts.apply_env(get)?;
        if let Some(v) = get("CHARM_KV_REQUIRE_TLS") {
            config.require_tls = parse_bool("CHARM_KV_REQUIRE_TLS", &v)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The checks every setting passes, whether it came from the environment, an
    /// `Options` builder or a C setter: one implementation (`check_host`,
    /// `check_port`, `check_key_type`).
    pub fn validate(&self) -> Result<()> {
        if let Some(host) = &self.host {
            check_host(host)?;
        }
        check_port("CHARM_SSH_PORT", self.ssh_port)?;
        check_port("CHARM_HTTP_PORT", self.http_port)?;
        check_key_type(&self.key_type)
    }

    /// The server to sync with, or `None` in local mode.
    pub fn server(&self) -> Option<ServerAddr> {
        if self.local {
            return None;
        }
        self.host.as_ref().map(|host| ServerAddr {
            host: host.clone(),
            ssh_port: self.ssh_port,
            http_port: self.http_port,
        })
    }

    /// The host component of the data path.
    pub fn host_component(&self) -> &str {
        self.host.as_deref().unwrap_or(LOCAL_HOST)
    }

    /// `<data dir>/<host>`: where keys, the key cache and the `kv/` folder live.
    pub fn data_path(&self) -> Result<PathBuf> {
        let host = self.host_component();
        check_host(host)?;
        let base = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        Ok(base.join(host))
    }

    /// The key file name the data path is searched for (`charm_<CHARM_KEY_TYPE>`).
    pub fn key_file_name(&self) -> String {
        format!("charm_{}", self.key_type)
    }
}

/// The platform's user data directory plus `charm`, as go-app-paths computes it.
fn default_data_dir() -> Result<PathBuf> {
    // dirs' data_local_dir is $XDG_DATA_HOME or ~/.local/share on Unix,
    // ~/Library/Application Support on macOS and %LOCALAPPDATA% on Windows.
    dirs::data_local_dir()
        .map(|d| d.join("charm"))
        .ok_or_else(|| Error::invalid("cannot find the user data directory; set CHARM_DATA_DIR"))
}

fn parse_port(name: &str, value: &str) -> Result<u16> {
    let port = value
        .trim()
        .parse::<u16>()
        .map_err(|_| Error::invalid(format!("{name}={value:?} is not a port number")))?;
    check_port(name, port)?;
    Ok(port)
}

/// A Charm server host: a DNS name (letters, digits, `-`, `_`, `.`, not starting with
/// `-` or `.`, at most 253 bytes) or an IP address. It names a folder of the data path
/// and is handed to SSH: nothing else (no space, `/`, `:`, control character, or a
/// leading `-` that a tool could read as an option).
pub(crate) fn check_host(host: &str) -> Result<()> {
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let is_name = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['-', '.'])
        && host != "."
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if is_ip || is_name {
        return Ok(());
    }
    let shown: String = host.chars().take(64).collect();
    Err(Error::invalid(format!(
        "host {shown:?} is not a host name or IP address"
    )))
}

/// Port 0 is no port.
pub(crate) fn check_port(name: &str, port: u16) -> Result<()> {
    if port == 0 {
        return Err(Error::invalid(format!("{name} 0 is not a port")));
    }
    Ok(())
}

/// The SSH key types charm-kv can wrap encrypt keys for, as `CHARM_KEY_TYPE` names
/// them (it becomes part of the key file's name).
pub(crate) fn check_key_type(key_type: &str) -> Result<()> {
    if matches!(key_type, "ed25519" | "rsa") {
        return Ok(());
    }
    let shown: String = key_type.chars().take(64).collect();
    Err(Error::invalid(format!(
        "key type {shown:?} is neither \"ed25519\" nor \"rsa\""
    )))
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(Error::invalid(format!("{name}={value:?} is not a boolean"))),
    }
}

fn expand_tilde(path: &str) -> PathBuf {
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match dirs::home_dir() {
            Some(home) => home.join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    }
}

/// A named point of a link or a join where a test can make the process die (`abort`,
/// as a crash would): set `CHARM_KV_TEST_CRASH_AT` to its name. Only in builds with
/// the test-only `unstable-internals` feature; nothing otherwise.
pub(crate) fn crash_point(name: &str) {
    #[cfg(feature = "unstable-internals")]
    if env::var("CHARM_KV_TEST_CRASH_AT").is_ok_and(|at| at == name) {
        std::process::abort();
    }
    #[cfg(not(feature = "unstable-internals"))]
    let _ = name;
}

/// Creates `dir` (and parents) with mode 0700 on Unix.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// Opens the lock file `path` for `flock`-style locks, creating it empty (mode 0600 on
/// Unix) when missing; an existing one is left as it is.
pub(crate) fn open_lock_file(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_local_mode_with_go_ports() {
        let c = config(&[]).unwrap();
        assert_eq!(c.server(), None);
        assert_eq!((c.ssh_port, c.http_port), (35353, 35354));
        assert_eq!(c.key_file_name(), "charm_ed25519");
        assert!(c.data_path().unwrap().ends_with("charm/localhost"));
    }

    #[test]
    fn host_and_data_dir_make_the_data_path() {
        let c = config(&[
            ("CHARM_HOST", "charm.example"),
            ("CHARM_DATA_DIR", "/tmp/cd"),
            ("CHARM_SSH_PORT", "2222"),
            ("CHARM_HTTP_PORT", "8080"),
        ])
        .unwrap();
        assert_eq!(
            c.data_path().unwrap(),
            PathBuf::from("/tmp/cd/charm.example")
        );
        let server = c.server().unwrap();
        assert_eq!((server.ssh_port, server.http_port), (2222, 8080));
    }

    #[test]
    fn malformed_numbers_and_booleans_are_errors() {
        assert!(config(&[("CHARM_SSH_PORT", "ssh")]).is_err());
        assert!(config(&[("CHARM_HTTP_PORT", "70000")]).is_err());
        assert!(config(&[("CHARM_DEBUG", "yes")]).is_err());
        assert!(config(&[("CHARM_DEBUG", "True")]).unwrap().debug);
    }

    #[test]
    fn local_flag_keeps_host_path_but_disables_server() {
        let mut c = config(&[("CHARM_HOST", "h"), ("CHARM_DATA_DIR", "/d")]).unwrap();
        c.local = true;
        assert_eq!(c.server(), None);
        assert_eq!(c.data_path().unwrap(), PathBuf::from("/d/h"));
    }

    #[test]
    fn the_environment_is_checked_like_the_setters() {
        for (name, value) in [
            ("CHARM_SSH_PORT", "0"),
            ("CHARM_HTTP_PORT", "0"),
            ("CHARM_KEY_TYPE", "dsa"),
            ("CHARM_HOST", "evil\nhost"),
            ("CHARM_HOST", "a b"),
            ("CHARM_HOST", "host:22"),
            ("CHARM_HOST", "-oProxyCommand=x"),
            ("CHARM_HOST", "../up"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::ErrorKind::InvalidArgument,
                "{name}={value:?}"
            );
        }
        for host in [
            "charm.example.com",
            "127.0.0.1",
            "::1",
            "localhost",
            "my_host-2",
        ] {
            config(&[("CHARM_HOST", host)]).unwrap();
        }
        // The builder's settings meet the same checks at open.
        let c = Config {
            host: Some("a b".into()),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn path_escaping_key_type_is_rejected() {
        assert!(config(&[("CHARM_KEY_TYPE", "../x")]).is_err());
        assert!(config(&[("CHARM_KEY_TYPE", "a/b")]).is_err());
        assert_eq!(
            config(&[("CHARM_KEY_TYPE", "rsa")])
                .unwrap()
                .key_file_name(),
            "charm_rsa"
        );
    }

    #[test]
    fn path_escaping_host_is_rejected() {
        assert!(config(&[("CHARM_HOST", "../x"), ("CHARM_DATA_DIR", "/d")]).is_err());
        let c = Config {
            host: Some("../x".into()),
            data_dir: Some("/d".into()),
            ..Config::default()
        };
        assert!(c.data_path().is_err());
    }
}
