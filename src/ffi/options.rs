//! `charm_kv_options`: the settings a store is opened with.

use std::ffi::c_char;
use std::time::Duration;

use super::error::{charm_kv_error, Failure};
use super::ptr::{
    bytes_in, handle_free, handle_mut, new_handle, opt_text_in, out, text_in, Handle,
};
use super::status::charm_kv_status;
use crate::{Durability, EncryptKey, Options};

/// Settings for `charm_kv_store_open`, `charm_kv_database_list` and
/// `charm_kv_database_delete`: data directory, Charm server, identity, keys.
///
/// Made by `charm_kv_options_new` or `charm_kv_options_from_env`, changed by the
/// `charm_kv_options_set_*` functions, released by `charm_kv_options_free`. Functions
/// that take options only borrow them: free them whenever convenient afterwards.
///
/// Thread safety: not thread-safe. Use an options object from one thread at a time
/// (moving it between threads is fine).
pub struct charm_kv_options {
    _private: [u8; 0],
}

// SAFETY: `charm_kv_options` pointers are only made by `new_handle` from an `Options`.
unsafe impl Handle for charm_kv_options {
    type Inner = Options;
}

/// Creates options with the defaults, ignoring the environment: local mode (no
/// server), the platform's data directory, ed25519 identity, auto-push on, the
/// account's encrypt keys, network bounds of 15 s (connect), 30 s (request) and 600 s
/// (sync), plain http allowed, "full" durability, read-write.
///
/// On success `*out_options` receives a new options object the caller frees with
/// `charm_kv_options_free`. Returns OK, INVALID_ARGUMENT (`out_options` is NULL) or PANIC.
///
/// # Safety
/// `out_options` is NULL or writable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_new(
    out_options: *mut *mut charm_kv_options,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `out_options` is NULL or writable.
        let slot = unsafe { out(out_options, "out_options") }?;
        slot.write(new_handle(Options::new()));
        Ok(())
    })
}

/// Creates options from the `CHARM_*` environment variables (`CHARM_HOST`,
/// `CHARM_DATA_DIR`, `CHARM_SSH_PORT`, `CHARM_HTTP_PORT`, `CHARM_KEY_TYPE`,
/// `CHARM_IDENTITY_KEY`, ...) and charm-kv's (`CHARM_KV_CONNECT_TIMEOUT`,
/// `CHARM_KV_REQUEST_TIMEOUT`, `CHARM_KV_SYNC_TIMEOUT`, `CHARM_KV_REQUIRE_TLS`,
/// `CHARM_KV_DURABILITY`, `CHARM_KV_READ_ONLY`), as `charm_kv_store_open` does when given
/// NULL options.
///
/// On success `*out_options` receives a new options object the caller frees with
/// `charm_kv_options_free`. Returns OK, INVALID_ARGUMENT (`out_options` is NULL, or a variable
/// is malformed, such as a port that is not a number) or PANIC.
///
/// # Safety
/// `out_options` is NULL or writable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_from_env(
    out_options: *mut *mut charm_kv_options,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `out_options` is NULL or writable.
        let slot = unsafe { out(out_options, "out_options") }?;
        let options = Options::from_env()?;
        slot.write(new_handle(options));
        Ok(())
    })
}

/// Frees an options object. NULL is a no-op. Stores opened with it are unaffected.
///
/// # Safety
/// `options` is NULL or an options object not yet freed, and no other thread uses it.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_free(options: *mut charm_kv_options) {
    ffi_boundary_infallible!((), {
        // SAFETY: the caller guarantees `options` is NULL or a live object it owns.
        unsafe { handle_free(options) }
    })
}

/// Runs `change` on the options behind `options`.
///
/// # Safety
/// `options` is NULL or a live options object no other thread uses.
unsafe fn change(
    options: *mut charm_kv_options,
    change: impl FnOnce(&mut Options) -> Result<(), Failure>,
) -> Result<(), Failure> {
    // SAFETY: forwarded from the caller.
    let options = unsafe { handle_mut(options, "options") }?;
    change(options)
}

/// Sets the base data directory (like `CHARM_DATA_DIR`); the host name, or
/// `localhost` in local mode, is appended to it to make the data path.
///
/// `dir` is a NUL-terminated UTF-8 path (not empty). Returns OK, INVALID_ARGUMENT
/// (`options` or `dir` NULL, empty or not UTF-8) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `dir` is NULL or
/// a NUL-terminated string; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_data_dir(
    options: *mut charm_kv_options,
    dir: *const c_char,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `dir` is NULL or NUL-terminated.
        let dir = unsafe { text_in(dir, "dir") }?;
        if dir.is_empty() {
            return Err(Failure::invalid("dir is empty"));
        }
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.data_dir(dir);
                Ok(())
            })
        }
    })
}

