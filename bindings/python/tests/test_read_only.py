"""open(read_only=True): reads an existing database, creates nothing, refuses writes."""

from __future__ import annotations

import pytest
from conftest import TEST_KEY

import charm_kv


def test_read_only_reads_and_refuses_every_write(open_kv, data_dir):
    writer = open_kv()
    writer[b"k"] = b"v"
    writer.close()

    kv = open_kv(read_only=True)
    assert kv[b"k"] == b"v"
    assert list(kv.keys()) == [b"k"]
    writes = {
        "set": lambda: kv.__setitem__(b"k", b"w"),
        "delete": lambda: kv.__delitem__(b"k"),
        "update": lambda: kv.update({b"a": b"1"}),
        "sync": kv.sync,
        "reset": lambda: kv.reset(force=True),
        "delete_database": lambda: charm_kv.delete_database(
            "test", env=False, data_dir=data_dir, encrypt_keys=[TEST_KEY], read_only=True
        ),
    }
    for what, write in writes.items():
        with pytest.raises(charm_kv.ReadOnlyError, match="read-only") as info:
            write()
        assert info.value.status is charm_kv.Status.READ_ONLY, what
    with pytest.raises(charm_kv.ReadOnlyError), kv.batch() as batch:
        batch[b"b"] = b"B"
    assert kv[b"k"] == b"v"
    assert b"a" not in kv and b"b" not in kv


def test_read_only_open_of_a_missing_database_creates_nothing(open_kv, data_dir):
    with pytest.raises(charm_kv.NotFoundError):
        open_kv("absent", read_only=True)
    assert not data_dir.exists()
    # Without given keys no identity or key is generated either.
    with pytest.raises(charm_kv.EncryptionKeyError):
        charm_kv.open("absent", env=False, data_dir=data_dir, read_only=True)
    assert not data_dir.exists()
