"""charm_kv._handle: every object owning a library pointer frees it once, with the
right function, however its life ends."""

from __future__ import annotations

import contextlib
import gc
import sys

import pytest

import charm_kv
from charm_kv import _batch, _handle, _iter, _options, _store
from charm_kv._ffi import lib


class Recorder:
    """A stand-in for a library free function: records what it was given."""

    def __init__(self) -> None:
        self.freed: list[object] = []

    def __call__(self, ptr: object) -> None:
        self.freed.append(ptr)


def make(base: type = _handle.Handle):
    recorder = Recorder()

    class Fake(base):
        __slots__ = ()
        _free = recorder

    return Fake, recorder


@pytest.mark.parametrize("base", [_handle.Handle, _handle.LockedHandle])
def test_freed_once_by_close_with_or_collection(base):
    Fake, recorder = make(base)
    one = Fake("p1")
    assert not one.closed
    one.close()
    one.close()
    assert one.closed and recorder.freed == ["p1"]
    with pytest.raises(charm_kv.ClosedError):
        one._live()

    with Fake("p2") as two:
        assert two._live() == "p2"
    assert recorder.freed == ["p1", "p2"]
    del two
    gc.collect()
    assert recorder.freed == ["p1", "p2"]  # not again when collected

    three = Fake("p3")
    del three
    gc.collect()
    assert recorder.freed == ["p1", "p2", "p3"]


def test_a_taken_pointer_is_not_freed():
    Fake, recorder = make()
    handle = Fake("p")
    assert handle._take() == "p"
    assert handle.closed
    handle.close()
    del handle
    gc.collect()
    assert recorder.freed == []


def test_a_failed_init_leaves_nothing_to_free_and_prints_nothing(monkeypatch):
    Fake, recorder = make(_handle.LockedHandle)

    class Failing(Fake):
        __slots__ = ()

        def __init__(self) -> None:
            raise RuntimeError("before the pointer was set")

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with contextlib.suppress(RuntimeError):
        Failing()  # leaving the block drops the half-made object: __del__ runs now
    gc.collect()
    assert unraisable == []
    assert recorder.freed == []


def test_each_object_is_freed_by_its_own_function():
    assert _store.KV._free is lib.charm_kv_store_free
    assert _batch.Batch._free is lib.charm_kv_batch_free
    assert _iter.Cursor._free is lib.charm_kv_iter_free
    assert _options.Options._free is lib.charm_kv_options_free
    for cls in (_store.KV, _batch.Batch, _iter.Cursor, _options.Options):
        assert issubclass(cls, _handle.Handle)
    for cls in (_batch.Batch, _iter.Cursor):
        assert issubclass(cls, _handle.LockedHandle)


def test_objects_made_by_the_store_release_their_pointers(kv):
    kv.update({b"a": b"1", b"b": b"2"})
    it = iter(kv)
    assert next(it) == b"a"
    it.close()
    assert it.closed and it._ptr is None
    assert list(it) == []
    batch = kv.batch()
    batch[b"c"] = b"3"
    batch.commit()
    assert batch.closed and batch._ptr is None
    kv.close()
    assert kv.closed
    assert kv._ptr is not None  # closed, but freed only when collected
