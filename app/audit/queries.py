"""Reading the persisted audit log (administrators and auditors), newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.models import AuditEvent


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    subject: str | None = None
    before: int | None = None
    """Only rows older than this row id: the cursor of the next page."""
    limit: int = 100


async def list_audit_events(session: AsyncSession, where: AuditFilter) -> Sequence[AuditEvent]:
    statement = select(AuditEvent)
    if where.action is not None:
        statement = statement.where(AuditEvent.action == where.action)
    if where.actor is not None:
        statement = statement.where(AuditEvent.actor == where.actor)
    if where.subject is not None:
        statement = statement.where(AuditEvent.subject == where.subject)
    if where.before is not None:
        statement = statement.where(col(AuditEvent.id) < where.before)
    statement = statement.order_by(col(AuditEvent.id).desc()).limit(where.limit)
    return (await session.exec(statement)).all()
