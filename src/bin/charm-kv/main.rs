//! `charm-kv`: the command-line tool, mirroring `charm kv` and skate.

// Every message goes through `stderr_line!` / `stderr_text!` (below).
#![warn(clippy::print_stderr)]

/// `eprintln!` that ignores a failed write: a message stderr cannot take (a full disk, a
/// closed pipe) is lost, but it must not turn the command into a panic (exit status
/// 101), e.g. after an import has committed or before an export has started.
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` (a prompt, a progress line) that ignores a failed write, as `stderr_line!`.
macro_rules! stderr_text {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod account;
mod args;
mod badger;
mod complete;
mod output;
mod time;

use std::io::{self, IsTerminal, Read, Write};
use std::process::ExitCode;

use charm_kv::{Direction, Error, ErrorKind, KeyRange, Kv, Options};
use clap::{CommandFactory, Parser};

use args::{db_arg, key_and_db, Cli, Command};

fn main() -> ExitCode {
    // A completion request from the shell script of `charm-kv completion` (its
    // variable set): answer it and exit.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::VAR)
        .complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help`, `--version`: their output can be lost like any other.
        Err(shown) if !shown.use_stderr() => {
            return match shown.print().and_then(|()| io::stdout().flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(err) => {
                    stderr_line!("charm-kv: writing output: {err}");
                    ExitCode::FAILURE
                }
            };
        }
        Err(usage) => usage.exit(),
    };
    let outcome = run(cli.command);
    output::warn_plain_http();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(CliError::Message(msg)) => {
            stderr_line!("charm-kv: {msg}");
            ExitCode::FAILURE
        }
        Err(CliError::Coded(code, msg)) => {
            stderr_line!("charm-kv: {msg}");
            ExitCode::from(code)
        }
        Err(CliError::Status(code)) => ExitCode::from(code),
    }
}

/// Exit status of `ttl` for a key that has no expiry (it printed `no expiry`).
const EXIT_NO_EXPIRY: u8 = 9;

