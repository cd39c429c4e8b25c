"""Real servers for tests: `ssc serve` processes for tests that need the service over HTTP
(fuzzing, several workers), started on a free loopback port, waited for, and their stderr
shown on failure; `OwnRedis`, a `redis-server` a test may stop, freeze or kill."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SSC = Path(sys.executable).with_name("ssc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SSC, "serve", "--port", str(port)],
        env={**env, "SSC_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until_up(process: subprocess.Popen[bytes], base_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stderr = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"server did not start: {stderr[-2000:]}")
        time.sleep(0.2)


class OwnRedis:
    """A `redis-server` on its own loopback port, stopped, frozen, killed and started at will.

    Without persistence by default (a restart comes back empty); `appendonly=True` gives it
    an append-only file fsynced on every write, as production should run it.
    """

    def __init__(
        self, directory: Path, *, appendonly: bool = False, options: tuple[str, ...] = ()
    ) -> None:
        """`options`: more `redis-server` arguments, e.g. `("--maxmemory-policy", "noeviction")`."""
        self.port = free_port()
        self.directory = directory
        self.appendonly = appendonly
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, appendonly: bool | None = None) -> None:
        """Starts the server (again); `appendonly` overrides the persistence of this run."""
        aof = self.appendonly if appendonly is None else appendonly
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
        )
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", str(self.directory), *persistence, *self.options],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """Signal 9: no shutdown, no final save; what was not persisted is gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
