"""Iteration: `Cursor` walks one snapshot of a store; the views of :meth:`KV.keys`,
:meth:`KV.values` and :meth:`KV.items` make one per iteration."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from ctypes import POINTER, byref, c_bool, c_void_p, pointer
from typing import TYPE_CHECKING, Any

from . import _bindings as _b
from ._bindings import Status
from ._errors import take_error
from ._ffi import bytes_at, lib
from ._handle import LockedHandle
from ._out import ERROR_PTR, check, take_out

if TYPE_CHECKING:
    from typing_extensions import Self

KEYS, VALUES, ITEMS = 0, 1, 2

_iter_next = lib.charm_kv_iter_next
_STATUS_CLOSED = Status.CLOSED.value


class Cursor(LockedHandle, Iterator[Any]):
    """Walks one consistent snapshot of a store (keys, values or items).

    Thread-safe (a lock serialises ``next``), though sharing one iterator between
    threads is rarely useful. The snapshot is released at the end, on :meth:`close`,
    or when the iterator is garbage collected.
    """

    __slots__ = ("_args", "_err", "_has", "_key", "_key_data", "_mode", "_value", "_value_data")
    _free = lib.charm_kv_iter_free

    def __init__(self, store: Any, reverse: bool, mode: int) -> None:
        it = POINTER(_b.charm_kv_iter)()
        out = take_out()
        check(lib.charm_kv_iter_new(store, reverse, mode != KEYS, byref(it), out.err_ptr), out)
        super().__init__(it)
        self._mode = mode
        self._key, self._value = _b.charm_kv_slice(), _b.charm_kv_slice()
        # The slices point at the iterator's own bytes: read their addresses through
        # c_void_p views (the c_char_p field would stop at a NUL).
        self._key_data = _address_of_data(self._key)
        self._value_data = _address_of_data(self._value)
        self._has = c_bool()
        self._err = ERROR_PTR()
        self._args = (
            pointer(self._key),
            pointer(self._value) if mode != KEYS else None,
            pointer(self._has),
            pointer(self._err),
        )

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Any:
        with self._lock:
            it = self._ptr
            if it is None:
                raise StopIteration
            status = _iter_next(it, *self._args)
            if status:
                if status == _STATUS_CLOSED:
                    self._release()
                # Other errors skip the failing pair: a later next() carries on.
                raise take_error(status, self._err)
            if not self._has.value:
                self._release()
                raise StopIteration
            mode = self._mode
            if mode != VALUES:
                size = self._key.len
                key = bytes_at(self._key_data.value, size) if size else b""
                if mode == KEYS:
                    return key
            size = self._value.len
            value = bytes_at(self._value_data.value, size) if size else b""
            return value if mode == VALUES else (key, value)

    def close(self) -> None:
        """Releases the snapshot now; the iterator then ends."""
        super().close()


def _address_of_data(slice_: Any) -> c_void_p:
    """A view of ``slice_.data`` as an address, sharing the slice's memory."""
    return c_void_p.from_buffer(slice_, _b.charm_kv_slice.data.offset)


def _store(view: Any) -> Any:
    """The store pointer of the KV a view is of."""
    return view._mapping._ptr


class _KeysView(KeysView[bytes]):
    __slots__ = ("_reverse",)

    def __init__(self, kv: Mapping[bytes, bytes], reverse: bool = False) -> None:
        super().__init__(kv)
        self._reverse = reverse

    def __iter__(self) -> Iterator[bytes]:
        return Cursor(_store(self), self._reverse, KEYS)

    def __reversed__(self) -> Iterator[bytes]:
        return Cursor(_store(self), not self._reverse, KEYS)


class _ValuesView(ValuesView[bytes]):
    __slots__ = ("_reverse",)

    def __init__(self, kv: Mapping[bytes, bytes], reverse: bool = False) -> None:
        super().__init__(kv)
        self._reverse = reverse

    def __iter__(self) -> Iterator[bytes]:
        return Cursor(_store(self), self._reverse, VALUES)

    def __reversed__(self) -> Iterator[bytes]:
        return Cursor(_store(self), not self._reverse, VALUES)


class _ItemsView(ItemsView[bytes, bytes]):
    __slots__ = ("_reverse",)

    def __init__(self, kv: Mapping[bytes, bytes], reverse: bool = False) -> None:
        super().__init__(kv)
        self._reverse = reverse

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return Cursor(_store(self), self._reverse, ITEMS)

    def __reversed__(self) -> Iterator[tuple[bytes, bytes]]:
        return Cursor(_store(self), not self._reverse, ITEMS)
