import sqlite3
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import (
    Database,
    DatabaseHealth,
    DatabaseUnavailable,
    downgrade,
    is_unavailable_error,
    migrate,
)
from app.store import StoreUnavailable


class TestMigrations:
    async def test_apply_cleanly_on_an_empty_database(self, empty_database_url: str) -> None:
        await migrate(empty_database_url)
        database = Database(empty_database_url)
        try:
            async with database.engine.connect() as connection:
                tables = await connection.run_sync(
                    lambda sync: set(sa.inspect(sync).get_table_names())
                )
                version = (
                    await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
                ).scalar_one()
        finally:
            await database.dispose()
        assert "audit_events" in tables
        assert version

    async def test_downgrade_to_base_and_up_again(self, empty_database_url: str) -> None:
        await migrate(empty_database_url)
        await downgrade(empty_database_url, "base")
        database = Database(empty_database_url)
        try:
            async with database.engine.connect() as connection:
                tables = await connection.run_sync(
                    lambda sync: set(sa.inspect(sync).get_table_names())
                )
        finally:
            await database.dispose()
        assert "audit_events" not in tables
        await migrate(empty_database_url)

    async def test_venues_give_existing_scanners_their_organisations_default_venue(
        self, empty_database_url: str
    ) -> None:
        """0012: every organisation gets a default venue at its own location, and its scanners
        are placed there, so they keep working."""
        await migrate(empty_database_url, "0011_complaints")
        organisation, scanner = uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        organisations = sa.table(
            "organisations",
            *(sa.column(name) for name in ("name", "venue_type", "region_code", "scenes")),
            *(sa.column(name) for name in ("latitude", "longitude", "created_at")),
            sa.column("id", sa.Uuid()),
        )
        clients = sa.table(
            "api_clients",
            *(sa.column(name) for name in ("client_id", "secret_hash", "kind", "name")),
            *(sa.column(name) for name in ("scopes", "scenes", "status", "created_at")),
            sa.column("id", sa.Uuid()),
            sa.column("organisation_id", sa.Uuid()),
            sa.column("venue_id", sa.Uuid()),
        )
        venues = sa.table(
            "venues",
            *(sa.column(name) for name in ("name", "region_code", "latitude", "longitude")),
            sa.column("is_default"),
            sa.column("id", sa.Uuid()),
            sa.column("organisation_id", sa.Uuid()),
        )
        database = Database(empty_database_url)
        try:
            async with database.engine.begin() as connection:
                await connection.execute(
                    organisations.insert().values(
                        id=organisation,
                        name="Museum",
                        venue_type="museum",
                        region_code="360100",
                        scenes='["museum"]',
                        latitude=28.68,
                        longitude=115.85,
                        created_at=now,
                    )
                )
                await connection.execute(
                    clients.insert().values(
                        id=scanner,
                        client_id="scn_old",
                        secret_hash="x",
                        kind="scanner",
                        name="Gate",
                        organisation_id=organisation,
                        scopes="[]",
                        scenes="[]",
                        status="active",
                        created_at=now,
                    )
                )
            await migrate(empty_database_url)
            async with database.engine.connect() as connection:
                venue = (
                    await connection.execute(
                        sa.select(
                            venues.c.id,
                            venues.c.name,
                            venues.c.region_code,
                            venues.c.latitude,
                            venues.c.longitude,
                            venues.c.is_default,
                        ).where(venues.c.organisation_id == organisation)
                    )
                ).one()
                placed = (
                    await connection.execute(
                        sa.select(clients.c.venue_id).where(clients.c.id == scanner)
                    )
                ).scalar_one()
        finally:
            await database.dispose()
        assert tuple(venue)[1:] == ("Museum", "360100", 28.68, 115.85, True)
        assert placed == venue[0]


