//! Error objects: the detail of a failed call, handed to C through the `err` out-param.

use std::ffi::{c_char, CString};

use super::ptr::{handle_free, handle_ref, new_handle, Handle};
use super::status::charm_kv_status;

/// The detail of a failed call: its status and a human-readable message (English,
/// never containing key or value bytes).
///
/// Created by the library in a fallible call's `charm_kv_error **err` out-param;
/// owned by the caller, who releases it with `charm_kv_error_free`. Immutable, so it
/// may be read from any thread.
pub struct charm_kv_error {
    _private: [u8; 0],
}

/// What a `charm_kv_error` points to.
pub(crate) struct ErrorObject {
    status: charm_kv_status,
    message: CString,
}

// SAFETY: `charm_kv_error` pointers are only made by `new_handle::<charm_kv_error>`
// from an `ErrorObject`.
unsafe impl Handle for charm_kv_error {
    type Inner = ErrorObject;
}

/// Longest error message handed to C, in characters (then cut, with "…").
const MAX_MESSAGE_CHARS: usize = 1024;

/// A failure on its way out of an FFI function: a status plus a message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: charm_kv_status,
    message: Message,
}

/// The message is rendered only when the caller asked for an error object: a missing
/// key with `err` NULL (the common way to probe) costs no formatting or allocation.
#[derive(Debug)]
enum Message {
    Text(String),
    Error(crate::Error),
}

impl Failure {
    pub(crate) fn new(status: charm_kv_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: Message::Text(message.into()),
        }
    }

    /// An `INVALID_ARGUMENT` failure, worded like the crate's own.
    pub(crate) fn invalid(message: impl std::fmt::Display) -> Self {
        Failure::from(crate::Error::invalid(message.to_string()))
    }

    /// The C object for this failure.
    pub(crate) fn into_raw(self) -> *mut charm_kv_error {
        let text = match self.message {
            Message::Text(text) => text,
            Message::Error(err) => err.to_string(),
        };
        // Names are quoted shortened; this bounds whatever else a message quotes (a
        // long path in an I/O error, say).
        let text = match text.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((end, _)) => format!("{}…", &text[..end]),
            None => text,
        };
        // Messages never hold NUL bytes in practice; replace any so nothing is lost.
        let message = CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default();
        new_handle::<charm_kv_error>(ErrorObject {
            status: self.status,
            message,
        })
    }
}

impl From<crate::Error> for Failure {
    fn from(err: crate::Error) -> Self {
        Failure {
            status: charm_kv_status::from_kind(err.kind()),
            message: Message::Error(err),
        }
    }
}

/// The status of `err`: never `CHARM_KV_STATUS_OK` for an error a call returned.
/// Returns `CHARM_KV_STATUS_OK` when `err` is NULL (no error).
///
/// Thread safety: any thread, concurrently with other readers of `err`.
///
/// # Safety
/// `err` is NULL or an error object not yet freed.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_error_status(err: *const charm_kv_error) -> charm_kv_status {
    ffi_boundary_infallible!(charm_kv_status::Panic, {
        // SAFETY: the caller guarantees `err` is NULL or a live error object.
        match unsafe { handle_ref(err, "err") } {
            Ok(object) => object.status,
            Err(_) => charm_kv_status::Ok,
        }
    })
}

/// The message of `err`, as NUL-terminated UTF-8 (for example
/// `database name "../x" contains a path separator`). Returns a static empty string
/// when `err` is NULL.
///
/// Ownership: borrowed from `err`; valid until `charm_kv_error_free(err)`. Do not free
/// it. Thread safety: any thread, concurrently with other readers of `err`.
///
/// # Safety
/// `err` is NULL or an error object not yet freed.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_error_message(err: *const charm_kv_error) -> *const c_char {
    ffi_boundary_infallible!(c"".as_ptr(), {
        // SAFETY: the caller guarantees `err` is NULL or a live error object.
        match unsafe { handle_ref(err, "err") } {
            Ok(object) => object.message.as_ptr(),
            Err(_) => c"".as_ptr(),
        }
    })
}

/// Frees an error object. NULL is a no-op.
///
/// # Safety
/// `err` is NULL or an error object not yet freed, and no other thread uses it.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_error_free(err: *mut charm_kv_error) {
    ffi_boundary_infallible!((), {
        // SAFETY: the caller guarantees `err` is NULL or a live error object it owns.
        unsafe { handle_free(err) }
    })
}
