"""Servers for benchmarks and load scenarios, started and stopped by the scripts that need them.

Everything listens on 127.0.0.1 only, in a temporary directory, with its own `redis-server`
(no persistence) on a free port, so a run never touches a developer's data. `Stack` is a
context manager: whatever it started is stopped on exit, also after an error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import orjson

from app.config import load_settings
from app.runtime import derive_key, open_keyring
from token_service import TokenIssuer

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
TOKEN_LIFETIME = 600
"""QR token lifetime of the benchmark server: pre-generated tokens stay valid for a whole run."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(check: str, deadline_seconds: float = 60.0) -> None:
    """Polls `check` (a URL) until it answers below 500, or fails the run."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(check, timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{check} did not come up within {deadline_seconds} s")


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(pid: int) -> list[int]:
    """`pid` and its living descendants."""
    parents = _parents()
    tree, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        tree.append(current)
        frontier += [child for child, parent in parents.items() if parent == current]
    return tree


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` and its descendants onto `cpus` (threads spawned later inherit it).

    Used to keep a load generator off the server's core, so neither adds scheduling delay to
    the other's figures; `pin(pid, set(range(os.cpu_count())))` undoes it.
    """
    for process in process_tree(pid):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{process}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)


def worker_cpu(pid: int) -> dict[int, float]:
    """CPU seconds used so far by each process of `pid`'s tree (to see how load is shared)."""
    return {process: process_cpu(process) for process in process_tree(pid)}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of `pid` alone, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pids: Sequence[int], *, idle_cores: float = 0.05, max_seconds: float = 90.0) -> float:
    """Waits until the process trees of `pids` are idle; returns the seconds it took.

    The API's audit consumer writes what a saturating run left in the stream after the run
    ended; a measurement started before that would be charged for it.
    """
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        before = sum(process_tree_cpu(pid) for pid in pids)
        time.sleep(0.5)
        if sum(process_tree_cpu(pid) for pid in pids) - before < idle_cores * 0.5:
            break
    return time.monotonic() - started


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its living descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, frontier = 0.0, [pid]
    while frontier:
        current = frontier.pop()
        total += cpu.get(current, 0.0)
        frontier += [child for child, parent in parents.items() if parent == current]
    return total


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT if self.name != "redis" else signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Stack:
    """A temporary directory, one Redis, and the API servers started in it."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ssc-load-")))
    started: list[Started] = field(default_factory=list)
    redis_port: int = 0
    card_number: str = ""
    """The card the benchmark's tokens are issued for (set after seeding)."""
    tree: Path = ROOT
    """The checkout whose service this stack runs: ours, or an older commit checked out
    elsewhere (`load.run_benchmarks --against`), run with this venv and the same settings."""

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for server in reversed(self.started):
            server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    def start_redis(self) -> Started:
        self.redis_port = free_port()
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
        )
        server = Started("redis", process, self.redis_port)
        self.started.append(server)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.redis_port)):
                return server
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def api_env(self) -> dict[str, str]:
        """The environment of our API (and of `ssc` commands and token issuing against it)."""
        var = self.root / "var"
        older = {} if self.tree == ROOT else {"PYTHONPATH": str(self.tree)}
        return {
            **os.environ,
            **older,
            "SSC_ENVIRONMENT": "development",
            "SSC_VAR_DIR": str(var),
            "SSC_KEY_DIR": str(var / "keys"),
            "SSC_DATABASE_URL": f"sqlite+aiosqlite:///{var / 'ssc.db'}",
            "SSC_REDIS_URL": self.redis_url,
            "SSC_REDIS_NAMESPACE": "load",
            "SSC_TOKEN_LIFETIME": str(TOKEN_LIFETIME),
            "SSC_LOG_LEVEL": "warning",
            "SSC_HOST": HOST,
            # The scenarios share a few demo holders among many simulated phones, all from
            # this machine: the limits per holder and per address would refuse them.
            **{
                f"SSC_RATE_LIMIT_{rule.upper()}": "1000000/60"
                for rule in ("qr_per_holder", "login_per_address", "token_per_address")
            },
        }

    def ssc(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "ssc"), *args],
            env=self.api_env(),
            cwd=self.tree,
            capture_output=True,
            check=True,
        )
        return done.stdout.decode()

    def start_api(
        self, workers: int = 1, server_kind: str = "uvicorn", *, external_audit: bool = False
    ) -> Started:
        """`ssc serve` (uvicorn), or granian's own command on the same app factory (granian is
        measured, not a dependency: `pip install granian` to include it). `external_audit`
        runs the audit consumer as its own `ssc audit consume` process instead of in the API."""
        port = free_port()
        self.ssc("migrate")
        env = self.api_env()
        if external_audit:
            env["SSC_AUDIT_CONSUMER_IN_API"] = "false"
            consumer = subprocess.Popen(
                [str(BIN / "ssc"), "audit", "consume"], env=env, cwd=self.tree
            )
            self.started.append(Started("audit-consumer", consumer, 0))
        if server_kind == "granian":
            command = [
                str(BIN / "granian"),
                "--interface",
                "asgi",
                "--factory",
                "--http",
                "1",
                "--loop",
                "uvloop",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "api.app:serving_app",
            ]
        else:
            command = [str(BIN / "ssc"), "serve", "--port", str(port), "--workers", str(workers)]
        process = subprocess.Popen(command, env=env, cwd=self.tree)
        server = Started(f"api-{server_kind}-{workers}w", process, port)
        self.started.append(server)
        wait_until(f"{server.url}/readyz")
        return server

    def stop_audit_consumers(self) -> None:
        for started in [s for s in self.started if s.name == "audit-consumer"]:
            self.stop(started)

    def start_baseline(self, public_key_pem: bytes) -> Started:
        port = free_port()
        key_file = self.root / "baseline-key.pem"
        key_file.write_bytes(public_key_pem)
        env = {**os.environ, "LOAD_BASELINE_KEY": str(key_file), "LOAD_REDIS_URL": self.redis_url}
        process = subprocess.Popen(
            [
                str(BIN / "uvicorn"),
                "load.baseline_app:app",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
        )
        server = Started("baseline", process, port)
        self.started.append(server)
        wait_until(f"{server.url}/docs")
        return server

    def stop(self, server: Started) -> None:
        server.stop()
        self.started.remove(server)

    def demo(self, base_url: str) -> dict[str, object]:
        """`ssc demo --json`: a new holder, venue and scanner each call."""
        seeded: dict[str, object] = orjson.loads(self.ssc("demo", "--json", "--base-url", base_url))
        return seeded

    def issue_tokens(self, card_number: str, count: int) -> list[str]:
        """Distinct fresh QR tokens of one card, signed with the server's own active key."""
        settings = load_settings(
            **{
                name.removeprefix("SSC_").lower(): value
                for name, value in self.api_env().items()
                if name.startswith("SSC_")
            }
        )
        handle_key = derive_key(settings.secret("key_encryption_key"), "ssc/card-handle/v1", 16)
        issuer = TokenIssuer(
            open_keyring(settings), settings.issuer, handle_key, lifetime=TOKEN_LIFETIME
        )
        with contextlib.closing(sqlite3.connect(self.root / "var" / "ssc.db")) as database:
            (handle,) = database.execute(
                "SELECT handle FROM cards WHERE card_number = ?", (card_number,)
            ).fetchone()
        card_handle = bytes.fromhex(handle)
        return [issuer.issue(card_handle).token for _ in range(count)]


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def busy_cores_meter() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, monotonic time) to diff over a run: shows
    what other processes on the machine took from it."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), time.monotonic()


@contextlib.contextmanager
def cpu_meter(pids: Sequence[int]) -> Iterator[list[float]]:
    """Yields a list that holds, after the block, the CPU seconds each pid tree used in it."""
    before = [process_tree_cpu(pid) for pid in pids]
    used: list[float] = []
    yield used
    used += [process_tree_cpu(pid) - start for pid, start in zip(pids, before, strict=True)]
