//! One person's devices: linking another machine into the account, and importing an
//! identity, with what that means for the local databases.
//!
//! The account layer ([`crate::account::link`], [`crate::account::backup`]) speaks
//! the protocol and moves the keys; this facade adds the databases: when this device
//! ends up in another account (its former one merged away by a link, or an imported
//! identity replaced its own), every local database forgets the former account's
//! files and turns its rows into local writes again ([`crate::sync::rejoin`]), so the
//! next sync pushes them into the account it is in now: nothing of the device is
//! lost.

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
use crate::kv::{list_databases, Kv};
use crate::options::Options;

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

/// Joins the account that showed `code` ([`Account::link_request`]). If that merged
/// this device's former account away, its databases are re-homed
/// ([`rejoin_databases`]).
pub fn link_request(options: &Options, code: &str, link: &LinkOptions) -> Result<LinkReport> {
    let report = Account::open(options.config())?.link_request(code, link)?;
    if matches!(report.outcome, LinkOutcome::Merged { .. }) {
        rejoin_databases(options)?;
    }
    Ok(report)
}

/// Imports an identity backup ([`backup::import_keys`]); when it replaced another
/// identity, the databases are re-homed ([`rejoin_databases`]).
pub fn import_keys(options: &Options, input: impl Read, force: bool) -> Result<ImportOutcome> {
    let outcome = backup::import_keys(options.config(), input, force)?;
    if matches!(
        outcome,
        ImportOutcome::Imported {
            replaced: Some(_),
            ..
        }
    ) {
        rejoin_databases(options)?;
    }
    Ok(outcome)
}

/// Makes every local database forget the remote state of the account this device
/// was in and journal all its rows as local writes ([`crate::sync::rejoin`]).
/// Returns the number of rows that the next syncs push.
pub fn rejoin_databases(options: &Options) -> Result<u64> {
    let mut rows = 0;
    for name in list_databases(options)? {
        let kv = Kv::open_with(&name, options)?;
        rows += crate::sync::rejoin::forget_remote(&kv.store()?)?;
        kv.close()?;
    }
    Ok(rows)
}
