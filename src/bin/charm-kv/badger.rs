//! `import --from-badger DIR`: the pairs of a Badger directory of the original Go
//! `charm kv` (encrypted Badger v3) or of skate v1 (plaintext Badger v4), read by the
//! Go helper `charm-kv-badger` (tools/badger-export) and imported like a JSON-lines
//! file, in one batch (docs/cli.md, "Importing Badger data").

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use charm_kv::devices::Account;
use charm_kv::{Error, Kv, Options};

use crate::CliError;

/// The helper's name, next to `charm-kv` in the release tarball.
pub const HELPER: &str = "charm-kv-badger";
/// Names the helper explicitly.
pub const HELPER_ENV: &str = "CHARM_KV_BADGER_HELPER";

/// The helper's exit statuses (tools/badger-export/main.go).
mod helper_exit {
    pub const KEYS: i32 = 3;
    pub const NOT_BADGER: i32 = 4;
    pub const IN_USE: i32 = 5;
}

/// At most this much of the helper's stderr goes into an error message.
const MAX_STDERR: u64 = 16 * 1024;

/// Imports every live pair of the Badger directory `dir` into `kv` (one batch;
/// `replace` as `import --replace`) and returns how many.
pub fn import(kv: &Kv, options: &Options, dir: &Path, replace: bool) -> Result<u64, CliError> {
    let helper = find_helper()?;
    let account = Account::open(options.config())?;
    let cached = account.cached_keys()?;
    let lines = match export(&helper, dir, &cached) {
        // A directory written with a key of the account this device has not fetched
        // yet: ask the server for the account's keys once.
        Err(HelperError::Keys(msg)) if options.config().server().is_some() => {
            let keys = account
                .client()
                .and_then(|client| account.sync_keys(&client))
                .map_err(|e| {
                    CliError::Message(format!(
                        "encryption keys: {msg}; fetching the account's keys: {e}"
                    ))
                })?;
            export(&helper, dir, &keys)?
        }
        other => other?,
    };
    // Entries with a Badger TTL carry `expires_at_unix_ms`, which the import keeps.
    Ok(charm_kv::jsonl::import(kv, &mut lines.as_slice(), replace)?)
}

/// The helper: `$CHARM_KV_BADGER_HELPER`, else `charm-kv-badger` beside this
/// executable, else on `PATH`.
fn find_helper() -> Result<PathBuf, CliError> {
    if let Some(path) = std::env::var_os(HELPER_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(CliError::Message(format!(
                "{HELPER_ENV}={} is not a file",
                path.display()
            ))),
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(HELPER)));
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(HELPER))
                .collect()
        })
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            CliError::Message(format!(
                "import --from-badger needs the helper program {HELPER}, which was not found \
                 beside charm-kv, on PATH or in {HELPER_ENV}: it ships next to charm-kv in the \
                 release tarball, or build it with `go build -o {HELPER} .` in \
                 tools/badger-export of the charm-kv source (docs/cli.md)"
            ))
        })
}

/// Runs the helper on `dir` with `keys` on its stdin; its stdout, the JSON lines,
/// once it has exited successfully (a helper that fails halfway must not leave half
/// an import).
fn export(
    helper: &Path,
    dir: &Path,
    keys: &[charm_kv::EncryptKey],
) -> Result<Vec<u8>, HelperError> {
    let mut child = KillOnDrop(
        Command::new(helper)
            .arg("--")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("running {}", helper.display()), e))
            .map_err(HelperError::Failed)?,
    );
    // Keys go on stdin, never in argv or the environment (other users can read
    // those through /proc). A few short lines: the pipe takes them without blocking.
    let mut input = String::new();
    for key in keys {
        input.push_str(&hex::encode(key.raw_key()));
        input.push('\n');
    }
    let mut stdin = child.0.stdin.take().expect("piped");
    // A helper that exits before reading its keys closes the pipe (a write error
    // here); its exit status and stderr say why, below.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let stderr = child.0.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.take(MAX_STDERR).read_to_string(&mut text);
        text
    });
    let mut lines = Vec::new();
    child
        .0
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut lines)
        .map_err(|e| Error::io(format!("reading the output of {}", helper.display()), e))
        .map_err(HelperError::Failed)?;
    let status = child
        .0
        .wait()
        .map_err(|e| Error::io(format!("waiting for {}", helper.display()), e))
        .map_err(HelperError::Failed)?;
    let stderr = stderr.join().unwrap_or_default();
    let why = stderr
        .trim()
        .trim_start_matches(&format!("{HELPER}: "))
        .to_owned();
    match status.code() {
        Some(0) => Ok(lines),
        Some(helper_exit::KEYS) => Err(HelperError::Keys(why)),
        Some(helper_exit::NOT_BADGER) | Some(helper_exit::IN_USE) => Err(HelperError::Refused(why)),
        _ => Err(HelperError::Refused(format!(
            "{} failed ({status}): {why}",
            helper.display()
        ))),
    }
}

/// Why the helper gave no pairs.
enum HelperError {
    /// The directory is encrypted and none of the keys opens it.
    Keys(String),
    /// Not a Badger directory, in use, or another failure of the helper: its message.
    Refused(String),
    /// The helper could not be run or read.
    Failed(Error),
}

impl From<HelperError> for CliError {
    fn from(err: HelperError) -> Self {
        match err {
            HelperError::Keys(why) => CliError::Message(format!(
                "encryption keys: {why} (charm kv encrypts its Badger directories with an \
                 encrypt key of the account: import with the same account, e.g. after \
                 `charm-kv import-keys` of the identity charm used)"
            )),
            HelperError::Refused(why) => CliError::Message(why),
            HelperError::Failed(e) => e.into(),
        }
    }
}

/// Kills the helper if it is still running when the import gives up.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
