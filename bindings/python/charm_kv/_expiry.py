"""Expiry arguments as the C ABI takes them: a TTL in seconds (or a ``timedelta``) and
an absolute time in unix seconds (or an aware ``datetime``), both as signed 64-bit
milliseconds. Range errors beyond 64 bits are caught here (ctypes would wrap them);
the library checks the rest (zero or negative TTLs, times after the year 9999)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Union

from ._errors import InvalidArgumentError

#: A TTL: seconds (int or float) or a ``timedelta``.
TTL = Union[int, float, timedelta]
#: An absolute time: unix seconds (int or float) or a timezone-aware ``datetime``.
When = Union[int, float, datetime]

_INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _int64(ms: float, what: str) -> int:
    if math.isnan(ms) or not -_INT64_MAX <= ms <= _INT64_MAX:
        raise InvalidArgumentError(f"{what} is out of range: {ms!r} ms")
    return int(ms)


def ttl_ms(ttl: object) -> int:
    """A TTL as milliseconds, rounded up (so a positive TTL is never 0)."""
    if isinstance(ttl, timedelta):
        seconds: float = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        seconds = ttl
    else:
        raise TypeError(f"a TTL is seconds or a timedelta, not {type(ttl).__name__}")
    if isinstance(seconds, float) and math.isnan(seconds):
        raise InvalidArgumentError("a TTL cannot be NaN")
    ms = seconds * 1000
    return _int64(math.ceil(ms) if ms > 0 and not math.isinf(ms) else ms, "the TTL")


def unix_ms(when: object) -> int:
    """An absolute time as unix milliseconds: exact for a ``datetime`` and for whole
    seconds (rounded down to the millisecond), to the nearest millisecond for a
    float (whose binary fraction is rarely exact)."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise InvalidArgumentError("a naive datetime is ambiguous: give it a timezone")
        return _int64((when - _EPOCH) // timedelta(milliseconds=1), "the time")
    if isinstance(when, int) and not isinstance(when, bool):
        return _int64(when * 1000, "the time")
    if isinstance(when, float):
        ms = when * 1000
        return _int64(ms if math.isinf(ms) or math.isnan(ms) else round(ms), "the time")
    raise TypeError(f"a time is unix seconds or a datetime, not {type(when).__name__}")


def from_unix_ms(ms: int) -> datetime:
    """Unix milliseconds as an aware UTC ``datetime`` (exact)."""
    return _EPOCH + timedelta(milliseconds=ms)
