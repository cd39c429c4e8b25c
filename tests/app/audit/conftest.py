"""Fixtures of the audit tests: a `Database` on each backend and readers of the stored rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from app.audit.chain import AuditRecord
from app.audit.models import AuditEvent
from app.db import Database


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


async def stored_rows(database: Database) -> list[AuditEvent]:
    async with database.session() as session:
        return list((await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def audit_record(n: int, *, event_id: str | None = None) -> AuditRecord:
    return AuditRecord(
        event_id=event_id or f"event-{n}",
        occurred_at=START + timedelta(seconds=n, microseconds=n),
        action="card.lost",
        actor=f"holder:{n}",
        subject=f"card-{n}",
        data=f'{{"n":{n}}}',
    )
