//! charm-kv: an encrypted SQLite key-value store compatible with Charm's `kv` package
//! and its Charm Cloud sync, exposed to C, Go and Python through a C ABI.

// Only the C ABI (`ffi`) may use `unsafe`.
#![deny(unsafe_code)]

/// Declares the internal modules: private to the crate, or, with the feature
/// `unstable-internals`, public but hidden from the documentation, so the integration
/// tests, fuzz targets and benchmarks can reach inside. They are not API: no stability
/// promise, and a library user should never turn the feature on.
macro_rules! internal_modules {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "unstable-internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "unstable-internals"))]
        mod $name;
    )*};
}

internal_modules! {
    account;
    batch;
    cloud;
    config;
    crypto;
    error;
    kv;
    options;
    store;
    sync;
    timeouts;
}

#[cfg(test)]
mod architecture;
#[cfg(test)]
mod expiry_tests;

/// The C ABI (`include/charm_kv.h`). Public because it is the C API, which Rust code may
/// call like C does (the benchmarks and a fuzz target do); hidden from the Rust
/// documentation, which `docs/c-abi.md` and the header replace. Declared outside
/// `internal_modules!` so cbindgen, which reads the sources, finds it.
#[allow(unsafe_code)]
#[doc(hidden)]
pub mod ffi;

pub mod devices;
pub mod jsonl;

pub use batch::Batch;
pub use cloud::plain_http_host;
pub use config::{Config, ServerAddr};
pub use crypto::EncryptKey;
pub use error::{DatabaseError, Error, ErrorKind, LinkFailure, Result};
pub use kv::{delete_database, identity_readable_by_others, list_databases, Kv, DEFAULT_DATABASE};
pub use options::Options;
pub use store::{Direction, Durability, Fetched, Iter, KeyRange};
/// The largest key and value accepted, in bytes (docs/storage.md); a longer one is
/// [`Error::InvalidArgument`].
pub use store::{MAX_KEY_LEN, MAX_VALUE_LEN};
pub use sync::{ChainShape, LastSync, RemoteStatus, StoreStatus, SyncPhase, SyncProgress};
pub use timeouts::Timeouts;
