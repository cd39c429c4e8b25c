"""China Standard Time: the clock of a holder's days.

China keeps one time zone, UTC+8, without daylight saving time, so a fixed offset is exact
(the tz database's Asia/Shanghai has agreed with it since 1991). The days that count for a
holder (an age, a licence's validity, the PIN of the day, the latest birth date a document
may carry) are days in this zone, which turn at 16:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


def today_in_china(now: datetime | None = None) -> date:
    """The date in China now, or at `now` (an aware time)."""
    return (now or datetime.now(UTC)).astimezone(CHINA_STANDARD_TIME).date()
