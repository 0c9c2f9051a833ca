"""Status codes become exceptions in one place; closed handles fail cleanly."""

from __future__ import annotations

import gc
import pickle
import sqlite3

import pytest
from conftest import OTHER_KEY, TEST_KEY

import charm_kv
from charm_kv import Status
from charm_kv._errors import EXCEPTIONS, take_error


def test_every_status_has_its_exception_class():
    for status in Status:
        if status is Status.OK:
            continue
        cls = EXCEPTIONS[status]
        assert issubclass(cls, charm_kv.Error)
        assert cls.default_status is status
        assert cls.__module__ == "charm_kv"
        assert getattr(charm_kv, cls.__name__) is cls
    assert len(set(EXCEPTIONS.values())) == len(Status) - 1


def test_unknown_status_is_internal():
    error = take_error(999, None)
    assert type(error) is charm_kv.InternalError
    assert error.status == 999
    assert error.message == "unknown status"


def test_missing_key_is_a_key_error_and_a_charm_kv_error(kv):
    with pytest.raises(KeyError) as info:
        kv[b"missing"]
    error = info.value
    assert isinstance(error, charm_kv.NotFoundError)
    assert isinstance(error, charm_kv.Error)
    assert error.status is Status.NOT_FOUND
    assert error.key == b"missing"
    assert error.args == (b"missing",)
    assert str(error) == "b'missing'"  # as a dict's KeyError
    with pytest.raises(KeyError) as info:
        kv["missing str"]
    assert info.value.args == ("missing str",)  # the key as given
    with pytest.raises(KeyError) as info:
        del kv["missing str"]
    assert info.value.args == ("missing str",)


def test_invalid_arguments_are_value_errors_with_the_library_message(open_kv):
    for name in ("../escape", "a/b", ".", "x" * 201, "ctrl\x01"):
        with pytest.raises(charm_kv.InvalidArgumentError) as info:
            open_kv(name)
        assert isinstance(info.value, ValueError)
        assert info.value.status is Status.INVALID_ARGUMENT
        assert info.value.message.startswith("invalid argument")
    with pytest.raises(charm_kv.InvalidArgumentError, match="path separator"):
        open_kv("../escape")
    with pytest.raises(charm_kv.InvalidArgumentError, match="NUL"):
        open_kv("nul\x00name")


def test_the_empty_name_opens_the_default_database(open_kv):
    unnamed = open_kv("")
    assert unnamed.name == "charm.sh.kv.user.default"
    unnamed[b"k"] = b"v"
    assert open_kv("charm.sh.kv.user.default")[b"k"] == b"v"


def test_size_limits(kv):
    with pytest.raises(charm_kv.InvalidArgumentError, match="65000"):
        kv[b"k" * 65001] = b"v"
    with pytest.raises(charm_kv.InvalidArgumentError), kv.batch() as batch:
        batch[b"k" * 65001] = b"v"


def test_bad_options(data_dir):
    with pytest.raises(charm_kv.InvalidArgumentError, match="port"):
        charm_kv.open("x", env=False, data_dir=data_dir, ssh_port=70000)
    with pytest.raises(charm_kv.InvalidArgumentError):
        charm_kv.open("x", env=False, data_dir=data_dir, key_type="dsa")
    with pytest.raises(charm_kv.InvalidArgumentError):
        charm_kv.open("x", env=False, data_dir=data_dir, host="bad/host")
    with pytest.raises(charm_kv.InvalidArgumentError, match="32"):
        charm_kv.open("x", env=False, data_dir=data_dir, encrypt_keys=["short"])
    with pytest.raises(TypeError):
        charm_kv.open("x", env=False, data_dir=data_dir, encrypt_keys="one key, not a list")
    with pytest.raises(TypeError):
        charm_kv.open("x", env=False, data_dir=data_dir, no_such_option=1)
    with pytest.raises(TypeError):
        charm_kv.open(b"bytes name", env=False, data_dir=data_dir)
    for bad in (0, -1, float("nan"), 10**12):
        with pytest.raises(charm_kv.InvalidArgumentError, match="timeout"):
            charm_kv.open("x", env=False, data_dir=data_dir, sync_timeout=bad)
    with pytest.raises(TypeError):
        charm_kv.open("x", env=False, data_dir=data_dir, request_timeout="30s")
    with pytest.raises(charm_kv.InvalidArgumentError, match="durability"):
        charm_kv.open("x", env=False, data_dir=data_dir, durability="fast")


