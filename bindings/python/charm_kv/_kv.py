"""The store (`KV`), write batches, iteration, sync, and the module-level functions."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from ctypes import (
    POINTER,
    addressof,
    byref,
    c_bool,
    c_size_t,
    c_uint8,
    c_uint64,
    c_void_p,
    pointer,
)
from typing import TYPE_CHECKING, Any, TypeVar, Union, overload

from . import _bindings as _b
from ._bindings import Status, SyncPhase
from ._errors import ClosedError, InvalidArgumentError, NotFoundError, take_error
from ._ffi import bytes_at as _bytes_at
from ._ffi import lib
from ._status import MaxAge, StoreStatus, from_c, max_age_ms

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "KV",
    "Batch",
    "ProgressCallback",
    "delete_database",
    "list_databases",
    "open",
]

#: What keys and values may be given as: ``str`` is encoded as UTF-8.
BytesLike = Union[bytes, bytearray, memoryview, str]
#: ``progress(phase, done, total)`` for :meth:`KV.sync` (byte counts; total 0 = unknown).
ProgressCallback = Callable[[SyncPhase, int, int], object]
PathLike = Union[str, "os.PathLike[str]"]

_T = TypeVar("_T")


def _unconverted(fn: Any) -> Any:
    """A second handle on ``fn`` without ``argtypes``: ctypes then skips converting and
    checking each argument (about 0.1 us per argument per call). Callers pass only
    ctypes objects of the declared types, ``bytes`` (as ``const uint8_t *``) and ``None``
    (NULL): never a bare ``int``, which ctypes would pass as a C ``int``."""
    raw = type(fn)((fn.__name__, lib))
    raw.restype = fn.restype
    return raw


# Prebound functions for the hot paths (one attribute lookup saved per call).
_get = lib.charm_kv_get
_get_into = _unconverted(lib.charm_kv_get_into)
_set = lib.charm_kv_set
_delete = lib.charm_kv_delete
_bytes_free = lib.charm_kv_bytes_free
_iter_next = lib.charm_kv_iter_next

_STATUS_OK = Status.OK.value
_STATUS_NOT_FOUND = Status.NOT_FOUND.value
_STATUS_CLOSED = Status.CLOSED.value
_ERROR_PTR = POINTER(_b.charm_kv_error)
_NO_PROGRESS = _b.charm_kv_sync_progress_fn()  # a NULL function pointer


class _Out:
    """The out-parameters of one call, reused from call to call.

    The library writes into them while the GIL is released, so one set must never be
    used by two threads at once: calls take a set from ``_OUTS`` and put it back when
    done (``list.pop`` and ``list.append`` are atomic), so there are about as many sets
    as threads ever calling at the same time.
    """

    __slots__ = (
        "buf",
        "buf_view",
        "err",
        "err_ptr",
        "into",
        "into_ptr",
        "key_len",
        "value",
        "value_ptr",
    )

    def __init__(self) -> None:
        self.value = _b.charm_kv_bytes()
        self.value_ptr = pointer(self.value)
        self.err = _ERROR_PTR()
        self.err_ptr = pointer(self.err)
        # A get copies values up to _GET_BUF_SIZE bytes into ``buf`` (one C call per
        # get; a larger value comes back in ``into.large`` instead).
        self.buf = (c_uint8 * _GET_BUF_SIZE)()
        self.buf_view = memoryview(self.buf).cast("B")
        self.into = _b.charm_kv_value_buf(data=addressof(self.buf), cap=_GET_BUF_SIZE)
        self.into_ptr = pointer(self.into)
        # The key length argument of the unconverted get (a ctypes size_t, not an int).
        self.key_len = c_size_t()


_OUTS: list[_Out] = []
_GET_BUF_SIZE = 4096


def _take_out() -> _Out:
    try:
        return _OUTS.pop()
    except IndexError:
        return _Out()


def _take_large(out: _Out) -> bytes:
    """A value too large for ``out.buf``: copied from library memory, then freed."""
    large = out.into.large
    try:
        return _bytes_at(large.data, large.len)
    finally:
        _bytes_free(byref(large))


def _to_bytes(obj: object, what: str) -> bytes:
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, str):
        return obj.encode("utf-8")
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"{what} must be bytes or str, not {type(obj).__name__}")


def _c_text(obj: object, what: str) -> bytes:
    """NUL-terminated UTF-8 for names, hosts and key types."""
    if not isinstance(obj, str):
        raise TypeError(f"{what} must be a str, not {type(obj).__name__}")
    if "\0" in obj:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return obj.encode("utf-8")


#: The longest bound the library accepts (a year).
_MAX_TIMEOUT = 365 * 24 * 3600


def _millis(seconds: float | None) -> int:
    """A bound in seconds as the C ABI's milliseconds; 0 (``None``) keeps it as is."""
    if seconds is None:
        return 0
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"a timeout is a number of seconds, not {type(seconds).__name__}")
    if not 0.001 <= seconds <= _MAX_TIMEOUT:
        raise InvalidArgumentError(f"a timeout is from 1 ms to a year, not {seconds!r} s")
    return round(seconds * 1000)


