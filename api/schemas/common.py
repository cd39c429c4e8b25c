"""Types shared by the request and response bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); an answer always carries its offset,
    as the OpenAPI `date-time` format requires."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime answered in UTC with its offset (`...Z`), even when read naive from SQLite."""


PIN_PATTERN = r"^[0-9]{6}$"
"""A card PIN is exactly 6 digits (`app.security.pins`); a new PIN must also not be weak."""
