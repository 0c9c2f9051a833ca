//! `charm-kv`: the command-line tool, mirroring `charm kv` and skate.

mod account;
mod args;
mod output;
mod time;

use std::io::{self, IsTerminal, Read};
use std::process::ExitCode;

use charm_kv::{Direction, Error, ErrorKind, Kv, Options};
use clap::Parser;

use args::{db_arg, key_and_db, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = run(cli.command);
    output::warn_plain_http();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(CliError::Message(msg)) => {
            eprintln!("charm-kv: {msg}");
            ExitCode::FAILURE
        }
        Err(CliError::Coded(code, msg)) => {
            eprintln!("charm-kv: {msg}");
            ExitCode::from(code)
        }
    }
}

enum CliError {
    Message(String),
    /// A failure with its own exit status (`account::exit`).
    Coded(u8, String),
    /// The reader of our output went away (`charm-kv list | head`): not an error.
    BrokenPipe,
}

impl From<Error> for CliError {
    fn from(err: Error) -> Self {
        match err {
            Error::NotFound => CliError::Message("key not found".into()),
            other => CliError::Message(other.to_string()),
        }
    }
}

impl From<String> for CliError {
    fn from(msg: String) -> Self {
        CliError::Message(msg)
    }
}

impl From<io::Error> for CliError {
    fn from(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Message(format!("writing output: {err}"))
        }
    }
}

fn open(db: &str) -> Result<Kv, CliError> {
    let options = Options::from_env()?;
    let kv = Kv::open_with(db, &options)?;
    output::warn_identity_permissions(&options);
    Ok(kv)
}

/// Opens `db` for a read command (`get`, `list`, `status`): as configured, and
/// read-only when that fails on the file system (a data dir on read-only media, or
/// one this user cannot write). A read-only open creates and writes nothing.
fn open_for_reading(db: &str) -> Result<Kv, CliError> {
    let options = Options::from_env()?;
    let err = match Kv::open_with(db, &options) {
        Ok(kv) => {
            output::warn_identity_permissions(&options);
            return Ok(kv);
        }
        Err(err) if err.kind() == ErrorKind::Io && !options.is_read_only() => err,
        Err(err) => return Err(err.into()),
    };
    let mut read_only = options.clone();
    read_only.read_only(true);
    Kv::open_with(db, &read_only)
        .map_err(|ro| CliError::Message(format!("{err} (and read-only: {ro})")))
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Account(command) => account::run(command)?,
        Command::Set { key, value } => {
            let (key, db) = key_and_db(&key)?;
            let value = match value {
                Some(v) => v.into_bytes(),
                None => {
                    let mut buf = Vec::new();
                    io::stdin()
                        .lock()
                        .read_to_end(&mut buf)
                        .map_err(|e| format!("reading the value from stdin: {e}"))?;
                    buf
                }
            };
            let kv = open(&db)?;
            kv.set(key, value)?;
            output::warn_pending(&kv);
        }
        Command::Get { key, show_binary } => {
            let (key, db) = key_and_db(&key)?;
            let value = open_for_reading(&db)?.get(key)?;
            output::print_value(&value, show_binary)?;
        }
        Command::Delete { key } => {
            let (key, db) = key_and_db(&key)?;
            let kv = open(&db)?;
            kv.delete(key)?;
            output::warn_pending(&kv);
        }
        Command::List {
            db,
            reverse,
            keys_only,
            values_only,
            show_binary,
            delimiter,
        } => {
            let kv = open_for_reading(&db_arg(db.as_deref())?)?;
            // `charm kv list` syncs first; offline or read-only, the local copy is
            // still listed.
            if kv.is_read_only() && kv.options().config().server().is_some() {
                eprintln!("charm-kv: warning: read-only, listing local data without syncing");
            } else if kv.options().config().server().is_some() {
                if let Err(err) = kv.sync() {
                    eprintln!("charm-kv: warning: sync failed, listing local data: {err}");
                }
            }
            let direction = if reverse {
                Direction::Reverse
            } else {
                Direction::Forward
            };
            let layout = output::ListLayout {
                keys_only,
                values_only,
                show_binary,
                delimiter,
            };
            output::print_list(kv.iter_with(direction, !keys_only)?, &layout)?;
        }
        Command::Sync { db, if_stale } => {
            let kv = open(&db_arg(db.as_deref())?)?;
            match if_stale {
                None => output::sync_with_progress(&kv)?,
                // Deciding reads a local row: a recent sync costs no network at all.
                Some(max_age) => {
                    if kv.sync_is_due(max_age)? {
                        output::sync_with_progress(&kv)?;
                    }
                }
            }
        }
        Command::Status { db, remote } => {
            let kv = open_for_reading(&db_arg(db.as_deref())?)?;
            let status = match remote {
                true => kv.status_with_remote()?,
                false => kv.status()?,
            };
            output::print_status(kv.name(), &status)?;
        }
        Command::Reset { db, force } => {
            let kv = open(&db_arg(db.as_deref())?)?;
            kv.reset(force)?;
        }
        Command::ListDbs => {
            let options = Options::from_env()?;
            let mut out = io::stdout().lock();
            for name in charm_kv::list_databases(&options)? {
                use io::Write;
                writeln!(out, "@{name}")?;
            }
        }
        Command::DeleteDb { db, yes } => {
            let db = db_arg(Some(&db))?;
            let options = Options::from_env()?;
            if !yes {
                confirm_server_deletion(&options, &db)?;
            }
            charm_kv::delete_database(&options, &db).map_err(|e| match e {
                Error::DatabaseNotFound(_) => CliError::Message(format!("no database named {db}")),
                other => other.into(),
            })?;
        }
    }
    Ok(())
}

/// With a Charm server configured, `delete-db` deletes the server's copies too (so no
/// sync brings the database back): ask on a terminal, refuse elsewhere without `--yes`.
fn confirm_server_deletion(options: &Options, db: &str) -> Result<(), CliError> {
    let Some(server) = options.config().server() else {
        return Ok(());
    };
    let what = format!(
        "delete-db deletes @{db} on this machine and its copies on the Charm server {} \
         (for every device of this account)",
        server.host
    );
    if !io::stdin().is_terminal() || !io::stderr().is_terminal() {
        return Err(CliError::Message(format!(
            "{what}; not a terminal, so pass --yes to confirm"
        )));
    }
    eprint!("{what}. Delete? [y/N] ");
    let mut answer = String::new();
    io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::Message(format!("reading the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(CliError::Message("nothing deleted".into()))
    }
}

/// Whether stdout is a terminal (then output is made readable, as `charm kv` does).
fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}
