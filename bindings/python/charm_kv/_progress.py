"""Sync with a progress callback: one C trampoline for every call, which finds the
Python callable by the integer passed as userdata (never a Python object's address)."""

from __future__ import annotations

import itertools
from typing import Any, Callable

from . import _bindings as _b
from ._bindings import SyncPhase
from ._errors import take_error
from ._ffi import lib
from ._out import OUTS, check, take_out

#: ``progress(phase, done, total)`` for :meth:`KV.sync` (byte counts; total 0 = unknown).
ProgressCallback = Callable[[SyncPhase, int, int], object]

_NO_PROGRESS = _b.charm_kv_sync_progress_fn()  # a NULL function pointer


class _ProgressCall:
    __slots__ = ("callback", "error")

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self.error: BaseException | None = None


_progress_calls: dict[int, _ProgressCall] = {}
_PHASES = {phase.value: phase for phase in SyncPhase}
_progress_ids = itertools.count(1)


def _on_progress(userdata: int | None, phase: int, done: int, total: int) -> None:
    # Nothing may escape into C: an exception is kept and raised once sync returns,
    # and later reports are not passed on.
    call = None
    try:
        call = _progress_calls.get(userdata or 0)
        if call is None or call.error is not None:
            return
        # A phase newer than these bindings is passed on as an int.
        call.callback(_PHASES.get(phase, phase), done, total)  # type: ignore[arg-type]
    except BaseException as exc:
        if call is not None:
            call.error = exc


# Module-level, so it lives as long as any call can use it.
_progress_trampoline = _b.charm_kv_sync_progress_fn(_on_progress)


def sync(store: Any, progress: ProgressCallback | None) -> None:
    """``charm_kv_store_sync`` on ``store``, reporting to ``progress``; an exception the
    callback raised is raised once the sync is over (see :meth:`KV.sync`)."""
    out = take_out()
    if progress is None:
        check(lib.charm_kv_store_sync(store, _NO_PROGRESS, None, out.err_ptr), out)
        return
    call = _ProgressCall(progress)
    ident = next(_progress_ids)
    _progress_calls[ident] = call
    try:
        status = lib.charm_kv_store_sync(store, _progress_trampoline, ident, out.err_ptr)
    finally:
        del _progress_calls[ident]
    error = take_error(status, out.err) if status else None
    OUTS.append(out)
    if call.error is not None:
        if error is not None:
            call.error.__context__ = error
        raise call.error
    if error is not None:
        raise error
