"""A real ``charm serve`` (Charm v0.12.6) on 127.0.0.1 for the sync tests.

The Python twin of ``tests/support/charm_server.rs``: the binary is ``$CHARM_BIN``,
else ``$GOPATH/bin/charm``, ``~/go/bin/charm``, or ``charm`` on PATH
(``scripts/setup-deps`` installs it). There is no fake server: a missing binary fails
the tests that need it, with that explanation.

The server gets a temporary data directory and free ports, and runs under a small
``sh`` watchdog that kills it when our end of its stdin closes, so it dies with the
test process even if that is killed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
CHARM_VERSION = "v0.12.6"

WATCHDOG = '"$0" serve "$@" & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid'


class CharmBinaryMissing(RuntimeError):
    pass


def charm_bin() -> Path:
    """The ``charm`` binary to test against."""
    explicit = os.environ.get("CHARM_BIN")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise CharmBinaryMissing(f"CHARM_BIN={explicit} does not exist")
        return path
    candidates = []
    for directory in filter(None, os.environ.get("GOPATH", "").split(os.pathsep)):
        candidates.append(Path(directory) / "bin" / "charm")
    candidates.append(Path.home() / "go" / "bin" / "charm")
    on_path = shutil.which("charm")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CharmBinaryMissing(
        "the Charm server binary was not found (CHARM_BIN, $GOPATH/bin/charm, "
        "~/go/bin/charm, PATH). Install it with scripts/setup-deps "
        f"(go install github.com/charmbracelet/charm@{CHARM_VERSION}); the sync tests "
        "run against the real server only"
    )


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _health_ok(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as conn:
            conn.settimeout(2)
            conn.sendall(f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]


class CharmServer:
    """A running ``charm serve``; use :meth:`start` and :meth:`stop`."""

    def __init__(self, binary: Path, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.ssh_port, self.http_port, self.health_port, self.stats_port = _free_ports(4)
        self._log = open(directory / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARM_SERVER_")}
        env.update(
            CHARM_SERVER_DATA_DIR=str(directory / "server-data"),
            CHARM_SERVER_BIND_ADDRESS=HOST,
            CHARM_SERVER_HOST=HOST,
        )
        self._process = subprocess.Popen(
            [
                "sh",
                "-c",
                WATCHDOG,
                str(binary),
                "--ssh-port",
                str(self.ssh_port),
                "--http-port",
                str(self.http_port),
                "--health-port",
                str(self.health_port),
                "--stats-port",
                str(self.stats_port),
            ],
            cwd=directory,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @classmethod
    def start(cls) -> CharmServer:
        """Starts a server and waits for its health check; raises with its log if it
        does not come up (a few tries: a free port may be taken meanwhile)."""
        binary = charm_bin()
        log = ""
        for _ in range(3):
            directory = Path(tempfile.mkdtemp(prefix="charm-kv-py-server-"))
            server = cls(binary, directory)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and server._process.poll() is None:
                if _health_ok(server.health_port):
                    return server
                time.sleep(0.05)
            log = server.log()
            server.stop()
        raise RuntimeError(f"charm serve ({binary}) did not start:\n{log}")

    def log(self) -> str:
        return (self.directory / "server.log").read_text(errors="replace")

    def client_options(self, data_dir: Path, **extra: object) -> dict:
        """Keyword options for ``charm_kv.open`` pointing a device at this server."""
        return {
            "env": False,
            "data_dir": data_dir,
            "host": HOST,
            "ssh_port": self.ssh_port,
            "http_port": self.http_port,
            **extra,
        }

    def stop(self) -> None:
        # Closing the watchdog's stdin makes it kill the server and exit.
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()
        shutil.rmtree(self.directory, ignore_errors=True)
