//! `charm_kv_store`: an open database, and the functions on whole databases.

use std::borrow::Cow;
use std::ffi::{c_char, c_void};

use super::bytes::{
    charm_kv_bytes, charm_kv_bytes_list, charm_kv_slice, charm_kv_string_list, charm_kv_value_buf,
};
use super::error::charm_kv_error;
use super::options::charm_kv_options;
use super::ptr::{
    buffer_out, handle_free, handle_ref, in_out, key_in, new_handle, out, text_in, value_in, Handle,
};
use super::range::{charm_kv_range, range_in};
use super::status::{charm_kv_status, charm_kv_sync_phase};
use crate::{Direction, Fetched, Kv, Options, SyncPhase, SyncProgress};

/// An open database.
///
/// Made by `charm_kv_store_open`; closed by `charm_kv_store_close` and released by `charm_kv_store_free`.
///
/// Thread safety: thread-safe. One handle may be used by any number of threads at
/// once (reads run in parallel, writes are serialised), except that `charm_kv_store_free`
/// must come after every other call on the handle has returned. Iterators and batches
/// made from it keep the database open on their own and may outlive the handle.
pub struct charm_kv_store {
    _private: [u8; 0],
}

// SAFETY: `charm_kv_store` pointers are only made by `new_handle` from a `Kv`.
unsafe impl Handle for charm_kv_store {
    type Inner = Kv;
}

/// Called during `charm_kv_store_sync` to report transfer progress: `phase` is a
/// `charm_kv_sync_phase`, `done` and `total` are bytes (`total` 0 when unknown).
///
/// Runs on the thread that called `charm_kv_store_sync`, before it returns. It should be
/// quick and must not call charm-kv functions on the store being synced (the sync may
/// hold its write lock), nor unwind (C++ exceptions) or `longjmp` out of the call.
pub type charm_kv_sync_progress_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, phase: u32, done: u64, total: u64)>;

/// The options at `options`, or the environment's when NULL.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile.
unsafe fn options_or_env<'a>(
    options: *const charm_kv_options,
) -> Result<Cow<'a, Options>, super::error::Failure> {
    if options.is_null() {
        return Ok(Cow::Owned(Options::from_env()?));
    }
    // SAFETY: forwarded from the caller.
    unsafe { handle_ref(options, "options") }.map(Cow::Borrowed)
}

/// Opens (creating it if needed) the database `name` and returns a handle in `*out_store`.
///
/// `name` is NUL-terminated UTF-8: at most 200 bytes, no slash, backslash or control
/// characters, not "." or ".."; the empty name opens the default database
/// `charm.sh.kv.user.default`, as `charm kv` does without `@DB`. `options` is borrowed for the call only; NULL
/// means options from the `CHARM_*` environment (`charm_kv_options_from_env`).
///
/// Only an empty (or new) file or a charm-kv database, of this version or an older one,
/// opens: anything else (a foreign SQLite database, one with a view or a table of its
/// own) is CORRUPT and left unchanged.
///
/// On success the caller owns `*out_store` and releases it with `charm_kv_store_free`. Returns
/// OK, INVALID_ARGUMENT (NULL `name`/`out_store`, a bad name, bad options or environment),
/// IO, CORRUPT (not a charm-kv database), KEYS (no key, or keys that do not open this
/// database), BUSY, or PANIC; with read-only options also NOT_FOUND (no such database)
/// and READ_ONLY (a database that would need writing first: empty, or from an older
/// charm-kv, or in WAL mode without its -wal file where SQLite cannot create one).
///
/// # Safety
/// `name` is NULL or NUL-terminated; `options` is NULL or a live options object no
/// other thread changes meanwhile; `out_store` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_open(
    name: *const c_char,
    options: *const charm_kv_options,
    out_store: *mut *mut charm_kv_store,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (name, options, slot) = unsafe {
            (
                text_in(name, "name")?,
                options_or_env(options)?,
                out(out_store, "out_store")?,
            )
        };
        let kv = Kv::open_with(name, &options)?;
        slot.write(new_handle(kv));
        Ok(())
    })
}

/// Closes the database: later calls on this handle (and on iterators and batches
/// made from it) return CLOSED. Calls running on other threads finish first. Closing
/// again is a no-op that returns OK. The handle itself stays valid until
/// `charm_kv_store_free`.
///
/// Returns OK, INVALID_ARGUMENT (`store` NULL) or PANIC.
///
/// # Safety
/// `store` is NULL or a live store handle; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_close(
    store: *const charm_kv_store,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `store` is NULL or live.
        let kv = unsafe { handle_ref(store, "store") }?;
        kv.close()?;
        Ok(())
    })
}

