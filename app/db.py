"""Async database engine and sessions; the schema comes only from Alembic migrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from alembic import command
from app.security.pii import PiiCipher

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "alembic"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    options: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
    else:
        options.update(pool_size=10, max_overflow=10, pool_pre_ping=True, pool_timeout=5)
    engine = create_async_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """Owns the engine; hands out sessions that commit on success and roll back on error."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def migrate(url: str, revision: str = "head", *, pii: PiiCipher | None = None) -> None:
    """Applies migrations up to `revision` on the database at `url`, in one transaction.

    `pii` (the cipher of SSC_DATA_KEY) is needed by migrations that seal existing personal
    data (0006); without it they refuse, changing nothing, when there is data to seal.
    """
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision, pii)
    finally:
        await engine.dispose()


def _config(connection: Connection, pii: PiiCipher | None) -> Config:
    config = alembic_config()
    config.attributes["connection"] = connection
    if pii is not None:
        config.attributes["pii"] = pii
    return config


def _upgrade(connection: Connection, revision: str, pii: PiiCipher | None) -> None:
    command.upgrade(_config(connection, pii), revision)


async def downgrade(url: str, revision: str, *, pii: PiiCipher | None = None) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade, revision, pii)
    finally:
        await engine.dispose()


def _downgrade(connection: Connection, revision: str, pii: PiiCipher | None) -> None:
    command.downgrade(_config(connection, pii), revision)


def migrate_sync(url: str, revision: str = "head", *, pii: PiiCipher | None = None) -> None:
    asyncio.run(migrate(url, revision, pii=pii))
