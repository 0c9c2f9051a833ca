//! The C ABI: the only module that knows C exists, and the only one with `unsafe`.
//!
//! `include/charm_kv.h` is generated from these files by cbindgen (`cbindgen.toml`);
//! the doc comments here are the header's documentation, and `docs/c-abi.md` states
//! the conventions. In short:
//!
//! - every fallible function returns a `charm_kv_status` and takes a trailing
//!   `charm_kv_error **err` (NULL allowed) that receives the error detail;
//! - `err` and the outputs are checked like every pointer: a misaligned one, or an
//!   output overlapping `err`, is `INVALID_ARGUMENT` (a misaligned `err` is not
//!   written at all);
//! - outputs are trailing out-pointers, written only when the call returns OK;
//! - lengths are checked against the limits before the bytes are read or copied;
//! - every body runs inside a panic boundary (`panic`), so no unwind crosses into C;
//! - handles are opaque boxes, created by `_new`/`_open`/`_begin` and released by a
//!   NULL-safe `_free` (or a consuming call such as `charm_kv_batch_commit`).
//!
//! Layout: `panic` (boundary macros), `status` and `error` (results),
//! `ptr` (checked pointer conversions), `bytes` (owned buffers and lists), then one
//! file per C object family.

#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod panic;
mod account;
mod batch;
mod bytes;
mod error;
mod expiry;
mod iter;
mod jsonl;
mod options;
mod ptr;
mod range;
mod status;
mod store;
mod store_status;
mod version;

pub use account::*;
pub use batch::*;
pub use bytes::*;
pub use error::*;
pub use expiry::*;
pub use iter::*;
pub use jsonl::*;
pub use options::*;
pub use range::*;
pub use status::*;
pub use store::*;
pub use store_status::*;
pub use version::*;

// What the header promises about threads, checked by the compiler: `const` on a handle
// parameter is a shared reference (`&`), so every object passed as const somewhere
// (store, options, batch, error) is Sync and calls taking it as const may run on
// several threads at once; non-const is exclusive (`&mut`). Every object may move
// between threads (goroutines do).
const _: () = {
    const fn shared<T: Send + Sync>() {}
    const fn movable<T: Send>() {}
    shared::<crate::Kv>();
    shared::<error::ErrorObject>();
    shared::<crate::Options>();
    movable::<iter::IterState>();
    shared::<batch::BatchState>();
};
