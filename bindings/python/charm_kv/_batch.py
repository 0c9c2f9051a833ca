"""`Batch`: writes recorded in memory and committed atomically (:meth:`KV.batch`)."""

from __future__ import annotations

from ctypes import POINTER, byref
from typing import Any, TypeVar, overload

from . import _bindings as _b
from ._bindings import Status
from ._convert import BytesLike, to_bytes
from ._errors import NotFoundError, take_error
from ._expiry import TTL, When, ttl_ms, unix_ms
from ._ffi import lib
from ._handle import LockedHandle
from ._out import OUTS, check, take_out, take_value

_T = TypeVar("_T")
_STATUS_OK = Status.OK.value
_STATUS_NOT_FOUND = Status.NOT_FOUND.value


class Batch(LockedHandle):
    """Writes recorded in memory and committed atomically: all of them, or none.

    Made by :meth:`KV.batch`. Nothing is locked while it is open, so other writers are
    never blocked. Reads through the batch see its own changes first. As a context
    manager it commits at the end of the block, or rolls back if the block raises.
    After :meth:`commit` or :meth:`rollback` it cannot be used again.
    """

    __slots__ = ()
    _free = lib.charm_kv_batch_free
    _closed_message = "the batch was already committed or rolled back"

    def __init__(self, store: Any) -> None:
        # Private: use KV.batch().
        batch = POINTER(_b.charm_kv_batch)()
        out = take_out()
        check(lib.charm_kv_batch_begin(store, byref(batch), out.err_ptr), out)
        super().__init__(batch)

    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        """Records ``key = value``."""
        key = to_bytes(key, "key")
        value = to_bytes(value, "value")
        with self._lock:
            out = take_out()
            status = lib.charm_kv_batch_set(
                self._live(),
                _b.charm_kv_slice(key, len(key)),
                _b.charm_kv_slice(value, len(value)),
                out.err_ptr,
            )
            check(status, out)

    def set(
        self,
        key: BytesLike,
        value: BytesLike,
        *,
        ttl: TTL | None = None,
        expires_at: When | None = None,
    ) -> None:
        """Records ``key = value``, optionally expiring (as :meth:`KV.set`: ``ttl``
        counts from this call). An invalid TTL or time raises here and records
        nothing."""
        if ttl is not None and expires_at is not None:
            raise TypeError("give ttl or expires_at, not both")
        if ttl is None and expires_at is None:
            self[key] = value
            return
        k = to_bytes(key, "key")
        v = to_bytes(value, "value")
        with self._lock:
            out = take_out()
            args = (self._live(), _b.charm_kv_slice(k, len(k)), _b.charm_kv_slice(v, len(v)))
            if ttl is not None:
                status = lib.charm_kv_batch_set_with_ttl(*args, ttl_ms(ttl), out.err_ptr)
            else:
                status = lib.charm_kv_batch_set_expiring_at(*args, unix_ms(expires_at), out.err_ptr)
            check(status, out)

    def delete(self, key: BytesLike) -> None:
        """Records the deletion of ``key`` (whether it exists or not)."""
        key = to_bytes(key, "key")
        with self._lock:
            out = take_out()
            check(lib.charm_kv_batch_delete(self._live(), key, len(key), out.err_ptr), out)

    def __delitem__(self, key: BytesLike) -> None:
        """Records the deletion of ``key``; :class:`NotFoundError` (a ``KeyError``) if it
        is missing (in the batch or the database)."""
        k = to_bytes(key, "key")
        if k not in self:
            raise NotFoundError("not found", key=key)
        self.delete(k)

    @overload
    def get(self, key: BytesLike) -> bytes | None: ...
    @overload
    def get(self, key: BytesLike, default: bytes | _T) -> bytes | _T: ...

    def get(self, key: BytesLike, default: Any = None) -> Any:
        """The value of ``key`` as the batch would leave it, or ``default``."""
        key = to_bytes(key, "key")
        with self._lock:
            out = take_out()
            status = lib.charm_kv_batch_get(self._live(), key, len(key), out.value_ptr, out.err_ptr)
            if status == _STATUS_OK:
                data = take_value(out)
                OUTS.append(out)
                return data
            if status == _STATUS_NOT_FOUND:
                take_error(status, out.err)
                OUTS.append(out)
                return default
            check(status, out)

    def __getitem__(self, key: BytesLike) -> bytes:
        """The value of ``key`` as the batch would leave it."""
        value: bytes | None = self.get(key)
        if value is None:
            raise NotFoundError("not found", key=key)
        return value

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (bytes, bytearray, memoryview, str)):
            return False
        return self.get(key) is not None

    def commit(self) -> None:
        """Writes every change atomically. The batch is finished afterwards, even when
        the commit fails (then nothing was written)."""
        with self._lock:
            self._live()
            batch = self._take()  # charm_kv_batch_commit consumes it, even on failure
            out = take_out()
            check(lib.charm_kv_batch_commit(batch, out.err_ptr), out)

    def rollback(self) -> None:
        """Discards every change. Doing it again, or after a commit, does nothing."""
        with self._lock:
            batch = self._take()
            if batch is not None:
                lib.charm_kv_batch_rollback(batch)

    def close(self) -> None:
        """The same as :meth:`rollback`."""
        self.rollback()

    @property
    def closed(self) -> bool:
        """Whether the batch was committed or rolled back."""
        return self._ptr is None

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            if self._ptr is not None:
                self.commit()
        else:
            self.rollback()

    def __repr__(self) -> str:
        return f"<charm_kv.Batch{' (finished)' if self._ptr is None else ''}>"
