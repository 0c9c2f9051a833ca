"""Exceptions, and the one place that turns a library status into one."""

from __future__ import annotations

import ctypes
from typing import Any

from ._bindings import Status
from ._ffi import lib


class Error(Exception):
    """Base class of every error charm-kv raises.

    ``status`` is the library's status code (a :class:`Status` member for every code
    these bindings know; a plain ``int`` for a newer one) and ``message`` the library's
    message, which never contains key or value bytes.
    """

    #: The status this class stands for (each subclass sets its own).
    default_status = Status.INTERNAL

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status: int = _as_status(self.default_status if status is None else status)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        # Pickles (for multiprocessing and friends) with status, message and key.
        return (_rebuild, (type(self), self.message, int(self.status), self.__dict__))


def _rebuild(cls: type[Error], message: str, status: int, state: dict[str, Any]) -> Error:
    error = cls(message, status, **({"key": state["key"]} if "key" in state else {}))
    error.__dict__.update(state)
    return error


class NotFoundError(Error, KeyError):
    """A key (or database) that does not exist. Also a :class:`KeyError`.

    Raised by ``kv[key]`` and ``del kv[key]`` for a missing key, with the key in
    ``key`` (and, as for a dict, as the exception's argument).
    """

    default_status = Status.NOT_FOUND

    def __init__(self, message: str, status: int | None = None, *, key: Any = None) -> None:
        super().__init__(message, status)
        self.key = key
        if key is not None:
            self.args = (key,)

    def __str__(self) -> str:
        return repr(self.key) if self.key is not None else self.message


class InvalidArgumentError(Error, ValueError):
    """A bad argument: a bad database name, an out-of-range option, a key or value over
    the size limits. Also a :class:`ValueError`."""

    default_status = Status.INVALID_ARGUMENT


class StorageError(Error):
    """A file-system or SQLite operation failed."""

    default_status = Status.IO


class CorruptError(Error):
    """Stored or received data failed authentication or an integrity check.

    Also: a file that is not a charm-kv database (a foreign SQLite database is never
    adopted), a row of the wrong type, or a stored key that the keys which passed the
    database's key check do not decrypt (``len(kv)`` then raises it with their count;
    iterating yields every readable item first, then raises it).
    """

    default_status = Status.CORRUPT


class EncryptionKeyError(Error):
    """No usable encryption key, or the keys at hand do not decrypt the data.

    Also raised when a Charm server names another key 0 than the one this device synced
    with, or does not keep an encrypt key it accepted; nothing local is changed.
    """

    default_status = Status.KEYS


class AuthenticationError(Error):
    """Authentication with the Charm server failed, its host key changed, or it named an
    SSH key other than ours (no encrypt key is sent to it)."""

    default_status = Status.AUTH


class NetworkError(Error):
    """The Charm server could not be reached, or the connection broke."""

    default_status = Status.NETWORK


class ServerError(Error):
    """The Charm server answered with an error."""

    default_status = Status.SERVER


class BusyError(Error):
    """The database stayed locked by another writer past the busy timeout; retry.

    From :func:`delete_database`: a store in this or another process has it open."""

    default_status = Status.BUSY


class ClosedError(Error):
    """The store (or the batch or iterator) was closed; it cannot be used any more."""

    default_status = Status.CLOSED


class NotConfiguredError(Error):
    """The operation needs a Charm server and none is configured (local mode)."""

    default_status = Status.NOT_CONFIGURED


class PendingWritesError(Error):
    """A reset would discard local writes not yet pushed: sync first, or force it."""

    default_status = Status.PENDING_WRITES


class ReadOnlyError(Error):
    """The store was opened with ``read_only=True`` and the call would write (a set,
    delete, batch commit, sync, reset or database deletion), or a read-only open found
    a database it would first have to create or upgrade."""

    default_status = Status.READ_ONLY


class LinkError(Error):
    """Linking a device into an account did not happen (denied, timed out, an invalid
    code, cancelled, or a server error; the message says which). Nothing changed."""

    default_status = Status.LINK


class InternalError(Error):
    """A bug or an unexpected condition inside charm-kv (or an unknown status)."""

    default_status = Status.INTERNAL


class PanicError(InternalError):
    """A bug: charm-kv panicked. The panic was caught; the objects involved are
    memory-safe but may be in an unspecified state."""

    default_status = Status.PANIC


#: Status -> exception class. A status missing here (a newer library) is INTERNAL.
EXCEPTIONS: dict[int, type[Error]] = {
    cls.default_status: cls
    for cls in (
        NotFoundError,
        InvalidArgumentError,
        StorageError,
        CorruptError,
        EncryptionKeyError,
        AuthenticationError,
        NetworkError,
        ServerError,
        BusyError,
        ClosedError,
        NotConfiguredError,
        PendingWritesError,
        ReadOnlyError,
        LinkError,
        PanicError,
        InternalError,
    )
}


def _as_status(value: int) -> int:
    try:
        return Status(value)
    except ValueError:
        return value


def status_str(status: int) -> str:
    """The library's short description of ``status``."""
    text: bytes = lib.charm_kv_status_str(status)
    return text.decode("utf-8", "replace")


def take_error(status: int, err: Any) -> Error:
    """The exception for a failed call: ``status`` is what it returned and ``err`` the
    ``POINTER(charm_kv_error)`` it wrote (NULL when the call had no error out-param).

    Frees the error object and resets ``err`` to NULL.
    """
    message = ""
    if err:
        message = lib.charm_kv_error_message(err).decode("utf-8", "replace")
        lib.charm_kv_error_free(err)
        ctypes.memset(ctypes.addressof(err), 0, ctypes.sizeof(err))
    return EXCEPTIONS.get(status, InternalError)(message or status_str(status), status)
