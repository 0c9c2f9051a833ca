"""One KV shared by threads; two processes on one database; the GIL is released."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import TEST_KEY

import charm_kv


def test_threads_share_one_store(kv):
    threads, per_thread = 8, 60

    def work(t: int) -> None:
        for i in range(per_thread):
            key = f"t{t}-{i:03}".encode()
            kv[key] = key * 3
            assert kv[key] == key * 3
            neighbour = f"t{(t + 1) % threads}-000"
            assert kv.get(neighbour) in (None, neighbour.encode() * 3)
            if i % 20 == 0:
                with kv.batch() as batch:
                    batch[f"batch-{t}-{i}"] = b"x"
                assert len(list(kv.keys())) >= 1
        kv.delete(f"t{t}-000")

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, t) for t in range(threads)]:
            future.result()
    assert len(kv) == threads * (per_thread - 1) + threads * 3
    for t in range(threads):
        assert f"t{t}-000" not in kv
        assert kv[f"t{t}-{per_thread - 1:03}"] == f"t{t}-{per_thread - 1:03}".encode() * 3


def test_readers_see_consistent_snapshots_while_a_writer_runs(kv):
    kv.update({b"%03d" % i: b"0" for i in range(100)})
    stop = threading.Event()
    problems: list[str] = []

    def writer() -> None:
        generation = 0
        while not stop.is_set():
            generation += 1
            kv.update({b"%03d" % i: str(generation).encode() for i in range(100)})

    def reader() -> None:
        while not stop.is_set():
            values = set(kv.values())
            if len(values) != 1:  # one batch is all or nothing
                problems.append(f"mixed generations {sorted(values)[:3]}")

    workers = [threading.Thread(target=writer)]
    workers += [threading.Thread(target=reader) for _ in range(3)]
    for w in workers:
        w.start()
    time.sleep(1.0)
    stop.set()
    for w in workers:
        w.join()
    assert problems == []


def test_close_while_other_threads_call(open_kv):
    kv = open_kv("closing")
    kv[b"k"] = b"v"
    started = threading.Barrier(5)
    outcomes: list[str] = []

    def hammer() -> None:
        started.wait()
        try:
            while True:
                kv[b"k"]
                kv[b"w"] = b"x"
        except charm_kv.ClosedError:
            outcomes.append("closed")
        except BaseException as exc:  # anything else is a failure
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.2)
    kv.close()
    for t in threads:
        t.join(120)  # far above what a loaded machine needs: fail rather than hang
    assert outcomes == ["closed"] * 4


LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.readline()
    db.execute("COMMIT")
    """
)


def test_the_gil_is_released_during_library_calls(kv, data_dir):
    """A write blocked by another process's lock must not stop this process's threads.

    A child process takes the database's write lock with sqlite3; a thread's
    ``kv[...] = ...`` then waits inside the library (its busy timeout is 30 s). If the
    GIL were held meanwhile, this thread could not run to tell the child to release the
    lock, and the write would end in BusyError.

    (The child is a separate process on purpose: two copies of SQLite in one process,
    Python's and charm-kv's, do not see each other's POSIX locks.)
    """
    kv[b"k"] = b"v"
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(data_dir / "localhost" / "charm-kv" / "test.sqlite")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        done = threading.Event()
        errors: list[BaseException] = []

        def write() -> None:
            try:
                kv[b"k"] = b"after the lock"
            except BaseException as exc:
                errors.append(exc)
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        # Python code runs meanwhile: 50 turns of this thread (at least half a second,
        # for the writer to reach the lock). With the GIL held by the waiting write,
        # they could only end after its busy timeout, which fails it. Counted in turns,
        # not in a time window that a loaded machine may spend elsewhere.
        for _ in range(50):
            time.sleep(0.01)
        assert not done.is_set(), "the write should be waiting for the lock"
        assert kv[b"k"] == b"v"  # readers are not blocked (WAL)
        locker.stdin.write("release\n")
        locker.stdin.flush()
        writer.join(30)
        assert locker.wait(30) == 0
    finally:
        if locker.poll() is None:
            locker.kill()
    assert errors == []
    assert kv[b"k"] == b"after the lock"


CHILD = textwrap.dedent(
    """
    import sys, charm_kv
    data_dir, key, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with charm_kv.open("shared", env=False, data_dir=data_dir, encrypt_keys=[key]) as kv:
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(count):
            kv[f"{prefix}{i:03}"] = f"from {prefix}"
            assert kv[f"{prefix}{i:03}"] == f"from {prefix}".encode()
        with kv.batch() as batch:
            batch[f"{prefix}-batch"] = b"done"
        print(len(kv), flush=True)
    """
)


def test_two_processes_on_one_database(open_kv, data_dir):
    kv = open_kv("shared")
    count = 40
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), TEST_KEY, "child", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        for i in range(count):  # writes interleave with the child's
            kv[f"parent{i:03}"] = "from parent"
        kv["parent-batch"] = b"done"
        out, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0
    assert int(out.strip()) >= count + 1  # the child saw at least its own keys
    assert len(kv) == 2 * count + 2
    assert kv[b"child000"] == b"from child"
    assert kv[b"child-batch"] == b"done"
    expected = [f"child{i:03}" for i in range(count)] + [f"parent{i:03}" for i in range(count)]
    expected += ["child-batch", "parent-batch"]
    assert list(kv) == sorted(key.encode() for key in expected)


def test_threads_opening_their_own_stores(data_dir):
    options = {"env": False, "data_dir": data_dir, "encrypt_keys": [TEST_KEY]}
    # Created first: concurrent first opens of a new database can fail with BusyError
    # at once (SQLite's switch to WAL mode does not wait for the busy timeout; a core
    # issue, reported).
    charm_kv.open("own", **options).close()

    def work(n: int) -> bytes:
        with charm_kv.open("own", **options) as kv:
            kv[f"{n}"] = f"{n}"
            return kv[f"{n}"]

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(work, range(4))) == [str(n).encode() for n in range(4)]
