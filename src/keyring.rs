//! Which encrypt keys a store uses.

use crate::crypto::EncryptKey;
use crate::error::{Error, Result};
use crate::options::Options;

/// The encrypt keys for `options`: explicit ones, else the account's.
pub fn resolve(options: &Options) -> Result<Vec<EncryptKey>> {
    match &options.keys {
        Some(keys) => Ok(keys.clone()),
        None => Err(Error::Keys("local key file not built yet".into())),
    }
}
