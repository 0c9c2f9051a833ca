"""The package itself: generated declarations, the bundled library, typing, imports."""

from __future__ import annotations

import ctypes
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import charm_kv
from charm_kv import _bindings, _ffi, _options

TESTS = Path(__file__).resolve().parent
PACKAGE_ROOT = TESTS.parent  # bindings/python (or an unpacked sdist)
# The header: in the repository, or in an sdist's copy of the crate.
HEADERS = [
    PACKAGE_ROOT.parent.parent / "include" / "charm_kv.h",
    PACKAGE_ROOT / "rust/include/charm_kv.h",
]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_bindings", PACKAGE_ROOT / "tools" / "gen_bindings.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _header() -> Path:
    for header in HEADERS:
        if header.is_file():
            return header
    pytest.fail(f"include/charm_kv.h not found (looked at {[str(h) for h in HEADERS]})")


def test_generated_declarations_match_the_header():
    """_bindings.py is generated from include/charm_kv.h and must be regenerated with it."""
    expected = _generator().generate(_header())
    installed = Path(_bindings.__file__).read_text(encoding="utf-8")
    source = (PACKAGE_ROOT / "charm_kv" / "_bindings.py").read_text(encoding="utf-8")
    hint = "run: python3 bindings/python/tools/gen_bindings.py (then reinstall the package)"
    assert source == expected, f"charm_kv/_bindings.py is stale: {hint}"
    assert installed == expected, f"the installed charm_kv is older than the source: {hint}"


def test_every_header_function_is_declared_with_explicit_types():
    header = _header().read_text(encoding="utf-8")
    declared = set(re.findall(r"^[a-z][\w ]*?[ *](charm_kv_\w+)\(", header, re.M))
    assert declared == set(_bindings.FUNCTIONS)
    for name in declared:
        fn = getattr(_ffi.lib, name)
        restype, argtypes = _bindings.FUNCTIONS[name]
        assert fn.restype is restype, name
        assert fn.argtypes == argtypes, name
        # Never ctypes' default restype (a C int): statuses are uint32_t.
        assert fn.restype is not ctypes.c_int, name


def test_struct_layouts_match_c():
    pointer = ctypes.sizeof(ctypes.c_void_p)
    for struct in (
        _bindings.charm_kv_bytes,
        _bindings.charm_kv_bytes_list,
        _bindings.charm_kv_string_list,
    ):
        assert ctypes.sizeof(struct) == 2 * pointer
        assert struct.len.offset == pointer
    # Two slices then a bool, padded to a pointer's alignment.
    assert _bindings.charm_kv_range.start.offset == 2 * pointer
    assert _bindings.charm_kv_range.reverse.offset == 4 * pointer
    assert ctypes.sizeof(_bindings.charm_kv_range) == 5 * pointer


def test_header_and_library_versions():
    assert charm_kv.LIBRARY_VERSION == _bindings.HEADER_VERSION == charm_kv.__version__
    version_line = re.search(r'#define CHARM_KV_VERSION "(.*)"', _header().read_text()).group(1)
    assert version_line == charm_kv.__version__


def test_the_library_is_bundled_in_the_package():
    if os.environ.get(_ffi.LIBRARY_ENV):
        pytest.skip(f"{_ffi.LIBRARY_ENV} is set: testing another copy of the library")
    package = Path(charm_kv.__file__).resolve().parent
    assert _ffi.LIBRARY_PATH.parent == package / "lib"
    assert (package / "py.typed").is_file()


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != _ffi.LIBRARY_ENV}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60
    )


def test_library_from_the_environment_variable(tmp_path):
    copy = tmp_path / _ffi.LIBRARY_PATH.name
    shutil.copyfile(_ffi.LIBRARY_PATH, copy)
    result = _run("import charm_kv; print(charm_kv.LIBRARY_PATH)", CHARM_KV_LIBRARY=str(copy))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(copy)

    missing = _run("import charm_kv", CHARM_KV_LIBRARY=str(tmp_path / "nothing.so"))
    assert missing.returncode != 0
    assert "CHARM_KV_LIBRARY" in missing.stderr and "no such file" in missing.stderr

    not_a_library = tmp_path / "libfake.so"
    not_a_library.write_bytes(b"not a shared library")
    bad = _run("import charm_kv", CHARM_KV_LIBRARY=str(not_a_library))
    assert bad.returncode != 0
    assert "cannot load the charm-kv library" in bad.stderr


def test_import_needs_no_compiler_and_no_cargo(tmp_path):
    # An empty PATH: nothing to compile with, and nothing is tried.
    code = (
        "import charm_kv, sys\n"
        "with charm_kv.open('x', env=False, data_dir=sys.argv[1]) as kv:\n"
        "    kv['k'] = 'v'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env={"PATH": "", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_public_api_is_typed_and_documented():
    for name in charm_kv.__all__:
        obj = getattr(charm_kv, name)
        if issubclass(type(obj), type) or inspect.isfunction(obj):  # not typing aliases
            assert obj.__doc__, f"charm_kv.{name} has no docstring"
    for name, member in vars(charm_kv.KV).items():
        if callable(member) and not name.startswith("_"):
            assert member.__doc__, f"KV.{name} has no docstring"
            assert member.__annotations__, f"KV.{name} has no type hints"


def test_every_open_keyword_has_its_options_setter():
    # A keyword added to open() without its line in _options.SETTERS (or the reverse)
    # would be rejected or ignored.
    keywords = set(inspect.signature(charm_kv.open).parameters) - {"name", "env"}
    assert keywords == set(_options.SETTERS)
    assert keywords >= _options.NONE_IS_A_VALUE


SHUTDOWN = """
import sys, threading, charm_kv
kv = charm_kv.open("shutdown", env=False, data_dir=sys.argv[1])
kv.update({b"a": b"1", b"b": b"2"})
it = iter(kv.items())
next(it)
batch = kv.batch()
batch[b"c"] = b"3"
cycle = [kv, it, batch]
cycle.append(cycle)  # only the cycle collector (or shutdown) frees these


def reader():
    while True:
        kv[b"a"]


threading.Thread(target=reader, daemon=True).start()
print("exiting", flush=True)
"""


def test_interpreter_shutdown_with_live_objects(tmp_path):
    # Stores, iterators and batches left open, plus a daemon thread still calling into
    # the library: the interpreter exits cleanly, with nothing printed by __del__.
    result = _run(SHUTDOWN.replace("sys.argv[1]", repr(str(tmp_path))))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting\n"
    assert result.stderr == ""