/// Sets the Charm server host name (like `CHARM_HOST`). NULL or "" means no server:
/// local mode. The host is also the last component of the data path.
///
/// Returns OK, INVALID_ARGUMENT (`options` NULL, `host` not UTF-8, or neither an IP
/// address nor a DNS name of letters, digits, '-', '_' and '.' not starting with '-'
/// or '.': the same check as `CHARM_HOST`) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `host` is NULL
/// or a NUL-terminated string; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_host(
    options: *mut charm_kv_options,
    host: *const c_char,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `host` is NULL or NUL-terminated.
        let host = unsafe { opt_text_in(host, "host") }?;
        // An empty host is no host (local mode), as with `CHARM_HOST=`.
        if let Some(h) = host.filter(|h| !h.is_empty()) {
            crate::config::check_host(h)?;
        }
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.host(host.map(str::to_owned));
                Ok(())
            })
        }
    })
}

/// Sets the Charm server's SSH port (like `CHARM_SSH_PORT`; default 35353).
///
/// Returns OK, INVALID_ARGUMENT (`options` NULL or `port` 0) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_ssh_port(
    options: *mut charm_kv_options,
    port: u16,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.ssh_port(nonzero_port(port)?);
                Ok(())
            })
        }
    })
}

/// Sets the Charm server's HTTP port (like `CHARM_HTTP_PORT`; default 35354).
///
/// Returns OK, INVALID_ARGUMENT (`options` NULL or `port` 0) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_http_port(
    options: *mut charm_kv_options,
    port: u16,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.http_port(nonzero_port(port)?);
                Ok(())
            })
        }
    })
}

fn nonzero_port(port: u16) -> Result<u16, Failure> {
    crate::config::check_port("port", port)?;
    Ok(port)
}

/// Sets the SSH private key file to use as the Charm identity instead of the data
/// path's `charm_<key type>` (like `CHARM_IDENTITY_KEY`).
///
/// `path` is a NUL-terminated UTF-8 path (not empty). Returns OK, INVALID_ARGUMENT
/// (`options` or `path` NULL, empty or not UTF-8) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `path` is NULL
/// or a NUL-terminated string; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_identity_key(
    options: *mut charm_kv_options,
    path: *const c_char,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `path` is NULL or NUL-terminated.
        let path = unsafe { text_in(path, "path") }?;
        if path.is_empty() {
            return Err(Failure::invalid("path is empty"));
        }
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.identity_key(path);
                Ok(())
            })
        }
    })
}

/// Sets the SSH key type to find or generate (like `CHARM_KEY_TYPE`): "ed25519" (the
/// default) or "rsa".
///
/// Returns OK, INVALID_ARGUMENT (`options` or `key_type` NULL, or another type) or
/// PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `key_type` is
/// NULL or a NUL-terminated string; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_key_type(
    options: *mut charm_kv_options,
    key_type: *const c_char,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `key_type` is NULL or NUL-terminated.
        let key_type = unsafe { text_in(key_type, "key_type") }?;
        crate::config::check_key_type(key_type)?;
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.key_type(key_type);
                Ok(())
            })
        }
    })
}

/// Local mode: when `local` is true, never contact a server even if a host is set
/// (the data still lives under that host's data path).
///
/// Returns OK, INVALID_ARGUMENT (`options` NULL) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_local(
    options: *mut charm_kv_options,
    local: bool,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.local(local);
                Ok(())
            })
        }
    })
}

/// Sets the bounds on the network steps, in milliseconds (like
/// `CHARM_KV_CONNECT_TIMEOUT`, `CHARM_KV_REQUEST_TIMEOUT` and `CHARM_KV_SYNC_TIMEOUT`):
///
/// - `connect_ms`: opening one connection (TCP connect, SSH handshake); default 15 s.
/// - `request_ms`: one SSH command or one HTTP API request including its whole
///   response; for a snapshot upload or download, the longest silence; default 30 s.
/// - `sync_ms`: a whole `charm_kv_store_sync`, `charm_kv_store_reset` or
///   `charm_kv_database_delete`, and the automatic push after a write; default 600 s.
///
/// 0 leaves that bound as it is (the default, or the environment's with
/// `charm_kv_options_from_env`). A write whose push runs out of time still returns OK:
/// it is committed and stays pending (`charm_kv_store_pending_writes`) for the next write or
/// sync.
///
/// Returns OK, INVALID_ARGUMENT (`options` NULL, or a bound above a year) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_timeouts(
    options: *mut charm_kv_options,
    connect_ms: u64,
    request_ms: u64,
    sync_ms: u64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                let mut timeouts = o.config().timeouts;
                for (slot, ms) in [
                    (&mut timeouts.connect, connect_ms),
                    (&mut timeouts.request, request_ms),
                    (&mut timeouts.sync, sync_ms),
                ] {
                    if ms != 0 {
                        *slot = Duration::from_millis(ms);
                    }
                }
                timeouts.check()?;
                o.timeouts(timeouts);
                Ok(())
            })
        }
    })
}

/// Whether plain http to a server that is not on this machine is refused (like
/// `CHARM_KV_REQUIRE_TLS`; default false). The server chooses the scheme of its HTTP
/// API; over plain http the JWT and the encrypted files cross the network readable
/// and alterable. Refused requests fail with AUTH.
///
/// Returns OK, INVALID_ARGUMENT (`options` NULL) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_require_tls(
    options: *mut charm_kv_options,
    require: bool,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.require_tls(require);
                Ok(())
            })
        }
    })
}

