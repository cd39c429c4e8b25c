"""Misuse detection as pure functions over scans of one card (JX17, SY12: a card lent, rented
or copied shows up where its holder cannot be). No I/O: `app.misuse.watch` feeds them.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from app.misuse.models import AlertKind

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Sighting:
    """One valid scan of a card: which venue, when (Unix seconds), and where the venue is."""

    event_id: str
    card_id: uuid.UUID
    organisation_id: uuid.UUID
    at: float
    latitude: float | None = None
    longitude: float | None = None

    @property
    def located(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def encode(self) -> bytes:
        return encode_sighting(
            self.event_id,
            self.card_id.hex,
            self.organisation_id.hex,
            self.at,
            latitude=self.latitude,
            longitude=self.longitude,
        )

    @classmethod
    def decode(cls, raw: bytes) -> Sighting:
        """:raises ValueError: when `raw` is not an encoded sighting."""
        event_id, card, organisation, at, latitude, longitude = sighting_fields(raw)
        return cls(
            event_id,
            uuid.UUID(hex=card),
            uuid.UUID(hex=organisation),
            at,
            latitude,
            longitude,
        )


def encode_sighting(
    event_id: str,
    card_hex: str,
    organisation_hex: str,
    at: float,
    *,
    latitude: float | None,
    longitude: float | None,
) -> bytes:
    """`Sighting.encode` from the parts, ids as hex: the misuse watch writes one per card and
    batch without building UUIDs."""
    where = "" if latitude is None or longitude is None else f"{latitude!r}|{longitude!r}"
    return f"{event_id}|{card_hex}|{organisation_hex}|{at!r}|{where}".encode()


def sighting_fields(
    raw: bytes,
) -> tuple[str, str, str, float, float | None, float | None]:
    """The parts of an encoded sighting, ids as written (not checked to be UUIDs).

    :raises ValueError: when `raw` does not have the parts of an encoded sighting.
    """
    event_id, card, organisation, at, *where = raw.decode().split("|")
    latitude = longitude = None
    if where and where != [""]:
        latitude, longitude = (float(value) for value in where)
    return event_id, card, organisation, float(at), latitude, longitude


@dataclass(frozen=True, slots=True)
class Finding:
    kind: AlertKind
    details: dict[str, Any]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = math.radians(lat2 - lat1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def impossible_travel(
    previous: Sighting | None, current: Sighting, max_speed_kmh: float
) -> Finding | None:
    """A finding when nobody could have got from one venue to the other in the time between
    the two scans at `max_speed_kmh`. Scans may arrive out of order (several consumers), so
    the elapsed time is taken without sign; a venue without a location proves nothing."""
    if previous is None or previous.event_id == current.event_id:
        return None
    if previous.card_id != current.card_id or previous.organisation_id == current.organisation_id:
        return None
    if not (previous.located and current.located):
        return None
    assert previous.latitude is not None and previous.longitude is not None
    assert current.latitude is not None and current.longitude is not None
    distance = haversine_km(
        previous.latitude, previous.longitude, current.latitude, current.longitude
    )
    elapsed = abs(current.at - previous.at)
    if distance <= max_speed_kmh * elapsed / 3600:
        return None
    first, second = sorted((previous, current), key=lambda sighting: sighting.at)
    return Finding(
        AlertKind.impossible_travel,
        {
            "from_organisation": str(first.organisation_id),
            "to_organisation": str(second.organisation_id),
            "distance_km": round(distance, 1),
            "elapsed_seconds": round(elapsed, 1),
            "required_speed_kmh": None if elapsed == 0 else round(distance / elapsed * 3600),
            "max_speed_kmh": max_speed_kmh,
        },
    )


def scan_rate(scans_this_minute: int, limit: int, minute: int, added: int = 1) -> Finding | None:
    """A finding once per minute window: when the count, raised by `added` scans, first goes
    over `limit`."""
    if not scans_this_minute - added <= limit < scans_this_minute:
        return None
    return Finding(
        AlertKind.scan_rate,
        {"minute_start": minute * 60, "limit": limit, "scans": scans_this_minute},
    )
