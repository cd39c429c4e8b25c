"""Servers for tests: real `ssc serve` processes for tests that need the service over HTTP
(fuzzing, several workers), started on a free loopback port, waited for, and their stderr
shown on failure; `OwnRedis`, a `redis-server` a test may stop, freeze or kill; a private
PostgreSQL a test may stop (`OwnPostgres`); and an in-process transport that answers as a
real server does (`AnswerFirstTransport`)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message

from app.config import Settings
from app.ratelimits.service import RateLimitRule

SSC = Path(sys.executable).with_name("ssc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    env: dict[str, str], port: int, *, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`ssc serve` on `port`; its stderr goes to `log` when given (a pipe nobody reads
    would block a server that logs much), else to a pipe `wait_until_up` shows."""
    if log is None:
        stderr: Any = subprocess.PIPE
    else:
        stderr = log.open("ab")
    try:
        return subprocess.Popen(
            [SSC, "serve", "--port", str(port)],
            env={**env, "SSC_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    finally:
        if log is not None:
            stderr.close()


def server_env(settings: Settings) -> dict[str, str]:
    """The environment of an `ssc serve` with `settings`' database, store, keys and secrets
    (so a test holding a `Runtime` of the same settings can mint tokens it accepts)."""

    def secret(name: str) -> str:
        value = getattr(settings, name)
        return str(value.get_secret_value())

    env = {
        **os.environ,
        "SSC_ENVIRONMENT": settings.environment.value,
        "SSC_DATABASE_URL": settings.database_url,
        "SSC_VAR_DIR": str(settings.var_dir),
        "SSC_KEY_DIR": str(settings.key_dir),
        "SSC_KEY_ENCRYPTION_KEY": secret("key_encryption_key"),
        "SSC_DATA_KEY": secret("data_key"),
        "SSC_TOKEN_SECRET": secret("token_secret"),
        "SSC_LOG_LEVEL": settings.log_level,
    }
    for rule in RateLimitRule:
        env[f"SSC_RATE_LIMIT_{rule.name.upper()}"] = getattr(settings, f"rate_limit_{rule.value}")
    if settings.redis_url:
        env.update(SSC_REDIS_URL=settings.redis_url, SSC_REDIS_NAMESPACE=settings.redis_namespace)
    return env


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


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


class OwnPostgres:
    """A private PostgreSQL server of one test, on its own port, that the test may stop, kill
    and start again (never the shared server). We run as root, and PostgreSQL refuses root, so
    `initdb` and `postgres` run as the `postgres` user in a directory it owns.

    `url` names its `postgres` database (trust authentication, user `postgres`). Its files
    live in a directory of its own under the system temporary directory, since the postgres
    user cannot enter pytest's (private to root).
    """

    def __init__(self, port: int | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="ssc-postgres-"))
        self.data = self.directory / "data"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> str | None:
        """Why a private server cannot be run here, or None when it can."""
        if not (POSTGRES_BIN / "postgres").exists():
            return f"no PostgreSQL binaries in {POSTGRES_BIN}"
        if shutil.which("runuser") is None:
            return "no runuser to start PostgreSQL as the postgres user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user"
        return None

    def _as_postgres(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            self._as_postgres(
                str(POSTGRES_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ),
            check=True,
            capture_output=True,
        )

    def start(self, timeout: float = 30) -> None:
        """Starts the server and waits until it accepts connections."""
        assert self.process is None or self.process.poll() is not None, "already running"
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            self._as_postgres(
                str(POSTGRES_BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.directory),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off",
            ),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.accepts_connections():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def accepts_connections(self) -> bool:
        ready = subprocess.run(
            [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True,
            check=False,
        )
        return ready.returncode == 0

    def stop(self, timeout: float = 30) -> None:
        """A fast shutdown (SIGINT): open sessions are ended, the server exits cleanly."""
        self._signal(signal.SIGINT, timeout)

    def kill(self) -> None:
        """SIGKILL to the server and every backend: a crash; the next start recovers."""
        self._signal(signal.SIGKILL, 10, group=True)

    def _signal(self, signum: int, timeout: float, *, group: bool = False) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        pid = _postmaster_pid(self.data)
        if group:
            os.killpg(process.pid, signum)
        elif pid is not None:
            os.kill(pid, signum)
        else:
            process.send_signal(signum)
        process.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.accepts_connections() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


class AnswerFirstTransport(httpx.AsyncBaseTransport):
    """Calls an ASGI app in process and hands the client its response as soon as the app has
    sent the last byte of it, as a real server does, while the app goes on with whatever it
    does after answering. (`httpx.ASGITransport` waits for the app to return, which hides
    work done after the answer.) `aclose` waits for the apps still running."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.started: list[asyncio.Task[None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(key.lower(), value) for key, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
        }
        answered = asyncio.Event()
        received = False
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal received
            if received:
                await answered.wait()
                return {"type": "http.disconnect"}
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        async def serve() -> None:
            await self.app(scope, receive, send)

        task = asyncio.create_task(serve())
        self.started.append(task)
        answer = asyncio.create_task(answered.wait())
        await asyncio.wait([task, answer], return_when=asyncio.FIRST_COMPLETED)
        if not answered.is_set():
            answer.cancel()
            await task  # raises what the app raised
            raise AssertionError("the app returned without answering")
        return httpx.Response(status, headers=headers, content=b"".join(chunks))

    async def aclose(self) -> None:
        """Waits for the apps still running; raises the first error one raised after
        answering (nobody else would see it)."""
        started, self.started = self.started, []
        for outcome in await asyncio.gather(*started, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
