"""The misuse detector: impossible travel between two venues, and too many scans a minute."""

from __future__ import annotations

import uuid

import pytest

from app.misuse.detector import (
    Sighting,
    encode_sighting,
    haversine_km,
    impossible_travel,
    scan_rate,
    sighting_fields,
)
from app.misuse.models import AlertKind

NANCHANG = (28.6829, 115.8579)
JIUJIANG = (29.7050, 116.0019)  # about 115 km north of Nanchang
URUMQI = (43.8256, 87.6168)  # about 3000 km away
CARD = uuid.uuid4()
VENUE_A, VENUE_B = uuid.uuid4(), uuid.uuid4()


def sighting(
    at: float,
    where: tuple[float, float] | None = NANCHANG,
    venue: uuid.UUID = VENUE_A,
    card: uuid.UUID = CARD,
) -> Sighting:
    latitude, longitude = where if where is not None else (None, None)
    return Sighting(uuid.uuid4().hex, card, venue, at, latitude, longitude)


class TestHaversine:
    def test_one_degree_of_latitude_is_about_111_km(self) -> None:
        assert haversine_km(0, 0, 1, 0) == pytest.approx(111.2, abs=0.1)

    def test_nanchang_to_urumqi(self) -> None:
        assert haversine_km(*NANCHANG, *URUMQI) == pytest.approx(2980, rel=0.03)

    def test_a_point_to_itself_is_zero(self) -> None:
        assert haversine_km(*NANCHANG, *NANCHANG) == 0


class TestImpossibleTravel:
    def test_distant_venues_minutes_apart_raise_a_finding(self) -> None:
        finding = impossible_travel(
            sighting(1000.0), sighting(1000.0 + 600, URUMQI, VENUE_B), max_speed_kmh=300
        )
        assert finding is not None
        assert finding.kind is AlertKind.impossible_travel
        assert finding.details["from_organisation"] == str(VENUE_A)
        assert finding.details["to_organisation"] == str(VENUE_B)
        assert finding.details["elapsed_seconds"] == 600
        assert finding.details["required_speed_kmh"] > 10_000

    def test_a_reachable_venue_raises_nothing(self) -> None:
        one_hour = 3600.0
        assert (
            impossible_travel(
                sighting(0.0), sighting(one_hour, JIUJIANG, VENUE_B), max_speed_kmh=300
            )
            is None
        )

    def test_the_max_speed_setting_decides(self) -> None:
        half_hour = 1800.0
        previous, current = sighting(0.0), sighting(half_hour, JIUJIANG, VENUE_B)
        assert impossible_travel(previous, current, max_speed_kmh=300) is None
        assert impossible_travel(previous, current, max_speed_kmh=100) is not None

    def test_scans_handled_out_of_order_count_the_same(self) -> None:
        later, earlier = sighting(600.0, URUMQI, VENUE_B), sighting(0.0)
        finding = impossible_travel(later, earlier, max_speed_kmh=300)
        assert finding is not None
        assert finding.details["from_organisation"] == str(VENUE_A)

    def test_simultaneous_scans_at_distant_venues_have_no_finite_speed(self) -> None:
        finding = impossible_travel(sighting(5.0), sighting(5.0, URUMQI, VENUE_B), 300)
        assert finding is not None
        assert finding.details["required_speed_kmh"] is None

    @pytest.mark.parametrize(
        "previous",
        [
            None,
            sighting(0.0, venue=VENUE_B, where=None),
            sighting(0.0, venue=VENUE_A, where=URUMQI),
            sighting(0.0, venue=VENUE_B, where=URUMQI, card=uuid.uuid4()),
        ],
        ids=["no previous scan", "venue without location", "same venue", "another card"],
    )
    def test_nothing_is_concluded_without_two_located_venues_of_one_card(
        self, previous: Sighting | None
    ) -> None:
        assert impossible_travel(previous, sighting(60.0), 300) is None

    def test_an_event_is_not_compared_with_itself(self) -> None:
        current = sighting(60.0)
        assert impossible_travel(current, current, 300) is None


class TestSightingEncoding:
    @pytest.mark.parametrize("where", [NANCHANG, None])
    def test_round_trip(self, where: tuple[float, float] | None) -> None:
        original = sighting(1234.5678, where)
        assert Sighting.decode(original.encode()) == original

    @pytest.mark.parametrize("raw", [b"", b"x|y", b"e|nothex|nothex|1|"])
    def test_garbage_is_a_value_error(self, raw: bytes) -> None:
        with pytest.raises(ValueError):
            Sighting.decode(raw)

    @pytest.mark.parametrize("where", [NANCHANG, None])
    def test_the_parts_encode_as_the_sighting_does(self, where: tuple[float, float] | None) -> None:
        original = sighting(1234.5678, where)
        latitude, longitude = where or (None, None)
        encoded = encode_sighting(
            original.event_id,
            original.card_id.hex,
            original.organisation_id.hex,
            original.at,
            latitude=latitude,
            longitude=longitude,
        )
        assert encoded == original.encode()
        assert sighting_fields(encoded) == (
            original.event_id,
            original.card_id.hex,
            original.organisation_id.hex,
            original.at,
            latitude,
            longitude,
        )


class TestScanRate:
    def test_a_finding_once_when_the_count_first_goes_over_the_limit(self) -> None:
        findings = [scan_rate(count, limit=3, minute=7) for count in range(1, 8)]
        assert [f is not None for f in findings] == [False, False, False, True] + [False] * 3
        finding = findings[3]
        assert finding is not None
        assert finding.kind is AlertKind.scan_rate
        assert finding.details == {"minute_start": 420, "limit": 3, "scans": 4}

    def test_a_batch_that_jumps_over_the_limit_raises_it_once(self) -> None:
        # Counts after batches of 2, 3 and 4 scans with a limit of 3: 2, 5, 9.
        findings = [
            scan_rate(count, limit=3, minute=7, added=added)
            for count, added in ((2, 2), (5, 3), (9, 4))
        ]
        assert [f is not None for f in findings] == [False, True, False]
        assert findings[1] is not None
        assert findings[1].details["scans"] == 5
