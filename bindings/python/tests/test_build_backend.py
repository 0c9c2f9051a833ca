"""The in-tree PEP 517 backend: metadata and a self-contained sdist (no cargo run here;
building the wheel is what ``pip install ./bindings/python`` just did)."""

from __future__ import annotations

import importlib.util
import sys
import tarfile
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
BACKEND = PACKAGE_ROOT / "_build" / "charm_kv_build.py"


@pytest.fixture(scope="module")
def backend():
    spec = importlib.util.spec_from_file_location("charm_kv_build", BACKEND)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_metadata(backend, tmp_path):
    name = backend.prepare_metadata_for_build_wheel(str(tmp_path))
    assert name == "charm_kv-0.2.0.dist-info"
    metadata = (tmp_path / name / "METADATA").read_text()
    assert "Name: charm-kv\n" in metadata
    assert "Version: 0.2.0\n" in metadata
    assert 'Requires-Dist: pytest>=7; extra == "test"' in metadata
    assert "# charm-kv for Python" in metadata  # the README as the description
    wheel = (tmp_path / name / "WHEEL").read_text()
    assert "Root-Is-Purelib: false" in wheel
    assert "Tag: py3-none-" in wheel and "none-any" not in wheel


def test_sdist_carries_the_crate(backend, tmp_path):
    name = backend.build_sdist(str(tmp_path))
    assert name == "charm_kv-0.2.0.tar.gz"
    with tarfile.open(tmp_path / name) as tar:
        names = set(tar.getnames())
    base = "charm_kv-0.2.0/"
    for required in (
        "PKG-INFO",
        "pyproject.toml",
        "README.md",
        "_build/charm_kv_build.py",
        "charm_kv/__init__.py",
        "charm_kv/_bindings.py",
        "charm_kv/py.typed",
        "tools/gen_bindings.py",
        "tests/conftest.py",
        "rust/Cargo.toml",
        "rust/Cargo.lock",
        "rust/src/lib.rs",
        "rust/include/charm_kv.h",
        # the SONAME and the bundled SQLite's build flags (docs/releasing.md)
        "rust/build.rs",
        "rust/.cargo/config.toml",
    ):
        assert base + required in names, required
    assert not [n for n in names if "/lib/" in n and n.startswith(base + "charm_kv/")]
    assert not [n for n in names if "__pycache__" in n or "/target/" in n]