enum CliError {
    Message(String),
    /// A failure with its own exit status (`account::exit`).
    Coded(u8, String),
    /// The reader of our output went away (`charm-kv list | head`): not an error.
    BrokenPipe,
    /// An exit status whose meaning the command already printed (`ttl`: no expiry).
    Status(u8),
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
        Command::Set {
            key,
            value,
            ttl,
            expires_at_unix_ms,
        } => {
            let (key, db) = key_and_db(&key)?;
            let value = match value {
                Some(v) => std::os::unix::ffi::OsStringExt::into_vec(v),
                None => {
                    // Up to one byte over the limit: an endless stdin is refused, not
                    // read until memory runs out.
                    let limit = charm_kv::MAX_VALUE_LEN as u64 + 1;
                    let mut buf = Vec::new();
                    io::stdin()
                        .lock()
                        .take(limit)
                        .read_to_end(&mut buf)
                        .map_err(|e| format!("reading the value from stdin: {e}"))?;
                    if buf.len() as u64 == limit {
                        return Err(CliError::Message(format!(
                            "the value on stdin is larger than the limit of {} bytes",
                            charm_kv::MAX_VALUE_LEN
                        )));
                    }
                    buf
                }
            };
            let kv = open(&db)?;
            match (ttl, expires_at_unix_ms) {
                (Some(ttl), _) => kv.set_with_ttl(key, value, ttl)?,
                (None, Some(at)) => kv.set_expiring_at_unix_ms(key, value, at)?,
                (None, None) => kv.set(key, value)?,
            }
            output::warn_pending(&kv);
        }
        Command::Ttl { key, json } => {
            let (key, db) = key_and_db(&key)?;
            let kv = open_for_reading(&db)?;
            let expires_at = kv.expires_at_unix_ms(&key)?;
            // Left as of this one read; under a millisecond counts as one.
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let ttl_ms = expires_at.map(|at| (at - now_ms).max(1));
            let ttl = ttl_ms.map(|ms| std::time::Duration::from_millis(ms as u64));
            let mut out = io::stdout().lock();
            match json {
                true => writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "key": key,
                        "ttl_ms": ttl_ms,
                        "expires_at_unix_ms": expires_at,
                    })
                )?,
                false => match ttl {
                    Some(ttl) => writeln!(out, "{}", time::format_duration_ceil(ttl))?,
                    None => writeln!(out, "no expiry")?,
                },
            }
            out.flush()?;
            if ttl.is_none() {
                return Err(CliError::Status(EXIT_NO_EXPIRY));
            }
        }
        Command::Expire {
            key,
            ttl,
            at_unix_ms,
        } => {
            let (key, db) = key_and_db(&key)?;
            let kv = open(&db)?;
            match (ttl, at_unix_ms) {
                (Some(ttl), _) => kv.expire(&key, ttl)?,
                (None, Some(at)) => kv.expire_at_unix_ms(&key, at)?,
                (None, None) => unreachable!("clap requires one"),
            }
            output::warn_pending(&kv);
        }
        Command::Persist { key } => {
            let (key, db) = key_and_db(&key)?;
            let kv = open(&db)?;
            kv.persist(&key)?;
            output::warn_pending(&kv);
        }
        Command::Get {
            key,
            show_binary,
            json,
        } => {
            let (key, db) = key_and_db(&key)?;
            let value = open_for_reading(&db)?.get(&key)?;
            match json {
                true => {
                    output::print_json_line(&charm_kv::jsonl::encode_pair(key.as_bytes(), &value))?
                }
                false => output::print_value(&value, show_binary)?,
            }
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
            json,
        } => {
            // `[PREFIX][@DB]`: `charm kv list` ignores a key part; here it filters.
            let (prefix, db) = match db.as_deref() {
                Some(arg) => key_and_db(arg)?,
                None => (String::new(), args::DEFAULT_DB.to_owned()),
            };
            let kv = open_for_reading(&db)?;
            // `charm kv list` syncs first; offline or read-only, the local copy is
            // still listed.
            if kv.is_read_only() && kv.options().config().server().is_some() {
                stderr_line!("charm-kv: warning: read-only, listing local data without syncing");
            } else if kv.options().config().server().is_some() {
                if let Err(err) = kv.sync() {
                    stderr_line!("charm-kv: warning: sync failed, listing local data: {err}");
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
                json,
            };
            let range = KeyRange::all().prefix(prefix).direction(direction);
            output::print_list(kv.iter_in(&range, !keys_only)?, &layout)?;
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
        Command::Status { db, remote, json } => {
            let kv = open_for_reading(&db_arg(db.as_deref())?)?;
            let status = match remote {
                true => kv.status_with_remote()?,
                false => kv.status()?,
            };
            match json {
                true => output::print_status_json(kv.name(), &status)?,
                false => output::print_status(kv.name(), &status)?,
            }
        }
        Command::Reset { db, force } => {
            let kv = open(&db_arg(db.as_deref())?)?;
            kv.reset(force)?;
        }
        Command::ListDbs { json } => {
            let options = Options::from_env()?;
            let mut out = io::stdout().lock();
            for name in charm_kv::list_databases(&options)? {
                match json {
                    true => writeln!(out, "{}", serde_json::json!({ "name": name }))?,
                    false => writeln!(out, "@{name}")?,
                }
            }
            out.flush()?;
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
        Command::Export { db, output, force } => {
            export(&db_arg(db.as_deref())?, output.as_deref(), force)?;
        }
        Command::Import {
            args,
            replace,
            from_badger: Some(dir),
        } => {
            let db = match args.as_slice() {
                [] => args::DEFAULT_DB.to_owned(),
                [db] if db.starts_with('@') => db_arg(Some(db))?,
                _ => {
                    return Err(CliError::Message(
                        "import --from-badger DIR takes only an optional @DB (no FILE)".into(),
                    ))
                }
            };
            let options = Options::from_env()?;
            let kv = open(&db)?;
            let count = badger::import(&kv, &options, &dir, replace)?;
            stderr_line!(
                "charm-kv: imported {count} pair(s) from {} into @{db}",
                dir.display()
            );
            output::warn_pending(&kv);
        }
        Command::Import {
            args,
            replace,
            from_badger: None,
        } => {
            let (db, file) = match args.as_slice() {
                [db] if db.starts_with('@') => {
                    return Err(CliError::Message(format!(
                        "import {db} needs a FILE to read (or - for stdin)"
                    )))
                }
                [file] => (args::DEFAULT_DB.to_owned(), file),
                [db, file] => (db_arg(Some(db))?, file),
                _ => unreachable!("clap takes one or two"),
            };
            let kv = open(&db)?;
            let count = match file.as_str() {
                "-" => charm_kv::jsonl::import(&kv, &mut io::stdin().lock(), replace)?,
                path => {
                    let file =
                        std::fs::File::open(path).map_err(|e| format!("opening {path}: {e}"))?;
                    charm_kv::jsonl::import(&kv, &mut io::BufReader::new(file), replace)?
                }
            };
            stderr_line!("charm-kv: imported {count} pair(s) into @{db}");
            output::warn_pending(&kv);
        }
        Command::Completion { shell } => {
            let mut out = io::stdout().lock();
            complete::write_script(&shell, &mut out)?;
            out.flush()?;
        }
        Command::Man { dir } => {
            let command = Cli::command();
            match dir {
                Some(dir) => clap_mangen::generate_to(command, &dir)
                    .map_err(|e| format!("writing man pages to {}: {e}", dir.display()))?,
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(command).render(&mut page)?;
                    io::stdout().lock().write_all(&page)?;
                }
            }
        }
    }
    Ok(())
}

