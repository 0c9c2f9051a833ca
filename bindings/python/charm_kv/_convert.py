"""Python arguments as the C ABI takes them: bytes, NUL-terminated text, paths, bounds."""

from __future__ import annotations

import os
from typing import Union

from ._errors import InvalidArgumentError

#: What keys and values may be given as: ``str`` is encoded as UTF-8.
BytesLike = Union[bytes, bytearray, memoryview, str]
PathLike = Union[str, "os.PathLike[str]"]


def to_bytes(obj: object, what: str) -> bytes:
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, str):
        return obj.encode("utf-8")
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"{what} must be bytes or str, not {type(obj).__name__}")


def c_text(obj: object, what: str) -> bytes:
    """NUL-terminated UTF-8 for names, hosts and key types."""
    if not isinstance(obj, str):
        raise TypeError(f"{what} must be a str, not {type(obj).__name__}")
    if "\0" in obj:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return obj.encode("utf-8")


def c_path(obj: object, what: str) -> bytes:
    """A file-system path, as the bytes the OS uses (the library wants UTF-8)."""
    path = os.fsencode(obj)  # type: ignore[arg-type]
    if b"\0" in path:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return path


#: The longest bound the library accepts (a year).
MAX_TIMEOUT = 365 * 24 * 3600


def millis(seconds: float | None) -> int:
    """A bound in seconds as the C ABI's milliseconds; 0 (``None``) keeps it as is."""
    if seconds is None:
        return 0
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"a timeout is a number of seconds, not {type(seconds).__name__}")
    if not 0.001 <= seconds <= MAX_TIMEOUT:
        raise InvalidArgumentError(f"a timeout is from 1 ms to a year, not {seconds!r} s")
    return round(seconds * 1000)
