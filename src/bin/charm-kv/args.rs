//! Command-line grammar: the commands and flags of `charm kv` (and skate), plus
//! `list-dbs`, `delete-db`, `status` and `sync --if-stale`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::time::parse_duration;

/// The database `charm kv` uses when `@DB` is omitted.
pub const DEFAULT_DB: &str = charm_kv::DEFAULT_DATABASE;

#[derive(Parser, Debug)]
#[command(
    name = "charm-kv",
    version,
    about = "An encrypted key-value store, compatible with `charm kv` and Charm servers",
    long_about = "An encrypted key-value store, compatible with `charm kv` and Charm servers.\n\n\
        Without CHARM_HOST everything stays on this machine. With CHARM_HOST (and \
        CHARM_SSH_PORT / CHARM_HTTP_PORT) set, databases sync with that self-hosted \
        Charm server. Keys and database names are lower-cased, as `charm kv` does.",
    after_help = "Examples:\n  \
        charm-kv set name Charm\n  \
        charm-kv get name\n  \
        charm-kv set photo@pictures < photo.png\n  \
        charm-kv list app:@work --json\n  \
        charm-kv export @work -o work.jsonl\n\n\
        Exit statuses: 0 success; 1 failure (a missing key too); 2 usage error; \
        3 link denied; 4 link timed out; 5 invalid link code; 6 already linked (nothing \
        changed); 7 linked, and this device's former account was merged into the one it \
        joined; 8 refused (not a terminal and no --yes, or import-keys onto another \
        identity without --force); 9 `ttl` of a key without an expiry. See docs/cli.md for each command's output and exit \
        statuses."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Set a value for a key, with an optional @db; the value comes from stdin when omitted.
    #[command(after_help = "Examples:\n  charm-kv set name Charm\n  \
        charm-kv set session@web abc123 --ttl 30m     expires in 30 minutes\n  \
        charm-kv set token xyz --expires-at-unix-ms 1798761600000")]
    Set {
        /// KEY[@DB]
        key: String,
        /// The value (any bytes); read from stdin (binary safe) when omitted.
        value: Option<std::ffi::OsString>,
        /// Expire the key this long from now: 30s, 10m, 2h, 7d, 1h30m (from then on
        /// it reads as missing, on every device it syncs to).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ttl: Option<Duration>,
        /// Expire the key at this unix time in milliseconds (a time passed deletes it).
        #[arg(
            long,
            value_name = "UNIX_MS",
            conflicts_with = "ttl",
            allow_negative_numbers = true
        )]
        expires_at_unix_ms: Option<i64>,
    },
    /// Print the time left before a key expires, with an optional @db: a duration such
    /// as 9m59s (rounded up to whole seconds); `no expiry` and exit status 9 for a key
    /// without one; exit status 1 for a missing key.
    #[command(after_help = "Examples:\n  charm-kv ttl session@web\n  charm-kv ttl session --json")]
    Ttl {
        /// KEY[@DB]
        #[arg(add = crate::complete::keys())]
        key: String,
        /// Print {"key","ttl_ms","expires_at_unix_ms"} (nulls for no expiry).
        #[arg(long)]
        json: bool,
    },
    /// Make a key expire (keeping its value), with an optional @db; exit status 1 for a
    /// missing key.
    #[command(after_help = "Examples:\n  charm-kv expire session 10m\n  \
        charm-kv expire session@web --at-unix-ms 1798761600000")]
    Expire {
        /// KEY[@DB]
        #[arg(add = crate::complete::keys())]
        key: String,
        /// How long from now: 30s, 10m, 2h, 7d, 1h30m.
        #[arg(value_name = "DURATION", value_parser = parse_duration,
              required_unless_present = "at_unix_ms")]
        ttl: Option<Duration>,
        /// Expire at this unix time in milliseconds instead (a time passed deletes it).
        #[arg(
            long,
            value_name = "UNIX_MS",
            conflicts_with = "ttl",
            allow_negative_numbers = true
        )]
        at_unix_ms: Option<i64>,
    },
    /// Remove the expiry of a key, with an optional @db (a key without one is left as
    /// it is); exit status 1 for a missing key.
    Persist {
        /// KEY[@DB]
        #[arg(add = crate::complete::keys())]
        key: String,
    },
    /// Get the value of a key, with an optional @db.
    #[command(after_help = "Examples:\n  charm-kv get name\n  charm-kv get name@work --json")]
    Get {
        /// KEY[@DB]
        #[arg(add = crate::complete::keys())]
        key: String,
        /// Print binary values on a terminal too.
        #[arg(short = 'b', long = "show-binary")]
        show_binary: bool,
        /// Print {"key","value","key_base64","value_base64"} (binary as base64).
        #[arg(long, conflicts_with = "show_binary")]
        json: bool,
    },
    /// Delete a key, with an optional @db.
    #[command(visible_alias = "rm")]
    Delete {
        /// KEY[@DB]
        #[arg(add = crate::complete::keys())]
        key: String,
    },
    /// List key value pairs, all or those whose key starts with PREFIX, with an optional @db.
    #[command(
        visible_alias = "ls",
        after_help = "Examples:\n  charm-kv list\n  charm-kv list @work -k\n  \
            charm-kv list app:          keys starting with app: in the default database\n  \
            charm-kv list app:@work --json"
    )]
    List {
        /// [PREFIX][@DB]: only keys starting with PREFIX (lower-cased, as keys are).
        #[arg(value_name = "[PREFIX][@DB]", add = crate::complete::databases())]
        db: Option<String>,
        /// List in reverse key order.
        #[arg(short = 'r', long)]
        reverse: bool,
        /// Only print keys.
        #[arg(short = 'k', long = "keys-only")]
        keys_only: bool,
        /// Only print values.
        #[arg(short = 'v', long = "values-only")]
        values_only: bool,
        /// Print binary values on a terminal too.
        #[arg(short = 'b', long = "show-binary")]
        show_binary: bool,
        /// Delimiter between key and value.
        #[arg(short = 'd', long, default_value = "\t")]
        delimiter: String,
        /// One JSON object per pair and line (binary as base64, flagged); -k / -v
        /// leave out the value / key fields.
        #[arg(long, conflicts_with_all = ["show_binary", "delimiter"])]
        json: bool,
    },
    /// Sync local data with the Charm server, with an optional @db.
    Sync {
        /// @DB
        db: Option<String>,
        /// Only sync when the last successful sync is at least this old (or never
        /// happened): 30s, 10m, 2h, 1d, 1h30m.
        #[arg(long = "if-stale", value_name = "DURATION", value_parser = parse_duration)]
        if_stale: Option<Duration>,
    },
    /// Show the sync state of a database, with an optional @db: one `field: value` per line.
    Status {
        /// @DB
        #[arg(add = crate::complete::databases())]
        db: Option<String>,
        /// Also ask the Charm server for its newest version (bounded by the client's
        /// network time limits); without it nothing is sent.
        #[arg(long)]
        remote: bool,
        /// One JSON object with the same fields (numbers as numbers, null for
        /// never/none/unknown).
        #[arg(long)]
        json: bool,
    },
    /// Delete the local copy and restore it from the Charm server, with an optional @db.
    Reset {
        /// @DB
        db: Option<String>,
        /// Reset even when local writes were never pushed (they are lost).
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// List the databases on this machine.
    #[command(name = "list-dbs")]
    ListDbs {
        /// One {"name": ...} object per line (no @).
        #[arg(long)]
        json: bool,
    },
    /// Delete a database on this machine and, when a Charm server is configured, its
    /// copies on the server (asks first on a terminal, saying which; with a server,
    /// --yes is needed off a terminal).
    #[command(name = "delete-db")]
    DeleteDb {
        /// @DB
        #[arg(add = crate::complete::databases())]
        db: String,
        /// Delete without asking (the server's copies too, when one is configured).
        #[arg(short = 'y', long)]
        yes: bool,
    },
    #[command(flatten)]
    Account(crate::account::AccountCommand),
    /// Write every pair of a database, with an optional @db, as JSON lines (NOT
    /// encrypted: refuses a terminal without --force).
    #[command(after_help = "Examples:\n  charm-kv export -o backup.jsonl\n  \
        charm-kv export @work | gzip > work.jsonl.gz\n\n\
        Each line: {\"key\":...,\"value\":...,\"key_base64\":false,\"value_base64\":false}; \
        bytes that are not UTF-8 are base64 with the flag set; a pair with an expiry also \
        has \"expires_at_unix_ms\" (unix time in milliseconds). Expired pairs are left out.")]
    Export {
        /// @DB
        #[arg(add = crate::complete::databases())]
        db: Option<String>,
        /// Write to FILE (created with mode 0600; must not exist) instead of stdout.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write plaintext to a terminal anyway.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Read JSON lines (as export writes them), or with --from-badger the data of the
    /// original `charm kv` or skate, into a database, with an optional @db, in one
    /// atomic batch: a malformed line changes nothing.
    #[command(after_help = "Examples:\n  charm-kv import backup.jsonl\n  \
        charm-kv import @work work.jsonl --replace\n  \
        gunzip -c work.jsonl.gz | charm-kv import @work -\n  \
        charm-kv import --from-badger ~/.local/share/charm/cloud.charm.sh/kv/charm.sh.kv.user.default\n  \
        charm-kv import --from-badger ~/.local/share/charm/kv/notes @notes      (skate's @notes)\n\n\
        --from-badger runs the helper charm-kv-badger (beside charm-kv, on PATH, or \
        $CHARM_KV_BADGER_HELPER), which never writes DIR; encrypted directories of \
        `charm kv` open with this account's keys.")]
    Import {
        /// [@DB] FILE: the file, or - for stdin (with --from-badger only [@DB]).
        #[arg(
            value_name = "[@DB] FILE",
            num_args = 1..=2,
            required_unless_present = "from_badger"
        )]
        args: Vec<String>,
        /// Delete every key not in the input (in the same batch).
        #[arg(long)]
        replace: bool,
        /// Read the Badger database directory DIR of the original `charm kv`
        /// (encrypted, `<data path>/kv/<name>`) or of skate v1 (plaintext) instead of
        /// JSON lines.
        #[arg(long, value_name = "DIR")]
        from_badger: Option<PathBuf>,
    },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    #[command(after_help = "Examples:\n  \
        source <(charm-kv completion bash)      # in ~/.bashrc\n  \
        charm-kv completion zsh > \"${fpath[1]}/_charm-kv\"\n  \
        charm-kv completion fish > ~/.config/fish/completions/charm-kv.fish")]
    Completion {
        /// The shell.
        #[arg(value_parser = ["bash", "zsh", "fish", "elvish", "powershell"])]
        shell: String,
    },
    /// Print the man page (roff) to stdout, or with --dir write one page per command.
    #[command(hide = true)]
    Man {
        /// Write charm-kv.1 and charm-kv-COMMAND.1 into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Splits `KEY[@DB]` as `charm kv` does: lower-cased, empty db means the default.
pub fn key_and_db(arg: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = arg.split('@').collect();
    match parts.as_slice() {
        [key] => Ok((key.to_lowercase(), DEFAULT_DB.to_owned())),
        [key, db] => Ok((key.to_lowercase(), db_or_default(db))),
        _ => Err("bad key format, use KEY@DB".to_owned()),
    }
}

/// The db of an `@DB` argument (a key part before `@` is ignored, as in `charm kv`).
pub fn db_arg(arg: Option<&str>) -> Result<String, String> {
    match arg {
        None => Ok(DEFAULT_DB.to_owned()),
        Some(arg) => key_and_db(arg).map(|(_, db)| db),
    }
}

fn db_or_default(db: &str) -> String {
    if db.is_empty() {
        DEFAULT_DB.to_owned()
    } else {
        db.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_at_db_parsing_matches_charm() {
        assert_eq!(
            key_and_db("Foo").unwrap(),
            ("foo".into(), DEFAULT_DB.into())
        );
        assert_eq!(
            key_and_db("Foo@MyDB").unwrap(),
            ("foo".into(), "mydb".into())
        );
        assert_eq!(
            key_and_db("foo@").unwrap(),
            ("foo".into(), DEFAULT_DB.into())
        );
        assert!(key_and_db("a@b@c").is_err());
        assert_eq!(db_arg(Some("@Other")).unwrap(), "other");
        assert_eq!(db_arg(Some("ignored@x")).unwrap(), "x");
        assert_eq!(db_arg(None).unwrap(), DEFAULT_DB);
    }
}
