//! Owned buffers handed to C: one byte string, a list of byte strings, a list of
//! C strings. Each is a plain struct the caller reads directly and releases with its
//! `_free` function, which also wipes the bytes (values and keys are plaintext).

use std::ffi::{c_char, CString};
use std::ptr;

use zeroize::Zeroize;

use super::error::Failure;

/// A byte string owned by the caller, allocated by charm-kv (for example a value from
/// `charm_kv_store_get`).
///
/// `data` is NULL exactly when `len` is 0. Release it with `charm_kv_bytes_free`,
/// never with `free()`, and do not change `data` or `len` before that.
#[repr(C)]
#[derive(Debug)]
pub struct charm_kv_bytes {
    /// The bytes (NULL when `len` is 0).
    pub data: *mut u8,
    /// Number of bytes.
    pub len: usize,
}

/// Bytes borrowed for the length of one call: an input the caller owns (a key and a
/// value for `charm_kv_store_set`), or an output pointing into a charm-kv object (a
/// pair from `charm_kv_iter_next`, valid until the next call on that object).
///
/// `len` 0 is the empty string, whatever `data` is (NULL included); NULL `data` with a
/// non-zero `len` is INVALID_ARGUMENT. Lengths are checked against the limits before a
/// byte is read.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct charm_kv_slice {
    /// The first byte (may be NULL when `len` is 0).
    pub data: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl charm_kv_slice {
    /// The empty slice (NULL, 0).
    pub(crate) const EMPTY: charm_kv_slice = charm_kv_slice {
        data: ptr::null(),
        len: 0,
    };

    /// A slice borrowing `bytes`: `{NULL, 0}` when empty.
    pub(crate) fn borrowing(bytes: &[u8]) -> Self {
        if bytes.is_empty() {
            Self::EMPTY
        } else {
            charm_kv_slice {
                data: bytes.as_ptr(),
                len: bytes.len(),
            }
        }
    }
}

/// A caller's buffer for `charm_kv_store_get_into`, and where the value landed.
///
/// The caller sets `data` and `cap` (once: the struct can be reused call after call);
/// the call sets `len`, and `large` when the value is longer than `cap`.
#[repr(C)]
#[derive(Debug)]
pub struct charm_kv_value_buf {
    /// The caller's buffer (may be NULL when `cap` is 0).
    pub data: *mut u8,
    /// Its capacity in bytes.
    pub cap: usize,
    /// Out: the value's length.
    pub len: usize,
    /// Out: the value, owned by the caller, when it did not fit in `data`; otherwise
    /// empty (NULL, 0).
    pub large: charm_kv_bytes,
}

/// A list of byte strings owned by the caller (for example the keys from
/// `charm_kv_store_keys`). `items` is NULL exactly when `len` is 0.
///
/// Release it with `charm_kv_bytes_list_free`, which frees every item too; never free
/// an item on its own (the items share one buffer).
#[repr(C)]
#[derive(Debug)]
pub struct charm_kv_bytes_list {
    /// The items.
    pub items: *mut charm_kv_bytes,
    /// Number of items.
    pub len: usize,
}

/// A list of NUL-terminated UTF-8 strings owned by the caller (for example the names
/// from `charm_kv_database_list`). `items` is NULL exactly when `len` is 0.
///
/// Release it with `charm_kv_string_list_free`, which frees every string too.
#[repr(C)]
#[derive(Debug)]
pub struct charm_kv_string_list {
    /// The strings.
    pub items: *mut *mut c_char,
    /// Number of strings.
    pub len: usize,
}

impl charm_kv_bytes {
    /// An empty value (NULL, 0).
    pub(crate) const EMPTY: charm_kv_bytes = charm_kv_bytes {
        data: ptr::null_mut(),
        len: 0,
    };

    /// Hands `bytes` to C.
    pub(crate) fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.is_empty() {
            return Self::EMPTY;
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        charm_kv_bytes {
            data: Box::into_raw(boxed).cast::<u8>(),
            len,
        }
    }

    /// Wipes and frees the bytes, leaving `self` empty.
    ///
    /// # Safety
    /// `self` is empty or was made by [`charm_kv_bytes::from_vec`] and not freed since.
    unsafe fn release(&mut self) {
        if !self.data.is_null() && self.len != 0 {
            let slice = ptr::slice_from_raw_parts_mut(self.data, self.len);
            // SAFETY: by the caller's guarantee this is the Box<[u8]> of `from_vec`.
            let mut boxed = unsafe { Box::from_raw(slice) };
            boxed.zeroize();
        }
        *self = Self::EMPTY;
    }
}

impl charm_kv_bytes_list {
    /// An empty list (NULL, 0).
    pub(crate) const EMPTY: charm_kv_bytes_list = charm_kv_bytes_list {
        items: ptr::null_mut(),
        len: 0,
    };

