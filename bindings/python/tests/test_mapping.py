"""KV as a MutableMapping[bytes, bytes]: reads, writes, iteration, views, batches."""

from __future__ import annotations

import os
from collections.abc import ItemsView, KeysView, MutableMapping, ValuesView

import pytest

import charm_kv


def test_is_a_mutable_mapping_and_context_manager(open_kv):
    kv = open_kv()
    assert isinstance(kv, MutableMapping)
    with kv as same:
        assert same is kv
        assert not kv.closed
    assert kv.closed
    assert repr(kv) == "<charm_kv.KV 'test' (closed)>"


def test_normal_durability_reads_its_writes_across_reopen(open_kv):
    with open_kv("normal", durability="normal") as kv:
        kv[b"k"] = b"v"
    with open_kv("normal", durability="full") as kv:
        assert kv[b"k"] == b"v"


def test_set_get_delete(kv):
    kv[b"name"] = b"charm"
    assert kv[b"name"] == b"charm"
    assert kv.get(b"name") == b"charm"
    assert b"name" in kv
    kv[b"name"] = b"replaced"
    assert kv[b"name"] == b"replaced"
    del kv[b"name"]
    assert b"name" not in kv
    assert kv.get(b"name") is None
    assert kv.get(b"name", b"fallback") == b"fallback"
    with pytest.raises(KeyError):
        kv[b"name"]
    with pytest.raises(KeyError):
        del kv[b"name"]
    kv.delete(b"name")  # missing keys are fine for delete()


def test_str_is_utf8_and_bytes_come_back(kv):
    kv["clé"] = "välue ✓"
    assert kv["clé"] == "välue ✓".encode()
    assert kv["clé".encode()] == "välue ✓".encode()
    assert list(kv) == ["clé".encode()]
    assert type(kv["clé"]) is bytes


def test_bytes_like_arguments(kv):
    kv[bytearray(b"ba")] = memoryview(b"mv")
    assert kv[memoryview(b"ba")] == b"mv"
    assert bytearray(b"ba") in kv

    class Sub(bytes):
        pass

    kv[Sub(b"sub")] = Sub(b"value")
    assert kv[b"sub"] == b"value"
    assert type(kv[Sub(b"sub")]) is bytes


@pytest.mark.parametrize("bad", [1, 1.5, None, object(), ["a"]])
def test_other_types_are_type_errors(kv, bad):
    with pytest.raises(TypeError):
        kv[bad] = b"v"
    with pytest.raises(TypeError):
        kv[b"k"] = bad
    with pytest.raises(TypeError):
        kv[bad]
    assert bad not in kv


def test_binary_keys_and_values(kv):
    every_byte = bytes(range(256))
    kv[every_byte] = every_byte[::-1]
    kv[b"\x00"] = b"\x00\x00"
    kv[b"nul\x00inside"] = b"a\x00b"
    assert kv[every_byte] == every_byte[::-1]
    assert kv[b"\x00"] == b"\x00\x00"
    assert kv[b"nul\x00inside"] == b"a\x00b"
    assert b"nul" not in kv
    blob = os.urandom(4096)
    kv[blob[:64]] = blob
    assert kv[blob[:64]] == blob


def test_empty_values_and_the_refused_empty_key(kv):
    kv[b"empty"] = b""
    assert kv[b"empty"] == b""
    assert kv.get(b"empty", b"default") == b""
    assert b"empty" in kv
    # The empty key is refused everywhere, as Charm's kv (Badger) refuses it.
    for attempt in (
        lambda: kv.__setitem__(b"", b"v"),
        lambda: kv.__setitem__("", ""),
        lambda: kv[b""],
        lambda: kv.get(b""),
        lambda: kv.__delitem__(b""),
    ):
        with pytest.raises(charm_kv.InvalidArgumentError, match="key cannot be empty"):
            attempt()
    with pytest.raises(ValueError, match="key cannot be empty"), kv.batch() as batch:
        batch[b"a"] = b"1"
        batch[b""] = b"2"
    assert dict(kv.items()) == {b"empty": b""}


