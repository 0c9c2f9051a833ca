"""charm-kv: an encrypted SQLite key-value store compatible with Charm's ``kv``.

A thin ``ctypes`` binding of the charm-kv library (bundled in this package)::

    import charm_kv

    with charm_kv.open("app", local=True) as kv:
        kv[b"name"] = b"charm"
        assert kv[b"name"] == b"charm"
        with kv.batch() as batch:          # one atomic commit
            batch["a"] = "1"               # str is stored as UTF-8
            batch["b"] = "2"
        for key, value in kv.items():      # ascending key order
            print(key, value)

``KV`` is a ``MutableMapping[bytes, bytes]`` and may be shared by threads. Errors are
:class:`Error` subclasses; a missing key raises :class:`NotFoundError`, which is also a
``KeyError``. Set ``CHARM_KV_LIBRARY`` to load another build of the library.
"""

from ._account import (
    AccountKey,
    LinkCancel,
    account_id,
    account_keys,
    backup_keys,
    import_keys,
    link,
    sync_keys,
    unlink,
)
from ._batch import Batch
from ._bindings import RemoteState, Status, SyncPhase
from ._convert import BytesLike
from ._errors import (
    AuthenticationError,
    BusyError,
    ClosedError,
    CorruptError,
    EncryptionKeyError,
    Error,
    InternalError,
    InvalidArgumentError,
    LinkError,
    NetworkError,
    NotConfiguredError,
    NotFoundError,
    PanicError,
    PendingWritesError,
    ReadOnlyError,
    ServerError,
    StorageError,
)
from ._ffi import LIBRARY_PATH, LIBRARY_VERSION
from ._progress import ProgressCallback
from ._status import StoreStatus
from ._store import KV, delete_database, list_databases, open

#: This package's version (the same as the charm-kv library it was built with).
__version__ = "0.2.0"

__all__ = [
    "KV",
    "LIBRARY_PATH",
    "LIBRARY_VERSION",
    "AccountKey",
    "AuthenticationError",
    "Batch",
    "BusyError",
    "BytesLike",
    "ClosedError",
    "CorruptError",
    "EncryptionKeyError",
    "Error",
    "InternalError",
    "InvalidArgumentError",
    "LinkCancel",
    "LinkError",
    "NetworkError",
    "NotConfiguredError",
    "NotFoundError",
    "PanicError",
    "PendingWritesError",
    "ProgressCallback",
    "ReadOnlyError",
    "RemoteState",
    "ServerError",
    "Status",
    "StorageError",
    "StoreStatus",
    "SyncPhase",
    "account_id",
    "account_keys",
    "backup_keys",
    "delete_database",
    "import_keys",
    "link",
    "list_databases",
    "open",
    "sync_keys",
    "unlink",
]

# Public classes show as charm_kv.X in tracebacks, reprs and docs.
for _name in __all__:
    _obj = globals()[_name]
    if issubclass(type(_obj), type):  # classes (not typing aliases)
        _obj.__module__ = __name__
del _name, _obj
