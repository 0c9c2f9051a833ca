//! Checked conversions from C pointers to Rust references: the only way FFI functions
//! touch caller memory. Each helper returns an `INVALID_ARGUMENT` failure for NULL (or
//! misaligned) pointers instead of undefined behaviour, for lengths beyond the
//! documented limits before anything is read, and for outputs that overlap the call's
//! `err` out-pointer (writing both would lose one: a leak).

use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::mem::MaybeUninit;

use super::error::{charm_kv_error, Failure};
use crate::store::{MAX_KEY_LEN, MAX_VALUE_LEN};

thread_local! {
    /// The address of the `err` out-pointer of the FFI call running on this thread
    /// (0: none, or NULL). Set by the panic boundary for the length of the call only.
    static CALL_ERR: Cell<usize> = const { Cell::new(0) };
}

/// Runs `body` with `err` recorded as the running call's error out-pointer, so the
/// output helpers can refuse outputs that overlap it; restores the previous one
/// afterwards (a progress callback may make nested calls).
pub(crate) fn with_call_err<T>(err: *mut *mut charm_kv_error, body: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_ERR.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CALL_ERR.with(|c| c.replace(err as usize)));
    body()
}

/// Fails when the `size` bytes at `ptr` overlap the running call's `err` out-pointer.
fn check_not_err(ptr: *const u8, size: usize, what: &str) -> Result<(), Failure> {
    let err = CALL_ERR.with(Cell::get);
    if err == 0 {
        return Ok(());
    }
    let start = ptr as usize;
    let end = start.saturating_add(size.max(1));
    let err_end = err.saturating_add(std::mem::size_of::<*mut charm_kv_error>());
    if start < err_end && err < end {
        return Err(Failure::invalid(format!("{what} overlaps err")));
    }
    Ok(())
}

/// Fails when `len` is over `limit` (checked before the bytes are touched).
fn check_len(len: usize, limit: usize, what: &str) -> Result<(), Failure> {
    if len > limit {
        return Err(Failure::invalid(format!(
            "{what} is {len} bytes; the limit is {limit}"
        )));
    }
    Ok(())
}

/// A key: [`bytes_in`] with the key length checked first (not empty, as in Charm's kv;
/// within the limit), so that a batch refuses the empty key when it is recorded.
///
/// # Safety
/// As [`bytes_in`].
pub(crate) unsafe fn key_in<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Err(Failure::invalid("key cannot be empty"));
    }
    check_len(len, MAX_KEY_LEN, "key")?;
    // SAFETY: forwarded from the caller.
    unsafe { bytes_in(ptr, len, "key") }
}

/// A value: [`bytes_in`] with the value length limit checked first.
///
/// # Safety
/// As [`bytes_in`].
pub(crate) unsafe fn value_in<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    check_len(len, MAX_VALUE_LEN, "value")?;
    // SAFETY: forwarded from the caller.
    unsafe { bytes_in(ptr, len, "value") }
}

/// Marks an opaque C type (`struct x { _private: [u8; 0] }`) whose pointers are always
/// `Box<Self::Inner>` in disguise.
///
/// # Safety
/// Pointers to the implementing type must only ever be created by [`new_handle`] with
/// this `Inner` type, so casting them back is sound.
pub(crate) unsafe trait Handle {
    type Inner;
}

/// Boxes `inner` and returns it as an opaque C handle.
pub(crate) fn new_handle<H: Handle>(inner: H::Inner) -> *mut H {
    Box::into_raw(Box::new(inner)).cast()
}

/// Borrows the object behind a handle.
///
/// # Safety
/// `ptr` is NULL or a handle from [`new_handle`] that is not freed for `'a`, and nothing
/// mutates the object during `'a`.
pub(crate) unsafe fn handle_ref<'a, H: Handle>(
    ptr: *const H,
    what: &str,
) -> Result<&'a H::Inner, Failure> {
    let ptr = ptr.cast::<H::Inner>();
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and by the caller's guarantee a live Box<H::Inner>.
    Ok(unsafe { &*ptr })
}

/// Borrows the object behind a handle mutably.
///
/// # Safety
/// `ptr` is NULL or a handle from [`new_handle`] that is not freed for `'a` and not used
/// by anyone else during `'a`.
pub(crate) unsafe fn handle_mut<'a, H: Handle>(
    ptr: *mut H,
    what: &str,
) -> Result<&'a mut H::Inner, Failure> {
    let ptr = ptr.cast::<H::Inner>();
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and by the caller's guarantee a live, unaliased Box<H::Inner>.
    Ok(unsafe { &mut *ptr })
}

/// Takes ownership of the object behind a handle (the handle is dead afterwards).
///
/// # Safety
/// `ptr` is NULL or a handle from [`new_handle`] that is not freed and not used by anyone
/// else, now or later.
pub(crate) unsafe fn handle_take<H: Handle>(
    ptr: *mut H,
    what: &str,
) -> Result<Box<H::Inner>, Failure> {
    let ptr = ptr.cast::<H::Inner>();
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, made by Box::into_raw in new_handle, and ownership passes to us.
    Ok(unsafe { Box::from_raw(ptr) })
}