/// Sets how a commit waits for the disk (like `CHARM_KV_DURABILITY`): `"full"` (the
/// default; every commit is fsynced, so an acknowledged write survives a power loss) or
/// `"normal"` (WAL with `synchronous=NORMAL`: faster commits; a killed process loses
/// nothing, a power loss or OS crash may take back the last commits, never corrupts).
///
/// Returns OK, INVALID_ARGUMENT (`options` or `durability` NULL, or neither "full" nor
/// "normal") or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `durability` is
/// NULL or a NUL-terminated string; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_durability(
    options: *mut charm_kv_options,
    durability: *const c_char,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `durability` is NULL or NUL-terminated.
        let durability: Durability = unsafe { text_in(durability, "durability") }?.parse()?;
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.durability(durability);
                Ok(())
            })
        }
    })
}

/// Read-only use (like `CHARM_KV_READ_ONLY`; default false): `charm_kv_store_open` then
/// moves and writes nothing of ours (in a directory it can write, SQLite may create the
/// `-wal`/`-shm` files any reader of a WAL database needs; docs/storage.md). The
/// database must exist (NOT_FOUND otherwise) and is read where it is; the identity and encrypt keys must be cached already or set
/// with `charm_kv_options_set_encrypt_key` (KEYS otherwise). SQLite opens the file
/// read-only (no WAL switch, no schema writes), so this works on read-only media and
/// in a data directory the process cannot write. Writes, batch commits, sync, reset
/// and `charm_kv_database_delete` with these options fail with READ_ONLY.
///
/// Returns OK, INVALID_ARGUMENT (`options` NULL) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_read_only(
    options: *mut charm_kv_options,
    read_only: bool,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.read_only(read_only);
                Ok(())
            })
        }
    })
}

/// Whether each write is pushed to the server right away (default true). Turn it off
/// for batch jobs and call `charm_kv_store_sync` at the end.
///
/// Returns OK, INVALID_ARGUMENT (`options` NULL) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_auto_push(
    options: *mut charm_kv_options,
    auto_push: bool,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.auto_push(auto_push);
                Ok(())
            })
        }
    })
}

/// Uses the Charm encrypt key `text` (its base64 text, at least 32 bytes) instead of
/// the account's keys, replacing any set before. For embedders that manage keys
/// themselves; syncing still needs the account.
///
/// The bytes are copied; wipe your copy when convenient. Returns OK,
/// INVALID_ARGUMENT (`options` NULL, `text` NULL with `len` > 0, shorter than 32 bytes,
/// over 64 KiB, or not UTF-8) or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object used by no other thread; `text` is NULL
/// or points to `len` readable bytes; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_set_encrypt_key(
    options: *mut charm_kv_options,
    text: *const u8,
    len: usize,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `text` is NULL or `len` readable bytes.
        let key = encrypt_key(unsafe { bytes_in(text, len, "text") }?, 0)?;
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                o.encrypt_keys(vec![key]);
                Ok(())
            })
        }
    })
}

/// Adds one more Charm encrypt key after those set before (with
/// `charm_kv_options_set_encrypt_key` or this function). The first key encrypts new
/// writes; the others only decrypt data written with them (key rotation).
///
/// Returns as `charm_kv_options_set_encrypt_key`.
///
/// # Safety
/// As `charm_kv_options_set_encrypt_key`.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_options_add_encrypt_key(
    options: *mut charm_kv_options,
    text: *const u8,
    len: usize,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `text` is NULL or `len` readable bytes.
        let text = unsafe { bytes_in(text, len, "text") }?;
        // SAFETY: the caller guarantees `options` is NULL or live and unshared.
        unsafe {
            change(options, |o| {
                let index = o.keys.as_ref().map_or(0, Vec::len);
                let key = encrypt_key(text, index)?;
                let mut keys = o.keys.take().unwrap_or_default();
                keys.push(key);
                o.encrypt_keys(keys);
                Ok(())
            })
        }
    })
}

/// Longest encrypt key text accepted (Charm's are 44 bytes of base64).
const MAX_ENCRYPT_KEY_LEN: usize = 64 * 1024;

/// An encrypt key from caller bytes; `index` names it (ids matter only to servers).
/// Lengths are checked before the bytes are read: a bad argument, like every setter's.
fn encrypt_key(text: &[u8], index: usize) -> Result<EncryptKey, Failure> {
    let min = crate::crypto::keys::RAW_KEY_LEN;
    if !(min..=MAX_ENCRYPT_KEY_LEN).contains(&text.len()) {
        return Err(Failure::invalid(format!(
            "encrypt key text is {} bytes long; {min} to {MAX_ENCRYPT_KEY_LEN} are accepted",
            text.len()
        )));
    }
    let text = std::str::from_utf8(text)
        .map_err(|_| Failure::invalid("encrypt key text is not valid UTF-8"))?;
    Ok(EncryptKey::from_text(
        format!("embedded-{index}"),
        text,
        None,
    )?)
}