def test_malformed_environment(data_dir, monkeypatch):
    monkeypatch.setenv("CHARM_SSH_PORT", "not a number")
    with pytest.raises(charm_kv.InvalidArgumentError, match="CHARM_SSH_PORT"):
        charm_kv.open("x", data_dir=data_dir)
    monkeypatch.delenv("CHARM_SSH_PORT")
    monkeypatch.setenv("CHARM_KV_SYNC_TIMEOUT", "soon")
    with pytest.raises(charm_kv.InvalidArgumentError, match="CHARM_KV_SYNC_TIMEOUT"):
        charm_kv.open("x", data_dir=data_dir)
    monkeypatch.setenv("CHARM_KV_SYNC_TIMEOUT", "")
    monkeypatch.setenv("CHARM_KV_REQUIRE_TLS", "maybe")
    with pytest.raises(charm_kv.InvalidArgumentError, match="CHARM_KV_REQUIRE_TLS"):
        charm_kv.open("x", data_dir=data_dir)
    monkeypatch.delenv("CHARM_KV_REQUIRE_TLS")
    monkeypatch.setenv("CHARM_KV_DURABILITY", "sometimes")
    with pytest.raises(charm_kv.InvalidArgumentError, match="CHARM_KV_DURABILITY"):
        charm_kv.open("x", data_dir=data_dir)
    monkeypatch.setenv("CHARM_KV_DURABILITY", "normal")
    with charm_kv.open("x", data_dir=data_dir) as kv:
        kv[b"k"] = b"v"
        assert kv[b"k"] == b"v"
    monkeypatch.delenv("CHARM_KV_DURABILITY")
    # env=False ignores the environment.
    charm_kv.open("x", env=False, data_dir=data_dir).close()


def test_wrong_encrypt_key(open_kv):
    open_kv("keyed")[b"k"] = b"v"
    with pytest.raises(charm_kv.EncryptionKeyError) as info:
        open_kv("keyed", encrypt_keys=[OTHER_KEY])
    assert info.value.status is Status.KEYS
    assert info.value.message


def test_not_a_database(open_kv, data_dir):
    path = data_dir / "localhost" / "charm-kv" / "junk.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an SQLite file " * 100)
    with pytest.raises(charm_kv.CorruptError, match="not a database") as info:
        open_kv("junk")
    assert info.value.status is Status.CORRUPT


def test_tampered_value_fails_authentication(open_kv, data_dir):
    with open_kv("tampered") as kv:
        kv[b"k"] = b"value"
    # Closed first: Python's SQLite and charm-kv's must not have the file open at once
    # in one process (they do not see each other's POSIX locks).
    with sqlite3.connect(data_dir / "localhost" / "charm-kv" / "tampered.sqlite") as db:
        for key, value in db.execute("SELECT key, value FROM kv").fetchall():
            tampered = value[:-1] + bytes([value[-1] ^ 1])
            db.execute("UPDATE kv SET value = ? WHERE key = ?", (tampered, key))
    db.close()
    kv = open_kv("tampered")
    with pytest.raises(charm_kv.CorruptError, match="authentication"):
        kv[b"k"]
    with pytest.raises(charm_kv.CorruptError, match="authentication"):
        kv.get(b"k")
    with pytest.raises(charm_kv.CorruptError):
        b"k" in kv  # noqa: B015 - the lookup is the test
    it = iter(kv.items())
    with pytest.raises(charm_kv.CorruptError):
        next(it)


