"""The start-up check of the store's persistence (issue 10, defect 5a), on private
`redis-server`s: an append-only Redis is fine, one without persistence or with an evicting
policy is degraded (and refused with `SSC_REQUIRE_PERSISTENT_STORE`), one that will not say
is unknown."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from app.config import Settings, load_settings, new_secret
from app.store.durability import DurabilityState, StoreNotDurable, inspect_durability
from app.store.memory import MemoryStore
from app.store.redis import RedisStore
from tests.servers import OwnRedis

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


async def inspect(server: OwnRedis) -> tuple[DurabilityState, dict[str, str]]:
    store = RedisStore.from_url(server.url, namespace="durability")
    try:
        durability = await inspect_durability(store)
    finally:
        await store.close()
    return durability.state, dict(durability.observed)


def settings_for(
    tmp_path: Path, sqlite_template: Path, server: OwnRedis, **extra: object
) -> Settings:
    database = tmp_path / "ssc.db"
    shutil.copyfile(sqlite_template, database)
    return load_settings(
        environment="test",
        var_dir=tmp_path / "var",
        key_dir=tmp_path / "var" / "keys",
        key_encryption_key=new_secret(),
        data_key=new_secret(),
        token_secret=new_secret(),
        database_url=f"sqlite+aiosqlite:///{database}",
        redis_url=server.url,
        redis_namespace="durability",
        **extra,
    )


@pytest.fixture
def servers() -> Iterator[list[OwnRedis]]:
    started: list[OwnRedis] = []
    yield started
    for server in started:
        server.stop()


def own(
    servers: list[OwnRedis],
    directory: Path,
    *,
    appendonly: bool = False,
    options: tuple[str, ...] = (),
) -> OwnRedis:
    directory.mkdir(parents=True, exist_ok=True)
    server = OwnRedis(directory, appendonly=appendonly, options=options)
    server.start()
    servers.append(server)
    return server


async def readiness(settings: Settings) -> dict[str, str]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


class TestInspection:
    async def test_append_only_with_fsync_always_is_ok(
        self, servers: list[OwnRedis], tmp_path: Path
    ) -> None:
        server = own(servers, tmp_path / "aof", appendonly=True)
        assert await inspect(server) == (
            DurabilityState.OK,
            {"appendonly": "yes", "appendfsync": "always", "maxmemory_policy": "noeviction"},
        )

    async def test_without_persistence_is_degraded(
        self, servers: list[OwnRedis], tmp_path: Path
    ) -> None:
        state, observed = await inspect(own(servers, tmp_path / "plain"))
        assert state is DurabilityState.DEGRADED
        assert observed["appendonly"] == "no"

    async def test_an_evicting_policy_is_degraded_even_with_an_aof(
        self, servers: list[OwnRedis], tmp_path: Path
    ) -> None:
        server = own(
            servers,
            tmp_path / "lru",
            appendonly=True,
            options=("--maxmemory-policy", "volatile-lru"),
        )
        state, observed = await inspect(server)
        assert state is DurabilityState.DEGRADED
        assert observed["maxmemory_policy"] == "volatile-lru"

    async def test_config_refused_falls_back_to_info(
        self, servers: list[OwnRedis], tmp_path: Path
    ) -> None:
        """As on managed services that rename or forbid CONFIG: INFO still tells."""
        server = own(
            servers,
            tmp_path / "noconfig",
            appendonly=True,
            options=("--rename-command", "CONFIG", ""),
        )
        state, observed = await inspect(server)
        assert state is DurabilityState.OK
        assert observed["appendfsync"] == "unknown"

    async def test_info_refused_is_unknown(self, servers: list[OwnRedis], tmp_path: Path) -> None:
        server = own(servers, tmp_path / "noinfo", options=("--rename-command", "INFO", ""))
        state, _ = await inspect(server)
        assert state is DurabilityState.UNKNOWN

    async def test_the_memory_store_is_in_process(self) -> None:
        durability = await inspect_durability(MemoryStore())
        assert durability.state is DurabilityState.IN_PROCESS


class TestStartUp:
    async def test_readyz_is_ok_on_an_append_only_redis(
        self, servers: list[OwnRedis], tmp_path: Path, sqlite_template: Path
    ) -> None:
        server = own(servers, tmp_path / "aof", appendonly=True)
        body = await readiness(settings_for(tmp_path, sqlite_template, server))
        assert (body["status"], body["store_persistence"]) == ("ok", "ok")

    async def test_readyz_is_degraded_without_persistence(
        self, servers: list[OwnRedis], tmp_path: Path, sqlite_template: Path
    ) -> None:
        server = own(servers, tmp_path / "plain")
        body = await readiness(settings_for(tmp_path, sqlite_template, server))
        assert (body["status"], body["store_persistence"]) == ("degraded", "degraded")

    async def test_start_up_refuses_a_store_without_persistence_when_required(
        self, servers: list[OwnRedis], tmp_path: Path, sqlite_template: Path
    ) -> None:
        server = own(servers, tmp_path / "plain")
        settings = settings_for(tmp_path, sqlite_template, server, require_persistent_store=True)
        app = create_app(settings)
        with pytest.raises(StoreNotDurable, match="appendonly is off"):
            async with app.router.lifespan_context(app):
                pass

    async def test_start_up_accepts_a_persistent_store_when_required(
        self, servers: list[OwnRedis], tmp_path: Path, sqlite_template: Path
    ) -> None:
        server = own(servers, tmp_path / "aof", appendonly=True)
        settings = settings_for(tmp_path, sqlite_template, server, require_persistent_store=True)
        assert (await readiness(settings))["status"] == "ok"
