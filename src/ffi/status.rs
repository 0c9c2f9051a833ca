//! Status codes: what every fallible C function returns.

use std::ffi::{c_char, CStr};

use crate::ErrorKind;

/// The result of a charm-kv call: `CHARM_KV_STATUS_OK` (0) or the category of the
/// failure. Details (a message) travel in the call's `charm_kv_error` out-param.
///
/// A `uint32_t` in C. Values are fixed forever: new codes get new numbers and retired
/// ones are never reused. Treat unknown values like `CHARM_KV_STATUS_INTERNAL`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum charm_kv_status {
    /// Success.
    Ok = 0,
    /// The key (or database) does not exist.
    NotFound = 1,
    /// A bad argument: a NULL pointer, NULL data with a non-zero length, a key over
    /// 65000 bytes or a value over 999999943 bytes (checked before the bytes are read),
    /// a misaligned out-pointer or `err`, an output overlapping `err`, text that is not
    /// UTF-8, an empty or path-escaping database name, an encrypt key text under 32
    /// bytes or over 64 KiB, an out-of-range option, an SSH identity path that is not a
    /// regular file or is over 64 KiB.
    InvalidArgument = 2,
    /// A file-system or SQLite operation failed.
    Io = 3,
    /// Stored or received data failed authentication or an integrity check: also a file
    /// that is not a charm-kv database (a foreign SQLite database is never adopted), a
    /// row of the wrong type, or a stored key that the keys which passed the
    /// database's key check do not decrypt (a row written with another key, or
    /// altered).
    Corrupt = 4,
    /// No usable encryption key, or the keys at hand do not decrypt the data; also a
    /// Charm server naming another key 0 than the one this device synced with, or not
    /// keeping an encrypt key it accepted (nothing local is changed).
    Keys = 5,
    /// Authentication with the Charm server failed, its host key changed, or it named
    /// an SSH key other than ours (no encrypt key is sent to it).
    Auth = 6,
    /// The Charm server could not be reached, or the connection broke.
    Network = 7,
    /// The Charm server answered with an error.
    Server = 8,
    /// The database stayed locked by another writer past the busy timeout; retry.
    Busy = 9,
    /// The store was closed with `charm_kv_store_close`; the handle only accepts
    /// `charm_kv_store_close` and `charm_kv_store_free` now.
    Closed = 10,
    /// The operation needs a Charm server and none is configured (local mode).
    NotConfigured = 11,
    /// A reset would discard local writes not yet pushed; sync first or force it.
    PendingWrites = 12,
    /// A bug: charm-kv panicked. The panic was caught; the handles involved may be in
    /// an unspecified (but memory-safe) state.
    Panic = 13,
    /// A bug or an unexpected condition inside charm-kv.
    Internal = 14,
    /// The store was opened read-only (`charm_kv_options_set_read_only`) and the call
    /// would write: a set, delete, batch commit, sync, reset or
    /// `charm_kv_database_delete`; or a read-only open found something it would have
    /// to create or upgrade (a database from an older charm-kv).
    ReadOnly = 15,
    /// Linking a device into an account did not happen (denied, timed out, an invalid
    /// code, cancelled, or a server error); the message says which. Nothing changed.
    Link = 16,
}

/// Phase of a sync, passed to a `charm_kv_sync_progress_fn` (a `uint32_t` in C).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum charm_kv_sync_phase {
    /// Fetching and decrypting a remote snapshot.
    Download = 1,
    /// Encrypting and uploading a local snapshot.
    Upload = 2,
}

impl charm_kv_status {
    /// Every status, in numeric order (for tests and `charm_kv_status_str`).
    pub(crate) const ALL: [charm_kv_status; 17] = [
        Self::Ok,
        Self::NotFound,
        Self::InvalidArgument,
        Self::Io,
        Self::Corrupt,
        Self::Keys,
        Self::Auth,
        Self::Network,
        Self::Server,
        Self::Busy,
        Self::Closed,
        Self::NotConfigured,
        Self::PendingWrites,
        Self::Panic,
        Self::Internal,
        Self::ReadOnly,
        Self::Link,
    ];

    /// The status for a category of crate error: the one place kinds become codes.
    pub(crate) fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::InvalidArgument => Self::InvalidArgument,
            ErrorKind::Io => Self::Io,
            ErrorKind::Corrupt => Self::Corrupt,
            ErrorKind::Keys => Self::Keys,
            ErrorKind::Auth => Self::Auth,
            ErrorKind::Network => Self::Network,
            ErrorKind::Server => Self::Server,
            ErrorKind::Busy => Self::Busy,
            ErrorKind::Closed => Self::Closed,
            ErrorKind::NotConfigured => Self::NotConfigured,
            ErrorKind::PendingWrites => Self::PendingWrites,
            ErrorKind::Internal => Self::Internal,
            ErrorKind::ReadOnly => Self::ReadOnly,
            ErrorKind::Link => Self::Link,
        }
    }

    /// A short, static description.
    pub(crate) fn description(self) -> &'static CStr {
        match self {
            Self::Ok => c"ok",
            Self::NotFound => c"not found",
            Self::InvalidArgument => c"invalid argument",
            Self::Io => c"I/O error",
            Self::Corrupt => c"corrupt data",
            Self::Keys => c"encryption key error",
            Self::Auth => c"authentication failed",
            Self::Network => c"network error",
            Self::Server => c"server error",
            Self::Busy => c"database busy",
            Self::Closed => c"store is closed",
            Self::NotConfigured => c"no Charm server configured",
            Self::PendingWrites => c"local writes not yet pushed",
            Self::Panic => c"panic inside charm-kv",
            Self::Internal => c"internal error",
            Self::ReadOnly => c"read-only store",
            Self::Link => c"link failed",
        }
    }

    /// The status with numeric value `code`, if there is one.
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| *s as u32 == code)
    }
}

/// A short, static, English description of `status` (for example "not found"), or
/// "unknown status" for a value this library does not know.
///
/// Ownership: the string is static; never free it. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn charm_kv_status_str(status: u32) -> *const c_char {
    ffi_boundary_infallible!(c"panic inside charm-kv".as_ptr(), {
        match charm_kv_status::from_code(status) {
            Some(status) => status.description().as_ptr(),
            None => c"unknown status".as_ptr(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes are explicit and distinct and round-trip; they need not be dense, so a
    /// status can be retired later without renumbering the others.
    #[test]
    fn codes_are_explicit_and_distinct() {
        let mut codes: Vec<u32> = charm_kv_status::ALL.iter().map(|s| *s as u32).collect();
        for &status in charm_kv_status::ALL.iter() {
            assert_eq!(charm_kv_status::from_code(status as u32), Some(status));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), charm_kv_status::ALL.len());
        let unused = (0..).find(|c| !codes.contains(c)).unwrap();
        assert_eq!(charm_kv_status::from_code(unused), None);
        let mut texts: Vec<_> = charm_kv_status::ALL
            .iter()
            .map(|s| s.description())
            .collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), charm_kv_status::ALL.len());
    }
}
