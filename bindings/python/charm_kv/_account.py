"""The account and its devices: :func:`account_id`, :func:`account_keys`,
:func:`backup_keys`, :func:`import_keys` and :func:`link` (both roles)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from ctypes import byref, c_size_t, c_uint32, c_void_p
from typing import Any, NamedTuple

from . import _bindings as _b
from ._convert import c_text
from ._ffi import bytes_at, lib
from ._options import Options
from ._out import check, take_out

__all__ = [
    "AccountKey",
    "LinkCancel",
    "account_id",
    "account_keys",
    "backup_keys",
    "import_keys",
    "link",
    "sync_keys",
    "unlink",
]

#: The outcomes :func:`link` returns.
LINKED, ALREADY_LINKED, MERGED = "linked", "already linked", "merged"
_OUTCOMES = {0: LINKED, 1: ALREADY_LINKED, 2: MERGED}
_SIZE_MAX = c_size_t(-1).value


class AccountKey(NamedTuple):
    """One SSH key of the account: ``<type> <base64>``, and whether it is this device's."""

    key: str
    this_device: bool


def _take_bytes(value: Any) -> bytes:
    try:
        return bytes_at(value.data, value.len) if value.len else b""
    finally:
        lib.charm_kv_bytes_free(byref(value))


def account_id(**options: Any) -> str:
    """The account's id (``charm id``). Takes the keyword options of :func:`open`."""
    with Options(**options) as opts:
        value = _b.charm_kv_bytes()
        out = take_out()
        check(lib.charm_kv_account_id(opts._ptr, byref(value), out.err_ptr), out)
    return _take_bytes(value).decode("utf-8")


def account_keys(**options: Any) -> list[AccountKey]:
    """The account's SSH keys, oldest first, this device's marked."""
    with Options(**options) as opts:
        keys = _b.charm_kv_string_list()
        this = c_size_t()
        out = take_out()
        check(lib.charm_kv_account_keys(opts._ptr, byref(keys), byref(this), out.err_ptr), out)
    try:
        return [
            AccountKey(keys.items[i].decode("utf-8"), i == this.value and this.value != _SIZE_MAX)
            for i in range(keys.len)
        ]
    finally:
        lib.charm_kv_string_list_free(byref(keys))


def unlink(key: str, **options: Any) -> None:
    """Removes an SSH key (its text or ``SHA256:`` fingerprint) from the account; this
    device's own key raises :class:`InvalidArgumentError`."""
    key_c = c_text(key, "key")
    with Options(**options) as opts:
        out = take_out()
        check(lib.charm_kv_account_unlink(opts._ptr, key_c, out.err_ptr), out)


def sync_keys(**options: Any) -> None:
    """Wraps every encrypt key this device holds for every SSH key of the account."""
    with Options(**options) as opts:
        out = take_out()
        check(lib.charm_kv_account_sync_keys(opts._ptr, out.err_ptr), out)


def backup_keys(*, private_key_only: bool = False, **options: Any) -> bytes:
    """This device's SSH identity: the tar archive of ``charm backup-keys``, or the
    OpenSSH private key alone."""
    with Options(**options) as opts:
        value = _b.charm_kv_bytes()
        out = take_out()
        check(
            lib.charm_kv_account_backup_keys(
                opts._ptr, private_key_only, byref(value), out.err_ptr
            ),
            out,
        )
    return _take_bytes(value)


def import_keys(backup: bytes, *, force: bool = False, **options: Any) -> None:
    """Imports a backup (a ``backup-keys`` tar archive or a private key). Another
    identity already there is replaced only with ``force`` (else
    :class:`InvalidArgumentError`, nothing written)."""
    data = bytes(backup)
    with Options(**options) as opts:
        out = take_out()
        check(lib.charm_kv_account_import_keys(opts._ptr, data, len(data), force, out.err_ptr), out)


class LinkCancel:
    """Cancels a :func:`link` from any thread: pass it as ``cancel=``, then call
    :meth:`cancel`. The link then raises :class:`LinkError` ("cancelled") within a
    fraction of a second and changes nothing (once the server has linked, the keys
    are still shared). One object may serve several links; once set it stays set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ptr = lib.charm_kv_cancel_new()

    def cancel(self) -> None:
        """Sets the flag: every link using this object stops waiting."""
        with self._lock:
            if self._ptr:
                lib.charm_kv_cancel_set(self._ptr)

    def __del__(self) -> None:
        # A link holds a reference while it runs, so nothing uses the flag here.
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            lib.charm_kv_cancel_free(ptr)


def link(
    code: str | None = None,
    *,
    on_code: Callable[[str], None] | None = None,
    confirm: Callable[[str, str], bool] | None = None,
    timeout: float | None = None,
    cancel: LinkCancel | None = None,
    **options: Any,
) -> str:
    """Links another device into the account.

    Without ``code`` (a device already in the account): ``on_code(code)`` gets the
    code to type on the other device, then ``confirm(public_key, address)`` decides
    whether it may join. With ``code`` (the new device): joins. ``timeout`` bounds the
    wait in seconds (default 150); ``cancel`` (a :class:`LinkCancel`) stops it from
    another thread. Returns ``"linked"``, ``"already linked"`` or
    (requester) ``"merged"``; a denied, timed-out or invalid-code link raises
    :class:`LinkError` and changes nothing.
    """
    deadline = 0 if timeout is None else max(1, int(timeout * 1000))
    cancel_ptr = None if cancel is None else cancel._ptr
    outcome = c_uint32()
    errors: list[BaseException] = []

    def code_cb(_user: Any, text: bytes) -> None:
        try:
            if on_code is not None:
                on_code(text.decode("utf-8"))
        except BaseException as e:
            errors.append(e)

    def confirm_cb(_user: Any, key: bytes, address: bytes) -> bool:
        try:
            return bool(confirm(key.decode("utf-8"), address.decode("utf-8"))) if confirm else False
        except BaseException as e:
            errors.append(e)
            return False

    with Options(**options) as opts:
        out = take_out()
        if code is None:
            code_fn = _b.charm_kv_link_code_fn(code_cb)
            confirm_fn = _b.charm_kv_link_confirm_fn(confirm_cb)
            status = lib.charm_kv_link_generate(
                opts._ptr,
                code_fn,
                confirm_fn,
                c_void_p(),
                deadline,
                cancel_ptr,
                byref(outcome),
                out.err_ptr,
            )
        else:
            status = lib.charm_kv_link_request(
                opts._ptr,
                c_text(code, "code"),
                deadline,
                cancel_ptr,
                byref(outcome),
                out.err_ptr,
            )
        if errors:
            check(status, out)
            raise errors[0]
        check(status, out)
    return _OUTCOMES.get(outcome.value, LINKED)
