"""Shared fixtures: every store test runs on both stores, every database test on both databases.

Server-backed variants use `SSC_TEST_REDIS_URL` / `SSC_TEST_DATABASE_URL` (defaults: the
local servers). Outside CI they skip with the reason when the server cannot be reached;
with `CI=true` an unreachable server fails the run instead, so CI never skips silently.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
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
from playwright.async_api import Browser, BrowserContext, async_playwright
from sqlalchemy.engine import make_url

from api.app import create_app
from app.background_tasks import awaiting
from app.config import Settings, load_settings, new_secret
from app.db import migrate
from app.ratelimits import RateLimitRule
from app.runtime import Runtime
from app.store import Store
from app.store.memory import MemoryStore
from app.store.redis import RedisStore
from tests.app.store.clock import ShiftableClock, StoreTime
from tests.browser import CHROMIUM, CHROMIUM_ARGS, PHONE_VIEWPORT, chromium_missing
from tests.servers import (
    OwnPostgres,
    OwnRedis,
    free_port,
    server_env,
    start_server,
    wait_until_up,
)

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
    """A fresh store; the Redis variant lives in its own key namespace.

    `redis-py` (asked for by `pytest.mark.parametrize("store", [...], indirect=True)`) is the
    Redis store with `SSC_REDIS_CLAIM_CHANNEL=false`: claims through redis-py."""
    if request.param == "memory":
        memory = MemoryStore(clock=store_clock)
        yield memory
        await memory.close()
        return
    url = request.getfixturevalue("redis_url")
    # A 2 s connect/command timeout instead of the service's 0.5 s: the contract tests open
    # up to 200 connections at once while three other test workers share the two cores.
    redis_store = RedisStore.from_url(
        url,
        namespace=redis_namespace,
        claim_channel=request.param != "redis-py",
        socket_timeout=10.0,  # 200 connections opened at once on a loaded machine
    )
    yield redis_store
    await redis_store.drop_namespace()
    await redis_store.close()


# --- Databases -------------------------------------------------------------------------------


SCHEMA_FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, '|' ORDER BY item), '')) FROM (
    SELECT format('col %s.%s %s %s %s', table_schema, table_name, column_name, data_type,
                  is_nullable || coalesce(column_default, '')) AS item
      FROM information_schema.columns
     WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
    UNION ALL SELECT 'idx ' || indexdef FROM pg_indexes
     WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
     WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'seq ' || schemaname || '.' || sequencename FROM pg_sequences
    UNION ALL SELECT 'ns ' || nspname FROM pg_namespace
    UNION ALL SELECT 'fn ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'public'::regnamespace
    UNION ALL SELECT 'trg ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT 'rev ' || version_num FROM alembic_version
) AS schema
"""
"""What a migrated database's schema is made of (the data aside): a database handed back
with the template's fingerprint is emptied and reused, any other is dropped."""


