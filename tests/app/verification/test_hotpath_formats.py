"""The verify path's cheaper formatting must write exactly what the plain library calls wrote:
scanners, the audit consumer and pseudonym holders compare these strings."""

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import orjson
import pytest

from app.audit.log import audit_fields
from app.cards.models import CardStatus
from app.cards.snapshot import (
    AttributeView,
    CardSnapshot,
    GrantedEntitlement,
    age_band,
    day_number,
)
from app.security.errors import PiiError
from app.security.pii import PiiCipher
from app.verification.memo import ChinaDay
from app.verification.service import PSEUDONYM_CHARS, iso_millis, pairwise_pseudonym

KEY = b"k" * 32


def isoformat(now: float) -> str:
    return (
        datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class TestCheckedAt:
    @pytest.mark.parametrize(
        "now",
        [
            0.0,
            1764115200.0,
            1764115200.0004994,
            1764115200.0005,
            1764115200.9994999,
            1764115200.9995,
            1764115200.9999996,  # rounds up into the next second
            1767225599.999,
        ],
    )
    def test_matches_datetime_isoformat(self, now: float) -> None:
        assert iso_millis(now) == isoformat(now)

    def test_follows_the_clock_across_seconds(self) -> None:
        times = [1764115200.25, 1764115201.5, 1764115200.75, 1764115261.125]
        assert [iso_millis(now) for now in times] == [isoformat(now) for now in times]


class TestPseudonymFormula:
    def test_is_hmac_sha256_of_organisation_and_card_base64url(self) -> None:
        org, card = uuid.uuid4(), uuid.uuid4()
        digest = hmac.new(KEY, org.bytes + card.bytes, hashlib.sha256).digest()
        expected = base64.urlsafe_b64encode(digest)[:PSEUDONYM_CHARS].decode()
        assert pairwise_pseudonym(KEY, org, card) == expected

    def test_each_key_keeps_its_own_pseudonyms(self) -> None:
        org, card = uuid.uuid4(), uuid.uuid4()
        first = pairwise_pseudonym(KEY, org, card)
        other = pairwise_pseudonym(b"o" * 32, org, card)
        assert pairwise_pseudonym(KEY, org, card) == first != other


class TestAuditEventIds:
    def test_are_distinct_and_readable_by_the_consumer(self) -> None:
        ids = [audit_fields("verify", "scn_1")["eid"] for _ in range(1000)]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(r"[0-9a-f]{32}", eid) for eid in ids)

    def test_fields_are_unchanged(self) -> None:
        fields = audit_fields("verify", "scn_1", "", {"kid": "k", "scene": None})
        assert set(fields) == {"eid", "at", "action", "actor", "subject", "data"}
        assert fields["data"] == '{"kid":"k","scene":null}'
        assert re.fullmatch(r"\d+\.\d{6}", fields["at"])

    def test_data_may_be_any_mapping(self) -> None:
        fields = audit_fields("verify", "scn_1", "", MappingProxyType({"org": "o"}))
        assert fields["data"] == '{"org":"o"}'


