"""Appending to the audit stream. Producers (lifecycle services, the verify Lua script) write
entries with the fields of `audit_fields`; `app.audit.consumer` persists them to SQL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from app.store import Store
from app.unique_ids import unique_ids

AUDIT_STREAM = "audit"


def audit_fields(
    action: str, actor: str, subject: str = "", data: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The stream entry of one audit event; `eid` makes persisting it idempotent."""
    return {
        "eid": unique_ids.next(),
        "at": f"{time.time():.6f}",
        "action": action,
        "actor": actor,
        "subject": subject,
        "data": orjson.dumps(data if type(data) is dict else dict(data or {})).decode(),
    }


async def record(
    store: Store,
    action: str,
    actor: str,
    subject: str = "",
    data: Mapping[str, Any] | None = None,
) -> str:
    """Appends one event; returns its `eid`."""
    fields = audit_fields(action, actor, subject, data)
    await append_event(store, fields)
    return fields["eid"]


async def append_event(store: Store, fields: Mapping[str, str]) -> None:
    """Appends an event made beforehand with `audit_fields`: for an event appended after
    its business transaction commits, whose notifications that transaction stored
    (`app.notifications.service.record_event_notifications`, keyed by the same `eid`)."""
    await store.stream_append(AUDIT_STREAM, fields)
