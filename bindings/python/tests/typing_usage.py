"""Type-checked (``mypy --strict``) by scripts/test-all: how user code sees the API.
Not a test module; it only has to type-check."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime, timedelta, timezone

import charm_kv


def usage(path: str) -> None:
    with charm_kv.open(
        "typing",
        data_dir=path,
        env=False,
        auto_push=False,
        connect_timeout=5,
        request_timeout=10.5,
        sync_timeout=60,
        require_tls=True,
        durability="normal",
    ) as kv:
        store: MutableMapping[bytes, bytes] = kv
        kv[b"k"] = b"v"
        kv["text"] = "value"
        value: bytes = kv[b"k"]
        maybe: bytes | None = kv.get(b"k")
        either: bytes | int = kv.get(b"k", 0)
        keys: list[bytes] = list(kv.keys(reverse=True))
        items: list[tuple[bytes, bytes]] = list(kv.items())
        users: list[bytes] = list(kv.keys(prefix=b"user:", start="user:2", reverse=True))
        logs: list[tuple[bytes, bytes]] = list(kv.items(prefix=bytearray(b"log:")))
        with kv.batch() as batch:
            batch[b"a"] = b"1"
            batch.delete(b"b")
            got: bytes | None = batch.get(b"a")

        def progress(phase: charm_kv.SyncPhase, done: int, total: int) -> None:
            print(phase.name, done, total)

        try:
            kv.sync(progress)
        except charm_kv.NotConfiguredError as error:
            status: int = error.status  # a charm_kv.Status for every known code
            print(status, error.message)
        count: int = kv.pending_writes()
        state: charm_kv.StoreStatus = kv.status(remote=True)
        last: datetime | None = state.last_sync
        reachable: bool = state.remote is charm_kv.RemoteState.REACHABLE
        synced: bool = kv.sync_if_stale(timedelta(minutes=10)) or kv.sync_if_stale(600)
        print(store, value, maybe, either, keys, items, users, logs, got, count, len(kv))
        print(last, reachable, synced, state.integrity_ok)
        kv.set(b"session", "token", ttl=timedelta(minutes=10))
        kv.set("old", b"x", expires_at=datetime(2000, 1, 1, tzinfo=timezone.utc))
        kv.set("later", b"x", expires_at=1_900_000_000)
        left: float | None = kv.ttl(b"session")
        when: datetime | None = kv.expires_at("session")
        kv.expire("session", 60.5)
        kv.expire_at("session", datetime(2100, 1, 1, tzinfo=timezone.utc))
        kv.persist("session")
        with kv.batch() as expiring:
            expiring.set("t", "v", ttl=30)
        print(left, when)
    names: list[str] = charm_kv.list_databases(data_dir=path, env=False)
    print(names)
