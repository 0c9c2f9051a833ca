//! The account commands: `link`, `sync-keys`, `id`, `keys`, `unlink`, `backup-keys`,
//! `import-keys` (the Go client's, interoperable with it).

use std::fs;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use charm_kv::devices::{
    Account, ImportOutcome, LinkOptions, LinkOutcome, LinkPrompt, LinkRequest,
};
use charm_kv::{devices, Error, LinkFailure, Options};
use clap::Subcommand;

use crate::time::parse_duration;
use crate::CliError;

/// Exit statuses of the account commands (also in `charm-kv --help` and the README).
pub mod exit {
    /// Any other failure.
    pub const FAILURE: u8 = 1;
    /// The other device (or you) denied the link.
    pub const LINK_DENIED: u8 = 3;
    /// Nobody used the code, or answered, in time.
    pub const LINK_TIMED_OUT: u8 = 4;
    /// The server knows no such code.
    pub const LINK_INVALID_CODE: u8 = 5;
    /// The key was already in the account: nothing changed.
    pub const ALREADY_LINKED: u8 = 6;
    /// Linked, and this device's former account was merged into the one it joined.
    pub const MERGED: u8 = 7;
    /// Refused without asking: not a terminal and no --yes, or import-keys onto
    /// another identity without --force.
    pub const REFUSED: u8 = 8;
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Link another machine to your account: without CODE, on a machine already in it,
    /// show a code and confirm the request; with CODE, on the new machine, join.
    Link {
        /// The code `link` (or `charm link`) shows on the other machine.
        code: Option<String>,
        /// Accept the link request without asking (for scripts).
        #[arg(short = 'y', long)]
        yes: bool,
        /// Give up after this long: 30s, 2m.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "150s")]
        timeout: Duration,
    },
    /// Make every encrypt key this machine holds readable by every SSH key of the
    /// account (`charm sync-keys`); nothing local is deleted.
    #[command(name = "sync-keys")]
    SyncKeys,
    /// Print your account id.
    Id,
    /// List the SSH keys linked to your account; `*` marks this machine's.
    Keys,
    /// Remove an SSH key (its text or SHA256: fingerprint, as `keys` shows it) from
    /// your account.
    Unlink {
        /// KEY text or SHA256:... fingerprint
        key: String,
    },
    /// Back up this machine's SSH identity: a tar archive as `charm backup-keys`
    /// writes it, or with `-o -` the private key alone on stdout.
    #[command(name = "backup-keys")]
    BackupKeys {
        /// Where to write; `-` for the private key on stdout.
        #[arg(short = 'o', long, default_value = "charm-keys-backup.tar",
              value_parser = clap::builder::NonEmptyStringValueParser::new())]
        output: String,
    },
    /// Import an SSH identity backup (a `backup-keys` tar archive or a private key;
    /// `-` or nothing reads stdin). Another identity already here is replaced only
    /// with --force, and the local databases stay readable.
    #[command(name = "import-keys")]
    ImportKeys {
        /// BACKUP.tar, a private key file, or `-`.
        file: Option<String>,
        /// Replace a different identity that is already here.
        #[arg(short = 'f', long = "force", alias = "force-overwrite")]
        force: bool,
    },
}

