//! Export and import as JSON lines, the format of `charm-kv export` (`crate::jsonl`):
//! one implementation, so every binding writes and reads exactly what the command does.

use super::bytes::{charm_kv_bytes, charm_kv_slice};
use super::error::charm_kv_error;
use super::ptr::{bytes_in, handle_ref, out};
use super::range::{charm_kv_range, range_in};
use super::status::charm_kv_status;
use super::store::charm_kv_store;
use crate::jsonl::{encode_entry, import};

/// Writes the pairs of `range` in `store` (NULL: every pair, ascending) into
/// `*out_text` as JSON lines, the format of `charm-kv export` (docs/cli.md): one
/// object `{"key","value","key_base64","value_base64"}` per line, text as JSON
/// strings, other bytes as base64, and `"expires_at_unix_ms"` (unix milliseconds)
/// only on pairs with an expiry. Expired pairs are left out. From one consistent
/// snapshot, all or nothing: a
/// row that does not decrypt is CORRUPT and no text.
///
/// The text is PLAINTEXT (every key and value) and held in memory whole; for large
/// databases iterate with `charm_kv_iter_new` instead. On success the caller owns
/// `*out_text` and releases it with `charm_kv_bytes_free` (which wipes it). Returns
/// OK, INVALID_ARGUMENT (`store`/`out_text` NULL, a bad `range`), CLOSED, IO, CORRUPT,
/// BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `range` is NULL or a readable range;
/// `out_text` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_export_jsonl(
    store: *const charm_kv_store,
    range: *const charm_kv_range,
    out_text: *mut charm_kv_bytes,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, range, slot) = unsafe {
            (
                handle_ref(store, "store")?,
                range_in(range)?,
                out(out_text, "out_text")?,
            )
        };
        let mut text = Vec::new();
        let mut pairs = kv.iter_in(&range, true)?;
        while let Some(entry) = pairs.next_entry() {
            let (key, value, expires_at) = entry?;
            // Expiries are at most MAX_EXPIRY_MS, far inside i64.
            let line = encode_entry(&key, &value, expires_at.map(|at| at as i64));
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        slot.write(charm_kv_bytes::from_vec(text));
        Ok(())
    })
}

/// Sets every pair of `text`, JSON lines as `charm_kv_store_export_jsonl` writes
/// them (the `*_base64` flags and `expires_at_unix_ms` may be left out; blank lines
/// are skipped), in one atomic batch; with `replace`, every other key is deleted in
/// the same batch. The last line of a key wins; a line whose `expires_at_unix_ms` has
/// passed is not imported or counted, and as a key's last line leaves the database's
/// value of that key alone. Writes `*out_count`, the number of pairs imported.
///
/// A malformed line changes nothing: INVALID_ARGUMENT whose message names the line
/// ("line 3: key cannot be empty"). Returns OK, INVALID_ARGUMENT (`store`/`out_count`
/// NULL, NULL `text.data` with a length, a malformed line), CLOSED, READ_ONLY, IO,
/// CORRUPT, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `text` is valid as documented on
/// `charm_kv_slice`; `out_count` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_import_jsonl(
    store: *const charm_kv_store,
    text: charm_kv_slice,
    replace: bool,
    out_count: *mut u64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, mut text, slot) = unsafe {
            (
                handle_ref(store, "store")?,
                bytes_in(text.data, text.len, "text")?,
                out(out_count, "out_count")?,
            )
        };
        let count = import(kv, &mut text, replace)?;
        slot.write(count);
        Ok(())
    })
}
