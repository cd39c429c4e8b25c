"""Types shared by the request and response bodies."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); an answer always carries its offset,
    as the OpenAPI `date-time` format requires."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime answered in UTC with its offset (`...Z`), even when read naive from SQLite."""


PIN_PATTERN = r"^[0-9]{6}$"
"""A card PIN is exactly 6 digits (`app.security.pins`); a new PIN must also not be weak."""


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: object) -> object:
    """Refuses what pydantic would otherwise read as a time (a number of seconds, a date with
    a space): the OpenAPI `date-time` format is RFC 3339's date-time, and only that."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 date-time with its offset is required")
    return value


Rfc3339DateTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
"""A datetime in a request: RFC 3339 text with an offset, nothing else."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: object) -> object:
    """Refuses what pydantic would otherwise read as a date (a number of seconds, a
    date-time): the OpenAPI `date` format is RFC 3339's full-date, and only that."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("a date YYYY-MM-DD is required")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
"""A date in a request: YYYY-MM-DD, nothing else."""


VISIBLE_CHARACTER = r"[^\s\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
r"""One character that Python's `str.strip` keeps: every white space it strips is named, so a
JSON Schema regex engine whose `\s` lacks some (U+0085, U+001C-U+001F) agrees."""

TRIM = AfterValidator(str.strip)
"""Surrounding white space removed, after `text_limits` checked the text as sent."""


def text_limits(max_length: int, *, min_length: int = 1) -> StringConstraints:
    """Free text's limits, for `Annotated[str, text_limits(n), TRIM]`: the lengths apply to the
    text as sent and it must hold a visible character, so that what the schema allows is what
    is accepted (with stripping first, a padded text over the limit was accepted and white
    space alone was schema-valid but refused)."""
    return StringConstraints(
        min_length=min_length, max_length=max_length, pattern=VISIBLE_CHARACTER
    )
