//! `charm_kv_range`: which keys a listing (`charm_kv_store_keys_in`) or an iteration
//! (`charm_kv_iter_new`) covers.

use super::bytes::charm_kv_slice;
use super::error::Failure;
use super::ptr::bytes_in;
use crate::store::MAX_KEY_LEN;
use crate::KeyRange;

/// The keys of a listing or an iteration: those that start with `prefix`, from
/// `start` on, in ascending (or, with `reverse`, descending) byte order. Passed by
/// const pointer and only read during the call; a NULL range is every key, ascending
/// (the same as a zeroed struct).
///
/// As Badger's `IteratorOptions.Prefix` and `Iterator.Seek`: forward, the first key
/// is `start` if present, else the next larger one; in reverse, the first key is the
/// largest one not above `start`. A prefix or start key of length 0 means none (no key
/// is empty). Each slice follows the rules of `charm_kv_slice`; a prefix or start key
/// longer than a key may be (65000 bytes) is INVALID_ARGUMENT.
///
/// The key list is kept sorted in memory while nothing is written, so a prefix costs
/// two binary searches plus the keys it returns, however many keys the store holds.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct charm_kv_range {
    /// Only keys that start with these bytes (length 0: every key).
    pub prefix: charm_kv_slice,
    /// Start at this key, or the next one in the order (length 0: at the first key).
    pub start: charm_kv_slice,
    /// Descending byte order of keys.
    pub reverse: bool,
}

/// The range behind `ptr` (NULL: every key, ascending), its slices checked and copied.
///
/// # Safety
/// `ptr` is NULL or points to a `charm_kv_range` whose slices are valid as documented
/// on `charm_kv_slice`, for the length of the call.
pub(crate) unsafe fn range_in(ptr: *const charm_kv_range) -> Result<KeyRange, Failure> {
    if ptr.is_null() {
        return Ok(KeyRange::all());
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid("range is misaligned"));
    }
    // SAFETY: non-NULL, aligned, and readable by the caller's guarantee; the struct is
    // plain data, copied out.
    let range = unsafe { ptr.read() };
    for (slice, what) in [(range.prefix, "range prefix"), (range.start, "range start")] {
        if slice.len > MAX_KEY_LEN {
            return Err(Failure::invalid(format!(
                "{what} is {} bytes; the limit is {MAX_KEY_LEN}",
                slice.len
            )));
        }
    }
    // SAFETY: the slices are valid by the caller's guarantee; bytes_in checks NULL.
    let (prefix, start) = unsafe {
        (
            bytes_in(range.prefix.data, range.prefix.len, "range prefix")?,
            bytes_in(range.start.data, range.start.len, "range start")?,
        )
    };
    let mut selected = KeyRange::all().prefix(prefix);
    if !start.is_empty() {
        selected = selected.start(start);
    }
    if range.reverse {
        selected = selected.reverse();
    }
    Ok(selected)
}
