"""Iteration: `Cursor` walks one snapshot of a store (optionally a `KeyRange`: a
prefix, a start key, an order); the views of :meth:`KV.keys`, :meth:`KV.values` and
:meth:`KV.items` make one per iteration."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from ctypes import POINTER, byref, c_bool, c_void_p, pointer
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _bindings as _b
from ._bindings import Status
from ._convert import BytesLike, to_bytes
from ._errors import take_error
from ._ffi import bytes_at, lib
from ._handle import LockedHandle
from ._out import ERROR_PTR, check, take_out

if TYPE_CHECKING:
    from typing_extensions import Self

KEYS, VALUES, ITEMS = 0, 1, 2

_iter_next = lib.charm_kv_iter_next
_STATUS_CLOSED = Status.CLOSED.value


class KeyRange:
    """The keys of a listing or iteration: those starting with ``prefix``, from
    ``start`` on (forward: the first key not below it; reverse: the first not above
    it, as Badger's ``Seek``), in ascending or (``reverse``) descending order. An empty
    prefix or start means none (no key is empty)."""

    __slots__ = ("prefix", "reverse", "start")

    def __init__(
        self, prefix: BytesLike | None = None, start: BytesLike | None = None, reverse: bool = False
    ) -> None:
        self.prefix = b"" if prefix is None else to_bytes(prefix, "prefix")
        self.start = b"" if start is None else to_bytes(start, "start")
        self.reverse = bool(reverse)

    def flipped(self) -> KeyRange:
        """The same prefix in the other order, without the start (see `_View`)."""
        return KeyRange(self.prefix, None, not self.reverse)

    def contains(self, key: bytes) -> bool:
        """Whether ``key`` is in the range, the order aside."""
        if not key.startswith(self.prefix):
            return False
        if not self.start:
            return True
        return key <= self.start if self.reverse else key >= self.start

    def c_range(self) -> Any:
        """A ``charm_kv_range *`` for one call (None: every key, ascending). The struct
        and the bytes it points at live as long as the returned reference."""
        if not self.prefix and not self.start and not self.reverse:
            return None
        return byref(
            _b.charm_kv_range(
                _b.charm_kv_slice(self.prefix, len(self.prefix)),
                _b.charm_kv_slice(self.start, len(self.start)),
                self.reverse,
            )
        )


ALL = KeyRange()
REVERSED = KeyRange(reverse=True)


def keys_in(store: Any, key_range: KeyRange) -> list[bytes]:
    """The keys of ``key_range`` in its order, from ``charm_kv_store_keys_in``."""
    keys = _b.charm_kv_bytes_list()
    out = take_out()
    c_range = key_range.c_range()
    check(lib.charm_kv_store_keys_in(store, c_range, byref(keys), out.err_ptr), out)
    try:
        return [
            bytes_at(item.data, item.len) if item.len else b""
            for item in (keys.items[i] for i in range(keys.len))
        ]
    finally:
        lib.charm_kv_bytes_list_free(byref(keys))


class Cursor(LockedHandle, Iterator[Any]):
    """Walks one consistent snapshot of a store (keys, values or items).

    Thread-safe (a lock serialises ``next``), though sharing one iterator between
    threads is rarely useful. The snapshot is released at the end, on :meth:`close`,
    or when the iterator is garbage collected.
    """

    __slots__ = ("_args", "_err", "_has", "_key", "_key_data", "_mode", "_value", "_value_data")
    _free = lib.charm_kv_iter_free

    def __init__(self, store: Any, key_range: KeyRange, mode: int) -> None:
        it = POINTER(_b.charm_kv_iter)()
        out = take_out()
        c_range = key_range.c_range()
        check(lib.charm_kv_iter_new(store, c_range, mode != KEYS, byref(it), out.err_ptr), out)
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


_T_co = TypeVar("_T_co", covariant=True)


class _View(Generic[_T_co]):
    """What the three views share: the range they cover, and iteration over it."""

    __slots__ = ()
    _mapping: Mapping[bytes, bytes]
    _range: KeyRange
    _mode: int

    def __iter__(self) -> Iterator[_T_co]:
        return Cursor(_store(self), self._range, self._mode)

    def __reversed__(self) -> Iterator[_T_co]:
        if not self._range.start:
            return Cursor(_store(self), self._range.flipped(), self._mode)
        # A start bounds one end only in the C ABI's order; the other order runs from
        # the far end of the prefix and stops at the start.
        # Values are read as items, to see their keys.
        mode = ITEMS if self._mode == VALUES else self._mode
        cursor = Cursor(_store(self), self._range.flipped(), mode)
        return _until_outside(cursor, self._range, self._mode)

    def __len__(self) -> int:
        if self._range is ALL or self._range is REVERSED:
            return len(self._mapping)
        return len(keys_in(_store(self), self._range))

    def _key_in_range(self, key: object) -> bool:
        if not isinstance(key, (bytes, bytearray, memoryview, str)):
            return False
        return self._range.contains(to_bytes(key, "key"))


def _until_outside(cursor: Cursor, key_range: KeyRange, mode: int) -> Iterator[Any]:
    """What ``cursor`` (of keys, or of items for ``mode`` KEYS or ITEMS, VALUES)
    yields up to the first key outside ``key_range``."""
    with cursor:
        for got in cursor:
            key = got if mode == KEYS else got[0]
            if not key_range.contains(key):
                return
            yield got[1] if mode == VALUES else got


def _view_range(reverse: bool, prefix: BytesLike | None, start: BytesLike | None) -> KeyRange:
    if prefix is None and start is None:
        return REVERSED if reverse else ALL
    return KeyRange(prefix, start, reverse)


class _KeysView(_View[bytes], KeysView[bytes]):
    __slots__ = ("_range",)
    _mode = KEYS

    def __init__(self, kv: Mapping[bytes, bytes], key_range: KeyRange = ALL) -> None:
        super().__init__(kv)
        self._range = key_range

    def __contains__(self, key: object) -> bool:
        return self._key_in_range(key) and key in self._mapping


class _ValuesView(_View[bytes], ValuesView[bytes]):
    __slots__ = ("_range",)
    _mode = VALUES

    def __init__(self, kv: Mapping[bytes, bytes], key_range: KeyRange = ALL) -> None:
        super().__init__(kv)
        self._range = key_range


class _ItemsView(_View[tuple[bytes, bytes]], ItemsView[bytes, bytes]):
    __slots__ = ("_range",)
    _mode = ITEMS

    def __init__(self, kv: Mapping[bytes, bytes], key_range: KeyRange = ALL) -> None:
        super().__init__(kv)
        self._range = key_range

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) != 2 or not self._key_in_range(item[0]):
            return False
        return ItemsView.__contains__(self, item)