def _c_path(obj: object, what: str) -> bytes:
    """A file-system path, as the bytes the OS uses (the library wants UTF-8)."""
    path = os.fsencode(obj)  # type: ignore[arg-type]
    if b"\0" in path:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return path


def _check(status: int, out: _Out) -> None:
    """Raises the error of a failed call, and gives ``out`` back to the pool."""
    if status:
        error = take_error(status, out.err)
        _OUTS.append(out)
        raise error
    _OUTS.append(out)


# ---------------------------------------------------------------------------------
# Options


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class _Options:
    """A ``charm_kv_options`` object, freed when the ``with`` block ends."""

    def __init__(
        self,
        *,
        env: bool = True,
        data_dir: PathLike | None = None,
        host: str | None = _UNSET,
        ssh_port: int | None = None,
        http_port: int | None = None,
        identity_key: PathLike | None = None,
        key_type: str | None = None,
        local: bool | None = None,
        auto_push: bool | None = None,
        encrypt_keys: Iterable[str | bytes] | None = None,
        connect_timeout: float | None = None,
        request_timeout: float | None = None,
        sync_timeout: float | None = None,
        require_tls: bool | None = None,
        durability: str | None = None,
        read_only: bool | None = None,
    ) -> None:
        self._ptr = POINTER(_b.charm_kv_options)()
        out = _take_out()
        make = lib.charm_kv_options_from_env if env else lib.charm_kv_options_new
        _check(make(byref(self._ptr), out.err_ptr), out)
        try:
            if data_dir is not None:
                self._set(lib.charm_kv_options_set_data_dir, _c_path(data_dir, "data_dir"))
            if host is not _UNSET:
                value = None if host is None else _c_text(host, "host")
                self._set(lib.charm_kv_options_set_host, value)
            for fn, port, what in (
                (lib.charm_kv_options_set_ssh_port, ssh_port, "ssh_port"),
                (lib.charm_kv_options_set_http_port, http_port, "http_port"),
            ):
                if port is not None:
                    if not isinstance(port, int) or not 0 < port < 65536:
                        raise InvalidArgumentError(f"{what} must be a port number (1-65535)")
                    self._set(fn, port)
            if identity_key is not None:
                path = _c_path(identity_key, "identity_key")
                self._set(lib.charm_kv_options_set_identity_key, path)
            if key_type is not None:
                self._set(lib.charm_kv_options_set_key_type, _c_text(key_type, "key_type"))
            if local is not None:
                self._set(lib.charm_kv_options_set_local, bool(local))
            if auto_push is not None:
                self._set(lib.charm_kv_options_set_auto_push, bool(auto_push))
            bounds = (connect_timeout, request_timeout, sync_timeout)
            if any(bound is not None for bound in bounds):
                self._set(lib.charm_kv_options_set_timeouts, *map(_millis, bounds))
            if require_tls is not None:
                self._set(lib.charm_kv_options_set_require_tls, bool(require_tls))
            if durability is not None:
                self._set(lib.charm_kv_options_set_durability, _c_text(durability, "durability"))
            if read_only is not None:
                self._set(lib.charm_kv_options_set_read_only, bool(read_only))
            if encrypt_keys is not None:
                if isinstance(encrypt_keys, (str, bytes)):
                    raise TypeError("encrypt_keys is a list of keys, not one key")
                keys = [_to_bytes(key, "encrypt key") for key in encrypt_keys]
                if not keys:
                    raise InvalidArgumentError("encrypt_keys is empty")
                self._set(lib.charm_kv_options_set_encrypt_key, keys[0], len(keys[0]))
                for key in keys[1:]:
                    self._set(lib.charm_kv_options_add_encrypt_key, key, len(key))
        except BaseException:
            self.free()
            raise

    def _set(self, fn: Any, *args: Any) -> None:
        out = _take_out()
        _check(fn(self._ptr, *args, out.err_ptr), out)

    def free(self) -> None:
        if self._ptr:
            lib.charm_kv_options_free(self._ptr)
            self._ptr = POINTER(_b.charm_kv_options)()

    def __enter__(self) -> Any:
        return self._ptr

    def __exit__(self, *exc: object) -> None:
        self.free()


