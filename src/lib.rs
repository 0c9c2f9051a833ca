//! charm-kv: an encrypted SQLite key-value store compatible with Charm's `kv` package
//! and its Charm Cloud sync, exposed to C, Go and Python through a C ABI.

// Only the C ABI (`ffi`) may use `unsafe`.
#![deny(unsafe_code)]

pub mod account;
#[cfg(test)]
mod architecture;
pub mod batch;
pub mod cloud;
pub mod config;
pub mod crypto;
pub mod devices;
pub mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub mod jsonl;
pub mod kv;
pub mod options;
pub mod store;
pub mod sync;
pub mod timeouts;

pub use batch::Batch;
pub use config::Config;
pub use crypto::EncryptKey;
pub use error::{Error, ErrorKind, LinkFailure, Result};
pub use kv::{delete_database, list_databases, Kv, DEFAULT_DATABASE};
pub use options::Options;
pub use store::{Direction, Durability, Fetched, Iter, KeyRange};
pub use sync::{ChainShape, LastSync, RemoteStatus, StoreStatus, SyncPhase, SyncProgress};
pub use timeouts::Timeouts;
