"""`Options`: a ``charm_kv_options`` object built from :func:`charm_kv.open`'s keywords.

Every keyword is one line of ``SETTERS`` (in the order they are applied). Adding an
option is that line plus the keyword in :func:`charm_kv.open`'s signature and
docstring; :func:`charm_kv.list_databases` and :func:`charm_kv.delete_database` pass
their keywords on unchanged.
"""

from __future__ import annotations

from ctypes import POINTER, byref
from typing import Any, Callable, Iterable

from . import _bindings as _b
from ._convert import c_path, c_text, millis, to_bytes
from ._errors import InvalidArgumentError
from ._ffi import lib
from ._handle import Handle
from ._out import check, take_out


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


#: The default of a keyword whose ``None`` means something (``host=None``: local mode).
UNSET: Any = _Unset()

Setter = Callable[[Any, Any], None]


def _call(fn: Any, options: Any, *args: Any) -> None:
    out = take_out()
    check(fn(options, *args, out.err_ptr), out)


def _path(fn: Any, what: str) -> Setter:
    return lambda options, value: _call(fn, options, c_path(value, what))


def _text(fn: Any, what: str) -> Setter:
    return lambda options, value: _call(fn, options, c_text(value, what))


def _flag(fn: Any) -> Setter:
    return lambda options, value: _call(fn, options, bool(value))


def _port(fn: Any, what: str) -> Setter:
    def set_port(options: Any, port: Any) -> None:
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidArgumentError(f"{what} must be a port number (1-65535)")
        _call(fn, options, port)

    return set_port


def _timeout(which: int) -> Setter:
    # charm_kv_options_set_timeouts(connect, request, sync): 0 keeps a bound as it is.
    def set_timeout(options: Any, seconds: Any) -> None:
        bounds = [0, 0, 0]
        bounds[which] = millis(seconds)
        _call(lib.charm_kv_options_set_timeouts, options, *bounds)

    return set_timeout


def _host(options: Any, host: Any) -> None:
    _call(lib.charm_kv_options_set_host, options, None if host is None else c_text(host, "host"))


def _encrypt_keys(options: Any, encrypt_keys: Iterable[str | bytes]) -> None:
    if isinstance(encrypt_keys, (str, bytes)):
        raise TypeError("encrypt_keys is a list of keys, not one key")
    keys = [to_bytes(key, "encrypt key") for key in encrypt_keys]
    if not keys:
        raise InvalidArgumentError("encrypt_keys is empty")
    _call(lib.charm_kv_options_set_encrypt_key, options, keys[0], len(keys[0]))
    for key in keys[1:]:
        _call(lib.charm_kv_options_add_encrypt_key, options, key, len(key))


#: Keyword -> how it is applied, in this order. A keyword left at ``None`` (or
#: ``UNSET``) is not applied, except those in ``NONE_IS_A_VALUE``.
SETTERS: dict[str, Setter] = {
    "data_dir": _path(lib.charm_kv_options_set_data_dir, "data_dir"),
    "host": _host,
    "ssh_port": _port(lib.charm_kv_options_set_ssh_port, "ssh_port"),
    "http_port": _port(lib.charm_kv_options_set_http_port, "http_port"),
    "identity_key": _path(lib.charm_kv_options_set_identity_key, "identity_key"),
    "key_type": _text(lib.charm_kv_options_set_key_type, "key_type"),
    "local": _flag(lib.charm_kv_options_set_local),
    "auto_push": _flag(lib.charm_kv_options_set_auto_push),
    "connect_timeout": _timeout(0),
    "request_timeout": _timeout(1),
    "sync_timeout": _timeout(2),
    "require_tls": _flag(lib.charm_kv_options_set_require_tls),
    "durability": _text(lib.charm_kv_options_set_durability, "durability"),
    "read_only": _flag(lib.charm_kv_options_set_read_only),
    "encrypt_keys": _encrypt_keys,
}
NONE_IS_A_VALUE = frozenset({"host"})


class Options(Handle):
    """A ``charm_kv_options`` object: settings from the environment (unless ``env`` is
    false), then the keywords of :func:`charm_kv.open`. Freed at the end of a ``with``
    block, on :meth:`close`, or when garbage collected."""

    __slots__ = ()
    _free = lib.charm_kv_options_free

    def __init__(self, env: bool = True, **settings: Any) -> None:
        unknown = settings.keys() - SETTERS.keys()
        if unknown:
            raise TypeError(f"unexpected keyword argument {min(unknown)!r}")
        ptr = POINTER(_b.charm_kv_options)()
        out = take_out()
        make = lib.charm_kv_options_from_env if env else lib.charm_kv_options_new
        check(make(byref(ptr), out.err_ptr), out)
        super().__init__(ptr)
        try:
            for name, setter in SETTERS.items():
                value = settings.get(name, UNSET)
                if value is UNSET or (value is None and name not in NONE_IS_A_VALUE):
                    continue
                setter(ptr, value)
        except BaseException:
            self.close()
            raise