def open(  # noqa: A001 - the module's entry point, as in dbm.open and shelve.open
    name: str,
    *,
    data_dir: PathLike | None = None,
    host: str | None = _UNSET,
    ssh_port: int | None = None,
    http_port: int | None = None,
    identity_key: PathLike | None = None,
    key_type: str | None = None,
    local: bool | None = None,
    auto_push: bool | None = None,
    encrypt_keys: Iterable[str | bytes] | None = None,
    connect_timeout: float | None = None,
    request_timeout: float | None = None,
    sync_timeout: float | None = None,
    require_tls: bool | None = None,
    durability: str | None = None,
    read_only: bool | None = None,
    env: bool = True,
) -> KV:
    """Opens (creating it if needed) the database ``name`` and returns a :class:`KV`.

    Settings start from the ``CHARM_*`` environment variables, as with the Go client
    (``CHARM_HOST``, ``CHARM_DATA_DIR``, ``CHARM_SSH_PORT``, ...); pass ``env=False``
    to ignore them. Keyword arguments override them:

    - ``data_dir``: the base data directory (``CHARM_DATA_DIR``); the host name, or
      ``localhost`` in local mode, is appended to it.
    - ``host``: the Charm server (``CHARM_HOST``); ``None`` means no server (local mode).
    - ``ssh_port``, ``http_port``: the server's ports (default 35353 and 35354).
    - ``identity_key``: an SSH private key file to use as the Charm identity.
    - ``key_type``: ``"ed25519"`` (default) or ``"rsa"``, for the generated identity.
    - ``local``: never contact the server, even if a host is set.
    - ``auto_push``: push each write to the server right away (default true); turn it
      off for bulk jobs and call :meth:`KV.sync` at the end.
    - ``encrypt_keys``: Charm encrypt keys (base64 text) to use instead of the
      account's: the first encrypts new writes, the others only decrypt (rotation).
    - ``connect_timeout``, ``request_timeout``, ``sync_timeout``: bounds in seconds
      on opening a connection (default 15), on one request including its whole
      answer (default 30; for a snapshot transfer, the longest silence) and on a
      whole sync, which includes the push after a write (default 600). Like
      ``CHARM_KV_CONNECT_TIMEOUT``, ``CHARM_KV_REQUEST_TIMEOUT`` and
      ``CHARM_KV_SYNC_TIMEOUT``. A write whose push runs out of time still succeeds:
      it is committed and stays pending (see :meth:`KV.pending_writes`).
    - ``require_tls``: refuse plain http to a server that is not on this machine
      (``CHARM_KV_REQUIRE_TLS``); such requests raise
      :class:`AuthenticationError`.
    - ``durability``: ``"full"`` (default: every commit is fsynced and survives a power
      loss) or ``"normal"`` (faster commits; a killed process loses nothing, a power
      loss or OS crash may take back the last commits). Like ``CHARM_KV_DURABILITY``.
    - ``read_only``: open without creating or writing anything (``CHARM_KV_READ_ONLY``):
      the database, identity and keys must exist already; it works on read-only media
      and in a data directory this process cannot write. Writes, batch commits,
      :meth:`KV.sync`, :meth:`KV.reset` and :func:`delete_database` then raise
      :class:`ReadOnlyError`; a missing database raises :class:`NotFoundError`.

    The first open of a database on a server fetches the account's keys, so it may
    raise :class:`NetworkError` or :class:`AuthenticationError`.
    """
    name_c = _c_text(name, "name")
    with _Options(
        env=env,
        data_dir=data_dir,
        host=host,
        ssh_port=ssh_port,
        http_port=http_port,
        identity_key=identity_key,
        key_type=key_type,
        local=local,
        auto_push=auto_push,
        encrypt_keys=encrypt_keys,
        connect_timeout=connect_timeout,
        request_timeout=request_timeout,
        sync_timeout=sync_timeout,
        require_tls=require_tls,
        durability=durability,
        read_only=read_only,
    ) as options:
        store = POINTER(_b.charm_kv_store)()
        out = _take_out()
        _check(lib.charm_kv_open(name_c, options, byref(store), out.err_ptr), out)
    return KV(store, name)


