//! The account and its devices: the account id, its SSH keys, unlinking, sharing the
//! keys (`sync-keys`), key backups and imports, and linking another device
//! (`crate::devices`, `crate::account`).

use std::borrow::Cow;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::bytes::{charm_kv_bytes, charm_kv_string_list};
use super::error::{charm_kv_error, Failure};
use super::options::charm_kv_options;
use super::ptr::{bytes_in, handle_free, handle_ref, new_handle, out, text_in, Handle};
use super::status::charm_kv_status;
use crate::account::backup::{self, MAX_BACKUP};
use crate::account::{Account, LinkOptions, LinkOutcome, LinkPrompt, LinkRequest};
use crate::Options;

/// A cancel flag for a link: made by `charm_kv_cancel_new`, set (from any thread) by
/// `charm_kv_cancel_set`, released by `charm_kv_cancel_free`.
pub struct charm_kv_cancel {
    _private: [u8; 0],
}

// SAFETY: `charm_kv_cancel` pointers are only made by `new_handle` from this type.
unsafe impl Handle for charm_kv_cancel {
    type Inner = Arc<AtomicBool>;
}

/// How a link ended, in `*out_outcome`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum charm_kv_link_outcome {
    /// The other device's key joined the account.
    Linked = 0,
    /// The key was already in the account: nothing changed.
    AlreadyLinked = 1,
    /// (Requester.) This device's former account was merged into the one it joined;
    /// its local databases go to the account at the next sync.
    Merged = 2,
}

/// Called once with the code to type on the other device (NUL-terminated, valid for
/// the call only).
pub type charm_kv_link_code_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, code: *const c_char)>;

/// Called once when a device asks to join, with its SSH public key and address
/// (NUL-terminated, valid for the call only): return true to let it in.
pub type charm_kv_link_confirm_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        public_key: *const c_char,
        address: *const c_char,
    ) -> bool,
>;

/// Options from the handle, or from the environment when NULL.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile.
unsafe fn options_or_env<'a>(
    options: *const charm_kv_options,
) -> Result<Cow<'a, Options>, Failure> {
    if options.is_null() {
        return Ok(Cow::Owned(Options::from_env()?));
    }
    // SAFETY: forwarded from the caller.
    unsafe { handle_ref(options, "options") }.map(Cow::Borrowed)
}

/// Creates a cancel flag (never NULL).
#[no_mangle]
pub extern "C" fn charm_kv_cancel_new() -> *mut charm_kv_cancel {
    ffi_boundary_infallible!(std::ptr::null_mut(), {
        new_handle::<charm_kv_cancel>(Arc::new(AtomicBool::new(false)))
    })
}

/// Sets the flag: a link waiting with it ends with LINK ("cancelled") within 100 ms.
/// NULL is a no-op.
///
/// # Safety
/// `cancel` is NULL or a live flag from `charm_kv_cancel_new`.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_cancel_set(cancel: *const charm_kv_cancel) {
    ffi_boundary_infallible!((), {
        // SAFETY: NULL or live, by the caller's guarantee.
        if let Ok(flag) = unsafe { handle_ref(cancel, "cancel") } {
            flag.store(true, Ordering::SeqCst);
        }
    })
}

/// Frees a cancel flag; NULL is a no-op. Not while a link uses it.
///
/// # Safety
/// `cancel` is NULL or a live flag from `charm_kv_cancel_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_cancel_free(cancel: *mut charm_kv_cancel) {
    ffi_boundary_infallible!((), {
        // SAFETY: forwarded from the caller.
        unsafe { handle_free(cancel) }
    })
}

