"""A holder's day is the date in China: UTC+8 all year, the day turning at 16:00 UTC."""

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from app.china_time import CHINA_STANDARD_TIME, today_in_china

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_the_day_turns_at_16_00_utc() -> None:
    assert today_in_china(datetime(2026, 12, 3, 15, 59, 59, 999999, tzinfo=UTC)) == date(
        2026, 12, 3
    )
    assert today_in_china(datetime(2026, 12, 3, 16, tzinfo=UTC)) == date(2026, 12, 4)


def test_a_time_given_with_another_offset_counts_by_its_moment() -> None:
    new_york_evening = datetime(2026, 12, 3, 20, tzinfo=timezone(timedelta(hours=-5)))
    assert today_in_china(new_york_evening) == date(2026, 12, 4)


@given(
    st.datetimes(
        min_value=datetime(1992, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_is_the_date_in_shanghai_at_any_moment(moment: datetime) -> None:
    assert today_in_china(moment) == moment.astimezone(SHANGHAI).date()
    assert (
        moment.astimezone(CHINA_STANDARD_TIME).utcoffset()
        == moment.astimezone(SHANGHAI).utcoffset()
    )


def test_without_a_time_it_is_the_date_in_china_now() -> None:
    before = datetime.now(SHANGHAI).date()
    today = today_in_china()
    assert before <= today <= datetime.now(SHANGHAI).date()
