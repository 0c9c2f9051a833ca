"""The fast path of ``kv[key]`` and ``kv.get(key)``: :func:`get`, the one place that
calls the library without ctypes' argument conversion.

Why it exists: a read is the call users make most, and ctypes spends about 0.1 us
converting and checking each argument of a function with ``argtypes``, as much as a
cached SQLite lookup. :func:`get` therefore makes one call to ``charm_kv_store_get_into``
(the value is copied into a pooled buffer, so there is no second call to free it)
through a second handle on that function that has no ``argtypes``, and passes no
error out-parameter (a missing key then allocates no error object).

What it relies on, and what must stay true if it is changed:

- Without ``argtypes`` ctypes passes each argument by its own type, unchecked. Every
  argument is therefore a ctypes object of exactly the declared C type, ``bytes``
  (passed as a pointer to its buffer: ``const uint8_t *``) or ``None`` (NULL); never a
  bare ``int``, which would be passed as a C ``int`` (32 bits), not a ``size_t``.
  The key length is the pooled ``c_size_t`` for that reason. ``restype`` is copied
  from the declared function, so the status is read as a ``uint32_t``.
- ``charm_kv_store_get_into`` (see the header): on OK it sets ``into.len``; the value is in
  the buffer when ``len <= cap``, else in ``into.large``, which the caller frees with
  ``charm_kv_bytes_free``. On failure it writes no output.
- The buffers are written while the GIL is released: one :class:`_GetOut` is used by
  one call at a time (taken from ``_POOL`` and put back, atomically).
- With no error out-parameter a failure has no message, so any status other than OK
  and NOT_FOUND (rare: CLOSED, CORRUPT, BUSY...) is read again by :func:`get_slow`,
  the ordinary call with ``argtypes`` and an error out-parameter, which raises the
  library's error.

``tests/test_fastget.py`` checks that :func:`get` and :func:`get_slow` agree on present,
missing, empty and large values (up to and past the buffer size) and on errors.
"""

from __future__ import annotations

from ctypes import addressof, byref, c_size_t, c_uint8, pointer
from typing import Any

from . import _bindings as _b
from ._bindings import Status
from ._errors import take_error
from ._ffi import bytes_at, lib
from ._out import OUTS, check, take_out, take_value

#: The size of each pooled buffer: values up to this many bytes are copied into it.
BUF_SIZE = 4096

_OK = Status.OK.value
_NOT_FOUND = Status.NOT_FOUND.value
_bytes_free = lib.charm_kv_bytes_free
_get = lib.charm_kv_store_get


def _unconverted(fn: Any) -> Any:
    """A second handle on ``fn`` without ``argtypes`` (see the module docstring)."""
    raw = type(fn)((fn.__name__, lib))
    raw.restype = fn.restype
    return raw


_get_into = _unconverted(lib.charm_kv_store_get_into)


class _GetOut:
    """The buffer and arguments of one :func:`get`, reused from call to call."""

    __slots__ = ("buf", "buf_view", "into", "into_ptr", "key_len")

    def __init__(self) -> None:
        self.buf = (c_uint8 * BUF_SIZE)()
        self.buf_view = memoryview(self.buf).cast("B")
        self.into = _b.charm_kv_value_buf(data=addressof(self.buf), cap=BUF_SIZE)
        self.into_ptr = pointer(self.into)
        self.key_len = c_size_t()  # a ctypes size_t, never an int


_POOL: list[_GetOut] = []


def get(store: Any, key: bytes) -> bytes | None:
    """The value of ``key`` in ``store`` (a live ``POINTER(charm_kv_store)``), ``None``
    if it is missing; raises the library's error otherwise. ``key`` must be ``bytes``."""
    try:
        out = _POOL.pop()
    except IndexError:
        out = _GetOut()
    key_len = out.key_len
    key_len.value = len(key)
    status = _get_into(store, key, key_len, out.into_ptr, None)
    if status == _OK:
        size = out.into.len
        if size <= BUF_SIZE:
            data = out.buf_view[:size].tobytes()
        else:
            large = out.into.large
            try:
                data = bytes_at(large.data, large.len)
            finally:
                _bytes_free(byref(large))
        _POOL.append(out)
        return data
    _POOL.append(out)
    if status == _NOT_FOUND:
        return None
    return get_slow(store, key)


def get_slow(store: Any, key: bytes) -> bytes | None:
    """The same as :func:`get` through ``charm_kv_store_get`` with ``argtypes`` and an error
    out-parameter: the value, ``None`` if missing, or raises the library's error."""
    out = take_out()
    status = _get(store, key, len(key), out.value_ptr, out.err_ptr)
    if status == _OK:
        data = take_value(out)
        OUTS.append(out)
        return data
    if status == _NOT_FOUND:
        take_error(status, out.err)  # frees it
        OUTS.append(out)
        return None
    check(status, out)
    return None  # not reached