/// The account's id (`charm id`) into `*out_id` (UTF-8, not NUL-terminated; free with
/// `charm_kv_bytes_free`). The first call for a new SSH key creates the account.
/// Returns OK, INVALID_ARGUMENT, NOT_CONFIGURED (local mode), KEYS, AUTH, NETWORK,
/// SERVER, IO or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `out_id` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_account_id(
    options: *const charm_kv_options,
    out_id: *mut charm_kv_bytes,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, slot) = unsafe { (options_or_env(options)?, out(out_id, "out_id")?) };
        server_configured(&options)?;
        let id = Account::open(options.config())?.account_id()?;
        slot.write(charm_kv_bytes::from_vec(id.into_bytes()));
        Ok(())
    })
}

/// The account's SSH public keys (`<type> <base64>`, oldest first) into `*out_keys`
/// (free with `charm_kv_string_list_free`), and the index of this device's key into
/// `*out_this_device` (SIZE_MAX if the server does not list it). Returns as
/// `charm_kv_account_id`.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `out_keys`, `out_this_device` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_account_keys(
    options: *const charm_kv_options,
    out_keys: *mut charm_kv_string_list,
    out_this_device: *mut usize,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, keys_slot, index_slot) = unsafe {
            (
                options_or_env(options)?,
                out(out_keys, "out_keys")?,
                out(out_this_device, "out_this_device")?,
            )
        };
        server_configured(&options)?;
        let keys = Account::open(options.config())?.linked_keys()?;
        let this = keys
            .iter()
            .position(|k| k.this_device)
            .unwrap_or(usize::MAX);
        let list = charm_kv_string_list::from_strings(keys.into_iter().map(|k| k.key).collect())?;
        keys_slot.write(list);
        index_slot.write(this);
        Ok(())
    })
}

/// Removes an SSH key (its text, or its `SHA256:` fingerprint) from the account. This
/// device's own key is refused (INVALID_ARGUMENT), as is a key the account lacks.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `key` is NULL or NUL-terminated; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_account_unlink(
    options: *const charm_kv_options,
    key: *const c_char,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, key) = unsafe { (options_or_env(options)?, text_in(key, "key")?) };
        server_configured(&options)?;
        Account::open(options.config())?.unlink(key)?;
        Ok(())
    })
}

/// `sync-keys`: wraps every encrypt key this device holds for every SSH key of the
/// account (what a link does afterwards). Returns as `charm_kv_account_id`.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_account_sync_keys(
    options: *const charm_kv_options,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let options = unsafe { options_or_env(options)? };
        server_configured(&options)?;
        Account::open(options.config())?.share_keys()?;
        Ok(())
    })
}

/// A backup of this device's SSH identity into `*out_backup` (free with
/// `charm_kv_bytes_free`): with `private_key_only` false, the tar archive of
/// `charm backup-keys`; with true, the OpenSSH private key alone. Works in local mode
/// too. Returns OK, INVALID_ARGUMENT (no identity to back up), IO or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `out_backup` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_account_backup_keys(
    options: *const charm_kv_options,
    private_key_only: bool,
    out_backup: *mut charm_kv_bytes,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, slot) = unsafe { (options_or_env(options)?, out(out_backup, "out_backup")?) };
        let bytes = if private_key_only {
            backup::backup_private_key(options.config())?
        } else {
            let mut tar = Vec::new();
            backup::backup_keys(options.config(), &mut tar)?;
            tar
        };
        slot.write(charm_kv_bytes::from_vec(bytes));
        Ok(())
    })
}

/// Imports an identity backup (`len` bytes at `data`: a `backup-keys` tar archive or a
/// private key). Another identity already in the data path is replaced only with
/// `force` (else INVALID_ARGUMENT, nothing written); the local databases stay
/// readable and, with a replaced identity, go to its account at their next sync.
/// Returns OK, INVALID_ARGUMENT, KEYS, IO or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `data` points to `len` readable bytes (any pointer when `len` is 0); `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_account_import_keys(
    options: *const charm_kv_options,
    data: *const u8,
    len: usize,
    force: bool,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        if len as u64 > MAX_BACKUP {
            return Err(Failure::invalid(format!(
                "the backup is larger than {MAX_BACKUP} bytes"
            )));
        }
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, bytes) = unsafe { (options_or_env(options)?, bytes_in(data, len, "data")?) };
        crate::devices::import_keys(&options, bytes, force)?;
        Ok(())
    })
}

