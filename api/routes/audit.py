"""The persisted audit log, for the provincial administrator and the auditor (read-only)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import CurrentAdmin
from api.deps import SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.common import UtcDateTime
from app.audit.queries import AuditFilter, list_audit_events

router = APIRouter(tags=["audit"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Role may not read the audit log", **_PROBLEM},
}


class AuditEventOut(BaseModel):
    id: int
    event_id: str
    occurred_at: UtcDateTime
    action: str
    actor: str
    subject: str
    data: dict[str, Any]


@router.get(
    "/v1/admin/audit-events",
    summary="The audit log, newest first; page with ?before=<the last id seen>",
    responses=_ADMIN_ERRORS,
)
async def audit_events(
    *,
    admin: CurrentAdmin,
    session: SessionDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    subject: Annotated[str | None, Query(max_length=128)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEventOut]:
    rows = await list_audit_events(session, AuditFilter(action, actor, subject, before, limit))
    return [
        AuditEventOut(
            id=row.id or 0,
            event_id=row.event_id,
            occurred_at=row.occurred_at,
            action=row.action,
            actor=row.actor,
            subject=row.subject,
            data=_data(row.data),
        )
        for row in rows
    ]


def _data(text: str) -> dict[str, Any]:
    parsed = orjson.loads(text)
    return parsed if isinstance(parsed, dict) else {"value": parsed}
