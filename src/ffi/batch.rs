//! `charm_kv_batch`: many writes committed atomically.

use super::bytes::{charm_kv_bytes, charm_kv_slice};
use super::error::{charm_kv_error, Failure};
use super::ptr::{
    handle_free, handle_mut, handle_ref, handle_take, key_in, new_handle, out, value_in, Handle,
};
use super::status::charm_kv_status;
use super::store::charm_kv_store;
use crate::{Batch, Error, Kv};

/// A write batch: sets and deletes recorded in memory and written atomically (all or
/// nothing) by `charm_kv_batch_commit`. Nothing is locked while it is open, so other
/// writers are never blocked by it.
///
/// Made by `charm_kv_batch_begin`; ended by `charm_kv_batch_commit`,
/// `charm_kv_batch_rollback` or `charm_kv_batch_free`, each of which consumes it.
/// Once its store is closed, every call on it returns CLOSED (it must still be freed).
///
/// Thread safety: not thread-safe. Use a batch from one thread at a time (moving it
/// between threads is fine). Other threads may use the store meanwhile.
pub struct charm_kv_batch {
    _private: [u8; 0],
}

/// What a `charm_kv_batch` points to.
pub(crate) struct BatchState {
    kv: Kv,
    batch: Batch,
}

impl BatchState {
    /// Fails with CLOSED once the store is closed.
    fn check_open(&self) -> Result<(), Failure> {
        if self.kv.is_closed() {
            return Err(Error::Closed.into());
        }
        Ok(())
    }

    fn open(&mut self) -> Result<&mut Batch, Failure> {
        self.check_open()?;
        Ok(&mut self.batch)
    }
}

// SAFETY: `charm_kv_batch` pointers are only made by `new_handle` from a `BatchState`.
unsafe impl Handle for charm_kv_batch {
    type Inner = BatchState;
}

/// Starts a write batch on `store`.
///
/// On success the caller owns `*out_batch` and ends it with `charm_kv_batch_commit`,
/// `charm_kv_batch_rollback` or `charm_kv_batch_free`. Returns OK, INVALID_ARGUMENT
/// (`store`/`out_batch` NULL), CLOSED or PANIC.
///
/// # Safety
/// `store` is NULL or a live store handle; `out_batch` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_begin(
    store: *const charm_kv_store,
    out_batch: *mut *mut charm_kv_batch,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, slot) = unsafe { (handle_ref(store, "store")?, out(out_batch, "out_batch")?) };
        if kv.is_closed() {
            return Err(Error::Closed.into());
        }
        slot.write(new_handle(BatchState {
            kv: kv.clone(),
            batch: kv.batch(),
        }));
        Ok(())
    })
}

/// Records `key = value` in the batch (both copied; either may be empty). A later
/// set or delete of the same key in the batch replaces this one.
///
/// Returns OK, INVALID_ARGUMENT (`batch` NULL, NULL data with a non-zero length, a key
/// over 65000 bytes or a value over 999999943 bytes: checked before a byte is read),
/// CLOSED or PANIC.
///
/// # Safety
/// `batch` is NULL or a live batch no other thread uses meanwhile; `key.data` and
/// `value.data` are NULL or point to `key.len` and `value.len` readable bytes; `err` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_set(
    batch: *mut charm_kv_batch,
    key: charm_kv_slice,
    value: charm_kv_slice,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (state, key, value) = unsafe {
            (
                handle_mut(batch, "batch")?,
                key_in(key.data, key.len)?,
                value_in(value.data, value.len)?,
            )
        };
        state.open()?.set(key, value);
        Ok(())
    })
}

/// Records `key = value` in the batch, expiring `ttl_ms` milliseconds after this
/// call (see `charm_kv_store_set_with_ttl`). A later set or delete of the same key in
/// the batch replaces this one.
///
/// Returns OK, INVALID_ARGUMENT (as `charm_kv_batch_set`, and `ttl_ms` zero or
/// negative or an expiry after the year 9999: nothing recorded), CLOSED or PANIC.
///
/// # Safety
/// As `charm_kv_batch_set`.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_set_with_ttl(
    batch: *mut charm_kv_batch,
    key: charm_kv_slice,
    value: charm_kv_slice,
    ttl_ms: i64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (state, key, value) = unsafe {
            (
                handle_mut(batch, "batch")?,
                key_in(key.data, key.len)?,
                value_in(value.data, value.len)?,
            )
        };
        state.check_open()?;
        let ttl = crate::store::expiry::ttl_from_ms(ttl_ms)?;
        // Checked now, so the error comes from this call rather than the commit.
        let at = crate::store::expiry::expiry_after(state.kv.now_ms(), ttl)?;
        state.open()?.set_expiring_at_unix_ms(key, value, at as i64);
        Ok(())
    })
}