/// Shows a code for another device to join this device's account: `on_code` gets it,
/// then `on_confirm` the joining device's key and address (both are called on this
/// thread, during the call; `user_data` is passed through). After a link the keys are
/// shared with the new device. `deadline_ms` bounds the whole wait (0: 150 s);
/// `cancel` (NULL: none) stops it. `*out_outcome` gets a `charm_kv_link_outcome`.
///
/// Returns OK, LINK (denied, timed out, cancelled, or a server error; nothing
/// changed), INVALID_ARGUMENT (a callback NULL), NOT_CONFIGURED, KEYS, AUTH, NETWORK,
/// SERVER, IO or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// the callbacks are safe to call with `user_data`; `cancel` is NULL or a live flag;
/// `out_outcome` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_link_generate(
    options: *const charm_kv_options,
    on_code: charm_kv_link_code_fn,
    on_confirm: charm_kv_link_confirm_fn,
    user_data: *mut c_void,
    deadline_ms: u64,
    cancel: *const charm_kv_cancel,
    out_outcome: *mut u32,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, slot, link) = unsafe {
            (
                options_or_env(options)?,
                out(out_outcome, "out_outcome")?,
                link_options(deadline_ms, cancel)?,
            )
        };
        let (Some(on_code), Some(on_confirm)) = (on_code, on_confirm) else {
            return Err(Failure::invalid("on_code and on_confirm must not be NULL"));
        };
        server_configured(&options)?;
        let mut prompt = CPrompt {
            on_code,
            on_confirm,
            user_data,
        };
        let report = crate::devices::link_generate(&options, &mut prompt, &link)?;
        slot.write(outcome_code(&report.outcome) as u32);
        Ok(())
    })
}

/// Joins the account that showed `code` (NUL-terminated). `deadline_ms` and `cancel`
/// as for `charm_kv_link_generate`; `*out_outcome` gets a `charm_kv_link_outcome`.
/// Returns OK, LINK (invalid code, denied, timed out, cancelled or a server error;
/// nothing changed), INVALID_ARGUMENT, NOT_CONFIGURED, KEYS (linked, but the account's
/// keys did not arrive within 30 s: run `charm_kv_account_sync_keys` later), AUTH,
/// NETWORK, SERVER, IO or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `code` is NULL or NUL-terminated; `cancel` is NULL or a live flag; `out_outcome` and
/// `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_link_request(
    options: *const charm_kv_options,
    code: *const c_char,
    deadline_ms: u64,
    cancel: *const charm_kv_cancel,
    out_outcome: *mut u32,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, code, slot, link) = unsafe {
            (
                options_or_env(options)?,
                text_in(code, "code")?,
                out(out_outcome, "out_outcome")?,
                link_options(deadline_ms, cancel)?,
            )
        };
        server_configured(&options)?;
        let report = crate::devices::link_request(&options, code, &link)?;
        slot.write(outcome_code(&report.outcome) as u32);
        Ok(())
    })
}

fn server_configured(options: &Options) -> Result<(), Failure> {
    options
        .config()
        .server()
        .map(drop)
        .ok_or_else(|| crate::Error::NotConfigured.into())
}

/// # Safety
/// `cancel` is NULL or a live flag from `charm_kv_cancel_new`.
unsafe fn link_options(
    deadline_ms: u64,
    cancel: *const charm_kv_cancel,
) -> Result<LinkOptions, Failure> {
    let mut link = LinkOptions::default();
    if deadline_ms > 0 {
        link.deadline = Duration::from_millis(deadline_ms);
    }
    if !cancel.is_null() {
        // SAFETY: forwarded from the caller.
        link.cancel = Some(unsafe { handle_ref(cancel, "cancel") }?.clone());
    }
    Ok(link)
}

