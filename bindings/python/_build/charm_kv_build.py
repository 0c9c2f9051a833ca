"""PEP 517 build backend of the ``charm-kv`` Python package (no dependencies).

Building a wheel runs ``cargo build --release --lib`` on the charm-kv crate and puts
the resulting shared library in the package (``charm_kv/lib/``), so the wheel is
platform-specific (``py3-none-<platform>``: the library is loaded with ctypes, so any
Python 3 on that platform can use it) and importing never compiles anything.

The crate is found in the source tree (``../..`` from this package) or, in an sdist, in
its ``rust/`` directory. Environment:

- ``CARGO``: the cargo to run (default: ``cargo`` on PATH, then ``~/.cargo/bin``).
  ``CARGO_TARGET_DIR`` and the other cargo variables work as usual.
- ``CHARM_KV_LIBRARY``: a shared library already built (``libcharm_kv.so``), bundled
  as is instead of running cargo. scripts/release uses it so that the wheel carries
  the same library as the C artifacts, built once against an old glibc (the wheel is
  then retagged manylinux by ``auditwheel repair``).
- ``CHARM_KV_STRIP=0``: keep the library's debug information (stripped by default
  when a ``strip`` tool is available: 68 MB -> 10 MB).

Metadata comes from the ``[project]`` table of ``pyproject.toml`` (the fields used
there; anything else is rejected rather than ignored).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # bindings/python, or the sdist's root
PACKAGE = "charm_kv"
CRATE = "charm-kv"
# The crate files an sdist needs to build the library.
# .cargo/config.toml carries the bundled SQLite's build flags (docs/storage.md).
CRATE_FILES = [
    "Cargo.toml",
    "Cargo.lock",
    "README.md",
    "cbindgen.toml",
    "build.rs",
    ".cargo/config.toml",
]
CRATE_DIRS = ["src", "include", "benches"]
# Fixed timestamp for reproducible archives (zip cannot store dates before 1980).
EPOCH = max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)
KNOWN_PROJECT_KEYS = {
    "name",
    "version",
    "description",
    "readme",
    "requires-python",
    "license",
    "authors",
    "keywords",
    "classifiers",
    "optional-dependencies",
    "urls",
}


# -- metadata ------------------------------------------------------------------------


def _project() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11: get_requires_* asked for tomli
        import tomli as tomllib  # type: ignore[no-redef]
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    unknown = set(project) - KNOWN_PROJECT_KEYS
    if unknown:
        raise ValueError(f"the charm-kv build backend does not support {sorted(unknown)}")
    return project


def _dist_name(project: dict) -> str:
    return project["name"].replace("-", "_")


def _metadata(project: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    if "license" in project:
        lines.append(f"License: {project['license']}")
    for author in project.get("authors", []):
        lines.append(f"Author: {author['name']}")
    if project.get("keywords"):
        lines.append(f"Keywords: {','.join(project['keywords'])}")
    for classifier in project.get("classifiers", []):
        lines.append(f"Classifier: {classifier}")
    for label, url in project.get("urls", {}).items():
        lines.append(f"Project-URL: {label}, {url}")
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for requirement in requirements:
            lines.append(f'Requires-Dist: {requirement}; extra == "{extra}"')
    body = ""
    if "readme" in project:
        lines.append("Description-Content-Type: text/markdown")
        body = (ROOT / project["readme"]).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + body


def _wheel_tag() -> str:
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{platform}"


def _wheel_file(tag: str) -> str:
    return f"Wheel-Version: 1.0\nGenerator: charm_kv_build\nRoot-Is-Purelib: false\nTag: {tag}\n"


# -- the Rust library ------------------------------------------------------------------


def _crate_dir() -> Path:
    for candidate in (ROOT / "rust", ROOT.parent.parent):
        manifest = candidate / "Cargo.toml"
        if manifest.is_file() and f'name = "{CRATE}"' in manifest.read_text(encoding="utf-8"):
            return candidate
    raise RuntimeError(
        f"cannot find the {CRATE} crate (looked in {ROOT / 'rust'} and {ROOT.parent.parent}): "
        "build from a checkout of the repository (pip install ./bindings/python) or "
        "from an sdist made by this backend"
    )


def _cargo() -> str:
    for candidate in (
        os.environ.get("CARGO"),
        shutil.which("cargo"),
        str(Path.home() / ".cargo" / "bin" / "cargo"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError("cargo not found: install Rust (https://rustup.rs) or set CARGO")


def _log(message: str) -> None:
    print(f"charm_kv_build: {message}", file=sys.stderr, flush=True)


def _build_library() -> Path:
    """Runs cargo and returns the path of the built shared library."""
    prebuilt = os.environ.get("CHARM_KV_LIBRARY")
    if prebuilt:
        path = Path(prebuilt)
        if not path.is_file():
            raise RuntimeError(f"CHARM_KV_LIBRARY={prebuilt}: no such file")
        _log(f"bundling the prebuilt library {path}")
        return path
    crate = _crate_dir()
    command = [
        _cargo(),
        "build",
        "--release",
        "--lib",
        "--message-format=json-render-diagnostics",
    ]
    _log(f"building the library: {' '.join(command)} (in {crate})")
    proc = subprocess.run(command, cwd=crate, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"cargo failed (exit status {proc.returncode}): see its output above")
    found = None
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        target = message.get("target", {})
        if (
            message.get("reason") == "compiler-artifact"
            and target.get("name") == PACKAGE
            and "cdylib" in target.get("kind", [])
        ):
            for filename in message.get("filenames", []):
                if filename.endswith((".so", ".dylib", ".dll")):
                    found = Path(filename)
    if found is None or not found.is_file():
        raise RuntimeError("cargo did not report the charm_kv shared library")
    return found


def _bundled_library(built: Path, workdir: Path) -> Path:
    """The library as it goes into the wheel: stripped of debug info when possible."""
    if os.environ.get("CHARM_KV_STRIP", "1") == "0" or sys.platform == "win32":
        return built
    strip = shutil.which("strip")
    if strip is None:
        return built
    copy = workdir / built.name
    shutil.copyfile(built, copy)
    flag = "-S" if sys.platform == "darwin" else "--strip-debug"
    if subprocess.run([strip, flag, str(copy)]).returncode != 0:
        _log("strip failed: bundling the library with its debug information")
        return built
    return copy


# -- archives ----------------------------------------------------------------------------


def _package_files() -> list[tuple[str, Path]]:
    """(archive name, path) of the Python package's own files."""
    files = []
    for path in sorted((ROOT / PACKAGE).rglob("*")):
        relative = path.relative_to(ROOT)
        parts = relative.parts
        if path.is_dir() or "__pycache__" in parts or parts[1] == "lib" or path.suffix == ".pyc":
            continue
        files.append((relative.as_posix(), path))
    return files