/// Releases a store handle, closing the database unless iterators or batches made
/// from it are still alive (they keep it open until freed). NULL is a no-op.
///
/// # Safety
/// `store` is NULL or a live store handle, and no call on it is running or follows.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_free(store: *mut charm_kv_store) {
    ffi_boundary_infallible!((), {
        // SAFETY: the caller guarantees `store` is NULL or a live handle it gives up.
        unsafe { handle_free(store) }
    })
}

/// Reads the value of `key` into `*out_value`.
///
/// `key` is `key_len` bytes (any bytes, not empty: `key_len` 0 is INVALID_ARGUMENT,
/// as in Charm's kv). On success the caller owns `*out_value` and releases it with
/// `charm_kv_bytes_free`; an empty value is `{NULL, 0}`. Returns OK, NOT_FOUND,
/// INVALID_ARGUMENT (`store`/`out_value` NULL, `key` NULL with `key_len` > 0, a key
/// over 65000 bytes), CLOSED, IO, CORRUPT (the stored row fails authentication or has
/// the wrong type), BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `key` is NULL or points to `key_len`
/// readable bytes; `out_value` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_get(
    store: *const charm_kv_store,
    key: *const u8,
    key_len: usize,
    out_value: *mut charm_kv_bytes,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key, slot) = unsafe {
            (
                handle_ref(store, "store")?,
                key_in(key, key_len)?,
                out(out_value, "out_value")?,
            )
        };
        let value = kv.get(key)?;
        slot.write(charm_kv_bytes::from_vec(value));
        Ok(())
    })
}

/// Reads the value of `key` into the caller's buffer `out->data` (capacity
/// `out->cap`): the fast path for bindings, where every call across the boundary
/// costs (one call with few arguments instead of `charm_kv_store_get` plus
/// `charm_kv_bytes_free`).
///
/// On OK, `out->len` is the length of the value. If it is at most `out->cap`, the
/// value is in `out->data[0..len]` and `out->large` is set empty (NULL, 0). Otherwise
/// `out->data` is left as it was and `out->large` receives the value, owned by the
/// caller (release it with `charm_kv_bytes_free`): one read either way, so the value
/// never changes between a size query and the copy. `out->large` is overwritten, not
/// freed: free a previous one first. Returns OK, NOT_FOUND, INVALID_ARGUMENT (`store`
/// or `out` NULL, NULL `key` or `out->data` with a non-zero length, a key over 65000
/// bytes, `out` or `out->data[0..cap]` overlapping `err`), CLOSED, IO, CORRUPT, BUSY or
/// PANIC.
///
/// On any failure `out->len` and `out->large` are left as they were (outputs are
/// written only on OK). The one exception is the caller's buffer: after CORRUPT (a
/// stored value that fails authentication) its first bytes may have been overwritten
/// with zeros, since the value is decrypted in place.
///
/// Thread safety: any thread, concurrently with other calls on `store`; `out` and its
/// buffer must not be used by anyone else during the call.
///
/// # Safety
/// `store` is NULL or a live store handle; `key` is NULL or points to `key_len`
/// readable bytes; `out` is NULL or points to a readable and writable
/// `charm_kv_value_buf` whose `data` is NULL or points to `cap` writable bytes; `err`
/// is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_get_into(
    store: *const charm_kv_store,
    key: *const u8,
    key_len: usize,
    out: *mut charm_kv_value_buf,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key, out) = unsafe {
            (
                handle_ref(store, "store")?,
                key_in(key, key_len)?,
                in_out(out, "out")?,
            )
        };
        // SAFETY: `out->data` points to `out->cap` writable bytes, as documented.
        let buf = unsafe { buffer_out(out.data, out.cap, "out->data")? };
        // `len` and `large` are written only on OK, like every output.
        let (len, large) = match kv.get_into(key, buf)? {
            Fetched::InBuffer(len) => (len, charm_kv_bytes::EMPTY),
            Fetched::Owned(value) => (value.len(), charm_kv_bytes::from_vec(value)),
        };
        out.len = len;
        out.large = large;
        Ok(())
    })
}