fn outcome_code(outcome: &LinkOutcome) -> charm_kv_link_outcome {
    match outcome {
        LinkOutcome::Linked => charm_kv_link_outcome::Linked,
        LinkOutcome::AlreadyLinked => charm_kv_link_outcome::AlreadyLinked,
        LinkOutcome::Merged { .. } => charm_kv_link_outcome::Merged,
    }
}

/// The C callbacks as a [`LinkPrompt`]. They run on the calling thread (the link's
/// SSH session is driven by it), inside the call.
struct CPrompt {
    on_code: unsafe extern "C" fn(*mut c_void, *const c_char),
    on_confirm: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> bool,
    user_data: *mut c_void,
}

// SAFETY: the prompt never leaves the calling thread: `LinkPrompt` asks for `Send`
// because the SSH runtime could hand the session to a helper thread, which it does
// only for callers already inside a tokio runtime, where the caller waits for it; the
// C caller's `user_data` is used during its own call only.
unsafe impl Send for CPrompt {}

impl LinkPrompt for CPrompt {
    fn code(&mut self, code: &str) {
        let code = CString::new(code).unwrap_or_default();
        // SAFETY: the caller of charm_kv_link_generate vouched for the callback and
        // its user_data; the string lives through the call.
        unsafe { (self.on_code)(self.user_data, code.as_ptr()) }
    }

    fn confirm(&mut self, request: &LinkRequest) -> bool {
        let key = CString::new(request.public_key.as_str()).unwrap_or_default();
        let address = CString::new(request.address.as_str()).unwrap_or_default();
        // SAFETY: as in `code`.
        unsafe { (self.on_confirm)(self.user_data, key.as_ptr(), address.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::{charm_kv_bytes_free, charm_kv_error_free};

    #[test]
    fn backup_and_import_round_trip_through_the_c_abi() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let options_in = |dir: &std::path::Path| {
            let mut options = Options::new();
            options.data_dir(dir);
            new_handle::<charm_kv_options>(options)
        };
        let (oa, ob) = (options_in(a.path()), options_in(b.path()));
        crate::account::SshIdentity::load_or_generate(
            // SAFETY: a live handle made above.
            unsafe { handle_ref(oa, "options") }.unwrap().config(),
        )
        .unwrap();
        let mut tar = charm_kv_bytes::EMPTY;
        let mut err = std::ptr::null_mut();
        // SAFETY: live handles and writable outputs.
        let status = unsafe { charm_kv_account_backup_keys(oa, false, &mut tar, &mut err) };
        assert_eq!(status, charm_kv_status::Ok);
        // SAFETY: `tar` holds what the call returned.
        let status =
            unsafe { charm_kv_account_import_keys(ob, tar.data, tar.len, false, &mut err) };
        assert_eq!(status, charm_kv_status::Ok);
        // SAFETY: `tar` is ours to free, once.
        unsafe { charm_kv_bytes_free(&mut tar) };
        let mut id = charm_kv_bytes::EMPTY;
        // Local mode: no account id.
        // SAFETY: as above.
        let status = unsafe { charm_kv_account_id(ob, &mut id, &mut err) };
        assert_eq!(status, charm_kv_status::NotConfigured);
        // SAFETY: the error the call wrote.
        unsafe { charm_kv_error_free(err) };
        let mut outcome = 0u32;
        let mut err = std::ptr::null_mut();
        // SAFETY: a NULL code is refused before anything is read.
        let status = unsafe {
            charm_kv_link_request(
                ob,
                std::ptr::null(),
                0,
                std::ptr::null(),
                &mut outcome,
                &mut err,
            )
        };
        assert_eq!(status, charm_kv_status::InvalidArgument);
        // SAFETY: the error the call wrote; the handles made above, freed once.
        unsafe {
            charm_kv_error_free(err);
            handle_free(oa);
            handle_free(ob);
        }
    }
}
