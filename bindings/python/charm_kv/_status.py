"""`StoreStatus`: what ``charm-kv status`` reports, as returned by :meth:`KV.status`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from . import _bindings as _b
from ._bindings import RemoteState, Status
from ._errors import Error, take_error
from ._ffi import lib

#: A maximum age for :meth:`KV.sync_if_stale`: seconds, or a ``timedelta``.
MaxAge = Union[float, int, timedelta]


@dataclass(frozen=True)
class StoreStatus:
    """The sync and storage state of a database (see the README's field table)."""

    #: End of the last successful sync of this database file (UTC), or ``None``.
    last_sync: datetime | None
    #: The local version that sync ended at, or ``None`` when it never synced.
    last_sync_version: int | None
    #: The server version the local copy is based on (0: never synced).
    local_version: int
    #: Local writes not yet confirmed on the server.
    pending_writes: int
    #: The full snapshot the local version builds on, or ``None``.
    chain_start: int | None
    #: Deltas on top of ``chain_start``, or ``None``.
    chain_deltas: int | None
    #: The database file plus its write-ahead log, in bytes.
    size_bytes: int
    #: ``None`` when SQLite's quick check found nothing, else a ``CorruptError``.
    integrity_error: Error | None
    #: Whether the server was asked, and how that went.
    remote: RemoteState
    #: The newest version on the server (0: none) when ``remote`` is ``REACHABLE``.
    remote_version: int | None
    #: Why the server could not be asked when ``remote`` is ``UNREACHABLE``.
    remote_error: Error | None

    @property
    def integrity_ok(self) -> bool:
        """Whether SQLite's quick check found nothing wrong."""
        return self.integrity_error is None


def _detach_error(status: Any, field: str, code: Status) -> Error | None:
    """The error object in ``status.<field>`` as an exception (freeing it), or None."""
    err = getattr(status, field)
    if not err:
        return None
    error = take_error(code.value, err)
    setattr(status, field, None)  # freed: the struct must not free it again
    return error


def from_c(status: _b.charm_kv_store_status) -> StoreStatus:
    """Converts a filled ``charm_kv_store_status`` and releases what it owns."""
    try:
        integrity_error = _detach_error(status, "integrity_error", Status.CORRUPT)
        remote_error = _detach_error(status, "remote_error", Status.NETWORK)
    finally:
        lib.charm_kv_store_status_free(status)
    synced = status.last_sync_unix_ms != 0
    chained = status.chain_start != 0
    remote = RemoteState(status.remote)
    return StoreStatus(
        last_sync=(
            datetime.fromtimestamp(status.last_sync_unix_ms / 1000, tz=timezone.utc)
            if synced
            else None
        ),
        last_sync_version=status.last_sync_version if synced else None,
        local_version=status.local_version,
        pending_writes=status.pending_writes,
        chain_start=status.chain_start if chained else None,
        chain_deltas=status.chain_deltas if chained else None,
        size_bytes=status.size_bytes,
        integrity_error=integrity_error,
        remote=remote,
        remote_version=status.remote_version if remote == RemoteState.REACHABLE else None,
        remote_error=remote_error,
    )


def max_age_ms(max_age: MaxAge) -> int:
    """``max_age`` in whole milliseconds; negative or NaN ages are refused."""
    if isinstance(max_age, timedelta):
        seconds = max_age.total_seconds()
    elif isinstance(max_age, (int, float)) and not isinstance(max_age, bool):
        seconds = float(max_age)
    else:
        raise TypeError(f"max_age must be seconds or a timedelta, not {type(max_age).__name__}")
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"max_age must be zero or more, not {max_age!r}")
    return min(int(seconds * 1000), 2**64 - 1)