/// Records `key = value` in the batch, expiring at `expires_at_unix_ms` (unix time in
/// milliseconds, 1 to 253402300799999; a time passed by the commit makes it a delete).
///
/// Returns OK, INVALID_ARGUMENT (as `charm_kv_batch_set`, and a time out of range:
/// nothing recorded), CLOSED or PANIC.
///
/// # Safety
/// As `charm_kv_batch_set`.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_set_expiring_at(
    batch: *mut charm_kv_batch,
    key: charm_kv_slice,
    value: charm_kv_slice,
    expires_at_unix_ms: i64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (state, key, value) = unsafe {
            (
                handle_mut(batch, "batch")?,
                key_in(key.data, key.len)?,
                value_in(value.data, value.len)?,
            )
        };
        state.check_open()?;
        let at = crate::store::expiry::check_expiry(expires_at_unix_ms)?;
        state.open()?.set_expiring_at_unix_ms(key, value, at as i64);
        Ok(())
    })
}

/// Records the deletion of `key` in the batch.
///
/// Returns OK, INVALID_ARGUMENT (`batch` NULL, `key` NULL with `key_len` > 0, a key
/// over 65000 bytes), CLOSED or PANIC.
///
/// # Safety
/// `batch` is NULL or a live batch no other thread uses meanwhile; `key` is NULL or
/// points to `key_len` readable bytes; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_delete(
    batch: *mut charm_kv_batch,
    key: *const u8,
    key_len: usize,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (state, key) = unsafe { (handle_mut(batch, "batch")?, key_in(key, key_len)?) };
        state.open()?.delete(key);
        Ok(())
    })
}

/// Reads `key` as the batch would leave it: its own changes first, then the database
/// as last committed. The value goes to `*out_value` as in `charm_kv_store_get`.
///
/// On success the caller owns `*out_value` and releases it with `charm_kv_bytes_free`.
/// Returns OK, NOT_FOUND (missing, or deleted in the batch), INVALID_ARGUMENT (`batch`
/// or `out_value` NULL, `key` NULL with `key_len` > 0, a key over 65000 bytes), CLOSED,
/// IO, CORRUPT, BUSY or PANIC.
///
/// # Safety
/// `batch` is NULL or a live batch no other thread changes meanwhile; `key` is NULL or
/// points to `key_len` readable bytes; `out_value` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_get(
    batch: *const charm_kv_batch,
    key: *const u8,
    key_len: usize,
    out_value: *mut charm_kv_bytes,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (state, key, slot) = unsafe {
            (
                handle_ref(batch, "batch")?,
                key_in(key, key_len)?,
                out(out_value, "out_value")?,
            )
        };
        state.check_open()?;
        let value = state.batch.get(key)?;
        slot.write(charm_kv_bytes::from_vec(value));
        Ok(())
    })
}

/// Writes every change of the batch atomically (all are durable, or none is) and
/// frees the batch, whatever the outcome: `batch` is invalid after this call.
///
/// Returns OK, INVALID_ARGUMENT (`batch` NULL, a key or value over the limits),
/// CLOSED, READ_ONLY (the store was opened read-only), IO, BUSY or PANIC; on any
/// failure nothing was written.
///
/// # Safety
/// `batch` is NULL or a live batch no other thread uses, now or later; `err` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_commit(
    batch: *mut charm_kv_batch,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `batch` is NULL or a live batch it gives up.
        let state = unsafe { handle_take(batch, "batch") }?;
        state.check_open()?;
        state.batch.commit()?;
        Ok(())
    })
}

/// Discards every change of the batch and frees it: `batch` is invalid after this
/// call. NULL is a no-op. The same as `charm_kv_batch_free`.
///
/// # Safety
/// `batch` is NULL or a live batch no other thread uses, now or later.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_rollback(batch: *mut charm_kv_batch) {
    ffi_boundary_infallible!((), {
        // SAFETY: the caller guarantees `batch` is NULL or a live batch it gives up.
        unsafe { handle_free(batch) }
    })
}

/// Frees a batch, discarding changes not committed. NULL is a no-op. The same as
/// `charm_kv_batch_rollback`, for cleanup paths.
///
/// # Safety
/// `batch` is NULL or a live batch no other thread uses, now or later.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_batch_free(batch: *mut charm_kv_batch) {
    ffi_boundary_infallible!((), {
        // SAFETY: the caller guarantees `batch` is NULL or a live batch it gives up.
        unsafe { handle_free(batch) }
    })
}
