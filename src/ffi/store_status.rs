//! `charm_kv_store_status`: what `charm-kv status` reports, for C; and
//! `charm_kv_store_sync_if_stale`, which decides from the same local record.

use std::time::{Duration, UNIX_EPOCH};

use super::error::{charm_kv_error, Failure};
use super::ptr::{handle_ref, out};
use super::status::charm_kv_status;
use super::store::charm_kv_store;
use crate::{RemoteStatus, StoreStatus};

/// What `charm_kv_store_get_status` learned about the server (a `uint32_t` in C).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum charm_kv_remote_state {
    /// Local mode: no server configured.
    NotConfigured = 0,
    /// A server is configured but was not asked (`check_remote` false).
    NotChecked = 1,
    /// The server answered; `remote_version` holds its newest version.
    Reachable = 2,
    /// Asking the server failed; `remote_error` says why.
    Unreachable = 3,
}

/// The sync and storage state of a database, filled by `charm_kv_store_get_status`.
///
/// The two error objects are owned by the struct: release them with
/// `charm_kv_store_status_free` (never `charm_kv_error_free` on their own while the
/// struct still points to them).
#[repr(C)]
#[derive(Debug)]
pub struct charm_kv_store_status {
    /// End of the last successful sync of this database file, in Unix milliseconds;
    /// 0 when it never synced.
    pub last_sync_unix_ms: u64,
    /// The local version that sync ended at (0 when it never synced).
    pub last_sync_version: u64,
    /// The server version the local copy is based on (0: never synced).
    pub local_version: u64,
    /// Local writes not yet confirmed on the server (as `charm_kv_store_pending_writes`).
    pub pending_writes: u64,
    /// The full snapshot the local version builds on; 0 when none.
    pub chain_start: u64,
    /// Deltas on top of `chain_start`.
    pub chain_deltas: u64,
    /// Bytes on disk: the database file and its write-ahead log.
    pub size_bytes: u64,
    /// NULL when SQLite's quick check found nothing wrong; otherwise a CORRUPT error
    /// whose message lists what it found.
    pub integrity_error: *mut charm_kv_error,
    /// Whether the server was asked, and how that went.
    pub remote: charm_kv_remote_state,
    /// With `remote` REACHABLE: the newest version on the server (0: none). Else 0.
    pub remote_version: u64,
    /// With `remote` UNREACHABLE: why (its status is NETWORK, AUTH, SERVER, ...).
    /// Else NULL.
    pub remote_error: *mut charm_kv_error,
}

impl charm_kv_store_status {
    fn from_status(status: StoreStatus) -> Self {
        let (last_sync_unix_ms, last_sync_version) = match status.last_sync {
            Some(last) => (
                last.at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                last.version,
            ),
            None => (0, 0),
        };
        let integrity_error = match status.integrity_ok() {
            true => std::ptr::null_mut(),
            false => Failure::new(
                charm_kv_status::Corrupt,
                format!("quick check: {}", status.integrity_problems.join("; ")),
            )
            .into_raw(),
        };
        let (remote, remote_version, remote_error) = match status.remote {
            RemoteStatus::NotConfigured => (
                charm_kv_remote_state::NotConfigured,
                0,
                std::ptr::null_mut(),
            ),
            RemoteStatus::NotChecked => {
                (charm_kv_remote_state::NotChecked, 0, std::ptr::null_mut())
            }
            RemoteStatus::Reachable { newest_version } => (
                charm_kv_remote_state::Reachable,
                newest_version,
                std::ptr::null_mut(),
            ),
            RemoteStatus::Unreachable(e) => (
                charm_kv_remote_state::Unreachable,
                0,
                Failure::from(e).into_raw(),
            ),
        };
        charm_kv_store_status {
            last_sync_unix_ms,
            last_sync_version,
            local_version: status.local_version,
            pending_writes: status.pending_writes,
            chain_start: status.chain.map_or(0, |c| c.start),
            chain_deltas: status.chain.map_or(0, |c| c.deltas),
            size_bytes: status.size_bytes,
            integrity_error,
            remote,
            remote_version,
            remote_error,
        }
    }
}

/// Reads the sync and storage state of the database into `*out_status`: last
/// successful sync, pending writes, versions, delta chain, size on disk and SQLite's
/// quick check (which reads the whole file). Nothing is sent to the server unless
/// `check_remote`; then the server's newest version is asked for, and a server that
/// does not answer within the client's network time limits is reported in
/// `remote`/`remote_error`, not as a failure of this call.
///
/// On OK the caller owns `*out_status` and releases it with
/// `charm_kv_store_status_free`. Returns OK, INVALID_ARGUMENT (`store`/`out_status`
/// NULL or misaligned), CLOSED, IO, CORRUPT, BUSY or PANIC.
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `out_status` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_get_status(
    store: *const charm_kv_store,
    check_remote: bool,
    out_status: *mut charm_kv_store_status,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, slot) = unsafe { (handle_ref(store, "store")?, out(out_status, "out_status")?) };
        let status = match check_remote {
            true => kv.status_with_remote()?,
            false => kv.status()?,
        };
        slot.write(charm_kv_store_status::from_status(status));
        Ok(())
    })
}

/// Releases the error objects a `charm_kv_store_status` owns and sets them to NULL
/// (the other fields stay readable). NULL, or a status already freed, is a no-op.
///
/// # Safety
/// `status` is NULL, or points to a `charm_kv_store_status` filled by
/// `charm_kv_store_get_status` (or freed by this function since), used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_status_free(status: *mut charm_kv_store_status) {
    ffi_boundary_infallible!((), {
        if status.is_null() || !status.is_aligned() {
            return;
        }
        // SAFETY: non-NULL and aligned; by the caller's guarantee a filled status
        // nobody else uses.
        let status = unsafe { &mut *status };
        for slot in [&mut status.integrity_error, &mut status.remote_error] {
            let owned = std::mem::replace(slot, std::ptr::null_mut());
            // SAFETY: the pointer is NULL or an error object this struct owned; it was
            // just detached, so it is freed once.
            unsafe { super::error::charm_kv_error_free(owned) };
        }
    })
}

/// Syncs only when the last successful sync of this database ended at least
/// `max_age_ms` milliseconds ago, or never happened (0 syncs every time). Deciding
/// needs no network. `*out_synced` receives whether it synced.
///
/// Returns OK (synced or not needed), INVALID_ARGUMENT (`store`/`out_synced` NULL),
/// and otherwise what `charm_kv_store_sync` returns (NOT_CONFIGURED in local mode when a
/// sync is due, NETWORK, ...).
///
/// Thread safety: any thread, concurrently with other calls on `store`.
///
/// # Safety
/// `store` is NULL or a live store handle; `out_synced` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn charm_kv_store_sync_if_stale(
    store: *const charm_kv_store,
    max_age_ms: u64,
    out_synced: *mut bool,
    err: *mut *mut charm_kv_error,
) -> charm_kv_status {
    ffi_boundary!(err, {
        // SAFETY: the caller guarantees each pointer is NULL or valid as documented.
        let (kv, slot) = unsafe { (handle_ref(store, "store")?, out(out_synced, "out_synced")?) };
        let synced = kv.sync_if_stale(Duration::from_millis(max_age_ms))?;
        slot.write(synced);
        Ok(())
    })
}
