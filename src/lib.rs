//! charm-kv: an encrypted SQLite key-value store compatible with Charm's `kv` package
//! and its Charm Cloud sync, exposed to C, Go and Python through a C ABI.

pub mod config;
pub mod crypto;
pub mod error;
pub mod identity;

pub use config::Config;
pub use crypto::EncryptKey;
pub use error::{Error, ErrorKind, Result};
