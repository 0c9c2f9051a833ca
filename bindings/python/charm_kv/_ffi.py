"""Loads the charm-kv shared library and declares every function on it.

The library is the copy bundled in this package (put there when the wheel was built),
or the file named by the ``CHARM_KV_LIBRARY`` environment variable. Nothing is ever
compiled here. Every function gets the ``argtypes`` and ``restype`` generated from the
C header (``_bindings.py``), so ctypes never guesses a width or truncates a pointer.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any, Callable

from . import _bindings

#: The environment variable naming another copy of the library to load.
LIBRARY_ENV = "CHARM_KV_LIBRARY"

if sys.platform == "win32":
    _LIBRARY_NAME = "charm_kv.dll"
elif sys.platform == "darwin":
    _LIBRARY_NAME = "libcharm_kv.dylib"
else:
    _LIBRARY_NAME = "libcharm_kv.so"

if ctypes.sizeof(ctypes.c_void_p) != 8:
    raise ImportError("charm_kv needs a 64-bit Python")


def _library_path() -> Path:
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = Path(override).expanduser().resolve()
        if not path.is_file():
            raise ImportError(f"{LIBRARY_ENV}={override}: no such file")
        return path
    path = Path(__file__).resolve().parent / "lib" / _LIBRARY_NAME
    if not path.is_file():
        raise ImportError(
            f"the charm-kv library is missing from the package ({path}). Install the "
            f"package with `pip install ./bindings/python` (which builds and bundles it), "
            f"or point {LIBRARY_ENV} at a built {_LIBRARY_NAME}"
        )
    return path


def _load(path: Path) -> ctypes.CDLL:
    try:
        # An absolute path: no search of LD_LIBRARY_PATH, PATH or the working directory.
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise ImportError(f"cannot load the charm-kv library {path}: {exc}") from exc
    for name, (restype, argtypes) in _bindings.FUNCTIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(
                f"{path} lacks {name}: it is not the charm-kv {_bindings.HEADER_VERSION} "
                "library these bindings were generated for"
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


LIBRARY_PATH = _library_path()
lib: Any = _load(LIBRARY_PATH)

#: The version of the loaded library, such as "0.2.0".
LIBRARY_VERSION: str = lib.charm_kv_version().decode("ascii")


def _check_version() -> None:
    # Before 1.0 only the same MAJOR.MINOR is ABI-compatible; after it, the same MAJOR.
    loaded = tuple(int(part) for part in LIBRARY_VERSION.split(".")[:2])
    wanted = _bindings.HEADER_VERSION_INFO[:2]
    same = loaded == wanted if wanted[0] == 0 else loaded[0] == wanted[0]
    if not same:
        raise ImportError(
            f"{LIBRARY_PATH} is charm-kv {LIBRARY_VERSION}, but these bindings need "
            f"{_bindings.HEADER_VERSION} (same {'MAJOR.MINOR' if wanted[0] == 0 else 'MAJOR'})"
        )


_check_version()


def _bytes_from_address() -> Any:
    """``PyBytes_FromStringAndSize`` bound with a ``Py_ssize_t`` size.

    ``ctypes.string_at`` takes its size as a C ``int``; this takes the full width, and
    is no slower. Called with the GIL held (it is a Python C-API function).
    """
    try:
        fn = ctypes.pythonapi.PyBytes_FromStringAndSize
    except AttributeError:  # not CPython
        return ctypes.string_at
    fn.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    fn.restype = ctypes.py_object
    return fn


#: bytes_at(address, size) -> a new bytes object copied from library memory.
bytes_at: Callable[[int | None, int], bytes] = _bytes_from_address()
