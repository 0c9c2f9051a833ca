//! Command-line grammar: the commands and flags of `charm kv` (and skate), plus
//! `list-dbs`, `delete-db`, `status` and `sync --if-stale`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::time::parse_duration;

/// The database `charm kv` uses when `@DB` is omitted.
pub const DEFAULT_DB: &str = "charm.sh.kv.user.default";

#[derive(Parser, Debug)]
#[command(
    name = "charm-kv",
    version,
    about = "An encrypted key-value store, compatible with `charm kv` and Charm servers",
    long_about = "An encrypted key-value store, compatible with `charm kv` and Charm servers.\n\n\
        Without CHARM_HOST everything stays on this machine. With CHARM_HOST (and \
        CHARM_SSH_PORT / CHARM_HTTP_PORT) set, databases sync with that self-hosted \
        Charm server. Keys and database names are lower-cased, as `charm kv` does.",
    after_long_help = crate::account::EXIT_STATUSES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Set a value for a key, with an optional @db; the value comes from stdin when omitted.
    Set {
        /// KEY[@DB]
        key: String,
        /// The value; read from stdin (binary safe) when omitted.
        value: Option<String>,
    },
    /// Get the value of a key, with an optional @db.
    Get {
        /// KEY[@DB]
        key: String,
        /// Print binary values on a terminal too.
        #[arg(short = 'b', long = "show-binary")]
        show_binary: bool,
    },
    /// Delete a key, with an optional @db.
    Delete {
        /// KEY[@DB]
        key: String,
    },
    /// List all key value pairs, with an optional @db.
    List {
        /// @DB
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
        db: Option<String>,
        /// Also ask the Charm server for its newest version (bounded by the client's
        /// network time limits); without it nothing is sent.
        #[arg(long)]
        remote: bool,
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
    ListDbs,
    /// Delete a database on this machine and, when a Charm server is configured, its
    /// copies on the server (asks first on a terminal; --yes otherwise).
    #[command(name = "delete-db")]
    DeleteDb {
        /// @DB
        db: String,
        /// Delete the server's copies without asking.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    #[command(flatten)]
    Account(crate::account::AccountCommand),
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
