"""`KV`, the store: a mutable mapping over an open database; and `open`,
`list_databases` and `delete_database`."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, MutableMapping, ValuesView
from ctypes import POINTER, byref, c_bool, c_int64, c_uint64
from datetime import datetime
from typing import IO, Any, Iterable, TypeVar, overload

from . import _bindings as _b
from ._batch import Batch
from ._bindings import Status
from ._convert import BytesLike, PathLike, c_path, c_text, to_bytes
from ._errors import NotFoundError, take_error
from ._expiry import TTL, When, from_unix_ms, ttl_ms, unix_ms
from ._fastget import get as _fast_get
from ._fastget import get_slow as _get_slow
from ._ffi import bytes_at, lib
from ._handle import Handle
from ._iter import (
    ALL,
    KEYS,
    REVERSED,
    Cursor,
    KeyRange,
    _ItemsView,
    _KeysView,
    _ValuesView,
    _view_range,
)
from ._options import UNSET, Options
from ._out import OUTS, Out, check, take_out
from ._progress import ProgressCallback
from ._progress import sync as _sync
from ._status import MaxAge, StoreStatus, from_c, max_age_ms

__all__ = ["KV", "delete_database", "list_databases", "open"]

_T = TypeVar("_T")

_get = lib.charm_kv_store_get
_set = lib.charm_kv_store_set
_delete = lib.charm_kv_store_delete
_bytes_free = lib.charm_kv_bytes_free
_slice = _b.charm_kv_slice
_STATUS_OK = Status.OK.value
_STATUS_NOT_FOUND = Status.NOT_FOUND.value


def open(  # noqa: A001 - the module's entry point, as in dbm.open and shelve.open
    name: str,
    *,
    data_dir: PathLike | None = None,
    host: str | None = UNSET,
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
    """Opens (creating it if needed) the database ``name`` and returns a :class:`KV`;
    the empty name opens the default database ``charm.sh.kv.user.default``, as
    ``charm kv`` does without ``@DB``.

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
    - ``read_only``: open without writing anything of ours (``CHARM_KV_READ_ONLY``; in a
      writable directory SQLite may create the ``-wal``/``-shm`` files a reader needs):
      the database, identity and keys must exist already; it works on read-only media
      and in a data directory this process cannot write. Writes, batch commits,
      :meth:`KV.sync`, :meth:`KV.reset` and :func:`delete_database` then raise
      :class:`ReadOnlyError`; a missing database raises :class:`NotFoundError`.

    The first open of a database on a server fetches the account's keys, so it may
    raise :class:`NetworkError` or :class:`AuthenticationError`.
    """
    # First, while the locals are exactly the parameters: every keyword goes to Options,
    # which applies each by its line in _options.SETTERS.
    settings = dict(locals())
    name_c = c_text(settings.pop("name"), "name")
    with Options(**settings) as options:
        store = POINTER(_b.charm_kv_store)()
        out = take_out()
        check(lib.charm_kv_store_open(name_c, options._ptr, byref(store), out.err_ptr), out)
    # The library opens the default database for the empty name, as `charm kv` does.
    return KV(store, name or "charm.sh.kv.user.default")


def list_databases(**options: Any) -> list[str]:
    """The names of the databases in the data path, sorted.

    Takes the same keyword options as :func:`open` (``data_dir``, ``host``, ``env``...).
    """
    with Options(**options) as opts:
        names = _b.charm_kv_string_list()
        out = take_out()
        check(lib.charm_kv_database_list(opts._ptr, byref(names), out.err_ptr), out)
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
    as :func:`open`. While a store in this or another process has it open it raises
    :class:`BusyError` and deletes nothing, here or on the server: close them first.
    """
    name_c = c_text(name, "name")
    with Options(**options) as opts:
        out = take_out()
        check(lib.charm_kv_database_delete(opts._ptr, name_c, out.err_ptr), out)


