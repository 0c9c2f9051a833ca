from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
from charm_server import CharmBinaryMissing, CharmServer

import charm_kv

#: A Charm encrypt key (base64 text of 62 bytes), so tests skip generating an identity.
TEST_KEY = "c2VjcmV0LWtleS1mb3ItdGhlLWNoYXJtLWt2LXB5dGhvbi10ZXN0cy0wMDAwMDAwMDAwMDAwMDAwMDAwMDA="
OTHER_KEY = "b3RoZXIta2V5LWZvci10aGUtY2hhcm0ta3YtcHl0aG9uLXRlc3RzLTExMTExMTExMTExMTExMTExMTExMTE="


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    """No test reads the developer's CHARM_* settings or data by accident."""
    ours = ("CHARM_BIN", "CHARM_KV_LIBRARY")  # the test setup's, not Charm settings
    saved = {k: v for k, v in os.environ.items() if k.startswith("CHARM_") and k not in ours}
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_kv(data_dir: Path) -> Iterator[Callable[..., charm_kv.KV]]:
    """Opens local databases in the test's data directory; closes them afterwards."""
    opened: list[charm_kv.KV] = []

    def opener(name: str = "test", **options: object) -> charm_kv.KV:
        settings: dict = {"env": False, "data_dir": data_dir, "encrypt_keys": [TEST_KEY]}
        settings.update(options)
        kv = charm_kv.open(name, **settings)
        opened.append(kv)
        return kv

    yield opener
    for kv in opened:
        kv.close()


@pytest.fixture
def kv(open_kv: Callable[..., charm_kv.KV]) -> charm_kv.KV:
    return open_kv()


@pytest.fixture(scope="session")
def charm_server() -> Iterator[CharmServer]:
    """One real ``charm serve`` on 127.0.0.1 for the whole session."""
    try:
        server = CharmServer.start()
    except CharmBinaryMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
