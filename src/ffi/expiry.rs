//! Expiry (TTL) of keys in a `charm_kv_store`: set with a TTL or an absolute time, read
//! the time left, change or remove it (docs/c-abi.md, "Expiry"). Times are signed
//! 64-bit milliseconds: a TTL from now, or a unix time (Redis's `PEXPIREAT`), so a
//! caller can give a time in the past (the key is gone at once) or far in the future
//! without a clock of its own.

use std::time::Duration;

use super::bytes::charm_kv_slice;
use super::error::charm_kv_error;
use super::ptr::{handle_ref, key_in, out, value_in};
use super::status::charm_kv_status;
use super::store::charm_kv_store;
use crate::store::expiry::ttl_from_ms;

/// Sets `key` to `value` (as `charm_kv_store_set`), expiring `ttl_ms` milliseconds
/// from now: from then on every read (get, keys, iteration, export) finds it missing,
/// here and on every device it syncs to (the expiry is encrypted inside the value).
///
/// Returns OK, INVALID_ARGUMENT (`store` NULL, NULL data with a non-zero length, a
/// length over the limits, the empty key, `ttl_ms` zero or negative, or an expiry
/// after the year 9999), CLOSED, READ_ONLY, IO, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `key.data` and `value.data` are NULL or
/// point to `key.len` and `value.len` readable bytes; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_set_with_ttl(
    store: *const charm_kv_store,
    key: charm_kv_slice,
    value: charm_kv_slice,
    ttl_ms: i64,
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
        kv.set_with_ttl(key, value, ttl_from_ms(ttl_ms)?)?;
        Ok(())
    })
}

/// Sets `key` to `value`, expiring at `expires_at_unix_ms` (unix time in
/// milliseconds, 1 to 253402300799999, the end of the year 9999). A time already
/// passed deletes the key (as Redis's `PEXPIREAT`).
///
/// Returns as `charm_kv_store_set_with_ttl` (INVALID_ARGUMENT for a time out of range).
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// As `charm_kv_store_set_with_ttl`.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_set_expiring_at(
    store: *const charm_kv_store,
    key: charm_kv_slice,
    value: charm_kv_slice,
    expires_at_unix_ms: i64,
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
        kv.set_expiring_at_unix_ms(key, value, expires_at_unix_ms)?;
        Ok(())
    })
}

/// Writes into `*out_ttl_ms` the milliseconds left before `key` expires (at least 1),
/// or -1 when it has no expiry; NOT_FOUND when it is missing or expired.
///
/// Returns OK, NOT_FOUND, INVALID_ARGUMENT (`store`/`out_ttl_ms` NULL, a bad key),
/// CLOSED, IO, CORRUPT, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `key` is NULL or points to `key_len`
/// readable bytes; `out_ttl_ms` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_ttl(
    store: *const charm_kv_store,
    key: *const u8,
    key_len: usize,
    out_ttl_ms: *mut i64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key, slot) = unsafe {
            (
                handle_ref(store, "store")?,
                key_in(key, key_len)?,
                out(out_ttl_ms, "out_ttl_ms")?,
            )
        };
        let ttl = kv.ttl(key)?;
        // At most the span to the end of the year 9999: inside i64.
        slot.write(ttl.map_or(-1, |ttl: Duration| ttl.as_millis() as i64));
        Ok(())
    })
}

/// Writes into `*out_unix_ms` when `key` expires (unix time in milliseconds), or 0
/// when it has no expiry; NOT_FOUND when it is missing or expired.
///
/// Returns as `charm_kv_store_ttl`.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `key` is NULL or points to `key_len`
/// readable bytes; `out_unix_ms` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_expires_at(
    store: *const charm_kv_store,
    key: *const u8,
    key_len: usize,
    out_unix_ms: *mut i64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key, slot) = unsafe {
            (
                handle_ref(store, "store")?,
                key_in(key, key_len)?,
                out(out_unix_ms, "out_unix_ms")?,
            )
        };
        slot.write(kv.expires_at_unix_ms(key)?.unwrap_or(0));
        Ok(())
    })
}

/// Makes `key` expire `ttl_ms` milliseconds from now, keeping its value.
///
/// Returns OK, NOT_FOUND (missing or expired), INVALID_ARGUMENT (`store` NULL, a bad
/// key, `ttl_ms` zero or negative, an expiry after the year 9999), CLOSED, READ_ONLY,
/// IO, CORRUPT, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `key` is NULL or points to `key_len`
/// readable bytes; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_expire(
    store: *const charm_kv_store,
    key: *const u8,
    key_len: usize,
    ttl_ms: i64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key) = unsafe { (handle_ref(store, "store")?, key_in(key, key_len)?) };
        kv.expire(key, ttl_from_ms(ttl_ms)?)?;
        Ok(())
    })
}

/// Makes `key` expire at `expires_at_unix_ms` (1 to 253402300799999), keeping its
/// value; a time already passed deletes it.
///
/// Returns as `charm_kv_store_expire`.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// As `charm_kv_store_expire`.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_expire_at(
    store: *const charm_kv_store,
    key: *const u8,
    key_len: usize,
    expires_at_unix_ms: i64,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key) = unsafe { (handle_ref(store, "store")?, key_in(key, key_len)?) };
        kv.expire_at_unix_ms(key, expires_at_unix_ms)?;
        Ok(())
    })
}

/// Removes the expiry of `key`, keeping its value. A key without expiry is left as it
/// is (OK, nothing written).
///
/// Returns OK, NOT_FOUND (missing or expired), INVALID_ARGUMENT (`store` NULL, a bad
/// key), CLOSED, READ_ONLY, IO, CORRUPT, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `key` is NULL or points to `key_len`
/// readable bytes; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_persist(
    store: *const charm_kv_store,
    key: *const u8,
    key_len: usize,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, key) = unsafe { (handle_ref(store, "store")?, key_in(key, key_len)?) };
        kv.persist(key)?;
        Ok(())
    })
}