/// Sets `key` to `value` (both any bytes, either may be empty). Durable when it
/// returns OK.
///
/// Both are copied. Lengths are checked first: a key over 65000 bytes or a value over
/// 999999943 bytes is INVALID_ARGUMENT before a byte is read. Returns OK,
/// INVALID_ARGUMENT (`store` NULL, NULL data with a non-zero length, a length over the
/// limits), CLOSED, READ_ONLY (opened read-only), IO, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `key.data` and `value.data` are NULL or
/// point to `key.len` and `value.len` readable bytes; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_set(
    store: *const charm_kv_store,
    key: charm_kv_slice,
    value: charm_kv_slice,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key, value) = unsafe {
            (
                handle_ref(store, "store")?,
                key_in(key.data, key.len)?,
                value_in(value.data, value.len)?,
            )
        };
        kv.set(key, value)?;
        Ok(())
    })
}

/// Deletes `key`. Deleting a missing key is not an error.
///
/// Returns OK, INVALID_ARGUMENT (`store` NULL, `key` NULL with `key_len` > 0, a key
/// over 65000 bytes), CLOSED, READ_ONLY (opened read-only), IO, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `key` is NULL or points to `key_len`
/// readable bytes; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_delete(
    store: *const charm_kv_store,
    key: *const u8,
    key_len: usize,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key) = unsafe { (handle_ref(store, "store")?, key_in(key, key_len)?) };
        kv.delete(key)?;
        Ok(())
    })
}

/// Lists every key, in ascending byte order, into `*out_keys`.
///
/// All or nothing: when stored keys do not decrypt (rows written with an encrypt key
/// not given to this open, or altered), it returns CORRUPT with a message counting them
/// ("2 of 10 stored keys do not decrypt ...") and no list, since a list that silently
/// lacks keys would read as "these keys do not exist". `charm_kv_iter_next` reads the
/// other rows and reports each unreadable one.
///
/// On success the caller owns `*out_keys` and releases it with
/// `charm_kv_bytes_list_free`. Returns OK, INVALID_ARGUMENT (`store`/`out_keys` NULL),
/// CLOSED, IO, CORRUPT, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `out_keys` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_keys(
    store: *const charm_kv_store,
    out_keys: *mut charm_kv_bytes_list,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, slot) = unsafe { (handle_ref(store, "store")?, out(out_keys, "out_keys")?) };
        slot.write(kv.with_keys(|keys| charm_kv_bytes_list::copied_from(keys))?);
        Ok(())
    })
}

/// Lists the keys of `range` in its order into `*out_keys` (NULL `range`: every key,
/// ascending, as `charm_kv_store_keys`; see `charm_kv_range` for prefix, start key and
/// order). `range` is read during the call only.
///
/// All or nothing, as `charm_kv_store_keys`: CORRUPT when stored keys do not decrypt.
/// While nothing is written the sorted key list is kept, so a prefix costs two binary
/// searches plus the keys it returns.
///
/// On success the caller owns `*out_keys` and releases it with
/// `charm_kv_bytes_list_free`. Returns OK, INVALID_ARGUMENT (`store`/`out_keys` NULL, a
/// bad `range`), CLOSED, IO, CORRUPT, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `range` is NULL or a readable range (see
/// `charm_kv_range`); `out_keys` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_keys_in(
    store: *const charm_kv_store,
    range: *const charm_kv_range,
    out_keys: *mut charm_kv_bytes_list,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, range, slot) = unsafe {
            (
                handle_ref(store, "store")?,
                range_in(range)?,
                out(out_keys, "out_keys")?,
            )
        };
        let keys = kv.with_keys(|keys| {
            let selected = range.select(keys);
            match range.order() {
                Direction::Forward => charm_kv_bytes_list::copied_from(selected),
                Direction::Reverse => charm_kv_bytes_list::copied_from(selected.iter().rev()),
            }
        })?;
        slot.write(keys);
        Ok(())
    })
}

/// Syncs with the Charm server: pulls the newest snapshot and pushes local writes.
///
/// `progress` (may be NULL) is called with `userdata` as transfers advance, on this
/// thread, before the function returns. Returns OK, INVALID_ARGUMENT (`store` NULL),
/// NOT_CONFIGURED (local mode: no server), CLOSED, READ_ONLY (opened read-only), IO, CORRUPT, KEYS, AUTH, NETWORK,
/// SERVER, BUSY, INTERNAL or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `progress` is NULL or a function safe to
/// call with `userdata`; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_sync(
    store: *const charm_kv_store,
    progress: charm_kv_sync_progress_fn,
    userdata: *mut c_void,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `store` is NULL or live.
        let kv = unsafe { handle_ref(store, "store") }?;
        let mut report = |p: &SyncProgress| {
            let phase = match p.phase {
                SyncPhase::Download => charm_kv_sync_phase::Download,
                SyncPhase::Upload => charm_kv_sync_phase::Upload,
            };
            if let Some(callback) = progress {
                // SAFETY: the caller guarantees `progress` may be called with `userdata`.
                unsafe { callback(userdata, phase as u32, p.done, p.total) };
            }
        };
        kv.sync_with_progress(&mut report)?;
        Ok(())
    })
}

