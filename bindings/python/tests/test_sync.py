"""Sync round trips through a real ``charm serve`` on 127.0.0.1 (see charm_server.py)."""

from __future__ import annotations

import io
import socket
import threading
from pathlib import Path

import pytest

import charm_kv
from charm_kv import SyncPhase

DB = "charm.sh.kv.user.default"


def identity_of(device_dir: Path) -> Path:
    """The SSH key a device generated for its account (shared to add a device)."""
    return device_dir / "127.0.0.1" / "charm_ed25519"


def test_two_devices_round_trip(charm_server, tmp_path):
    d1, d2 = tmp_path / "device1", tmp_path / "device2"
    with charm_kv.open(DB, **charm_server.client_options(d1)) as one:
        one[b"foo"] = b"original"
        one["binary"] = bytes(range(256))
        one[b"empty"] = b""
        assert one.pending_writes() == 0  # pushed right away (auto-push)

        second = charm_server.client_options(d2, identity_key=identity_of(d1))
        with charm_kv.open(DB, **second) as two:
            events = []
            two.sync(lambda phase, done, total: events.append((phase, done, total)))
            assert dict(two) == {
                b"foo": b"original",
                b"binary": bytes(range(256)),
                b"empty": b"",
            }
            assert events, "sync reported no progress"
            assert all(isinstance(phase, SyncPhase) for phase, _, _ in events)
            assert SyncPhase.DOWNLOAD in {phase for phase, _, _ in events}
            assert all(0 <= done <= total or total == 0 for _, done, total in events)

            # Device 2 overwrites and deletes; device 1 sees it after a sync and a reset.
            two[b"foo"] = b"overwritten on device 2"
            del two["binary"]
            one.sync()
            assert one[b"foo"] == b"overwritten on device 2"
            assert b"binary" not in one
            one.reset()
            assert dict(one) == dict(two)


def test_bulk_writes_then_one_upload_with_progress(charm_server, tmp_path):
    device = charm_server.client_options(tmp_path / "bulk", auto_push=False)
    with charm_kv.open("bulk-jobs", **device) as kv:
        kv.sync()  # nothing remote yet
        kv.update({f"k{i:03}": f"value {i}" * 10 for i in range(300)})
        assert kv.pending_writes() >= 1
        events = []
        kv.sync(lambda *event: events.append(event))
        assert kv.pending_writes() == 0
        uploads = [(done, total) for phase, done, total in events if phase is SyncPhase.UPLOAD]
        assert uploads, events
        done, total = uploads[-1]
        assert total > 0 and done == total

    # A new device with the same account gets everything.
    fresh = charm_server.client_options(
        tmp_path / "fresh", identity_key=identity_of(tmp_path / "bulk")
    )
    with charm_kv.open("bulk-jobs", **fresh) as kv:
        kv.sync()
        assert len(kv) == 300
        assert kv[b"k299"] == b"value 299" * 10


def test_a_black_holed_server_leaves_the_write_pending(tmp_path):
    # A server that accepts connections and never answers, on both ports.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    port = hole.getsockname()[1]
    held: list[socket.socket] = []

    def hold_every_connection() -> None:
        while True:
            held.append(hole.accept()[0])

    threading.Thread(target=hold_every_connection, daemon=True).start()
    result: list[tuple[int, bytes]] = []

    def write() -> None:
        with charm_kv.open(
            "hole",
            env=False,
            data_dir=tmp_path,
            host="127.0.0.1",
            ssh_port=port,
            http_port=port,
            connect_timeout=1,
            request_timeout=1,
            sync_timeout=2.5,
        ) as kv:
            kv[b"k"] = b"v"  # succeeds: committed locally, push left pending
            result.append((kv.pending_writes(), kv[b"k"]))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(120)  # far above the bounds: fail rather than hang
    assert not writer.is_alive(), "the write never returned"
    assert result == [(1, b"v")]


def test_reset_refuses_to_drop_pending_writes(charm_server, tmp_path):
    device = charm_server.client_options(tmp_path / "pending", auto_push=False)
    with charm_kv.open("pending", **device) as kv:
        kv[b"local"] = b"not pushed"
        with pytest.raises(charm_kv.PendingWritesError) as info:
            kv.reset()
        assert info.value.status is charm_kv.Status.PENDING_WRITES
        assert kv[b"local"] == b"not pushed"
        kv.reset(force=True)
        assert b"local" not in kv


def test_an_exception_in_the_progress_callback_is_raised_after_the_sync(charm_server, tmp_path):
    device = charm_server.client_options(tmp_path / "raising", auto_push=False)
    with charm_kv.open("raising", **device) as kv:
        kv[b"k"] = b"v"
        calls = []

        def progress(phase, done, total):
            calls.append(phase)
            raise KeyboardInterrupt("stop")

        with pytest.raises(KeyboardInterrupt, match="stop"):
            kv.sync(progress)
        assert len(calls) == 1  # not called again once it raised
        assert kv.pending_writes() == 0  # the sync itself finished
        kv.sync(lambda *event: None)  # the store is fine afterwards


def test_progress_drives_a_tqdm_bar(charm_server, tmp_path):
    tqdm = pytest.importorskip("tqdm").tqdm
    device = charm_server.client_options(tmp_path / "tqdm", auto_push=False)
    with charm_kv.open("tqdm", **device) as kv:
        kv.update({f"k{i}": "x" * 1000 for i in range(100)})
        out = io.StringIO()
        with tqdm(unit="B", unit_scale=True, file=out, mininterval=0) as bar:

            def progress(phase, done, total):  # the README's adapter
                bar.set_description(phase.name.lower())
                bar.total = total or None
                bar.update(done - bar.n)

            kv.sync(progress)
        assert bar.n > 0 and bar.n == bar.total
        assert "upload" in out.getvalue()


def test_unreachable_server_is_a_network_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = {
        "env": False,
        "data_dir": tmp_path,
        "host": "127.0.0.1",
        "ssh_port": port,
        "http_port": port,
    }
    with charm_kv.open(DB, **options) as kv:  # works offline
        kv[b"k"] = b"v"
        with pytest.raises(charm_kv.NetworkError) as info:
            kv.sync()
        assert kv[b"k"] == b"v"
    assert info.value.status is charm_kv.Status.NETWORK
    assert info.value.message
