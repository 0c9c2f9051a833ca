//! The library version, for checking that the header matches the library.

use std::ffi::{c_char, CStr};

/// This crate's version as a C string.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the crate version contains a NUL byte"),
    };

/// The version of the charm-kv library actually loaded, such as "0.2.0": compare it
/// with `CHARM_KV_VERSION` (the header's) to detect a header/library mismatch. Until
/// 1.0, only the same MAJOR.MINOR is compatible.
///
/// Ownership: static; never free it. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn charm_kv_version() -> *const c_char {
    ffi_boundary_infallible!(VERSION.as_ptr(), { VERSION.as_ptr() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_cargo_version() {
        // SAFETY: charm_kv_version returns a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(super::charm_kv_version()) };
        assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