class TestSessions:
    async def test_roll_back_on_error(self, database_url: str) -> None:
        database = Database(database_url)
        try:
            try:
                async with database.session() as session:
                    await session.execute(
                        sa.text(
                            "INSERT INTO audit_events (event_id, occurred_at, action, actor,"
                            " subject, data, prev_hash, hash) VALUES ('e1', CURRENT_TIMESTAMP,"
                            " 'test', 'tester', '', '{}', '', 'h1')"
                        )
                    )
                    raise RuntimeError("boom")
            except RuntimeError:
                pass
            async with database.session() as session:
                count = (
                    await session.execute(sa.text("SELECT count(*) FROM audit_events"))
                ).scalar_one()
        finally:
            await database.dispose()
        assert count == 0

    async def test_rows_written_in_a_savepoint_roll_back_with_the_session(
        self, database_url: str
    ) -> None:
        """On SQLite a savepoint opened before any write once became the transaction itself,
        and its release committed: a later failure left its rows behind."""
        database = Database(database_url)
        try:
            try:
                async with database.session() as session:
                    await session.execute(sa.text("SELECT count(*) FROM audit_events"))
                    async with session.begin_nested():
                        await session.execute(sa.text(_INSERT_EVENT))
                    raise RuntimeError("boom")
            except RuntimeError:
                pass
            async with database.session() as session:
                count = (
                    await session.execute(sa.text("SELECT count(*) FROM audit_events"))
                ).scalar_one()
        finally:
            await database.dispose()
        assert count == 0

    async def test_a_failed_commit_is_database_unavailable_and_stores_nothing(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        database = Database(database_url)

        async def failing_commit(session: AsyncSession) -> None:
            raise sa.exc.OperationalError("COMMIT", {}, ConnectionResetError("reset"), True)

        try:
            with pytest.raises(DatabaseUnavailable), monkeypatch.context() as patch:
                patch.setattr(AsyncSession, "commit", failing_commit)
                async with database.session() as session:
                    await session.execute(sa.text(_INSERT_EVENT))
            assert not database.health.available
            async with database.session() as session:
                count = (
                    await session.execute(sa.text("SELECT count(*) FROM audit_events"))
                ).scalar_one()
            assert database.health.available
        finally:
            await database.dispose()
        assert count == 0


_INSERT_EVENT = (
    "INSERT INTO audit_events (event_id, occurred_at, action, actor, subject, data, prev_hash,"
    " hash) VALUES ('e1', CURRENT_TIMESTAMP, 'test', 'tester', '', '{}', '', 'h1')"
)


def _wrapped(error: Exception) -> Exception:
    """`error` as SQLAlchemy raises a driver's error."""
    return sa.exc.OperationalError("SELECT 1", {}, error)


class TestOutageClassification:
    @pytest.mark.parametrize(
        "error",
        [
            ConnectionRefusedError(111, "Connect call failed"),
            TimeoutError(),
            sa.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
            sa.exc.DBAPIError("SELECT 1", {}, Exception("closed"), connection_invalidated=True),
            _wrapped(asyncpg.CannotConnectNowError("the database system is starting up")),
            _wrapped(asyncpg.ConnectionDoesNotExistError("connection was closed")),
            _wrapped(asyncpg.TooManyConnectionsError("sorry, too many clients already")),
            _wrapped(sqlite3.OperationalError("database is locked")),
        ],
        ids=repr,
    )
    def test_an_unreachable_database_is_an_outage(self, error: Exception) -> None:
        assert is_unavailable_error(error)

    @pytest.mark.parametrize(
        "error",
        [
            sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
            _wrapped(sqlite3.OperationalError("no such table: cards")),
            _wrapped(asyncpg.UndefinedTableError('relation "cards" does not exist')),
            ValueError("a bug"),
        ],
        ids=repr,
    )
    def test_a_bad_statement_or_a_bug_is_not(self, error: Exception) -> None:
        assert not is_unavailable_error(error)

    def test_a_store_error_caused_by_a_refused_socket_is_not_the_databases(self) -> None:
        try:
            try:
                raise ConnectionRefusedError(111, "redis refused")
            except ConnectionRefusedError as refused:
                raise StoreUnavailable("store down") from refused
        except StoreUnavailable as error:
            assert not is_unavailable_error(error)


class TestHealth:
    """One log line when the database stops answering, one when it is back."""

    def test_a_call_begun_after_the_outage_ends_it(self, caplog: pytest.LogCaptureFixture) -> None:
        health = DatabaseHealth()
        health.failed(ConnectionRefusedError(111, "refused"))
        health.succeeded(started_at=time.monotonic())
        assert health.available
        assert [r.getMessage().split(" after")[0] for r in caplog.records] == [
            "database unavailable, answering 503 until it is back: "
            "ConnectionRefusedError: [Errno 111] refused",
            "database available again",
        ]

    def test_a_call_in_flight_when_the_database_stopped_does_not(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        started_before = time.monotonic()
        health = DatabaseHealth()
        health.failed(ConnectionRefusedError(111, "refused"))
        health.succeeded(started_at=started_before)
        health.failed(ConnectionRefusedError(111, "refused again"))
        assert not health.available
        assert len(caplog.records) == 1
