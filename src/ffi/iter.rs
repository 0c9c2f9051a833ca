//! `charm_kv_iter`: ordered iteration over one snapshot.

use zeroize::Zeroizing;

use super::bytes::charm_kv_slice;
use super::error::charm_kv_error;
use super::ptr::{handle_free, handle_mut, handle_ref, new_handle, opt_out, out, Handle};
use super::range::{charm_kv_range, range_in};
use super::status::charm_kv_status;
use super::store::charm_kv_store;
use crate::{Iter, Kv};

/// An iterator over the `(key, value)` pairs of one consistent snapshot of a store,
/// in ascending (or descending) byte order of keys. Writes made after it was created,
/// by anyone, are not seen.
///
/// Made by `charm_kv_iter_new`, advanced by `charm_kv_iter_next`, released by
/// `charm_kv_iter_free`. It keeps the database open until freed, even past
/// `charm_kv_store_free` of its store, but returns CLOSED once the store is closed.
///
/// Thread safety: not thread-safe. Use an iterator from one thread at a time (moving
/// it between threads is fine). Other threads may use the store meanwhile.
pub struct charm_kv_iter {
    _private: [u8; 0],
}

/// What a `charm_kv_iter` points to.
pub(crate) struct IterState {
    kv: Kv,
    iter: Iter,
    /// The pair last returned: the borrowed slices point into it.
    current: Option<Pair>,
}

/// A plaintext pair, wiped when dropped.
struct Pair {
    key: Zeroizing<Vec<u8>>,
    value: Zeroizing<Vec<u8>>,
}

// SAFETY: `charm_kv_iter` pointers are only made by `new_handle` from an `IterState`.
unsafe impl Handle for charm_kv_iter {
    type Inner = IterState;
}

/// Starts an iteration over the keys of `range` in `store` (NULL `range`: every key,
/// ascending; see `charm_kv_range` for prefix, start key and order), without reading
/// values when `with_values` is false (values then come back empty). `range` is read
/// during the call only.
///
/// A stored key that does not decrypt does not fail this call: `charm_kv_iter_next`
/// reports it in turn (see there).
///
/// On success the caller owns `*out_iter` and releases it with `charm_kv_iter_free`.
/// Returns OK, INVALID_ARGUMENT (`store`/`out_iter` NULL, a bad `range`), CLOSED, IO,
/// CORRUPT (a row of the wrong type), BUSY or PANIC.
///
/// # Safety
/// `store` is NULL or a live store handle; `range` is NULL or a readable range (see
/// `charm_kv_range`); `out_iter` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_iter_new(
    store: *const charm_kv_store,
    range: *const charm_kv_range,
    with_values: bool,
    out_iter: *mut *mut charm_kv_iter,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, range, slot) = unsafe {
            (
                handle_ref(store, "store")?,
                range_in(range)?,
                out(out_iter, "out_iter")?,
            )
        };
        let iter = kv.iter_in(&range, with_values)?;
        slot.write(new_handle(IterState {
            kv: kv.clone(),
            iter,
            current: None,
        }));
        Ok(())
    })
}

/// Advances the iterator. When a pair is left, sets `*out_has_item` to true and points
/// `*out_key` and `*out_value` at it; at the end, sets `*out_has_item` to false and both
/// slices to `{NULL, 0}`.
///
/// The slices are BORROWED from the iterator: valid until the next call on it or
/// `charm_kv_iter_free`; copy what you keep. A slice of length 0 may be NULL.
/// `out_value` may be NULL when values are not wanted.
///
/// Returns OK, INVALID_ARGUMENT (`iter`, `out_key` or `out_has_item` NULL), CLOSED (the
/// store was closed), IO, CORRUPT, BUSY or PANIC. After an error other than CLOSED the
/// failing pair is skipped and the next call continues with the one after it.
///
/// Unreadable rows, one error each: a value that fails authentication is CORRUPT in
/// its place in the order. A stored key that the database's keys do not decrypt (a row
/// written with an encrypt key not given to this open, or altered) has no place in the
/// order: every readable pair comes first, then one CORRUPT per such row, its message
/// naming the row by the first bytes of its stored (encrypted) key; then the end.
///
/// # Safety
/// `iter` is NULL or a live iterator no other thread uses meanwhile; every out-pointer
/// is NULL or writable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_iter_next(
    iter: *mut charm_kv_iter,
    out_key: *mut charm_kv_slice,
    out_value: *mut charm_kv_slice,
    out_has_item: *mut bool,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (state, key_slot, value_slot, has_slot) = unsafe {
            (
                handle_mut(iter, "iter")?,
                out(out_key, "out_key")?,
                opt_out(out_value, "out_value")?,
                out(out_has_item, "out_has_item")?,
            )
        };
        if state.kv.is_closed() {
            return Err(crate::Error::Closed.into());
        }
        state.current = None;
        let (key, value, has_item) = match state.iter.next() {
            None => (charm_kv_slice::EMPTY, charm_kv_slice::EMPTY, false),
            Some(pair) => {
                let (key, value) = pair?;
                let current = state.current.insert(Pair {
                    key: Zeroizing::new(key),
                    value: Zeroizing::new(value),
                });
                (
                    charm_kv_slice::borrowing(&current.key),
                    charm_kv_slice::borrowing(&current.value),
                    true,
                )
            }
        };
        key_slot.write(key);
        if let Some(value_slot) = value_slot {
            value_slot.write(value);
        }
        has_slot.write(has_item);
        Ok(())
    })
}

/// Releases an iterator and the snapshot it holds. NULL is a no-op.
///
/// # Safety
/// `iter` is NULL or a live iterator, and no call on it is running or follows.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_iter_free(iter: *mut charm_kv_iter) {
    ffi_boundary_infallible!((), {
        // SAFETY: the caller guarantees `iter` is NULL or a live iterator it gives up.
        unsafe { handle_free(iter) }
    })
}