/// Frees a handle; NULL is a no-op.
///
/// # Safety
/// As [`handle_take`].
pub(crate) unsafe fn handle_free<H: Handle>(ptr: *mut H) {
    // SAFETY: forwarded from the caller.
    drop(unsafe { handle_take(ptr, "handle") });
}

/// The `len` bytes at `ptr`. A zero length is valid with any pointer (even NULL).
///
/// # Safety
/// When `len > 0` and `ptr` is not NULL, `ptr` points to `len` readable bytes that
/// nobody mutates during `'a`.
pub(crate) unsafe fn bytes_in<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!(
            "{what} length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, len fits isize, and by the caller's guarantee readable.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A caller's buffer of `cap` writable bytes. A zero capacity is valid with any pointer
/// (even NULL).
///
/// # Safety
/// When `cap > 0` and `ptr` is not NULL, `ptr` points to `cap` writable bytes that
/// nobody else reads or writes during `'a`.
pub(crate) unsafe fn buffer_out<'a>(
    ptr: *mut u8,
    cap: usize,
    what: &str,
) -> Result<&'a mut [u8], Failure> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL but its capacity is {cap}"
        )));
    }
    if cap > isize::MAX as usize {
        return Err(Failure::invalid(format!(
            "{what} capacity {cap} is too large"
        )));
    }
    check_not_err(ptr, cap, what)?;
    // SAFETY: non-NULL, cap fits isize, and by the caller's guarantee writable and
    // not aliased.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, cap) })
}

/// A NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that nobody mutates during `'a`.
pub(crate) unsafe fn text_in<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's guarantee.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not valid UTF-8")))
}

/// Like [`text_in`], but NULL means `None`.
///
/// # Safety
/// As [`text_in`].
pub(crate) unsafe fn opt_text_in<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { text_in(ptr, what) }.map(Some)
}

/// An out-pointer, checked for NULL and alignment, to be written (never read) later.
///
/// # Safety
/// `ptr` is NULL or valid for writing a `T` during `'a`.
pub(crate) unsafe fn out<'a, T>(
    ptr: *mut T,
    what: &str,
) -> Result<&'a mut MaybeUninit<T>, Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("{what} is misaligned")));
    }
    check_not_err(ptr.cast(), std::mem::size_of::<T>(), what)?;
    // SAFETY: non-NULL, aligned, writable by the caller's guarantee; MaybeUninit
    // never reads or drops what was there.
    Ok(unsafe { &mut *ptr.cast::<MaybeUninit<T>>() })
}

/// An in-out pointer, checked for NULL and alignment: the caller set some fields, the
/// call sets others.
///
/// # Safety
/// `ptr` is NULL or points to an initialised `T`, readable and writable and used by
/// nobody else during `'a`.
pub(crate) unsafe fn in_out<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: forwarded from the caller; `out` checks NULL and alignment.
    let slot = unsafe { out(ptr, what) }?;
    // SAFETY: the caller guarantees the `T` behind `ptr` is initialised.
    Ok(unsafe { slot.assume_init_mut() })
}

/// Like [`out`], but NULL means "not wanted".
///
/// # Safety
/// As [`out`].
pub(crate) unsafe fn opt_out<'a, T>(
    ptr: *mut T,
    what: &str,
) -> Result<Option<&'a mut MaybeUninit<T>>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { out(ptr, what) }.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_overlapping_err_are_refused_only_during_its_call() {
        let mut slots = [0u64; 4];
        let base = slots.as_mut_ptr();
        let err = base.wrapping_add(1).cast::<*mut charm_kv_error>();
        let at = |i: usize| base.wrapping_add(i).cast::<u8>();
        // Outside a call nothing is recorded.
        assert!(check_not_err(err.cast(), 8, "x").is_ok());
        with_call_err(err, || {
            assert!(check_not_err(at(1), 8, "same").is_err());
            // A 16-byte output starting one slot before err covers it.
            assert!(check_not_err(at(0), 16, "covers").is_err());
            assert!(check_not_err(at(0), 8, "before").is_ok());
            assert!(check_not_err(at(2), 8, "after").is_ok());
            // Nested calls restore the outer one.
            with_call_err(std::ptr::null_mut(), || {
                assert!(check_not_err(at(1), 8, "nested").is_ok());
            });
            assert!(check_not_err(at(1), 8, "restored").is_err());
        });
        assert!(check_not_err(at(1), 8, "after the call").is_ok());
        assert!(check_len(65_001, MAX_KEY_LEN, "key").is_err());
        assert!(check_len(MAX_KEY_LEN, MAX_KEY_LEN, "key").is_ok());
    }
}
