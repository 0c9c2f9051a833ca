"""Prefix and seek: ``keys``, ``values`` and ``items`` with ``prefix``, ``start`` and
``reverse``, over ``charm_kv_range``."""

from __future__ import annotations

import pytest

import charm_kv

KEYS = [b"a", b"app", b"apple", b"apply", b"apt", b"b", b"ba"]


@pytest.fixture
def filled(kv):
    kv.update({k: b"v-" + k for k in KEYS})
    return kv


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (None, KEYS),
        (b"", KEYS),
        (b"a", [b"a", b"app", b"apple", b"apply", b"apt"]),
        (b"app", [b"app", b"apple", b"apply"]),
        ("app", [b"app", b"apple", b"apply"]),  # str is UTF-8, as for keys
        (bytearray(b"apple"), [b"apple"]),
        (b"c", []),
        (b"applez", []),
    ],
)
def test_keys_with_prefix(filled, prefix, expected):
    assert list(filled.keys(prefix=prefix)) == expected
    assert list(filled.keys(reverse=True, prefix=prefix)) == expected[::-1]
    assert list(filled.items(prefix=prefix)) == [(k, b"v-" + k) for k in expected]
    assert list(filled.values(prefix=prefix)) == [b"v-" + k for k in expected]


@pytest.mark.parametrize(
    ("prefix", "start", "reverse", "expected"),
    [
        # Seek: at the key if present, else the next one in the order.
        (None, b"apple", False, [b"apple", b"apply", b"apt", b"b", b"ba"]),
        (None, b"applf", False, [b"apply", b"apt", b"b", b"ba"]),
        (None, b"applf", True, [b"apple", b"app", b"a"]),
        (None, b"zz", False, []),
        (None, b"zz", True, KEYS[::-1]),
        # The prefix bounds the seek.
        (b"ap", b"apple", False, [b"apple", b"apply", b"apt"]),
        (b"ap", b"apple", True, [b"apple", b"app"]),
        (b"ap", b"b", True, [b"apt", b"apply", b"apple", b"app"]),
        (b"ap", b"b", False, []),
        # An empty start is no start.
        (b"ap", b"", True, [b"apt", b"apply", b"apple", b"app"]),
    ],
)
def test_start_key(filled, prefix, start, reverse, expected):
    view = filled.keys(reverse, prefix=prefix, start=start)
    assert list(view) == expected
    # The view is the range: its length, membership and other order.
    assert len(view) == len(expected)
    assert list(reversed(view)) == expected[::-1]
    for key in KEYS:
        assert (key in view) == (key in expected)
    items = filled.items(reverse, prefix=prefix, start=start)
    assert list(items) == [(k, b"v-" + k) for k in expected]
    assert list(reversed(items)) == [(k, b"v-" + k) for k in expected[::-1]]
    assert len(items) == len(expected)
    values = filled.values(reverse, prefix=prefix, start=start)
    assert list(reversed(values)) == [b"v-" + k for k in expected[::-1]]


def test_range_views_follow_writes_and_membership_checks_values(filled):
    view = filled.keys(prefix=b"ap")
    assert len(view) == 4
    filled[b"apricot"] = b"v-apricot"
    del filled[b"apple"]
    assert list(view) == [b"app", b"apply", b"apricot", b"apt"]
    assert len(view) == 4
    items = filled.items(prefix=b"ap")
    assert (b"apt", b"v-apt") in items
    assert (b"apt", b"other") not in items
    assert (b"a", b"v-a") not in items  # in the store, not in the range
    assert b"a" not in view and b"a" in filled
    assert 7 not in view and ("apt",) not in items


def test_a_bad_range_is_refused(filled):
    with pytest.raises(charm_kv.InvalidArgumentError, match="range prefix is 65001 bytes"):
        list(filled.keys(prefix=b"a" * 65001))
    with pytest.raises(charm_kv.InvalidArgumentError, match="range start"):
        len(filled.items(start=b"a" * 65001))
    with pytest.raises(TypeError):
        filled.keys(prefix=5)  # type: ignore[arg-type]
    # Nothing changed.
    assert list(filled.keys()) == KEYS