class _Wheel:
    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.records: list[str] = []

    def add(self, name: str, data: bytes, executable: bool = False) -> None:
        info = zipfile.ZipInfo(name, date_time=_zip_time())
        info.external_attr = (0o755 if executable else 0o644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.records.append(f"{name},sha256={digest},{len(data)}")

    def close(self, record_name: str) -> None:
        self.records.append(f"{record_name},,")
        info = zipfile.ZipInfo(record_name, date_time=_zip_time())
        info.external_attr = 0o644 << 16
        self.zip.writestr(info, "\n".join(self.records) + "\n")
        self.zip.close()


def _zip_time() -> tuple[int, int, int, int, int, int]:
    import time

    return time.gmtime(EPOCH)[:6]


def _write_wheel(wheel_directory: str, editable: bool) -> str:
    project = _project()
    dist = _dist_name(project)
    version = project["version"]
    tag = _wheel_tag()
    built = _build_library()
    lib_dir = ROOT / PACKAGE / "lib"
    name = f"{dist}-{version}-{tag}.whl"
    dist_info = f"{dist}-{version}.dist-info"
    wheel = _Wheel(Path(wheel_directory) / name)
    with tempfile.TemporaryDirectory() as scratch:
        library = _bundled_library(built, Path(scratch))
        if editable:
            # The package is imported from the source tree; the library goes into it.
            lib_dir.mkdir(exist_ok=True)
            shutil.copyfile(library, lib_dir / built.name)
            wheel.add(f"_{dist}_editable.pth", (str(ROOT) + "\n").encode())
        else:
            for arcname, path in _package_files():
                wheel.add(arcname, path.read_bytes())
            wheel.add(f"{PACKAGE}/lib/{built.name}", library.read_bytes(), executable=True)
    wheel.add(f"{dist_info}/METADATA", _metadata(project).encode("utf-8"))
    wheel.add(f"{dist_info}/WHEEL", _wheel_file(tag).encode())
    wheel.add(f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode())
    wheel.close(f"{dist_info}/RECORD")
    return name


def _write_metadata(metadata_directory: str) -> str:
    project = _project()
    dist_info = Path(metadata_directory) / f"{_dist_name(project)}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(_metadata(project), encoding="utf-8")
    (dist_info / "WHEEL").write_text(_wheel_file(_wheel_tag()), encoding="utf-8")
    return dist_info.name


# -- PEP 517 / PEP 660 hooks -------------------------------------------------------------


def _build_requires(config_settings: dict | None = None) -> list[str]:
    return ["tomli>=1.1"] if sys.version_info < (3, 11) else []


get_requires_for_build_wheel = _build_requires
get_requires_for_build_sdist = _build_requires
get_requires_for_build_editable = _build_requires


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _write_metadata(metadata_directory)


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, editable=True)


def build_sdist(sdist_directory, config_settings=None):
    """A self-contained sdist: the Python package plus the crate under ``rust/``."""
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    crate = _crate_dir()
    entries: list[tuple[str, Path]] = []
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        parts = relative.parts
        if (
            path.is_dir()
            or parts[0] in ("rust", "build", "dist")
            or "__pycache__" in parts
            or any(part.startswith(".") for part in parts)
            or parts[0].endswith(".egg-info")
            or parts[:2] == (PACKAGE, "lib")
            or path.suffix == ".pyc"
        ):
            continue
        entries.append((relative.as_posix(), path))
    # The crate goes under rust/ also when this is an sdist already (its rust/ is
    # skipped above), so that an sdist made from an sdist still builds.
    for name in CRATE_FILES:
        if (crate / name).is_file():
            entries.append((f"rust/{name}", crate / name))
    for directory in CRATE_DIRS:
        for path in sorted((crate / directory).rglob("*")):
            if path.is_file():
                entries.append((f"rust/{path.relative_to(crate).as_posix()}", path))
    name = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz", format=tarfile.PAX_FORMAT) as tar:

        def add(arcname: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(f"{base}/{arcname}")
            info.size, info.mtime, info.mode = len(data), EPOCH, mode
            tar.addfile(info, io.BytesIO(data))

        for arcname, path in entries:
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            add(arcname, path.read_bytes(), mode)
        add("PKG-INFO", _metadata(project).encode("utf-8"))
    return name