def list_databases(**options: Any) -> list[str]:
    """The names of the databases in the data path, sorted.

    Takes the same keyword options as :func:`open` (``data_dir``, ``host``, ``env``...).
    """
    with _Options(**options) as opts:
        names = _b.charm_kv_string_list()
        out = _take_out()
        _check(lib.charm_kv_list_databases(opts, byref(names), out.err_ptr), out)
    try:
        return [names.items[i].decode("utf-8") for i in range(names.len)]
    finally:
        lib.charm_kv_string_list_free(byref(names))


def delete_database(name: str, **options: Any) -> None:
    """Deletes the database ``name``: its file and SQLite's companion files and, when
    a Charm server is configured (not local mode), first its copies on the server, for
    every device of the account, so that no sync brings it back.

    If the server copies cannot be deleted it raises :class:`AuthenticationError`,
    :class:`NetworkError`, :class:`ServerError` or :class:`EncryptionKeyError` and
    deletes nothing local. In local mode it raises :class:`NotFoundError` (a
    :class:`KeyError`, its message naming the database) if it does not exist; with a
    server a database missing locally is not an error. Takes the same keyword options
    as :func:`open`. Stores still open on it keep working on the deleted file until
    closed.
    """
    name_c = _c_text(name, "name")
    with _Options(**options) as opts:
        out = _take_out()
        _check(lib.charm_kv_delete_database(opts, name_c, out.err_ptr), out)


# ---------------------------------------------------------------------------------
# Sync progress: one C trampoline for every call, which finds the Python callable by
# the integer passed as userdata (never a Python object's address).


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


# ---------------------------------------------------------------------------------
# Iteration

_KEYS, _VALUES, _ITEMS = 0, 1, 2