def calendar_age(born: date, today: date) -> int:
    """Age in whole years, reckoned with dates: the year difference, less one before the
    birthday."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def band_of_age(age: int) -> str:
    for upper, band in ((14, "under_14"), (18, "14_17"), (60, "18_59"), (65, "60_64")):
        if age < upper:
            return band
    return "65_69" if age < 70 else "70_plus"


class TestAgeBands:
    """Age bands come from day numbers (yyyymmdd) without date arithmetic; they must be the
    bands of the calendar age, birthdays and leap days included."""

    @pytest.mark.parametrize(
        ("born", "today", "band"),
        [
            (date(2012, 12, 3), date(2026, 12, 2), "under_14"),  # the day before the 14th birthday
            (date(2012, 12, 3), date(2026, 12, 3), "14_17"),  # on it
            (date(2008, 12, 4), date(2026, 12, 3), "14_17"),
            (date(2008, 12, 3), date(2026, 12, 3), "18_59"),
            (date(1966, 12, 4), date(2026, 12, 3), "18_59"),
            (date(1966, 12, 3), date(2026, 12, 3), "60_64"),
            (date(1961, 12, 3), date(2026, 12, 3), "65_69"),
            (date(1956, 12, 4), date(2026, 12, 3), "65_69"),
            (date(1956, 12, 3), date(2026, 12, 3), "70_plus"),
            (date(2008, 2, 29), date(2026, 2, 28), "14_17"),  # a leap-day birthday
            (date(2008, 2, 29), date(2026, 3, 1), "18_59"),
            (date(2030, 1, 1), date(2026, 12, 3), "under_14"),  # a birth date not yet reached
        ],
    )
    def test_at_the_birthdays_that_change_them(self, born: date, today: date, band: str) -> None:
        assert age_band(day_number(born), day_number(today)) == band
        assert band_of_age(calendar_age(born, today)) == band

    def test_equal_the_calendar_reckoning_over_every_day_of_eight_years(self) -> None:
        born = [date(1952, 2, 29), date(1990, 1, 1), date(2000, 12, 31), date(2012, 6, 15)]
        day = date(2020, 1, 1)
        while day < date(2028, 1, 1):
            for birth in born:
                expected = band_of_age(calendar_age(birth, day))
                assert age_band(day_number(birth), day_number(day)) == expected, (birth, day)
            day += timedelta(days=1)


class TestChinaDay:
    def test_turns_at_midnight_in_china_which_is_1600_utc(self) -> None:
        today = ChinaDay()
        before = datetime(2026, 12, 3, 15, 59, 59, 999000, tzinfo=UTC).timestamp()
        assert today(before) == 20261203
        assert today(before + 0.001) == 20261204
        assert today(before + 86400) == 20261204
        assert today(before + 86400.001) == 20261205

    def test_follows_a_clock_set_back(self) -> None:
        today = ChinaDay()
        now = datetime(2026, 12, 3, 4, tzinfo=UTC).timestamp()
        assert today(now) == 20261203
        assert today(now - 86400) == 20261202
        assert today(now) == 20261203

    def test_is_the_date_in_shanghai_at_any_moment(self) -> None:
        today = ChinaDay()
        shanghai = ZoneInfo("Asia/Shanghai")
        for now in range(1764115200, 1764115200 + 3 * 86400, 3607):
            assert today(now) == day_number(datetime.fromtimestamp(now, shanghai).date())


PII = PiiCipher(b"e" * 32, b"i" * 32)


class TestSealedAttributeViews:
    def test_open_gives_back_what_was_sealed(self) -> None:
        card = uuid.uuid4()
        view = AttributeView.of(
            "张三丰",
            "resident_id",
            "110101194503071234",
            date(1945, 3, 7),
            (GrantedEntitlement("elderly_preferential", 1893456000.0),),
        )
        opened = AttributeView.open(PII, card.bytes, view.seal(PII, card))
        assert opened == view
        assert opened.masked_document_number == "110***********1234"
        assert opened.born == 19450307

    def test_a_view_sealed_before_day_numbers_still_opens_alike(self) -> None:
        """Views in the store keep the earlier form (birth date in ISO, no masked number)
        until their card next changes."""
        card = uuid.uuid4()
        plain = orjson.dumps(
            ["张三丰", "resident_id", "110101194503071234", "1945-03-07", [["disability", 2e9]]]
        )
        sealed = base64.urlsafe_b64encode(PII.seal_view(card.bytes, plain)).rstrip(b"=")
        opened = AttributeView.open(PII, card.bytes, sealed.decode())
        assert opened == AttributeView.of(
            "张三丰",
            "resident_id",
            "110101194503071234",
            date(1945, 3, 7),
            (GrantedEntitlement("disability", 2e9),),
        )

    def test_a_view_of_another_card_or_not_base64url_does_not_open(self) -> None:
        card = uuid.uuid4()
        sealed = AttributeView.of("张三丰", "resident_id", "110101194503071234", None).seal(
            PII, card
        )
        with pytest.raises(PiiError):
            AttributeView.open(PII, uuid.uuid4().bytes, sealed)
        with pytest.raises(PiiError):
            AttributeView.open(PII, card.bytes, "视图")
        with pytest.raises(PiiError):
            AttributeView.open(PII, card.bytes, sealed[:-3] + "A")


class TestCardSnapshotEncoding:
    """Snapshots written by any version stay readable: the verify path decodes one per scan,
    and the card id it gives is the one encoded, whatever spelling the writer used."""

    @pytest.mark.parametrize("status", list(CardStatus))
    def test_decodes_to_what_was_encoded(self, status: CardStatus) -> None:
        card = uuid.uuid4()
        snapshot = CardSnapshot.of(status, card, "张*丰", view="c2VhbGVk")
        decoded = CardSnapshot.decode(snapshot.encode())
        assert decoded == snapshot
        assert decoded.card_id == card and decoded.card_bytes == card.bytes
        assert decoded.view == "c2VhbGVk"

    def test_a_snapshot_written_before_views_decodes_without_one(self) -> None:
        card = uuid.uuid4()
        decoded = CardSnapshot.decode(f"lost|{card.hex}|张*丰".encode())
        assert decoded == CardSnapshot.of(CardStatus.lost, card, "张*丰")
        assert decoded.view == ""

    @pytest.mark.parametrize("spelling", [str, lambda card: card.hex.upper(), lambda c: f"{{{c}}}"])
    def test_reads_the_card_id_in_any_spelling_uuid_reads(
        self, spelling: Callable[[uuid.UUID], str]
    ) -> None:
        card = uuid.uuid4()
        decoded = CardSnapshot.decode(f"active|{spelling(card)}|view|张*".encode())
        assert decoded.card_id == card

    @pytest.mark.parametrize(
        "raw",
        [
            b"active|" + b"ab " * 10 + b"ab|view|x",  # 32 characters, spaces among hex digits
            b"active|" + b"0" * 31 + b"|view|x",
            b"active|" + b"g" * 32 + b"|view|x",
            b"gone|" + b"0" * 32 + b"|view|x",
            b"active|" + b"0" * 32,
            b"\xff|" + b"0" * 32 + b"|view|x",
        ],
    )
    def test_anything_else_is_refused(self, raw: bytes) -> None:
        with pytest.raises(ValueError):
            CardSnapshot.decode(raw)