@dataclass
class PostgresServer:
    """Hands out throw-away databases; migrated ones are copies of one migrated template.

    Dropping a database waits for a checkpoint of the whole server (about a second each on a
    busy server, and no faster when several are dropped at once: 30 copies took 43 s one at a
    time and 50 s eight at a time). So a migrated database is reused: when its test is done
    (`release`), it is emptied (TRUNCATE ... RESTART IDENTITY) if its schema is still the
    template's, and handed to the next test; only the few left over are dropped at the end.
    """

    base_url: str
    template: str | None = None
    created: list[str] = field(default_factory=list)
    spare: list[str] = field(default_factory=list)
    template_fingerprint: str | None = None

    def _url(self, name: str) -> str:
        return make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def url_of(self, name: str) -> str:
        """The URL of database `name` on this server (whether it exists or not)."""
        return self._url(name)

    def run(self, sql: str) -> None:
        """Runs one administrative statement (from sync code)."""
        run_blocking(self._admin(sql))

    async def _connect(self, database: str | None = None) -> asyncpg.Connection:
        base = make_url(self.base_url)
        return await asyncpg.connect(
            host=base.host,
            port=base.port or 5432,
            user=base.username,
            password=base.password,
            database=database or base.database,
            timeout=3,
        )

    async def _admin(self, sql: str) -> None:
        conn = await self._connect()
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def new_database(self, *, migrated: bool) -> str:
        if migrated and self.spare:
            return self._url(self.spare.pop())
        name = f"ssc_test_{uuid.uuid4().hex[:12]}"
        if migrated:
            if self.template is None:
                template = f"ssc_tpl_{uuid.uuid4().hex[:12]}"
                await self._admin(f'CREATE DATABASE "{template}"')
                self.created.append(template)
                await migrate(self._url(template))
                self.template = template
                self.template_fingerprint = await self._fingerprint(template)
            await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        else:
            await self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self._url(name)

    async def _fingerprint(self, name: str) -> str:
        conn = await self._connect(name)
        try:
            return str(await conn.fetchval(SCHEMA_FINGERPRINT))
        finally:
            await conn.close()

    def release(self, url: str) -> None:
        """Takes back a migrated database its test is done with: emptied for the next test
        when its schema is still the template's, else left to `drop_all`."""
        name = make_url(url).database
        assert name is not None and name in self.created
        if run_blocking(self._reset(name)):
            self.spare.append(name)

    async def _reset(self, name: str) -> bool:
        """Ends every other session on `name`, then empties it if its schema is the
        template's; whether it was emptied."""
        await self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        try:
            if await self._fingerprint(name) != self.template_fingerprint:
                return False
            conn = await self._connect(name)
        except (asyncpg.PostgresError, OSError):
            return False
        try:
            tables = await conn.fetch(
                "SELECT quote_ident(tablename) AS name FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
            sequences = await conn.fetch(
                "SELECT quote_ident(sequencename) AS name FROM pg_sequences"
                " WHERE schemaname = 'public'"
            )
            async with conn.transaction():
                if tables:
                    listed = ", ".join(row["name"] for row in tables)
                    await conn.execute(f"TRUNCATE {listed} RESTART IDENTITY CASCADE")
                for row in sequences:
                    await conn.execute(f"ALTER SEQUENCE {row['name']} RESTART")
        except asyncpg.PostgresError:
            return False
        finally:
            await conn.close()
        return True

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
    server = _postgres(request)
    url = await server.new_database(migrated=True)
    request.addfinalizer(lambda: server.release(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a database migrated to head, on each backend."""
    return await migrated_database_url(request, request.param, tmp_path)


# --- The service -----------------------------------------------------------------------------

UNLIMITED_RATES = {f"rate_limit_{rule.value}": "1000000/60" for rule in RateLimitRule}
"""Every test client comes from one address and may log in or apply many times; the limits
have their own tests (tests/api/test_rate_limits.py), which set them low."""


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
        **UNLIMITED_RATES,
    }
    if request.param == "embedded":
        overrides["database_url"] = await migrated_database_url(request, "sqlite", tmp_path)
        overrides["redis_url"] = None
    else:
        overrides["database_url"] = await migrated_database_url(request, "postgresql", tmp_path)
        overrides["redis_url"] = request.getfixturevalue("redis_url")
        overrides["redis_namespace"] = redis_namespace
    return load_settings(**overrides)


async def _report_stuck_tasks(after: float) -> None:
    """A shutdown still running after `after` s: print where each task waits (pytest shows it
    with the test that hangs, before pytest-timeout's thread dump, which cannot)."""
    await asyncio.sleep(after)
    for task in asyncio.all_tasks():
        print(f"shutdown still waits: {task.get_name()}: {awaiting(task)}", file=sys.stderr)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running (database, store and keys open)."""
    application = create_app(settings)
    watchdog: asyncio.Task[None] | None = None
    try:
        async with application.router.lifespan_context(application):
            yield application
            watchdog = asyncio.create_task(_report_stuck_tasks(after=60))
    finally:
        if watchdog is not None:
            watchdog.cancel()
    if settings.redis_url:
        cleanup = RedisStore.from_url(settings.redis_url, namespace=settings.redis_namespace)
        await cleanup.drop_namespace()
        await cleanup.close()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


# --- Servers a test owns ---------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A `redis-server` of this test alone, without persistence, which it may stop or kill."""
    if shutil.which("redis-server") is None:
        server_missing("redis-server", "not installed")
    directory = tmp_path / "own-redis"
    directory.mkdir()
    server = OwnRedis(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    """A migrated PostgreSQL server of this test alone, which it may stop or kill."""
    reason = OwnPostgres.available()
    if reason is not None:
        server_missing("a private PostgreSQL", reason)
    server = OwnPostgres()
    try:
        server.init()
        server.start()
        await migrate(server.url)
        yield server
    finally:
        server.close()


# --- Browser ---------------------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium driven by Playwright (see tests/browser.py)."""
    missing = chromium_missing()
    if missing:
        server_missing("Chromium", missing)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A phone-sized browser context (390x844, touch, Chinese first as the phones are)."""
    context = await browser.new_context(
        viewport=PHONE_VIEWPORT,  # type: ignore[arg-type]
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    try:
        yield context
    finally:
        await context.close()


# --- Two servers ------------------------------------------------------------------------------


@dataclass
class Cluster:
    """Two `ssc serve` processes sharing a throw-away PostgreSQL database, a Redis namespace and
    the key directory, as two workers or two machines behind a load balancer do; `runtime` is
    a third process's view of the same (it mints tokens both accept)."""

    settings: Settings
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    runtime: Runtime


@pytest.fixture
def cluster_settings(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, redis_namespace: str
) -> Settings:
    server = _postgres(request)
    database_url = run_blocking(server.new_database(migrated=True))
    return load_settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_namespace=redis_namespace,
        var_dir=tmp_path / "var",
        key_dir=tmp_path / "var" / "keys",
        key_encryption_key=new_secret(),
        data_key=new_secret(),
        token_secret=new_secret(),
        log_level="warning",
    )


@pytest.fixture
async def cluster(cluster_settings: Settings) -> AsyncIterator[Cluster]:
    settings = cluster_settings
    # Opening the runtime here first creates the signing keys both servers then load.
    runtime = await Runtime.start(settings)
    env = server_env(settings)
    ports = free_port(), free_port()
    processes = [start_server(env, port) for port in ports]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for process, url in zip(processes, urls, strict=True):
            wait_until_up(process, url)
        async with (
            httpx.AsyncClient(base_url=urls[0], timeout=10) as a,
            httpx.AsyncClient(base_url=urls[1], timeout=10) as b,
        ):
            yield Cluster(settings, a, b, runtime)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await runtime.close()
        assert settings.redis_url is not None
        cleanup = RedisStore.from_url(settings.redis_url, namespace=settings.redis_namespace)
        await cleanup.drop_namespace()
        await cleanup.close()
