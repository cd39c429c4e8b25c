"""The API runs the audit consumer for as long as it runs, and flushes the stream at shutdown."""

from __future__ import annotations

from api.app import create_app
from app.audit.log import record
from app.config import Settings
from app.db import Database
from app.runtime import Runtime
from app.store.redis import RedisStore
from tests.app.audit.conftest import stored_rows


class TestApiLifespan:
    async def test_events_recorded_while_the_api_runs_are_in_sql_after_shutdown(
        self, settings: Settings
    ) -> None:
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            runtime: Runtime = application.state.runtime
            event_ids = [
                await record(runtime.store, "scanner.disable", "admin:1", f"scanner-{n}")
                for n in range(20)
            ]
        database = Database(settings.database_url)
        try:
            stored = [row.event_id for row in await stored_rows(database)]
        finally:
            await database.dispose()
            if settings.redis_url:
                leftover = RedisStore.from_url(
                    settings.redis_url, namespace=settings.redis_namespace
                )
                await leftover.drop_namespace()
                await leftover.close()
        assert sorted(set(stored) & set(event_ids)) == sorted(event_ids)
        assert len(stored) == len(set(stored))