/// `export`: every pair as JSON lines to `output` (a new file, mode 0600) or stdout,
/// which must not be a terminal unless `force`: the lines are plaintext.
fn export(db: &str, output: Option<&std::path::Path>, force: bool) -> Result<(), CliError> {
    if output.is_none() && stdout_is_terminal() && !force {
        return Err(CliError::Message(
            "export writes every pair unencrypted: not to a terminal without --force (use -o \
             FILE or a pipe)"
                .into(),
        ));
    }
    let kv = open_for_reading(db)?;
    stderr_line!("charm-kv: warning: the export is not encrypted; keep it private");
    let count = match output {
        None => charm_kv::jsonl::export(&kv, &mut io::BufWriter::new(io::stdout().lock()))?,
        Some(path) => {
            // Written under a temporary name beside `path` and renamed when complete:
            // an export cut short (Ctrl-C, a full disk, the file size limit) leaves no
            // `path` that could pass for a whole one.
            use std::os::unix::fs::PermissionsExt;
            let failed = |e: &dyn std::fmt::Display| format!("writing {}: {e}", path.display());
            if path.symlink_metadata().is_ok() {
                return Err(CliError::Message(format!(
                    "creating {}: the file exists (export never overwrites)",
                    path.display()
                )));
            }
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => std::path::Path::new("."),
            };
            let temp = tempfile::Builder::new()
                .prefix(".charm-kv-export-")
                .permissions(std::fs::Permissions::from_mode(0o600))
                .tempfile_in(dir)
                .map_err(|e| format!("creating a file in {}: {e}", dir.display()))?;
            let mut out = io::BufWriter::new(temp);
            let count = charm_kv::jsonl::export(&kv, &mut out)?;
            let temp = out.into_inner().map_err(|e| failed(&e))?;
            temp.as_file().sync_all().map_err(|e| failed(&e))?;
            temp.persist_noclobber(path).map_err(|e| failed(&e.error))?;
            count
        }
    };
    stderr_line!("charm-kv: exported {count} pair(s) from @{db}");
    Ok(())
}

/// `delete-db` asks on a terminal, saying whether the server's copies go too. With a
/// Charm server configured it deletes them (so no sync brings the database back) and
/// refuses off a terminal without `--yes`; in local mode scripts need no `--yes`.
fn confirm_server_deletion(options: &Options, db: &str) -> Result<(), CliError> {
    let terminal = io::stdin().is_terminal() && io::stderr().is_terminal();
    let what = match options.config().server() {
        Some(server) => format!(
            "delete-db deletes @{db} on this machine and its copies on the Charm server {} \
             (for every device of this account)",
            server.host
        ),
        None if !terminal => return Ok(()),
        None => format!(
            "delete-db deletes @{db} on this machine (no Charm server is configured, so no \
             server copy is deleted)"
        ),
    };
    if !terminal {
        return Err(CliError::Message(format!(
            "{what}; not a terminal, so pass --yes to confirm"
        )));
    }
    stderr_text!("{what}. Delete? [y/N] ");
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