def test_foreign_sqlite_database_is_not_adopted(open_kv, data_dir):
    path = data_dir / "localhost" / "kv" / "notes.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("INSERT INTO notes (body) VALUES ('mine')")
    db.close()
    before = path.read_bytes()
    with pytest.raises(charm_kv.CorruptError, match="not a charm-kv database"):
        open_kv("notes")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.sqlite"]


def test_unreadable_row_is_reported_after_the_readable_ones(open_kv):
    with open_kv("rows") as kv:
        kv[b"a"] = b"1"
        kv[b"c"] = b"3"
    with open_kv("rows", encrypt_keys=[OTHER_KEY, TEST_KEY]) as kv:
        kv[b"b"] = b"2"  # sealed with OTHER_KEY, which the next open lacks
    kv = open_kv("rows")
    with pytest.raises(charm_kv.CorruptError, match="1 of 3 stored keys"):
        len(kv)
    items = []
    with pytest.raises(charm_kv.CorruptError, match="does not decrypt"):
        for item in kv.items():
            items.append(item)
    assert items == [(b"a", b"1"), (b"c", b"3")]
    assert kv[b"c"] == b"3"


def test_sync_and_reset_need_a_server(kv):
    with pytest.raises(charm_kv.NotConfiguredError, match="CHARM_HOST") as info:
        kv.sync()
    assert info.value.status is Status.NOT_CONFIGURED
    with pytest.raises(charm_kv.NotConfiguredError):
        kv.sync(lambda *args: None)
    with pytest.raises(charm_kv.NotConfiguredError):
        kv.reset(force=True)


def test_delete_missing_database(data_dir):
    with pytest.raises(charm_kv.NotFoundError) as info:
        charm_kv.delete_database("nothing", env=False, data_dir=data_dir)
    assert isinstance(info.value, KeyError)
    assert info.value.key is None
    # Its own message, naming the database (not "key not found").
    assert 'no database named "nothing"' in str(info.value)


def test_errors_pickle(kv):
    with pytest.raises(charm_kv.NotFoundError) as missing:
        kv[b"missing"]
    with pytest.raises(charm_kv.NotConfiguredError) as local:
        kv.sync()
    for error in (missing.value, local.value):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (copy.status, copy.message, copy.args) == (error.status, error.message, error.args)
    assert pickle.loads(pickle.dumps(missing.value)).key == b"missing"


def test_closed_store(open_kv):
    kv = open_kv()
    kv[b"k"] = b"v"
    it = iter(kv.items())
    batch = kv.batch()
    batch[b"b"] = b"1"
    kv.close()
    kv.close()  # idempotent
    assert kv.closed
    calls = [
        lambda: kv[b"k"],
        lambda: kv.get(b"k"),
        lambda: b"k" in kv,
        lambda: kv.__setitem__(b"k", b"v"),
        lambda: kv.__delitem__(b"k"),
        lambda: kv.delete(b"k"),
        lambda: len(kv),
        lambda: list(kv),
        lambda: list(kv.items()),
        lambda: kv.batch(),
        lambda: kv.sync(),
        lambda: kv.reset(),
        lambda: kv.pending_writes(),
        lambda: kv.clear(),
        lambda: kv.update({b"a": b"b"}),
        lambda: next(it),
        lambda: batch.commit(),
    ]
    for call in calls:
        with pytest.raises(charm_kv.ClosedError) as info:
            call()
        assert info.value.status is Status.CLOSED
        assert "closed" in info.value.message
    with kv:  # entering a closed store is harmless, and so is leaving it
        pass


def test_iterators_and_batches_outlive_the_store_object(data_dir):
    options = {"env": False, "data_dir": data_dir, "encrypt_keys": [OTHER_KEY]}
    kv = charm_kv.open("outlive", **options)
    kv.update({b"a": b"1", b"b": b"2"})
    it = iter(kv.items())
    batch = kv.batch()
    del kv  # frees the store handle; the iterator and the batch keep the database open
    gc.collect()
    assert list(it) == [(b"a", b"1"), (b"b", b"2")]
    batch[b"c"] = b"3"
    batch.commit()
    with charm_kv.open("outlive", **options) as kv:
        assert kv[b"c"] == b"3"
