"""Expiry (TTL): set with a TTL or an absolute time, ttl / expires_at / expire /
expire_at / persist, in batches and JSON lines. Absolute times in the past (gone at
once) and at the end of the year 9999 replace any waiting."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest

import charm_kv

FAR = 253402300799.999  # the latest expiry accepted, in unix seconds
FAR_DT = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)


def test_ttl_expire_and_persist(kv):
    kv.set("session", "abc", ttl=600)
    left = kv.ttl("session")
    assert left is not None and 590 < left <= 600
    assert kv[b"session"] == b"abc"
    kv.set("plain", "p")
    assert kv.ttl("plain") is None and kv.expires_at("plain") is None
    with pytest.raises(KeyError):
        kv.ttl("nothing")
    kv.persist("plain")  # no expiry: nothing to do
    kv.expire_at("plain", FAR_DT)
    assert kv.expires_at("plain") == FAR_DT
    kv.persist("plain")
    assert kv.ttl("plain") is None
    kv.expire("plain", timedelta(minutes=1))
    left = kv.ttl("plain")
    assert left is not None and 50 < left <= 60
    assert kv[b"plain"] == b"p"
    kv.set("far", "f", expires_at=FAR)
    assert kv.expires_at("far") == FAR_DT


def test_a_time_in_the_past_hides_the_key_at_once(kv):
    kv.set("old", "o", expires_at=1)
    kv["session"] = "s"
    kv.expire_at("session", datetime(2000, 1, 1, tzinfo=timezone.utc))
    kv["kept"] = "k"
    for key in ("old", "session"):
        assert key not in kv and kv.get(key) is None
        with pytest.raises(charm_kv.NotFoundError):
            kv.persist(key)
        with pytest.raises(charm_kv.NotFoundError):
            kv.expire(key, 10)
    assert list(kv) == [b"kept"] and len(kv) == 1
    assert dict(kv.items()) == {b"kept": b"k"}


def test_bad_ttls_and_times_are_refused_and_change_nothing(kv):
    kv["k"] = "v"
    for ttl in (0, -1, 0.0, timedelta(0), 1e300, float("inf"), float("nan"), 10_000 * 366 * 86400):
        with pytest.raises(charm_kv.InvalidArgumentError):
            kv.set("x", "v", ttl=ttl)
        with pytest.raises(charm_kv.InvalidArgumentError):
            kv.expire("k", ttl)
    for when in (0, -5, FAR + 1, 1e300, datetime(2030, 1, 1)):
        with pytest.raises(charm_kv.InvalidArgumentError):
            kv.set("x", "v", expires_at=when)
    for wrong in ("10m", True, None):
        with pytest.raises(TypeError):
            kv.expire("k", wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kv.set("x", "v", ttl=1, expires_at=FAR)
    assert "x" not in kv and kv.ttl("k") is None


def test_batches_and_json_lines_carry_expiries(open_kv):
    kv = open_kv("source")
    with kv.batch() as batch:
        batch.set("t", "1", ttl=3600)
        batch.set("gone", "2", expires_at=1)
        batch.set("far", "3", expires_at=FAR_DT)
        batch.set("plain", "4")
        with pytest.raises(charm_kv.InvalidArgumentError):
            batch.set("bad", "5", ttl=-1)
    left = kv.ttl("t")
    assert left is not None and 3590 < left <= 3600
    assert "gone" not in kv and "bad" not in kv
    out = io.BytesIO()
    kv.export(out, prefix=b"far")
    assert json.loads(out.getvalue()) == {
        "key": "far",
        "value": "3",
        "key_base64": False,
        "value_base64": False,
        "expires_at_unix_ms": 253402300799999,
    }
    copy = open_kv("copy")
    lines = out.getvalue() + b'{"key":"stale","value":"x","expires_at_unix_ms":1000}\n'
    assert copy.import_(lines) == 1
    assert copy.expires_at("far") == FAR_DT and "stale" not in copy