/// Drops the local copy and rebuilds it from the newest snapshot on the server.
///
/// Without `force`, refuses with PENDING_WRITES while local writes are not yet pushed.
/// Returns OK, INVALID_ARGUMENT (`store` NULL), NOT_CONFIGURED (local mode),
/// PENDING_WRITES, CLOSED, READ_ONLY (opened read-only), IO, CORRUPT, KEYS, AUTH,
/// NETWORK, SERVER, BUSY, INTERNAL or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_reset(
    store: *const charm_kv_store,
    force: bool,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees `store` is NULL or live.
        let kv = unsafe { handle_ref(store, "store") }?;
        kv.reset(force)?;
        Ok(())
    })
}

/// The number of committed local writes not yet confirmed on a server (not pushed, or
/// pushed in a file not seen to be the newest one), into `*out_count`.
///
/// Returns OK, INVALID_ARGUMENT (`store`/`out_count` NULL), CLOSED, IO, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `out_count` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_pending_writes(
    store: *const charm_kv_store,
    out_count: *mut u64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, slot) = unsafe { (handle_ref(store, "store")?, out(out_count, "out_count")?) };
        let count = kv.pending_writes()?;
        slot.write(count);
        Ok(())
    })
}

/// Writes a consistent copy of the database file (still encrypted) to `path`, which
/// must not exist yet. Readers and writers carry on meanwhile.
///
/// `path` is a NUL-terminated UTF-8 path, always a plain file name and never a SQLite
/// URI: `file:x.db?mode=memory` creates a file of exactly that name (relative paths
/// are relative to the working directory). Returns OK, INVALID_ARGUMENT
/// (`store`/`path` NULL or not UTF-8, `path` exists), CLOSED, IO, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `path` is NULL or NUL-terminated; `err` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_backup_to(
    store: *const charm_kv_store,
    path: *const c_char,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, path) = unsafe { (handle_ref(store, "store")?, text_in(path, "path")?) };
        kv.backup_to(path)?;
        Ok(())
    })
}

/// Lists the names of the databases in the data path of `options` (NULL: from the
/// environment), sorted, into `*out_names`.
///
/// On success the caller owns `*out_names` and releases it with
/// `charm_kv_string_list_free`. Returns OK, INVALID_ARGUMENT (`out_names` NULL, bad
/// options or environment), IO or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `out_names` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_database_list(
    options: *const charm_kv_options,
    out_names: *mut charm_kv_string_list,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, slot) = unsafe { (options_or_env(options)?, out(out_names, "out_names")?) };
        let names = crate::list_databases(&options)?;
        slot.write(charm_kv_string_list::from_strings(names)?);
        Ok(())
    })
}

/// Deletes the database `name` (its file and SQLite's companion files) from the data
/// path of `options` (NULL: from the environment). BUSY, with nothing deleted here or on
/// the server, while a store in this or another process has it open: close them first
/// (their writes would go into a deleted file). A store opened meanwhile waits for the
/// deletion and creates the database anew.
///
/// With a Charm server configured (not local mode) it first deletes the database's
/// copies on the server, for every device of the account, so that no sync brings it
/// back; if that fails nothing local is deleted. A database missing locally is then
/// not an error. In local mode a missing database is NOT_FOUND, with a message naming
/// it ("no database named ...", not "key not found").
///
/// Returns OK, NOT_FOUND, INVALID_ARGUMENT (`name` NULL, not UTF-8 or a bad name, bad
/// options or environment), READ_ONLY (read-only options), BUSY (open somewhere), IO,
/// KEYS, AUTH, NETWORK, SERVER (the server copies could not be deleted), or PANIC.
///
/// # Safety
/// `options` is NULL or a live options object no other thread changes meanwhile;
/// `name` is NULL or NUL-terminated; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_database_delete(
    options: *const charm_kv_options,
    name: *const c_char,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (options, name) = unsafe { (options_or_env(options)?, text_in(name, "name")?) };
        crate::delete_database(&options, name)?;
        Ok(())
    })
}