pub fn run(command: AccountCommand) -> Result<(), CliError> {
    let options = Options::from_env()?;
    let config = options.config();
    match command {
        AccountCommand::Link { code, yes, timeout } => {
            let link_options = LinkOptions {
                deadline: timeout,
                ..LinkOptions::default()
            };
            let report = match code {
                Some(code) => devices::link_request(&options, &code, &link_options),
                None => {
                    let interactive = io::stdin().is_terminal() && io::stderr().is_terminal();
                    // Without a server, `link_generate` says that before it would ask.
                    if !yes && !interactive && config.server().is_some() {
                        return Err(CliError::Coded(
                            exit::REFUSED,
                            "link needs a confirmation: not a terminal, so pass --yes to \
                             accept the request without asking"
                                .into(),
                        ));
                    }
                    devices::link_generate(&options, &mut Prompt { yes }, &link_options)
                }
            }
            .map_err(link_error)?;
            if !matches!(report.outcome, LinkOutcome::AlreadyLinked) {
                // The local-mode databases join now; what cannot is said, and joins
                // at a later open.
                match devices::join_local_databases(&options) {
                    Ok(left) => {
                        for why in left {
                            stderr_line!(
                                "charm-kv: warning: local-mode database not moved yet: {why}"
                            );
                        }
                    }
                    Err(e) => stderr_line!(
                        "charm-kv: warning: the local-mode databases did not join yet \
                         (the next open retries): {e}"
                    ),
                }
            }
            let mut out = io::stdout().lock();
            match &report.outcome {
                LinkOutcome::Linked => {
                    writeln!(out, "linked: account {}", report.account_id)?;
                }
                LinkOutcome::AlreadyLinked => {
                    return Err(CliError::Coded(
                        exit::ALREADY_LINKED,
                        format!(
                            "that key is already linked to account {}; nothing changed",
                            report.account_id
                        ),
                    ))
                }
                LinkOutcome::Merged { previous_account } => {
                    writeln!(out, "linked: account {}", report.account_id)?;
                    out.flush()?;
                    return Err(CliError::Coded(
                        exit::MERGED,
                        format!(
                            "this machine's former account {previous_account} was merged into \
                             account {}: its SSH keys moved over and its files on the server \
                             are no longer reachable; the databases on this machine are kept \
                             and go to the account at the next sync",
                            report.account_id
                        ),
                    ));
                }
            }
        }
        AccountCommand::SyncKeys => {
            let shared = Account::open(config)?.share_keys()?;
            stderr_line!("charm-kv: {shared} key wrapping(s) sent");
        }
        AccountCommand::Id => {
            let id = Account::open(config)?.account_id()?;
            writeln!(io::stdout().lock(), "{id}")?;
        }
        AccountCommand::Keys => {
            let keys = Account::open(config)?.linked_keys()?;
            let mut out = io::stdout().lock();
            for key in keys {
                let mark = if key.this_device { '*' } else { ' ' };
                writeln!(
                    out,
                    "{mark} {} {} {}",
                    key.fingerprint,
                    key.key,
                    key.created_at.as_deref().unwrap_or("-")
                )?;
            }
        }
        AccountCommand::Unlink { key } => {
            let removed = Account::open(config)?.unlink(&key)?;
            stderr_line!(
                "charm-kv: unlinked {} ({})",
                removed.fingerprint,
                removed.key
            );
        }
        AccountCommand::BackupKeys { output } => {
            if output == "-" {
                let key = devices::backup_private_key(config)?;
                let mut out = io::stdout().lock();
                out.write_all(&key)?;
                out.flush()?;
                return Ok(());
            }
            let path = if output.ends_with(".tar") {
                output
            } else {
                format!("{output}.tar")
            };
            write_new_file(Path::new(&path), |file| devices::backup_keys(config, file))?;
            stderr_line!("charm-kv: saved the keys to {path}");
        }
        AccountCommand::ImportKeys { file, force } => {
            let outcome = match file.as_deref() {
                None | Some("-") => devices::import_keys(&options, io::stdin().lock(), force),
                Some(path) => {
                    let file = fs::File::open(path)
                        .map_err(|e| CliError::Message(format!("opening {path}: {e}")))?;
                    devices::import_keys(&options, file.take(devices::MAX_BACKUP + 1), force)
                }
            }
            .map_err(|e| match e {
                Error::InvalidArgument { message, .. } if message.contains("--force") => {
                    CliError::Coded(exit::REFUSED, message)
                }
                other => other.into(),
            })?;
            match outcome {
                ImportOutcome::Imported { public_key, .. } => {
                    stderr_line!("charm-kv: imported {public_key}")
                }
                ImportOutcome::AlreadyPresent { public_key } => {
                    stderr_line!("charm-kv: {public_key} is already this machine's identity")
                }
            }
        }
    }
    Ok(())
}

/// The exit status of a failed link.
fn link_error(err: Error) -> CliError {
    let code = match err.link_failure() {
        Some(LinkFailure::Denied) => exit::LINK_DENIED,
        Some(LinkFailure::TimedOut) => exit::LINK_TIMED_OUT,
        Some(LinkFailure::InvalidCode) => exit::LINK_INVALID_CODE,
        _ => exit::FAILURE,
    };
    CliError::Coded(code, err.to_string())
}

/// Creates `path` (never replacing a file) with what `write` puts in it; a failed
/// write removes it again.
fn write_new_file(
    path: &Path,
    write: impl FnOnce(&mut fs::File) -> charm_kv::Result<()>,
) -> Result<(), CliError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        CliError::Message(format!(
            "not creating the backup file {}: {e}",
            path.display()
        ))
    })?;
    let written = write(&mut file).and_then(|()| {
        file.sync_all()
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    });
    if let Err(e) = written {
        let _ = fs::remove_file(path);
        return Err(e.into());
    }
    Ok(())
}

/// The generator's terminal: the code on stdout, the request on stderr, the answer
/// from stdin (or `--yes`).
struct Prompt {
    yes: bool,
}

impl LinkPrompt for Prompt {
    fn code(&mut self, code: &str) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "code: {code}");
        let _ = out.flush();
        stderr_line!(
            "charm-kv: on the other machine run `charm-kv link {code}` (or `charm link {code}`) \
             within a minute"
        );
    }

    fn confirm(&mut self, request: &LinkRequest) -> bool {
        let fingerprint = charm_kv::devices::fingerprint(&request.public_key).unwrap_or_default();
        stderr_line!(
            "charm-kv: link request from {} with key {fingerprint} ({})",
            request.address,
            request.public_key
        );
        if self.yes {
            stderr_line!("charm-kv: accepted (--yes)");
            return true;
        }
        stderr_text!("Let this machine into your account (read and write all its data)? [y/N] ");
        let mut answer = String::new();
        if io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
    }
}