    /// Hands copies of `items` to C in two allocations: one buffer holding every
    /// item's bytes back to back, and the item array, preceded by a hidden header item
    /// that describes the buffer (`items[-1]`), so the free needs nothing else. One
    /// allocation per item made listing through the C ABI 12% slower than in Rust.
    /// Any order of borrowed items will do (a reversed slice is not copied first).
    pub(crate) fn copied_from<'a, I>(items: I) -> Self
    where
        I: IntoIterator<Item = &'a Vec<u8>>,
        I::IntoIter: Clone + ExactSizeIterator,
    {
        let items = items.into_iter();
        let count = items.len();
        if count == 0 {
            return Self::EMPTY;
        }
        let total = items.clone().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(total);
        for item in items.clone() {
            bytes.extend_from_slice(item);
        }
        let bytes: *mut [u8] = Box::into_raw(bytes.into_boxed_slice());
        let base = bytes.cast::<u8>();
        let mut array = Vec::with_capacity(count + 1);
        array.push(charm_kv_bytes {
            data: base,
            len: total,
        });
        let mut offset = 0;
        for item in items {
            let data = if item.is_empty() {
                ptr::null_mut()
            } else {
                base.wrapping_add(offset)
            };
            array.push(charm_kv_bytes {
                data,
                len: item.len(),
            });
            offset += item.len();
        }
        let array: *mut [charm_kv_bytes] = Box::into_raw(array.into_boxed_slice());
        charm_kv_bytes_list {
            items: array.cast::<charm_kv_bytes>().wrapping_add(1),
            len: count,
        }
    }

    /// Wipes and frees what [`charm_kv_bytes_list::copied_from`] allocated, leaving
    /// `self` empty.
    ///
    /// # Safety
    /// `self` is empty or was made by `copied_from` and not freed since.
    unsafe fn release(&mut self) {
        if !self.items.is_null() && self.len != 0 {
            // SAFETY: `copied_from` allocated `len + 1` items starting one before
            // `items`; the first describes the bytes buffer, a Box<[u8]> it leaked.
            unsafe {
                let array = Box::from_raw(ptr::slice_from_raw_parts_mut(
                    self.items.sub(1),
                    self.len + 1,
                ));
                let header = &array[0];
                let mut bytes =
                    Box::from_raw(ptr::slice_from_raw_parts_mut(header.data, header.len));
                bytes.zeroize();
            }
        }
        *self = Self::EMPTY;
    }
}

impl charm_kv_string_list {
    /// An empty list (NULL, 0).
    pub(crate) const EMPTY: charm_kv_string_list = charm_kv_string_list {
        items: ptr::null_mut(),
        len: 0,
    };

    /// Hands `items` to C; fails if one holds a NUL byte.
    pub(crate) fn from_strings(items: Vec<String>) -> Result<Self, Failure> {
        if items.is_empty() {
            return Ok(Self::EMPTY);
        }
        let strings = items
            .into_iter()
            .map(CString::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                Failure::new(
                    super::charm_kv_status::Internal,
                    "a name contains a NUL byte",
                )
            })?;
        let boxed: Box<[*mut c_char]> = strings.into_iter().map(CString::into_raw).collect();
        let len = boxed.len();
        Ok(charm_kv_string_list {
            items: Box::into_raw(boxed).cast::<*mut c_char>(),
            len,
        })
    }
}

/// Frees the bytes of `bytes` (after overwriting them with zeros) and sets it to
/// `{NULL, 0}`, so freeing twice is harmless. NULL, or an empty value, is a no-op.
///
/// # Safety
/// `bytes` is NULL or points to a `charm_kv_bytes` that charm-kv filled (or that is
/// `{NULL, 0}`), unchanged since, and not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_bytes_free(bytes: *mut charm_kv_bytes) {
    ffi_boundary_infallible!((), {
        if bytes.is_null() {
            return;
        }
        // SAFETY: non-NULL and, by the caller's guarantee, a value charm-kv filled.
        unsafe { (*bytes).release() }
    })
}

/// Frees every item of `list` (wiping the bytes first) and the list itself, and sets it
/// to `{NULL, 0}`, so freeing twice is harmless. NULL is a no-op.
///
/// # Safety
/// `list` is NULL or points to a `charm_kv_bytes_list` that charm-kv filled (or that is
/// `{NULL, 0}`), unchanged since, and not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_bytes_list_free(list: *mut charm_kv_bytes_list) {
    ffi_boundary_infallible!((), {
        if list.is_null() {
            return;
        }
        // SAFETY: non-NULL and, by the caller's guarantee, a list charm-kv filled.
        unsafe { (*list).release() }
    })
}

/// Frees every string of `list` and the list itself, and sets it to `{NULL, 0}`, so
/// freeing twice is harmless. NULL is a no-op.
///
/// # Safety
/// `list` is NULL or points to a `charm_kv_string_list` that charm-kv filled (or that
/// is `{NULL, 0}`), unchanged since, and not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_string_list_free(list: *mut charm_kv_string_list) {
    ffi_boundary_infallible!((), {
        if list.is_null() {
            return;
        }
        // SAFETY: non-NULL and, by the caller's guarantee, a list charm-kv filled.
        let list = unsafe { &mut *list };
        if !list.items.is_null() && list.len != 0 {
            let slice = ptr::slice_from_raw_parts_mut(list.items, list.len);
            // SAFETY: the Box<[*mut c_char]> of `from_strings`.
            let items = unsafe { Box::from_raw(slice) };
            for &item in items.iter() {
                // SAFETY: each item came from CString::into_raw in `from_strings`.
                drop(unsafe { CString::from_raw(item) });
            }
        }
        *list = charm_kv_string_list::EMPTY;
    })
}