def test_large_values(kv):
    big = os.urandom(16 * 1024 * 1024)
    kv[b"big"] = big
    assert kv[b"big"] == big
    assert list(kv.values()) == [big]
    longest_key = b"k" * 65000
    kv[longest_key] = b"v"
    assert kv[longest_key] == b"v"


def test_iteration_is_in_key_order(kv):
    keys = [b"b", b"a", b"\xff", b"\x00", b"aa", b"B", b"\x01", b"ab"]
    for key in keys:
        kv[key] = key + b"!"
    ordered = sorted(keys)
    assert list(kv) == ordered
    assert list(reversed(kv)) == ordered[::-1]
    assert list(kv.keys()) == ordered
    assert list(kv.keys(reverse=True)) == ordered[::-1]
    assert list(kv.values()) == [k + b"!" for k in ordered]
    assert list(kv.values(reverse=True)) == [k + b"!" for k in ordered[::-1]]
    assert list(kv.items()) == [(k, k + b"!") for k in ordered]
    assert list(kv.items(reverse=True)) == [(k, k + b"!") for k in ordered[::-1]]
    assert list(reversed(kv.items())) == [(k, k + b"!") for k in ordered[::-1]]
    assert len(kv) == len(keys)


def test_views_behave_like_dict_views(kv):
    kv.update({b"a": b"1", b"b": b"2"})
    keys, values, items = kv.keys(), kv.values(), kv.items()
    assert isinstance(keys, KeysView)
    assert isinstance(values, ValuesView)
    assert isinstance(items, ItemsView)
    assert keys == {b"a", b"b"}
    assert keys & {b"a", b"z"} == {b"a"}
    assert b"a" in keys and b"z" not in keys
    assert (b"a", b"1") in items and (b"a", b"2") not in items
    assert b"2" in values
    assert len(keys) == len(values) == len(items) == 2
    kv[b"c"] = b"3"  # views are live
    assert len(keys) == 3
    assert kv == {b"a": b"1", b"b": b"2", b"c": b"3"}


def test_iteration_reads_one_snapshot(kv):
    for i in range(10):
        kv[b"%02d" % i] = b"x"
    seen = []
    for key in kv:
        seen.append(key)
        kv[b"%02d" % (len(seen) + 50)] = b"new"  # not seen by this iteration
        kv.delete(b"09")
    assert len(seen) == 10
    assert b"09" not in kv


def test_iterator_can_be_closed_early(kv):
    kv.update({b"a": b"1", b"b": b"2"})
    it = iter(kv.items())
    assert next(it) == (b"a", b"1")
    it.close()
    assert list(it) == []


def test_mutable_mapping_mixins(kv):
    assert kv.setdefault(b"k", b"v") == b"v"
    assert kv.setdefault(b"k", b"other") == b"v"
    assert kv.pop(b"k") == b"v"
    assert kv.pop(b"k", None) is None
    with pytest.raises(KeyError):
        kv.pop(b"k")
    kv[b"x"] = b"1"
    assert kv.popitem() == (b"x", b"1")
    with pytest.raises(KeyError):
        kv.popitem()


def test_update_is_one_batch(kv):
    kv.update({"a": "1"}, b="2")
    kv.update([(b"c", b"3")])
    kv.update(kv.items())  # a view of itself: reads a snapshot
    assert dict(kv) == {b"a": b"1", b"b": b"2", b"c": b"3"}
    with pytest.raises(TypeError):
        kv.update({b"d": b"4", b"e": 5})
    assert b"d" not in kv  # nothing of a failed update is written


def test_clear(kv):
    kv.update({bytes([i]): b"v" for i in range(100)})
    assert len(kv) == 100
    kv.clear()
    assert len(kv) == 0
    assert list(kv) == []


def test_batch_commits_on_success(kv):
    kv[b"gone"] = b"soon"
    with kv.batch() as batch:
        batch[b"a"] = b"1"
        batch["b"] = "2"
        del batch[b"gone"]
        assert batch[b"a"] == b"1"  # the batch sees its own writes
        assert b"gone" not in batch
        assert batch.get(b"gone") is None
        assert b"a" not in kv  # nothing written before the commit
        assert kv[b"gone"] == b"soon"
    assert batch.closed
    assert dict(kv) == {b"a": b"1", b"b": b"2"}


