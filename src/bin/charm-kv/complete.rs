//! Completion of database and key names, asked of the binary itself while the user
//! presses Tab: the script `charm-kv completion SHELL` prints runs
//! `CHARM_KV_COMPLETE=SHELL charm-kv -- WORDS...` (clap_complete's environment-driven
//! engine),
//! and these functions answer from the local databases. They open read-only (nothing
//! is created, no server is asked) and answer nothing rather than fail.

use std::ffi::OsStr;

use charm_kv::{Kv, Options};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use crate::args::DEFAULT_DB;

/// The variable that makes a run answer a completion request. Not clap_complete's
/// default `COMPLETE`: a variable of that common name set for anything else would turn
/// every run into a failed completion.
pub const VAR: &str = "CHARM_KV_COMPLETE";

/// At most this many keys are offered (a shell shows no more usefully).
const MAX_KEYS: usize = 1000;

/// `KEY[@DB]`: keys of the default database, or after `@` database names; a complete
/// `KEY@DB` with an existing DB also offers the keys of DB that start with KEY.
pub fn keys() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let Some(current) = current.to_str() else {
            return Vec::new();
        };
        match current.split_once('@') {
            None => key_candidates(DEFAULT_DB, current, ""),
            Some((key, db)) => {
                let mut found = db_candidates(&format!("{key}@"), db);
                if databases_named().iter().any(|name| name == db) {
                    for candidate in key_candidates(db, key, &format!("@{db}")) {
                        if !found.contains(&candidate) {
                            found.push(candidate);
                        }
                    }
                }
                found
            }
        }
    })
}

/// `[PREFIX]@DB`: database names after `@`.
pub fn databases() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let Some(current) = current.to_str() else {
            return Vec::new();
        };
        let (before, db) = current.split_once('@').unwrap_or(("", current));
        db_candidates(&format!("{before}@"), db)
    })
}

fn options() -> Option<Options> {
    let mut options = Options::from_env().ok()?;
    options.read_only(true);
    Some(options)
}

fn databases_named() -> Vec<String> {
    options()
        .and_then(|options| charm_kv::list_databases(&options).ok())
        .unwrap_or_default()
}

fn db_candidates(before: &str, typed: &str) -> Vec<CompletionCandidate> {
    databases_named()
        .into_iter()
        .filter(|name| name.starts_with(typed))
        .map(|name| CompletionCandidate::new(format!("{before}{name}")))
        .collect()
}

fn key_candidates(db: &str, typed: &str, after: &str) -> Vec<CompletionCandidate> {
    let Some(options) = options() else {
        return Vec::new();
    };
    let Ok(kv) = Kv::open_with(db, &options) else {
        return Vec::new();
    };
    let Ok(keys) = kv.keys_with_prefix(typed.to_lowercase()) else {
        return Vec::new();
    };
    keys.into_iter()
        .filter_map(|key| String::from_utf8(key).ok())
        .take(MAX_KEYS)
        .map(|key| CompletionCandidate::new(format!("{key}{after}")))
        .collect()
}

/// The registration script for `shell` (a name `Completion` accepts): it calls back
/// into `charm-kv` (found on PATH) for every completion.
pub fn write_script(shell: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(shell)
        .ok_or_else(|| std::io::Error::other(format!("unknown shell {shell}")))?;
    completer.write_registration(VAR, "charm-kv", "charm-kv", "charm-kv", out)
}
