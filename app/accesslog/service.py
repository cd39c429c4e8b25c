"""Reading the holder's access log, newest first, a page at a time."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accesslog.errors import InvalidCursor
from app.accesslog.models import AccessLogEntry

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class AccessLogFilter:
    since: datetime | None = None
    until: datetime | None = None
    organisation_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class AccessLogPage:
    entries: list[AccessLogEntry]
    next_cursor: str | None


def as_utc(moment: datetime) -> datetime:
    """SQLite hands times back without their zone; every stored time is UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def encode_cursor(entry: AccessLogEntry) -> str:
    """Opaque to the client: the position (time, event id) of the last entry handed out."""
    position = f"{as_utc(entry.occurred_at).isoformat()}|{entry.event_id}".encode()
    return base64.urlsafe_b64encode(position).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """:raises InvalidCursor: when `cursor` was not made by `encode_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, event_id = raw.split("|", 1)
        at = datetime.fromisoformat(moment)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("the cursor is malformed") from None
    if at.tzinfo is None or not event_id:
        raise InvalidCursor("the cursor is malformed")
    return at, event_id


async def holder_access_log(
    session: AsyncSession,
    card_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
    where: AccessLogFilter = AccessLogFilter(),
) -> AccessLogPage:
    """The card's entries, newest first, `limit` at most, after `cursor`.

    :raises InvalidCursor: when `cursor` is malformed.
    """
    occurred_at, event_id = col(AccessLogEntry.occurred_at), col(AccessLogEntry.event_id)
    statement = select(AccessLogEntry).where(AccessLogEntry.card_id == card_id)
    if where.since is not None:
        statement = statement.where(occurred_at >= as_utc(where.since))
    if where.until is not None:
        statement = statement.where(occurred_at < as_utc(where.until))
    if where.organisation_id is not None:
        statement = statement.where(AccessLogEntry.organisation_id == where.organisation_id)
    if cursor is not None:
        at, last = decode_cursor(cursor)
        statement = statement.where(or_(occurred_at < at, and_(occurred_at == at, event_id < last)))
    statement = statement.order_by(occurred_at.desc(), event_id.desc()).limit(limit + 1)
    rows = list((await session.exec(statement)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return AccessLogPage(rows, encode_cursor(rows[-1]) if more and rows else None)
