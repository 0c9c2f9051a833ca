//! The integration tests, in one binary: each test binary links russh, tokio and SQLite,
//! so one binary instead of one per area saves most of the build and link time. A module
//! per area; the tests are named `<module>::<test>` (`cargo test --test it store::`).
//!
//! Apart: `tests/sync_large.rs` (it measures the peak RSS of its own process) and
//! `tests/header.rs` (the generated C header).

#[path = "../support/mod.rs"]
mod support;

mod readonly_dir;

// The `charm-kv` binary exists only with the (default) `cli` feature.
#[cfg(feature = "cli")]
mod badger_import;
#[cfg(feature = "cli")]
mod cli;
mod contention;
mod crash;
mod fuzz_seeds;
mod store;

// These need the real Charm server or the Go toolchain: they build with
// `--features interop-tests` (scripts/test-all, which installs both), so a missing tool
// fails loudly there instead of being skipped.
#[cfg(feature = "interop-tests")]
mod cloud;
#[cfg(feature = "interop-tests")]
mod cloud_fs;
#[cfg(feature = "interop-tests")]
mod crypto_go_interop;
#[cfg(feature = "interop-tests")]
mod link;
#[cfg(feature = "interop-tests")]
mod sync_faults;
#[cfg(feature = "interop-tests")]
mod sync_hostile;
#[cfg(feature = "interop-tests")]
mod sync_server;
