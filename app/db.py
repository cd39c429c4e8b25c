"""Async database engine and sessions; the schema comes only from Alembic migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from alembic import command
from app.errors import ServiceUnavailable
from app.security.pii import PiiCipher

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "alembic"
CONNECT_TIMEOUT_SECONDS = 5
"""How long opening a PostgreSQL connection may take (asyncpg waits 60 s by default), and how
long a request waits for a pooled connection: past either it answers 503."""
logger = logging.getLogger("ssc.db")


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached (down, restarting, connection lost, pool exhausted), or a
    commit failed: nothing was acknowledged, the client may retry."""

    code = "database-unavailable"
    title = "Database temporarily unavailable"


# SQLSTATE classes of an unreachable server: 08 connection exception, 57P01-57P03 shut down or
# starting up, 53300 too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
_DRIVER_MODULES = frozenset(("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3"))
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error")


DRIVER_ERRORS: tuple[type[Exception], ...] = (
    exc.SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
)
"""What the database layers raise; `is_unavailable_error` tells an outage among them."""


def is_unavailable_error(error: BaseException) -> bool:
    """Whether `error` (or what a driver error wraps) means the database cannot be reached
    right now (down, restarting, connection lost, pool exhausted, SQLite locked), as opposed to
    a bad statement or a bug. A bare `OSError` counts: callers ask only about errors raised
    while talking to the database."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _unavailable(current):
            return True
        if type(current).__module__.partition(".")[0] in _DRIVER_MODULES:
            # A driver's or SQLAlchemy's wrapper: look at what it wraps. Other errors (a store
            # error caused by a refused socket) are not the database's.
            pending += [getattr(current, "orig", None), current.__cause__]
    return False


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError):
        return True
    if isinstance(error, asyncpg.PostgresConnectionError):
        return True
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    if isinstance(error, sqlite3.OperationalError):
        return str(error).lower().startswith(_SQLITE_UNAVAILABLE)
    return isinstance(error, OSError)


class DatabaseHealth:
    """Whether the database answered last time: logs one line when it stops answering and one
    when it answers again, instead of a traceback per request."""

    def __init__(self) -> None:
        self.down_since: float | None = None

    @property
    def available(self) -> bool:
        return self.down_since is None

    def failed(self, error: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.error(
                "database unavailable, answering 503 until it is back: %s", _describe(error)
            )

    def succeeded(self, started_at: float) -> None:
        """A call that began at `started_at` (monotonic) reached the database.

        Only a call begun after the outage was noticed proves the database is back: one in
        flight when it stopped can still commit, and would otherwise end the outage at once
        and log it again on the next failure.
        """
        if self.down_since is not None and started_at > self.down_since:
            logger.warning(
                "database available again after %.1f s", time.monotonic() - self.down_since
            )
            self.down_since = None


def _describe(error: BaseException) -> str:
    text = str(error).split("\n", 1)[0]
    return f"{type(error).__name__}: {text[:200]}"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    options: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
    else:
        options.update(
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
            pool_timeout=CONNECT_TIMEOUT_SECONDS,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        )
    engine = create_async_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "savepoint", _sqlite_begin_before_savepoint)
    return engine


def _sqlite_begin_before_savepoint(connection: Connection, _name: str) -> None:
    """pysqlite emits BEGIN only before a data change, not before SAVEPOINT: a savepoint
    opened first becomes the transaction itself and its RELEASE commits, so its rows would
    outlive a rollback (or failed commit) of the session. Begin the real transaction first."""
    if not connection.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """Owns the engine; hands out sessions that commit on success and roll back on error.

    Every failure to reach the database, and every failed commit, leaves a session as
    `DatabaseUnavailable` (503): this is the one place that tells an outage from a bug.
    """

    def __init__(
        self, url: str, *, echo: bool = False, health: DatabaseHealth | None = None
    ) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self.health = health or DatabaseHealth()
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A transaction, committed when the block ends without an error.

        :raises DatabaseUnavailable: the database could not be reached, or the commit failed
            (then nothing of the block is stored, or, when the connection broke during the
            commit, its outcome is unknown: never acknowledged).
        """
        started_at = time.monotonic()
        async with self._sessions() as session:
            try:
                yield session
            except BaseException as error:
                await self._roll_back(session, error)
                if isinstance(error, Exception) and is_unavailable_error(error):
                    raise self.unavailable(error) from error
                raise
            # A block that never reached the database says nothing about its health.
            reached = session.in_transaction()
            try:
                await session.commit()
            except Exception as error:
                await self._roll_back(session, error)
                if not is_unavailable_error(error):
                    logger.exception("commit failed")
                    raise DatabaseUnavailable("the change could not be committed") from error
                raise self.unavailable(error) from error
        if reached:
            self.health.succeeded(started_at)

    async def _roll_back(self, session: AsyncSession, error: BaseException) -> None:
        try:
            await session.rollback()
        except Exception:
            if not is_unavailable_error(error):
                raise
            # The connection is gone with the transaction; the pool discards it.

    def unavailable(self, error: BaseException) -> DatabaseUnavailable:
        """The answer to an outage `error`, noted in `health` (one log line per outage)."""
        self.health.failed(error)
        return DatabaseUnavailable("the database is temporarily unavailable; retry shortly")

    async def ping(self) -> None:
        started_at = time.monotonic()
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:
            if is_unavailable_error(error):
                self.health.failed(error)
            raise
        self.health.succeeded(started_at)

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


class DatabaseMissing(Exception):
    """The database named in the URL does not exist on its (reachable) server."""


class DatabaseNotMigrated(Exception):
    """The database has no schema yet, or an older one: `ssc migrate` first."""


def is_missing_database_error(error: BaseException) -> bool:
    """Whether `error` (or what it wraps) says the database named in the URL does not exist
    (PostgreSQL SQLSTATE 3D000, invalid_catalog_name)."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.InvalidCatalogNameError):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


async def create_database(url: str) -> None:
    """Creates the PostgreSQL database named in `url`, connected as the URL's role to the
    server's `postgres` maintenance database.

    :raises asyncpg.InsufficientPrivilegeError: the role may not create databases.
    :raises asyncpg.DuplicateDatabaseError: someone created it meanwhile.
    """
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database="postgres",
        timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        name = (parsed.database or "").replace('"', '""')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def check_schema(url: str) -> None:
    """Checks that the database at `url` answers and is migrated to the newest revision.

    :raises DatabaseMissing: the database does not exist on its server.
    :raises DatabaseNotMigrated: it has no schema, or an older one.
    :raises Exception: what the driver raises when the server cannot be reached.
    """
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(_current_revisions)
    except Exception as error:
        if is_missing_database_error(error):
            raise DatabaseMissing(make_url(url).database or "") from error
        raise
    finally:
        await engine.dispose()
    head = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    if current != head:
        found = ", ".join(sorted(current)) or "no schema"
        raise DatabaseNotMigrated(f"at {found}, not {', '.join(sorted(head))}")


def _current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def migrate_sync(url: str, revision: str = "head", *, pii: PiiCipher | None = None) -> None:
    asyncio.run(migrate(url, revision, pii=pii))
