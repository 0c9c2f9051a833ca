//! The panic boundary. Every `extern "C"` function body is one of these macros, so a
//! panic never unwinds into C (the `all_exports_are_guarded` test enforces it):
//!
//! - `ffi_boundary!(err, { ... })` for fallible functions: the body returns
//!   `Result<(), Failure>`; the function returns `CHARM_KV_STATUS_OK` or the failure's
//!   status, and stores the failure in `*err` (when `err` is not NULL). A panic becomes
//!   `CHARM_KV_STATUS_PANIC` with the panic message. A misaligned `err` is refused with
//!   `CHARM_KV_STATUS_INVALID_ARGUMENT` before the body runs (nothing is written), and
//!   while the body runs the output helpers of `ptr` refuse outputs overlapping `err`.
//! - `ffi_boundary_infallible!(default, { ... })` for functions that cannot fail
//!   (frees, accessors): a panic returns `default`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{charm_kv_error, Failure};
use super::ptr::with_call_err;
use super::status::charm_kv_status;

/// Runs a fallible FFI body; see the module docs.
macro_rules! ffi_boundary {
    ($err:expr, $body:block) => {{
        let err: *mut *mut $crate::ffi::charm_kv_error = $err;
        let body = move || -> ::core::result::Result<(), $crate::ffi::error::Failure> { $body };
        // SAFETY: every function using this macro requires (in its `# Safety` section)
        // that `err` is NULL or valid for writing one pointer.
        unsafe { $crate::ffi::panic::run_fallible(err, body) }
    }};
}

/// Runs an infallible FFI body; see the module docs.
macro_rules! ffi_boundary_infallible {
    ($default:expr, $body:block) => {
        $crate::ffi::panic::run_infallible(move || $body, || $default)
    };
}

/// The body of [`ffi_boundary!`].
///
/// # Safety
/// `err` is NULL or valid for writing a `*mut charm_kv_error`.
pub(crate) unsafe fn run_fallible(
    err: *mut *mut charm_kv_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> charm_kv_status {
    // A misaligned `err` cannot be written: refuse the call before touching anything.
    if !err.is_null() && !err.is_aligned() {
        return charm_kv_status::InvalidArgument;
    }
    let failure = match catch_unwind(AssertUnwindSafe(|| with_call_err(err, body))) {
        Ok(Ok(())) => None,
        Ok(Err(failure)) => Some(failure),
        Err(payload) => Some(Failure::new(
            charm_kv_status::Panic,
            format!("panic inside charm-kv: {}", panic_message(&payload)),
        )),
    };
    let status = failure.as_ref().map_or(charm_kv_status::Ok, |f| f.status);
    if !err.is_null() {
        // Building the error object allocates; a panic there (out of memory aborts
        // anyway) must not escape either.
        let object = failure.map_or(std::ptr::null_mut(), |failure| {
            catch_unwind(AssertUnwindSafe(|| failure.into_raw())).unwrap_or(std::ptr::null_mut())
        });
        // SAFETY: `err` is non-NULL and, by the caller's guarantee, writable.
        unsafe { err.write(object) };
    }
    status
}

/// The body of [`ffi_boundary_infallible!`].
pub(crate) fn run_infallible<T>(body: impl FnOnce() -> T, default: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| default())
}