class KV(Handle, MutableMapping[bytes, bytes]):
    """An open charm-kv database: a mutable mapping of ``bytes`` keys to ``bytes`` values.

    Made by :func:`charm_kv.open`. Keys and values may be given as ``bytes``,
    ``bytearray``, ``memoryview`` or ``str`` (encoded as UTF-8); they always come back
    as ``bytes``. Iteration is in ascending byte order of keys and reads one
    consistent snapshot.

    Every write is durable when it returns. One ``KV`` may be shared by any number of
    threads (the GIL is released while the library works); several processes may open
    the same database. Use it as a context manager, or call :meth:`close`.
    """

    __slots__ = ("_closed", "_name")
    # An unreachable KV has no call in flight (a running method holds a reference),
    # which is what charm_kv_store_free requires of the handle's last call.
    _free = lib.charm_kv_store_free

    def __init__(self, store: Any, name: str) -> None:
        # Private: use charm_kv.open(). `store` is a live POINTER(charm_kv_store).
        # The pointer stays set until the KV is garbage collected: close() only closes
        # the database (the library then answers CLOSED), since other threads may
        # still be calling with it.
        super().__init__(store)
        self._name = name
        self._closed = False

    # -- reading -------------------------------------------------------------------

    def __getitem__(self, key: BytesLike) -> bytes:
        """``kv[key]``: the value of ``key``; :class:`NotFoundError` (a ``KeyError``)
        if it is missing."""
        k = key if key.__class__ is bytes else to_bytes(key, "key")
        value = _fast_get(self._ptr, k)
        if value is None:
            raise NotFoundError("not found", key=key)
        return value

    @overload
    def get(self, key: BytesLike) -> bytes | None: ...
    @overload
    def get(self, key: BytesLike, default: bytes | _T) -> bytes | _T: ...

    def get(self, key: BytesLike, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` if it is missing."""
        if key.__class__ is not bytes:
            key = to_bytes(key, "key")
        value = _fast_get(self._ptr, key)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        """``key in kv``. Keys that are not bytes-like or ``str`` are never present."""
        if key.__class__ is not bytes:
            try:
                key = to_bytes(key, "key")
            except TypeError:
                return False
        try:
            out = OUTS.pop()
        except IndexError:
            out = Out()
        status = _get(self._ptr, key, len(key), out.value_ptr, None)
        if status == _STATUS_OK:
            if out.value.len:
                _bytes_free(out.value_ptr)  # the value is not copied into Python
            OUTS.append(out)
            return True
        OUTS.append(out)
        if status == _STATUS_NOT_FOUND:
            return False
        return _get_slow(self._ptr, key) is not None

    def __len__(self) -> int:
        """The number of keys. Reads every key: O(n)."""
        keys = _b.charm_kv_bytes_list()
        out = take_out()
        check(lib.charm_kv_store_keys(self._ptr, byref(keys), out.err_ptr), out)
        count = keys.len
        lib.charm_kv_bytes_list_free(byref(keys))
        return int(count)

    def __iter__(self) -> Iterator[bytes]:
        """The keys in ascending byte order, from one snapshot."""
        return Cursor(self._ptr, ALL, KEYS)

    def __reversed__(self) -> Iterator[bytes]:
        """The keys in descending byte order, from one snapshot."""
        return Cursor(self._ptr, REVERSED, KEYS)

    def keys(
        self,
        reverse: bool = False,
        *,
        prefix: BytesLike | None = None,
        start: BytesLike | None = None,
    ) -> KeysView[bytes]:
        """A view of the keys, iterated in ascending (``reverse``: descending) order.

        ``prefix`` keeps the keys that start with it; ``start`` begins at that key
        (forward: the first key not below it, reverse: the first not above it, as
        Badger's ``Seek``), within the prefix. The view's ``len()`` and ``in`` count
        only its keys. The sorted key list is kept while nothing is written, so a
        prefix costs two binary searches plus the keys it yields::

            list(kv.keys(prefix=b"user:"))
            list(kv.keys(prefix=b"log:", start=b"log:2024-06", reverse=True))
        """
        return _KeysView(self, _view_range(reverse, prefix, start))

    def values(
        self,
        reverse: bool = False,
        *,
        prefix: BytesLike | None = None,
        start: BytesLike | None = None,
    ) -> ValuesView[bytes]:
        """A view of the values, in the order of their keys (``prefix`` and ``start``
        as in :meth:`keys`)."""
        return _ValuesView(self, _view_range(reverse, prefix, start))

    def items(
        self,
        reverse: bool = False,
        *,
        prefix: BytesLike | None = None,
        start: BytesLike | None = None,
    ) -> ItemsView[bytes, bytes]:
        """A view of the ``(key, value)`` pairs in key order (``prefix`` and ``start``
        as in :meth:`keys`); each iteration reads one consistent snapshot."""
        return _ItemsView(self, _view_range(reverse, prefix, start))

    # -- writing -------------------------------------------------------------------

    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        """``kv[key] = value``: durable when it returns."""
        if key.__class__ is not bytes:
            key = to_bytes(key, "key")
        if value.__class__ is not bytes:
            value = to_bytes(value, "value")
        try:
            out = OUTS.pop()
        except IndexError:
            out = Out()
        status = _set(self._ptr, _slice(key, len(key)), _slice(value, len(value)), out.err_ptr)
        if status:
            error = take_error(status, out.err)
            OUTS.append(out)
            raise error
        OUTS.append(out)

    def set(
        self,
        key: BytesLike,
        value: BytesLike,
        *,
        ttl: TTL | None = None,
        expires_at: When | None = None,
    ) -> None:
        """``kv[key] = value``, optionally expiring: ``ttl`` from now (seconds or a
        ``timedelta``), or at ``expires_at`` (unix seconds or an aware ``datetime``; a
        time passed deletes the key). From then on every read treats the key as
        missing, here and on every device it syncs to. A zero or negative TTL, or an
        expiry before 1970 or after the year 9999, is :class:`InvalidArgumentError`."""
        k = to_bytes(key, "key")
        v = to_bytes(value, "value")
        out = take_out()
        if ttl is not None and expires_at is not None:
            raise TypeError("give ttl or expires_at, not both")
        if ttl is not None:
            status = lib.charm_kv_store_set_with_ttl(
                self._ptr, _slice(k, len(k)), _slice(v, len(v)), ttl_ms(ttl), out.err_ptr
            )
        elif expires_at is not None:
            status = lib.charm_kv_store_set_expiring_at(
                self._ptr, _slice(k, len(k)), _slice(v, len(v)), unix_ms(expires_at), out.err_ptr
            )
        else:
            status = _set(self._ptr, _slice(k, len(k)), _slice(v, len(v)), out.err_ptr)
        check(status, out)

    def ttl(self, key: BytesLike) -> float | None:
        """Seconds left before ``key`` expires (at least 0.001), or ``None`` when it
        has no expiry; :class:`NotFoundError` (a ``KeyError``) when it is missing or
        expired."""
        k = to_bytes(key, "key")
        ms = c_int64()
        out = take_out()
        check(lib.charm_kv_store_ttl(self._ptr, k, len(k), byref(ms), out.err_ptr), out)
        return None if ms.value < 0 else ms.value / 1000

    def expires_at(self, key: BytesLike) -> datetime | None:
        """When ``key`` expires (an aware UTC ``datetime``, to the millisecond), or
        ``None`` when it has no expiry; :class:`NotFoundError` when it is missing or
        expired."""
        k = to_bytes(key, "key")
        ms = c_int64()
        out = take_out()
        status = lib.charm_kv_store_expires_at(self._ptr, k, len(k), byref(ms), out.err_ptr)
        check(status, out)
        return None if ms.value == 0 else from_unix_ms(ms.value)

    def expire(self, key: BytesLike, ttl: TTL) -> None:
        """Makes ``key`` expire ``ttl`` from now, keeping its value;
        :class:`NotFoundError` when it is missing or expired."""
        k = to_bytes(key, "key")
        out = take_out()
        check(lib.charm_kv_store_expire(self._ptr, k, len(k), ttl_ms(ttl), out.err_ptr), out)

    def expire_at(self, key: BytesLike, when: When) -> None:
        """Makes ``key`` expire at ``when`` (a time passed deletes it), keeping its
        value; :class:`NotFoundError` when it is missing or expired."""
        k = to_bytes(key, "key")
        out = take_out()
        status = lib.charm_kv_store_expire_at(self._ptr, k, len(k), unix_ms(when), out.err_ptr)
        check(status, out)

    def persist(self, key: BytesLike) -> None:
        """Removes the expiry of ``key``, keeping its value (a key without one is left
        as it is); :class:`NotFoundError` when it is missing or expired."""
        k = to_bytes(key, "key")
        out = take_out()
        check(lib.charm_kv_store_persist(self._ptr, k, len(k), out.err_ptr), out)

    def __delitem__(self, key: BytesLike) -> None:
        """``del kv[key]``: :class:`NotFoundError` (a ``KeyError``) if it is missing.
        :meth:`delete` does not mind missing keys."""
        k = to_bytes(key, "key")
        if k not in self:
            raise NotFoundError("not found", key=key)
        self.delete(k)

    def delete(self, key: BytesLike) -> None:
        """Deletes ``key`` if it exists (a missing key is not an error)."""
        if key.__class__ is not bytes:
            key = to_bytes(key, "key")
        out = take_out()
        check(_delete(self._ptr, key, len(key), out.err_ptr), out)

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
        out = take_out()
        check(lib.charm_kv_store_keys(self._ptr, byref(keys), out.err_ptr), out)
        try:
            with self.batch() as batch:
                for i in range(keys.len):
                    item = keys.items[i]
                    batch.delete(bytes_at(item.data, item.len) if item.len else b"")
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
        _sync(self._ptr, progress)

    def reset(self, force: bool = False) -> None:
        """Drops the local copy and rebuilds it from the newest snapshot on the server.

        Raises :class:`PendingWritesError` if local writes are not pushed yet, unless
        ``force``; :class:`NotConfiguredError` in local mode.
        """
        out = take_out()
        check(lib.charm_kv_store_reset(self._ptr, bool(force), out.err_ptr), out)

    def pending_writes(self) -> int:
        """The number of committed local writes not yet confirmed on the server.

        A write counts until a sync sees a file holding it as the newest on the
        server (it was not pushed, or another device overtook its file).
        """
        count = c_uint64()
        out = take_out()
        check(lib.charm_kv_store_pending_writes(self._ptr, byref(count), out.err_ptr), out)
        return count.value

    def status(self, remote: bool = False) -> StoreStatus:
        """The database's sync and storage state, as ``charm-kv status`` prints it.

        Read locally without network (SQLite's quick check reads the whole file). With
        ``remote``, the Charm server is also asked for its newest version; a server that
        does not answer within the client's network time limits is reported in
        ``remote``/``remote_error``, not raised.
        """
        status = _b.charm_kv_store_status()
        out = take_out()
        check(
            lib.charm_kv_store_get_status(self._ptr, bool(remote), byref(status), out.err_ptr), out
        )
        return from_c(status)

    def sync_if_stale(self, max_age: MaxAge) -> bool:
        """Syncs only when the last successful sync is at least ``max_age`` old (seconds
        or a ``timedelta``), or never happened; returns whether it synced. Deciding
        needs no network. Raises what :meth:`sync` raises when a sync is due.
        """
        ms = max_age_ms(max_age)
        synced = c_bool()
        out = take_out()
        check(lib.charm_kv_store_sync_if_stale(self._ptr, ms, byref(synced), out.err_ptr), out)
        return synced.value

    def export(self, file: IO[bytes], *, prefix: BytesLike | None = None) -> None:
        """Writes every pair (those starting with ``prefix``) to the binary ``file`` as
        the JSON lines of ``charm-kv export``, in key order from one snapshot. The
        output is NOT encrypted; it is built in memory whole first, so a row that does
        not decrypt (:class:`CorruptError`) writes nothing::

            with open("backup.jsonl", "wb") as f:
                kv.export(f)
        """
        text = _b.charm_kv_bytes()
        out = take_out()
        c_range = KeyRange(prefix).c_range()
        check(lib.charm_kv_store_export_jsonl(self._ptr, c_range, byref(text), out.err_ptr), out)
        try:
            data = bytes_at(text.data, text.len) if text.len else b""
        finally:
            _bytes_free(byref(text))
        file.write(data)

    def import_(self, source: IO[bytes] | BytesLike, *, replace: bool = False) -> int:
        """Sets the pairs of JSON lines as :meth:`export` (or ``charm-kv export``)
        writes them, read from a binary file or given as bytes or ``str``, in one
        atomic batch; with ``replace`` every other key is deleted in the same batch.
        Returns the number of pairs. A malformed line raises
        :class:`InvalidArgumentError` naming it, and nothing changes. (``import`` is
        a keyword, hence the underscore.)"""
        data = source.read() if hasattr(source, "read") else source
        text = to_bytes(data, "source")
        count = c_uint64()
        out = take_out()
        status = lib.charm_kv_store_import_jsonl(
            self._ptr, _slice(text, len(text)), bool(replace), byref(count), out.err_ptr
        )
        check(status, out)
        return count.value

    def backup(self, path: PathLike) -> None:
        """Writes a consistent copy of the database file (still encrypted) to ``path``,
        which must not exist yet. Readers and writers carry on meanwhile."""
        path_c = c_path(path, "path")
        out = take_out()
        check(lib.charm_kv_store_backup_to(self._ptr, path_c, out.err_ptr), out)

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
        out = take_out()
        check(lib.charm_kv_store_close(self._ptr, out.err_ptr), out)

    def __repr__(self) -> str:
        state = " (closed)" if self._closed else ""
        return f"<charm_kv.KV {self._name!r}{state}>"

    def __reduce__(self) -> Any:
        raise TypeError("a charm_kv.KV cannot be pickled: open the database in each process")
