"""Shared fixtures: every store test runs on both stores, every database test on both databases.

Server-backed variants use `SSC_TEST_REDIS_URL` / `SSC_TEST_DATABASE_URL` (defaults: the
local servers). Outside CI they skip with the reason when the server cannot be reached;
with `CI=true` an unreachable server fails the run instead, so CI never skips silently.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from api.app import create_app
from app.config import Settings, load_settings, new_secret
from app.db import migrate
from app.store import Store
from app.store.memory import MemoryStore
from app.store.redis import RedisStore
from tests.app.store.clock import ShiftableClock, StoreTime

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("SSC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T = TypeVar("T")
POSTGRES_URL = os.environ.get(
    "SSC_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion from sync code, even when an event loop is running
    (session fixtures are first requested from inside async tests)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def server_missing(what: str, error: BaseException | str) -> None:
    message = f"{what} not reachable ({error!s}); start it or see README"
    if IN_CI:
        pytest.fail(f"CI requires {message}")
    pytest.skip(message)


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_available() -> BaseException | None:
    async def ping() -> BaseException | None:
        client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        try:
            await client.ping()
        except Exception as error:
            return error
        finally:
            await client.aclose()
        return None

    return run_blocking(ping())


@pytest.fixture
def redis_url(redis_available: BaseException | None) -> str:
    if redis_available is not None:
        server_missing(f"Redis at {REDIS_URL}", redis_available)
    return REDIS_URL


@pytest.fixture
def redis_namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store_clock() -> ShiftableClock:
    """The clock of the memory store of `store` (real time, moved on by `store_time`)."""
    return ShiftableClock()


@pytest.fixture
def store_time(store: Store, store_clock: ShiftableClock) -> StoreTime:
    """Lets time pass for the expiries of `store` without sleeping (tests/app/store/clock.py)."""
    return StoreTime(store, store_clock)


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_namespace: str, store_clock: ShiftableClock
) -> AsyncIterator[Store]:
    """A fresh store; the Redis variant lives in its own key namespace."""
    if request.param == "memory":
        memory = MemoryStore(clock=store_clock)
        yield memory
        await memory.close()
        return
    url = request.getfixturevalue("redis_url")
    redis_store = RedisStore.from_url(url, namespace=redis_namespace)
    yield redis_store
    await redis_store.drop_namespace()
    await redis_store.close()


# --- Databases -------------------------------------------------------------------------------


@dataclass
class PostgresServer:
    """Hands out throw-away databases; migrated ones are copies of one migrated template."""

    base_url: str
    template: str | None = None
    created: list[str] = field(default_factory=list)

    def _url(self, name: str) -> str:
        return make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def url_of(self, name: str) -> str:
        """The URL of database `name` on this server (whether it exists or not)."""
        return self._url(name)

    def run(self, sql: str) -> None:
        """Runs one administrative statement (from sync code)."""
        run_blocking(self._admin(sql))

    async def _admin(self, sql: str) -> None:
        base = make_url(self.base_url)
        conn = await asyncpg.connect(
            host=base.host,
            port=base.port or 5432,
            user=base.username,
            password=base.password,
            database=base.database,
            timeout=3,
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def new_database(self, *, migrated: bool) -> str:
        name = f"ssc_test_{uuid.uuid4().hex[:12]}"
        if migrated:
            if self.template is None:
                template = f"ssc_tpl_{uuid.uuid4().hex[:12]}"
                await self._admin(f'CREATE DATABASE "{template}"')
                self.created.append(template)
                await migrate(self._url(template))
                self.template = template
            await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        else:
            await self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self._url(name)

    def drop_all(self) -> None:
        async def drop() -> None:
            for name in reversed(self.created):
                await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        run_blocking(drop())


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | BaseException]:
    server = PostgresServer(POSTGRES_URL)
    try:
        run_blocking(server._admin("SELECT 1"))
    except Exception as error:
        yield error
        return
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    run_blocking(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


def _postgres(request: pytest.FixtureRequest) -> PostgresServer:
    server = request.getfixturevalue("postgres_server")
    if isinstance(server, BaseException):
        server_missing(f"PostgreSQL at {POSTGRES_URL}", server)
    assert isinstance(server, PostgresServer)
    return server


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database (no tables), on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    return await _postgres(request).new_database(migrated=False)


async def migrated_database_url(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> str:
    if backend == "sqlite":
        path = tmp_path / "ssc.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    return await _postgres(request).new_database(migrated=True)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a database migrated to head, on each backend."""
    return await migrated_database_url(request, request.param, tmp_path)


# --- The service -----------------------------------------------------------------------------


@pytest.fixture(params=["embedded", "servers"])
async def settings(
    request: pytest.FixtureRequest, tmp_path: Path, redis_namespace: str
) -> Settings:
    """Settings of a fresh service: embedded (SQLite + memory store) or servers (PostgreSQL +
    Redis), each with its own database, key directory and secrets."""
    overrides: dict[str, object] = {
        "environment": "test",
        "var_dir": tmp_path / "var",
        "key_dir": tmp_path / "var" / "keys",
        "key_encryption_key": new_secret(),
        "data_key": new_secret(),
        "token_secret": new_secret(),
        "auto_approve_applications": False,
    }
    if request.param == "embedded":
        overrides["database_url"] = await migrated_database_url(request, "sqlite", tmp_path)
        overrides["redis_url"] = None
    else:
        overrides["database_url"] = await migrated_database_url(request, "postgresql", tmp_path)
        overrides["redis_url"] = request.getfixturevalue("redis_url")
        overrides["redis_namespace"] = redis_namespace
    return load_settings(**overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running (database, store and keys open)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
    if settings.redis_url:
        cleanup = RedisStore.from_url(settings.redis_url, namespace=settings.redis_namespace)
        await cleanup.drop_namespace()
        await cleanup.close()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
