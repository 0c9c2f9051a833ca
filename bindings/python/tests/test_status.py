"""``KV.status`` and ``KV.sync_if_stale``: locally, against an unreachable server, and
through a real ``charm serve``."""

from __future__ import annotations

import dataclasses
import socket
from datetime import datetime, timedelta, timezone

import pytest

import charm_kv
from charm_kv import RemoteState, StoreStatus


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_of_a_local_database(kv):
    kv[b"a"] = b"1"
    kv[b"b"] = b"2"
    status = kv.status(remote=True)
    assert isinstance(status, StoreStatus)
    assert status.last_sync is None and status.last_sync_version is None
    assert status.local_version == 0
    assert status.pending_writes == 2
    assert status.chain_start is None and status.chain_deltas is None
    assert status.size_bytes > 0
    assert status.integrity_ok and status.integrity_error is None
    assert status.remote is RemoteState.NOT_CONFIGURED, "local mode asks no one"
    assert status.remote_version is None and status.remote_error is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.pending_writes = 0  # type: ignore[misc]


def test_sync_if_stale_checks_its_argument_and_needs_a_server(kv):
    with pytest.raises(charm_kv.NotConfiguredError):
        kv.sync_if_stale(600)  # never synced: due
    with pytest.raises(ValueError):
        kv.sync_if_stale(-1)
    with pytest.raises(ValueError):
        kv.sync_if_stale(float("nan"))
    with pytest.raises(TypeError):
        kv.sync_if_stale("10m")  # type: ignore[arg-type]
    kv.close()
    with pytest.raises(charm_kv.ClosedError):
        kv.status()
    with pytest.raises(charm_kv.ClosedError):
        kv.sync_if_stale(timedelta(minutes=10))


def test_status_reports_an_unreachable_server(open_kv):
    port = closed_port()
    kv = open_kv("remote", host="127.0.0.1", ssh_port=port, http_port=port, auto_push=False)
    assert kv.status().remote is RemoteState.NOT_CHECKED
    status = kv.status(remote=True)
    assert status.remote is RemoteState.UNREACHABLE
    assert isinstance(status.remote_error, charm_kv.NetworkError)
    assert status.remote_version is None


def test_status_and_sync_if_stale_through_a_server(charm_server, tmp_path):
    d1, d2 = tmp_path / "device1", tmp_path / "device2"
    with charm_kv.open("status", **charm_server.client_options(d1)) as one:
        one[b"k1"] = b"v1"  # pushed
        identity = d1 / "127.0.0.1" / "charm_ed25519"
        with charm_kv.open(
            "status", **charm_server.client_options(d2, identity_key=identity)
        ) as two:
            before = datetime.now(timezone.utc) - timedelta(seconds=1)
            assert two.sync_if_stale(timedelta(hours=1)), "never synced: due"
            status = two.status(remote=True)
            assert status.last_sync is not None and status.last_sync >= before
            assert status.last_sync_version == status.local_version > 0
            assert status.remote is RemoteState.REACHABLE
            assert status.remote_version == status.local_version

            one[b"k2"] = b"v2"
            assert not two.sync_if_stale(3600), "synced a moment ago"
            assert b"k2" not in two
            behind = two.status(remote=True)
            assert behind.remote_version is not None
            assert behind.remote_version > behind.local_version
            assert two.sync_if_stale(0)
            assert two[b"k2"] == b"v2"