fn panic_message(payload: &Box<dyn Any + Send>) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::{charm_kv_error_free, charm_kv_error_message, charm_kv_error_status};
    use std::ffi::CStr;

    #[test]
    fn a_panic_becomes_the_panic_status_with_its_message() {
        let mut err: *mut charm_kv_error = std::ptr::null_mut();
        let status = ffi_boundary!(&mut err, {
            if err.is_null() {
                panic!("boom {}", 42);
            }
            Ok(())
        });
        assert_eq!(status, charm_kv_status::Panic);
        // SAFETY: `err` was just set to a live error object (or NULL).
        unsafe {
            assert_eq!(charm_kv_error_status(err), charm_kv_status::Panic);
            let message = CStr::from_ptr(charm_kv_error_message(err))
                .to_str()
                .unwrap();
            assert_eq!(message, "panic inside charm-kv: boom 42");
            charm_kv_error_free(err);
        }
        assert_eq!(run_infallible(|| -> i32 { panic!("x") }, || 7), 7);
    }

    #[test]
    fn success_clears_err_and_failures_fill_it() {
        let mut err: *mut charm_kv_error = std::ptr::NonNull::dangling().as_ptr();
        assert_eq!(ffi_boundary!(&mut err, { Ok(()) }), charm_kv_status::Ok);
        assert!(err.is_null());
        let status = ffi_boundary!(&mut err, { Err(Failure::invalid("nul \0 inside")) });
        assert_eq!(status, charm_kv_status::InvalidArgument);
        // SAFETY: `err` was just set to a live error object.
        unsafe {
            let message = CStr::from_ptr(charm_kv_error_message(err))
                .to_str()
                .unwrap();
            assert_eq!(message, "invalid argument: nul \u{FFFD} inside");
            charm_kv_error_free(err);
        }
        let status = ffi_boundary!(std::ptr::null_mut(), { Err(crate::Error::NotFound.into()) });
        assert_eq!(status, charm_kv_status::NotFound);
    }

    /// Every exported function's body must be a panic boundary (rustls-ffi#286): scans
    /// the sources of this module, so a new unguarded function fails the tests.
    #[test]
    fn all_exports_are_guarded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
        let mut checked = 0;
        let mut unguarded = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            // Comment lines out, so documentation may mention anything.
            let source: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .map(|line| format!("{line}\n"))
                .collect();
            let exports = exported_functions(&source);
            let unmangled = source
                .lines()
                .filter(|l| l.trim() == "#[no_mangle]")
                .count();
            assert_eq!(
                exports.len(),
                unmangled,
                "{}: every unmangled item must be an exported fn and vice versa",
                path.display()
            );
            for (name, body) in exports {
                checked += 1;
                if !is_one_boundary_call(&body) {
                    unguarded.push(format!("{}: {name}", path.display()));
                }
            }
        }
        assert!(checked > 40, "found only {checked} exported functions");
        assert!(
            unguarded.is_empty(),
            "not inside a panic boundary: {unguarded:?}"
        );
    }

    /// Whether a function body is exactly one boundary macro call.
    fn is_one_boundary_call(body: &str) -> bool {
        let body = body.trim();
        let Some(args) = ["ffi_boundary!", "ffi_boundary_infallible!"]
            .iter()
            .find_map(|m| body.strip_prefix(m))
        else {
            return false;
        };
        args.starts_with('(') && matching(args, 0, '(', ')') == args.len() - 1
    }

    /// `(name, body)` of every named C-ABI function definition in `source`; the
    /// function-pointer types of callbacks have no name and are skipped.
    fn exported_functions(source: &str) -> Vec<(String, String)> {
        let marker = concat!("extern ", '"', "C", '"', " fn");
        let mut found = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                continue;
            }
            // The body starts at the first brace after the parameter list closes.
            let params_end = matching(rest, rest.find('(').unwrap(), '(', ')');
            let open = params_end + rest[params_end..].find('{').unwrap();
            let close = matching(rest, open, '{', '}');
            found.push((name, rest[open + 1..close].to_owned()));
            rest = &rest[close..];
        }
        found
    }

    /// Index of the bracket closing the one at `open` (brackets inside string
    /// literals must balance; the FFI sources keep them so).
    fn matching(text: &str, open: usize, left: char, right: char) -> usize {
        let mut depth = 0usize;
        for (i, c) in text[open..].char_indices() {
            if c == left {
                depth += 1;
            } else if c == right {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
        }
        panic!("unbalanced {left}{right}");
    }
}
