"""Appending to the audit stream. Producers (lifecycle services, the verify Lua script) write
entries with the fields of `audit_fields`; `app.audit.consumer` persists them to SQL.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from typing import Any

import orjson

from app.store import Store

AUDIT_STREAM = "audit"


class _EventIds:
    """Event ids unique across processes and restarts without a uuid4 per event (the verify
    path writes one per scan): a random per-process prefix and a counter, 32 hex digits."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_event_ids = _EventIds()


def audit_fields(
    action: str, actor: str, subject: str = "", data: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The stream entry of one audit event; `eid` makes persisting it idempotent."""
    return {
        "eid": _event_ids.next(),
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
    await store.stream_append(AUDIT_STREAM, fields)
    return fields["eid"]
