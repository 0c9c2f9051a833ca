"""The out-parameters of library calls, pooled, and the check that turns a failed
call's status into an exception."""

from __future__ import annotations

from ctypes import POINTER, pointer

from . import _bindings as _b
from ._errors import take_error
from ._ffi import bytes_at, lib

ERROR_PTR = POINTER(_b.charm_kv_error)
_bytes_free = lib.charm_kv_bytes_free


class Out:
    """The out-parameters of one call (a value and an error), reused from call to call.

    The library writes into them while the GIL is released, so one set must never be
    used by two threads at once: calls take a set from ``OUTS`` and put it back when
    done (``list.pop`` and ``list.append`` are atomic), so there are about as many sets
    as threads ever calling at the same time.
    """

    __slots__ = ("err", "err_ptr", "value", "value_ptr")

    def __init__(self) -> None:
        self.value = _b.charm_kv_bytes()
        self.value_ptr = pointer(self.value)
        self.err = ERROR_PTR()
        self.err_ptr = pointer(self.err)


#: The free sets. Hot paths pop and append inline; others use take_out and check.
OUTS: list[Out] = []


def take_out() -> Out:
    try:
        return OUTS.pop()
    except IndexError:
        return Out()


def check(status: int, out: Out) -> None:
    """Raises the error of a failed call, and gives ``out`` back to the pool."""
    if status:
        error = take_error(status, out.err)
        OUTS.append(out)
        raise error
    OUTS.append(out)


def take_value(out: Out) -> bytes:
    """The bytes a call wrote to ``out.value``, copied from library memory and freed."""
    value = out.value
    try:
        return bytes_at(value.data, value.len) if value.len else b""
    finally:
        _bytes_free(out.value_ptr)
