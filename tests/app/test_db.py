import sqlalchemy as sa

from app.db import Database, downgrade, migrate


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
