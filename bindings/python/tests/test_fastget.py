"""charm_kv._fastget: the argtypes-free fast path of ``kv[key]`` and ``kv.get`` gives
what the ordinary call (``get_slow``: ``charm_kv_store_get`` with ``argtypes`` and an error
out-parameter) gives, for every kind of value and every error."""

from __future__ import annotations

import os
import sqlite3

import pytest

import charm_kv
from charm_kv import Status, _bindings, _fastget
from charm_kv._ffi import lib

BUF = _fastget.BUF_SIZE
#: Around the pooled buffer's size: in it, exactly filling it, and past it.
SIZES = [0, 1, BUF - 1, BUF, BUF + 1, 3 * BUF, 1 << 20]


def outcome(fn, store, key):
    """What a get did: ("value", bytes), ("missing",) or ("error", class, status, message)."""
    try:
        value = fn(store, key)
    except charm_kv.Error as error:
        return ("error", type(error), error.status, error.message)
    if value is None:
        return ("missing",)
    assert type(value) is bytes
    return ("value", value)


def both(store, key):
    """The outcome of the fast path, after checking that the slow path agrees and that
    the fast path put its pooled buffer back."""
    outcome(_fastget.get, store, key)  # leaves a buffer in the pool
    pooled = len(_fastget._POOL)
    assert pooled >= 1, "the pooled buffer was not given back"
    fast = outcome(_fastget.get, store, key)
    assert len(_fastget._POOL) == pooled, "the pooled buffer was not given back"
    assert outcome(_fastget.get_slow, store, key) == fast
    return fast


def test_the_fast_handle_skips_argument_conversion_but_reads_a_status():
    raw, declared = _fastget._get_into, lib.charm_kv_store_get_into
    assert raw.argtypes is None
    assert raw.restype is declared.restype is _bindings.FUNCTIONS["charm_kv_store_get_into"][0]
    assert declared.argtypes  # the declared function itself keeps its argtypes


def test_values_of_every_size_match_the_slow_path(kv):
    values = {b"size-%d" % size: os.urandom(size) for size in SIZES}
    kv.update(values)
    # Large and small in turn, so a pooled buffer is reused after a large value.
    for key in [*values, *reversed(values)]:
        assert both(kv._ptr, key) == ("value", values[key])
        assert kv[key] == kv.get(key) == values[key]


def test_missing_keys_match_the_slow_path(kv):
    kv[b"present"] = b"x" * (BUF + 1)
    for key in (b"missing", b"present\x00", b"k" * 65000):
        assert both(kv._ptr, key) == ("missing",)
        assert kv.get(key, 7) == 7
        with pytest.raises(charm_kv.NotFoundError) as info:
            kv[key]
        assert info.value.key == key


def test_the_empty_key_raises_what_the_slow_path_raises(kv):
    result = both(kv._ptr, b"")
    assert result[:3] == ("error", charm_kv.InvalidArgumentError, Status.INVALID_ARGUMENT)
    assert "key cannot be empty" in result[3]


def test_a_key_over_the_limit_raises_what_the_slow_path_raises(kv):
    result = both(kv._ptr, b"k" * 65001)
    assert result[:3] == ("error", charm_kv.InvalidArgumentError, Status.INVALID_ARGUMENT)
    assert "65000" in result[3]
    with pytest.raises(charm_kv.InvalidArgumentError, match="65000"):
        kv.get(b"k" * 65001)


def test_a_closed_store_raises_what_the_slow_path_raises(kv):
    kv[b"small"] = b"v"
    kv[b"large"] = b"v" * (BUF + 1)
    kv.close()
    for key in (b"small", b"large", b"missing"):
        result = both(kv._ptr, key)
        assert result[:3] == ("error", charm_kv.ClosedError, Status.CLOSED)
        assert "closed" in result[3]


def test_a_tampered_value_raises_what_the_slow_path_raises(open_kv, data_dir):
    values = {b"small": b"s" * 10, b"exact": b"e" * BUF, b"large": b"l" * (BUF + 1)}
    with open_kv("tampered") as kv:
        kv.update(values)
    # Closed first: Python's SQLite and charm-kv's must not have the file open at once.
    with sqlite3.connect(data_dir / "localhost" / "charm-kv" / "tampered.sqlite") as db:
        for key, value in db.execute("SELECT key, value FROM kv").fetchall():
            db.execute(
                "UPDATE kv SET value = ? WHERE key = ?", (value[:-1] + bytes([value[-1] ^ 1]), key)
            )
    db.close()
    kv = open_kv("tampered")
    for key in values:
        result = both(kv._ptr, key)
        assert result[:3] == ("error", charm_kv.CorruptError, Status.CORRUPT)
        assert "authentication" in result[3]
        with pytest.raises(charm_kv.CorruptError, match="authentication"):
            kv[key]
    kv[b"fine"] = b"after the errors"  # the pooled buffers still work
    assert both(kv._ptr, b"fine") == ("value", b"after the errors")
