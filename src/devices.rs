//! One person's devices: linking another machine into the account, and importing an
//! identity, with what that means for the local databases.
//!
//! The account layer ([`crate::account::link`], [`crate::account::backup`]) speaks
//! the protocol and moves the keys; this facade adds the databases: when this device
//! ends up in another account (its former one merged away by a link, or an imported
//! identity replaced its own), every local database forgets the former account's
//! files and turns its rows into local writes again ([`crate::sync::rejoin`]), so the
//! next sync pushes them into the account it is in now: nothing of the device is
//! lost. The re-homing is recorded before anything local changes, so a crash on the
//! way is finished by the next open or sync ([`crate::sync::rejoin`]).

use std::io::Read;

use crate::account::backup;

// The account, as the command line and other programs use it (the `account` module
// itself is internal).
pub use crate::account::backup::{backup_keys, backup_private_key, ImportOutcome, MAX_BACKUP};
pub use crate::account::link::fingerprint;
pub use crate::account::{
    Account, LinkOptions, LinkOutcome, LinkPrompt, LinkReport, LinkRequest, LinkedKey,
};
use crate::error::Result;
use crate::options::Options;
use crate::sync::rejoin;

/// Shows a code for another device to join this device's account, confirms the
/// request with `prompt`, then shares the account's keys with it
/// ([`Account::link_generate`]).
pub fn link_generate(
    options: &Options,
    prompt: &mut dyn LinkPrompt,
    link: &LinkOptions,
) -> Result<LinkReport> {
    Account::open(options.config())?.link_generate(prompt, link)
}

/// Joins the account that showed `code` ([`Account::link_request`]). A device that
/// was in an account already records, before the request, that its databases are
/// to be re-homed (the link may merge its former account away, and a crash may come
/// before the answer): re-homed when the link merged it ([`rejoin_databases`]), the
/// record dropped when it did not, and kept (the next open re-homes) when that is not
/// known. Databases this device wrote in local mode join this data path at once when
/// they can ([`join_local_databases`]); the next read-write open finishes what is left
/// (or what a crash interrupted).
pub fn link_request(options: &Options, code: &str, link: &LinkOptions) -> Result<LinkReport> {
    let data_path = options.config().data_path()?;
    let account = Account::open(options.config())?;
    let mut token = None;
    let linked = account.link_request(code, link, &mut || {
        let marked = rejoin::mark_pending(&data_path)?;
        token = Some(marked);
        // Handed back if the link is found later not to have happened.
        account.note_link_rejoin(marked)
    });
    let report = match linked {
        Ok(report) => report,
        Err(e) => {
            if let Some(token) = token {
                if !account.link_unsettled().unwrap_or(true) {
                    // Nothing was linked: nothing to re-home.
                    let _ = rejoin::finish_pending(&data_path, token);
                }
            }
            return Err(e);
        }
    };
    if let Some(token) = token {
        if matches!(report.outcome, LinkOutcome::Merged { .. }) {
            finish(options, &data_path, token)?;
        } else {
            // The server named the same account as before: nothing to re-home.
            rejoin::finish_pending(&data_path, token)?;
        }
    }
    // Best effort: what cannot join now joins at a later open ([`join_local_databases`]
    // says what is left).
    let _ = crate::kv::join_local_databases(options);
    Ok(report)
}

/// After a link: moves (or merges) the databases this device wrote in local mode
/// into the data path of `options`, when the link recorded that they are to join
/// (`crate::sync::join`); a database in use, or one that fails, stays in local mode
/// and joins at a later read-write open. Returns why databases are left (empty when
/// every one joined, or there were none).
pub fn join_local_databases(options: &Options) -> Result<Vec<String>> {
    let joined = crate::kv::join_local_databases(options)?;
    let mut left = joined.problems;
    let busy = joined.left.saturating_sub(left.len());
    if busy > 0 {
        left.push(format!(
            "{busy} database(s) in use by another process: they join at a later open"
        ));
    }
    Ok(left)
}

/// Imports an identity backup ([`backup::import_keys`]); when it replaced another
/// identity, the databases are re-homed ([`rejoin_databases`]), recorded before the
/// identity is replaced.
pub fn import_keys(options: &Options, input: impl Read, force: bool) -> Result<ImportOutcome> {
    let data_path = options.config().data_path()?;
    let mut token = None;
    let imported = backup::import_keys(options.config(), input, force, &mut || {
        token = Some(rejoin::mark_pending(&data_path)?);
        Ok(())
    });
    match (imported, token) {
        (Ok(outcome), Some(token)) => {
            finish(options, &data_path, token)?;
            Ok(outcome)
        }
        (Ok(outcome), None) => Ok(outcome),
        (Err(e), Some(token)) => {
            // The import leaves the old identity whole when it fails: nothing to
            // re-home (if removing the marker fails too, re-homing anyway loses nothing).
            let _ = rejoin::finish_pending(&data_path, token);
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// Makes every local database forget the remote state of the account this device
/// was in and journal all its rows as local writes ([`crate::sync::rejoin`]): records
/// the re-homing, performs it, removes the record. Returns the number of rows that
/// the next syncs push.
pub fn rejoin_databases(options: &Options) -> Result<u64> {
    let data_path = options.config().data_path()?;
    let token = rejoin::mark_pending(&data_path)?;
    finish(options, &data_path, token)
}

/// Re-homes every database for `token`, then removes the marker.
fn finish(options: &Options, data_path: &std::path::Path, token: i64) -> Result<u64> {
    let rows = crate::kv::rejoin_all(options, token, None)?;
    rejoin::finish_pending(data_path, token)?;
    Ok(rows)
}
