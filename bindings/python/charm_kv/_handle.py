"""`Handle`: the lifetime of one library object, shared by every class that owns one.

The store (`KV`), batches, iterators and options each own a pointer to an object the
library allocated. This class is the one place that says how such a pointer is held,
checked and released:

- ``_ptr`` is the live pointer, or ``None`` once the object is released or its
  ownership went back to the library (a batch's commit consumes it).
- It is freed exactly once, by the subclass's ``_free`` (its ``charm_kv_*_free``):
  on :meth:`close`, at the end of a ``with`` block, or when the object is garbage
  collected (``__del__``).
- ``__del__`` is safe during interpreter shutdown, when module globals may already
  be ``None``: it reads only the instance and its class (``_free`` is a class
  attribute bound when the class is made), and it tolerates an object whose
  ``__init__`` failed before the pointer was set. It never takes a lock: an
  unreachable object has no call in flight (a running method holds a reference).

`LockedHandle` adds a lock for the objects the library does not make thread-safe
(batches and iterators), so that misuse from two threads stays memory-safe.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from ._errors import ClosedError

if TYPE_CHECKING:
    from typing_extensions import Self


class Handle:
    """Owns one pointer to a library object and frees it exactly once."""

    __slots__ = ("__weakref__", "_ptr")

    #: The library function that frees the object (a ctypes function, which is not a
    #: descriptor: ``self._free(ptr)`` calls it with ``ptr`` alone).
    _free: ClassVar[Any]
    #: The message of the :class:`ClosedError` that :meth:`_live` raises.
    _closed_message: ClassVar[str] = "the object was closed"

    def __init__(self, ptr: Any) -> None:
        # `ptr` is a live (non-NULL) ctypes pointer that this object now owns.
        self._ptr: Any = ptr

    def _live(self) -> Any:
        """The pointer; :class:`ClosedError` once it was released."""
        ptr = self._ptr
        if ptr is None:
            raise ClosedError(self._closed_message)
        return ptr

    def _take(self) -> Any:
        """Takes the pointer out of this object (``None`` if it was released): the
        caller now owns it, and this object counts as closed."""
        ptr, self._ptr = self._ptr, None
        return ptr

    def _release(self) -> None:
        """Frees the object now, unless that was done already."""
        ptr = self._take()
        if ptr is not None:
            self._free(ptr)

    @property
    def closed(self) -> bool:
        """Whether the object was released."""
        return self._ptr is None

    def close(self) -> None:
        """Releases the object now. Doing it again does nothing."""
        self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)  # unset if __init__ failed early
        if ptr is not None:
            self._ptr = None
            self._free(ptr)


class LockedHandle(Handle):
    """A handle whose every use holds ``_lock``: for the library objects that are not
    thread-safe (batches, iterators). ``__del__`` needs no lock (see the module)."""

    __slots__ = ("_lock",)

    def __init__(self, ptr: Any) -> None:
        super().__init__(ptr)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Releases the object now. Doing it again does nothing."""
        with self._lock:
            self._release()