class _Cursor(Iterator[Any]):
    """Walks one consistent snapshot of a store (keys, values or items).

    Thread-safe (a lock serialises ``next``), though sharing one iterator between
    threads is rarely useful. The snapshot is released at the end, on :meth:`close`,
    or when the iterator is garbage collected.
    """

    __slots__ = (
        "_args",
        "_err",
        "_has",
        "_key",
        "_key_len",
        "_lock",
        "_mode",
        "_ptr",
        "_value",
        "_value_len",
    )

    def __init__(self, store: Any, reverse: bool, mode: int) -> None:
        self._ptr: Any = None
        self._lock = threading.Lock()
        self._mode = mode
        it = POINTER(_b.charm_kv_iter)()
        out = _take_out()
        _check(lib.charm_kv_iter_new(store, reverse, mode != _KEYS, byref(it), out.err_ptr), out)
        self._ptr = it
        self._key, self._key_len = c_void_p(), c_size_t()
        self._value, self._value_len = c_void_p(), c_size_t()
        self._has = c_bool()
        self._err = _ERROR_PTR()
        with_values = mode != _KEYS
        self._args = (
            pointer(self._key),
            pointer(self._key_len),
            pointer(self._value) if with_values else None,
            pointer(self._value_len) if with_values else None,
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
            if mode != _VALUES:
                size = self._key_len.value
                key = _bytes_at(self._key.value, size) if size else b""
                if mode == _KEYS:
                    return key
            size = self._value_len.value
            value = _bytes_at(self._value.value, size) if size else b""
            return value if mode == _VALUES else (key, value)

    def _release(self, _free: Any = lib.charm_kv_iter_free) -> None:
        it, self._ptr = self._ptr, None
        if it is not None:
            _free(it)

    def close(self) -> None:
        """Releases the snapshot now; the iterator then ends."""
        with self._lock:
            self._release()

    def __del__(self) -> None:
        # No other thread can hold an unreachable iterator; _release binds the free
        # function at definition time, so this also works during interpreter shutdown.
        if getattr(self, "_ptr", None) is not None:
            self._release()


class _KeysView(KeysView[bytes]):
    __slots__ = ("_reverse",)

    def __init__(self, kv: KV, reverse: bool = False) -> None:
        super().__init__(kv)
        self._reverse = reverse

    def __iter__(self) -> Iterator[bytes]:
        return _Cursor(self._mapping._ptr, self._reverse, _KEYS)  # type: ignore[attr-defined]

    def __reversed__(self) -> Iterator[bytes]:
        return _Cursor(self._mapping._ptr, not self._reverse, _KEYS)  # type: ignore[attr-defined]


class _ValuesView(ValuesView[bytes]):
    __slots__ = ("_reverse",)

    def __init__(self, kv: KV, reverse: bool = False) -> None:
        super().__init__(kv)
        self._reverse = reverse

    def __iter__(self) -> Iterator[bytes]:
        return _Cursor(self._mapping._ptr, self._reverse, _VALUES)  # type: ignore[attr-defined]

    def __reversed__(self) -> Iterator[bytes]:
        return _Cursor(self._mapping._ptr, not self._reverse, _VALUES)  # type: ignore[attr-defined]


class _ItemsView(ItemsView[bytes, bytes]):
    __slots__ = ("_reverse",)

    def __init__(self, kv: KV, reverse: bool = False) -> None:
        super().__init__(kv)
        self._reverse = reverse

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return _Cursor(self._mapping._ptr, self._reverse, _ITEMS)  # type: ignore[attr-defined]

    def __reversed__(self) -> Iterator[tuple[bytes, bytes]]:
        return _Cursor(self._mapping._ptr, not self._reverse, _ITEMS)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------
# The store


class KV(MutableMapping[bytes, bytes]):
    """An open charm-kv database: a mutable mapping of ``bytes`` keys to ``bytes`` values.

    Made by :func:`charm_kv.open`. Keys and values may be given as ``bytes``,
    ``bytearray``, ``memoryview`` or ``str`` (encoded as UTF-8); they always come back
    as ``bytes``. Iteration is in ascending byte order of keys and reads one
    consistent snapshot.

    Every write is durable when it returns. One ``KV`` may be shared by any number of
    threads (the GIL is released while the library works); several processes may open
    the same database. Use it as a context manager, or call :meth:`close`.
    """

    __slots__ = ("__weakref__", "_closed", "_name", "_ptr")

    def __init__(self, store: Any, name: str) -> None:
        # Private: use charm_kv.open(). `store` is a live POINTER(charm_kv_store).
        self._ptr = store
        self._name = name
        self._closed = False

    # -- reading -------------------------------------------------------------------

    def __getitem__(self, key: BytesLike) -> bytes:
        """``kv[key]``: the value of ``key``; :class:`NotFoundError` (a ``KeyError``)
        if it is missing."""
        k = key if key.__class__ is bytes else _to_bytes(key, "key")
        try:
            out = _OUTS.pop()
        except IndexError:
            out = _Out()
        # One C call: the value lands in out.buf (or, if larger, in out.into.large). No
        # error out-param on the fast path: a missing key then costs no error object.
        # Other failures are rare and read again to get the message.
        key_len = out.key_len
        key_len.value = len(k)
        status = _get_into(self._ptr, k, key_len, out.into_ptr, None)
        if status == _STATUS_OK:
            size = out.into.len
            data = out.buf_view[:size].tobytes() if size <= _GET_BUF_SIZE else _take_large(out)
            _OUTS.append(out)
            return data
        _OUTS.append(out)
        if status == _STATUS_NOT_FOUND:
            raise NotFoundError("not found", key=key)
        found = self._get_slow(k)
        if found is None:
            raise NotFoundError("not found", key=key)
        return found

    @overload
    def get(self, key: BytesLike) -> bytes | None: ...
    @overload
    def get(self, key: BytesLike, default: bytes | _T) -> bytes | _T: ...

    def get(self, key: BytesLike, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` if it is missing."""
        if key.__class__ is not bytes:
            key = _to_bytes(key, "key")
        try:
            out = _OUTS.pop()
        except IndexError:
            out = _Out()
        key_len = out.key_len
        key_len.value = len(key)
        status = _get_into(self._ptr, key, key_len, out.into_ptr, None)
        if status == _STATUS_OK:
            size = out.into.len
            data = out.buf_view[:size].tobytes() if size <= _GET_BUF_SIZE else _take_large(out)
            _OUTS.append(out)
            return data
        _OUTS.append(out)
        if status == _STATUS_NOT_FOUND:
            return default
        found = self._get_slow(key)
        return default if found is None else found

    def _get_slow(self, key: bytes) -> bytes | None:
        """A get with the error out-param: the value, None if missing, or raises."""
        out = _take_out()
        status = _get(self._ptr, key, len(key), out.value_ptr, out.err_ptr)
        if status == _STATUS_OK:
            value = out.value
            try:
                data = _bytes_at(value.data, value.len) if value.len else b""
            finally:
                _bytes_free(out.value_ptr)
            _OUTS.append(out)
            return data
        if status == _STATUS_NOT_FOUND:
            take_error(status, out.err)  # frees it
            _OUTS.append(out)
            return None
        _check(status, out)
        return None  # not reached

    def __contains__(self, key: object) -> bool:
        """``key in kv``. Keys that are not bytes-like or ``str`` are never present."""
        if key.__class__ is not bytes:
            try:
                key = _to_bytes(key, "key")
            except TypeError:
                return False
        try:
            out = _OUTS.pop()
        except IndexError:
            out = _Out()
        status = _get(self._ptr, key, len(key), out.value_ptr, None)
        if status == _STATUS_OK:
            if out.value.len:
                _bytes_free(out.value_ptr)  # the value is not copied into Python
            _OUTS.append(out)
            return True
        _OUTS.append(out)
        if status == _STATUS_NOT_FOUND:
            return False
        return self._get_slow(key) is not None

    def __len__(self) -> int:
        """The number of keys. Reads every key: O(n)."""
        keys = _b.charm_kv_bytes_list()
        out = _take_out()
        _check(lib.charm_kv_keys(self._ptr, byref(keys), out.err_ptr), out)
        count = keys.len
        lib.charm_kv_bytes_list_free(byref(keys))
        return int(count)

    def __iter__(self) -> Iterator[bytes]:
        """The keys in ascending byte order, from one snapshot."""
        return _Cursor(self._ptr, False, _KEYS)

    def __reversed__(self) -> Iterator[bytes]:
        """The keys in descending byte order, from one snapshot."""
        return _Cursor(self._ptr, True, _KEYS)

    def keys(self, reverse: bool = False) -> KeysView[bytes]:
        """A view of the keys, iterated in ascending (``reverse``: descending) order."""
        return _KeysView(self, reverse)

    def values(self, reverse: bool = False) -> ValuesView[bytes]:
        """A view of the values, in the order of their keys."""
        return _ValuesView(self, reverse)

    def items(self, reverse: bool = False) -> ItemsView[bytes, bytes]:
        """A view of the ``(key, value)`` pairs in key order; each iteration reads one
        consistent snapshot."""
        return _ItemsView(self, reverse)

    # -- writing -------------------------------------------------------------------

    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        """``kv[key] = value``: durable when it returns."""
        if key.__class__ is not bytes:
            key = _to_bytes(key, "key")
        if value.__class__ is not bytes:
            value = _to_bytes(value, "value")
        try:
            out = _OUTS.pop()
        except IndexError:
            out = _Out()
        status = _set(self._ptr, key, len(key), value, len(value), out.err_ptr)
        if status:
            error = take_error(status, out.err)
            _OUTS.append(out)
            raise error
        _OUTS.append(out)

    def __delitem__(self, key: BytesLike) -> None:
        """``del kv[key]``: :class:`NotFoundError` (a ``KeyError``) if it is missing.
        :meth:`delete` does not mind missing keys."""
        k = _to_bytes(key, "key")
        if k not in self:
            raise NotFoundError("not found", key=key)
        self.delete(k)

    def delete(self, key: BytesLike) -> None:
        """Deletes ``key`` if it exists (a missing key is not an error)."""
        if key.__class__ is not bytes:
            key = _to_bytes(key, "key")
        out = _take_out()
        _check(_delete(self._ptr, key, len(key), out.err_ptr), out)

    def update(self, other: Any = (), /, **kwds: BytesLike) -> None:
        """Like ``dict.update``, but all the writes are committed atomically at once
        (in one batch), which is much faster than one by one."""
        with self.batch() as batch:
            if isinstance(other, Mapping):
                for key in other:
                    batch[key] = other[key]
            elif hasattr(other, "keys"):
                for key in other.keys():  # noqa: SIM118 - a non-Mapping with keys()
                    batch[key] = other[key]
            else:
                for key, value in other:
                    batch[key] = value
            for key, value in kwds.items():
                batch[key] = value

    def clear(self) -> None:
        """Deletes every key, atomically."""
        keys = _b.charm_kv_bytes_list()
        out = _take_out()
        _check(lib.charm_kv_keys(self._ptr, byref(keys), out.err_ptr), out)
        try:
            with self.batch() as batch:
                for i in range(keys.len):
                    item = keys.items[i]
                    batch.delete(_bytes_at(item.data, item.len) if item.len else b"")
        finally:
            lib.charm_kv_bytes_list_free(byref(keys))

    def batch(self) -> Batch:
        """Starts a write batch; as a context manager it commits when the block ends
        and rolls back if it raises::

            with kv.batch() as batch:
                batch[b"a"] = b"1"
                del batch[b"b"]
        """
        return Batch(self._ptr)

    # -- sync ----------------------------------------------------------------------

    def sync(self, progress: ProgressCallback | None = None) -> None:
        """Syncs with the Charm server: pulls the newest snapshot, pushes local writes.

        ``progress(phase, done, total)`` is called as transfers advance, on this
        thread: ``phase`` is a :class:`SyncPhase`, ``done`` and ``total`` are bytes
        (``total`` 0 when unknown). It must not use this store. An exception it raises
        (``KeyboardInterrupt`` included) is raised once the sync has finished; the sync
        itself cannot be interrupted. With tqdm::

            with tqdm(unit="B", unit_scale=True) as bar:
                def progress(phase, done, total):
                    bar.set_description(phase.name.lower())
                    bar.total = total or None
                    bar.update(done - bar.n)
                kv.sync(progress)

        Raises :class:`NotConfiguredError` in local mode (no server).
        """
        out = _take_out()
        if progress is None:
            _check(lib.charm_kv_sync(self._ptr, _NO_PROGRESS, None, out.err_ptr), out)
            return
        call = _ProgressCall(progress)
        ident = next(_progress_ids)
        _progress_calls[ident] = call
        try:
            status = lib.charm_kv_sync(self._ptr, _progress_trampoline, ident, out.err_ptr)
        finally:
            del _progress_calls[ident]
        error = take_error(status, out.err) if status else None
        _OUTS.append(out)
        if call.error is not None:
            if error is not None:
                call.error.__context__ = error
            raise call.error
        if error is not None:
            raise error

    def reset(self, force: bool = False) -> None:
        """Drops the local copy and rebuilds it from the newest snapshot on the server.

        Raises :class:`PendingWritesError` if local writes are not pushed yet, unless
        ``force``; :class:`NotConfiguredError` in local mode.
        """
        out = _take_out()
        _check(lib.charm_kv_reset(self._ptr, bool(force), out.err_ptr), out)

    def pending_writes(self) -> int:
        """The number of committed local writes not yet confirmed on the server.

        A write counts until a sync sees a file holding it as the newest on the
        server (it was not pushed, or another device overtook its file).
        """
        count = c_uint64()
        out = _take_out()
        _check(lib.charm_kv_pending_writes(self._ptr, byref(count), out.err_ptr), out)
        return count.value

    def status(self, remote: bool = False) -> StoreStatus:
        """The database's sync and storage state, as ``charm-kv status`` prints it.

        Read locally without network (SQLite's quick check reads the whole file). With
        ``remote``, the Charm server is also asked for its newest version; a server that
        does not answer within the client's network time limits is reported in
        ``remote``/``remote_error``, not raised.
        """
        status = _b.charm_kv_store_status()
        out = _take_out()
        _check(lib.charm_kv_get_status(self._ptr, bool(remote), byref(status), out.err_ptr), out)
        return from_c(status)

    def sync_if_stale(self, max_age: MaxAge) -> bool:
        """Syncs only when the last successful sync is at least ``max_age`` old (seconds
        or a ``timedelta``), or never happened; returns whether it synced. Deciding
        needs no network. Raises what :meth:`sync` raises when a sync is due.
        """
        ms = max_age_ms(max_age)
        synced = c_bool()
        out = _take_out()
        _check(lib.charm_kv_sync_if_stale(self._ptr, ms, byref(synced), out.err_ptr), out)
        return synced.value

    def backup(self, path: PathLike) -> None:
        """Writes a consistent copy of the database file (still encrypted) to ``path``,
        which must not exist yet. Readers and writers carry on meanwhile."""
        path_c = _c_path(path, "path")
        out = _take_out()
        _check(lib.charm_kv_backup_to(self._ptr, path_c, out.err_ptr), out)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The database name given to :func:`open`."""
        return self._name

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Closes the database. Calls running on other threads finish first; later
        calls (on this store and its iterators and batches) raise :class:`ClosedError`.
        Closing again does nothing."""
        self._closed = True
        out = _take_out()
        _check(lib.charm_kv_close(self._ptr, out.err_ptr), out)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self, _free: Any = lib.charm_kv_free) -> None:
        # An unreachable KV has no call in flight (a running method holds a reference),
        # which is what charm_kv_free requires. `_free` is bound when the class is
        # made, so this works during interpreter shutdown too.
        store = getattr(self, "_ptr", None)
        if store:
            self._ptr = None
            _free(store)

    def __repr__(self) -> str:
        state = " (closed)" if self._closed else ""
        return f"<charm_kv.KV {self._name!r}{state}>"

    def __reduce__(self) -> Any:
        raise TypeError("a charm_kv.KV cannot be pickled: open the database in each process")


_MISSING: Any = object()


class Batch:
    """Writes recorded in memory and committed atomically: all of them, or none.

    Made by :meth:`KV.batch`. Nothing is locked while it is open, so other writers are
    never blocked. Reads through the batch see its own changes first. As a context
    manager it commits at the end of the block, or rolls back if the block raises.
    After :meth:`commit` or :meth:`rollback` it cannot be used again.
    """

    __slots__ = ("__weakref__", "_lock", "_ptr")

    def __init__(self, store: Any) -> None:
        # Private: use KV.batch().
        self._ptr: Any = None
        self._lock = threading.Lock()
        batch = POINTER(_b.charm_kv_batch)()
        out = _take_out()
        _check(lib.charm_kv_batch_begin(store, byref(batch), out.err_ptr), out)
        self._ptr = batch

    def _live(self) -> Any:
        if self._ptr is None:
            raise ClosedError("the batch was already committed or rolled back")
        return self._ptr

    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        """Records ``key = value``."""
        key = _to_bytes(key, "key")
        value = _to_bytes(value, "value")
        with self._lock:
            out = _take_out()
            status = lib.charm_kv_batch_set(
                self._live(), key, len(key), value, len(value), out.err_ptr
            )
            _check(status, out)

    def delete(self, key: BytesLike) -> None:
        """Records the deletion of ``key`` (whether it exists or not)."""
        key = _to_bytes(key, "key")
        with self._lock:
            out = _take_out()
            _check(lib.charm_kv_batch_delete(self._live(), key, len(key), out.err_ptr), out)

    def __delitem__(self, key: BytesLike) -> None:
        """Records the deletion of ``key``; :class:`NotFoundError` (a ``KeyError``) if it
        is missing (in the batch or the database)."""
        k = _to_bytes(key, "key")
        if k not in self:
            raise NotFoundError("not found", key=key)
        self.delete(k)

    @overload
    def get(self, key: BytesLike) -> bytes | None: ...
    @overload
    def get(self, key: BytesLike, default: bytes | _T) -> bytes | _T: ...

    def get(self, key: BytesLike, default: Any = None) -> Any:
        """The value of ``key`` as the batch would leave it, or ``default``."""
        key = _to_bytes(key, "key")
        with self._lock:
            out = _take_out()
            status = lib.charm_kv_batch_get(self._live(), key, len(key), out.value_ptr, out.err_ptr)
            if status == _STATUS_OK:
                value = out.value
                try:
                    data = _bytes_at(value.data, value.len) if value.len else b""
                finally:
                    _bytes_free(out.value_ptr)
                _OUTS.append(out)
                return data
            if status == _STATUS_NOT_FOUND:
                take_error(status, out.err)
                _OUTS.append(out)
                return default
            _check(status, out)

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
            batch = self._live()
            self._ptr = None
            out = _take_out()
            _check(lib.charm_kv_batch_commit(batch, out.err_ptr), out)

    def rollback(self) -> None:
        """Discards every change. Doing it again, or after a commit, does nothing."""
        with self._lock:
            batch, self._ptr = self._ptr, None
            if batch is not None:
                lib.charm_kv_batch_rollback(batch)

    @property
    def closed(self) -> bool:
        """Whether the batch was committed or rolled back."""
        return self._ptr is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            if self._ptr is not None:
                self.commit()
        else:
            self.rollback()

    def __del__(self, _free: Any = lib.charm_kv_batch_free) -> None:
        batch = getattr(self, "_ptr", None)
        if batch is not None:
            self._ptr = None
            _free(batch)

    def __repr__(self) -> str:
        return f"<charm_kv.Batch{' (finished)' if self._ptr is None else ''}>"