def test_batch_rolls_back_on_exception(kv):
    kv[b"keep"] = b"me"
    with pytest.raises(RuntimeError, match="boom"), kv.batch() as batch:
        batch[b"new"] = b"x"
        batch.delete(b"keep")
        raise RuntimeError("boom")
    assert batch.closed
    assert dict(kv) == {b"keep": b"me"}


def test_batch_explicit_commit_and_rollback(kv):
    batch = kv.batch()
    batch[b"a"] = b"1"
    batch.commit()
    assert kv[b"a"] == b"1"
    with pytest.raises(charm_kv.ClosedError):
        batch[b"b"] = b"2"
    with pytest.raises(charm_kv.ClosedError):
        batch.commit()
    batch.rollback()  # a no-op now

    batch = kv.batch()
    batch[b"b"] = b"2"
    batch.rollback()
    batch.rollback()
    assert b"b" not in kv

    with kv.batch() as batch:
        batch[b"c"] = b"3"
        batch.commit()  # committing inside the block is fine
    assert kv[b"c"] == b"3"

    with pytest.raises(KeyError), kv.batch() as batch:
        del batch[b"missing"]


def test_batch_dropped_without_commit_writes_nothing(kv):
    batch = kv.batch()
    batch[b"lost"] = b"x"
    del batch
    assert b"lost" not in kv


def test_databases_are_separate_and_listed(open_kv, data_dir):
    one, two = open_kv("one"), open_kv("two")
    one[b"k"] = b"1"
    two[b"k"] = b"2"
    assert (one[b"k"], two[b"k"]) == (b"1", b"2")
    assert charm_kv.list_databases(env=False, data_dir=data_dir) == ["one", "two"]
    # Not under an open store: its writes would go into a deleted file.
    with pytest.raises(charm_kv.BusyError, match='"two" is open'):
        charm_kv.delete_database("two", env=False, data_dir=data_dir)
    two[b"after"] = b"kept"
    two.close()
    charm_kv.delete_database("two", env=False, data_dir=data_dir)
    assert charm_kv.list_databases(env=False, data_dir=data_dir) == ["one"]


def test_data_persists_across_opens(open_kv):
    with open_kv("persist") as kv:
        kv[b"k"] = b"v"
    with open_kv("persist") as kv:
        assert kv[b"k"] == b"v"


def test_backup(kv, tmp_path):
    kv[b"backup-key-in-plain-text"] = b"a distinctive plain-text value"
    target = tmp_path / "copy.sqlite"
    kv.backup(target)
    data = target.read_bytes()
    assert data.startswith(b"SQLite format 3")
    assert b"plain-text" not in data  # still encrypted
    with pytest.raises(charm_kv.InvalidArgumentError):
        kv.backup(target)  # exists


def test_local_identity_without_explicit_keys(data_dir):
    # The default: a local identity and encrypt key generated on first use.
    with charm_kv.open("default-keys", env=False, data_dir=data_dir) as kv:
        kv[b"k"] = b"v"
    with charm_kv.open("default-keys", env=False, data_dir=data_dir) as kv:
        assert kv[b"k"] == b"v"
    assert (data_dir / "localhost" / "charm_ed25519").is_file()


def test_environment_settings(data_dir, monkeypatch):
    monkeypatch.setenv("CHARM_DATA_DIR", str(data_dir))
    with charm_kv.open("from-env") as kv:
        kv[b"k"] = b"v"
    assert charm_kv.list_databases() == ["from-env"]
    assert (data_dir / "localhost" / "charm-kv" / "from-env.sqlite").is_file()


def test_pending_writes_count_local_writes(kv):
    assert kv.pending_writes() == 0
    kv[b"a"] = b"1"
    assert kv.pending_writes() >= 1


def test_encrypt_key_rotation(open_kv):
    from conftest import OTHER_KEY, TEST_KEY

    with open_kv("rotate") as kv:
        kv[b"old"] = b"1"
    with open_kv("rotate", encrypt_keys=[OTHER_KEY, TEST_KEY]) as kv:
        assert kv[b"old"] == b"1"
        kv[b"new"] = b"2"
        assert dict(kv) == {b"new": b"2", b"old": b"1"}
