"""What the verify hot path knows about a card without touching SQL.

The cards domain writes a `CardSnapshot` into the store under `card_key(handle)` whenever a
card is created or changes state, and publishes the handle on `CARD_CHANGES` so every
worker drops what it cached. The verify path reads it in the same round trip that claims
the token (see `app.store.base.ScanClaim`).

Besides the status, a snapshot carries the card's **attribute view** (`AttributeView`): every
attribute a catalog scene may receive (full name, document type and number, birth date for
the age band, entitlements with their expiry), precomputed at card change so the verify
path never reads SQL for them. The view is sealed (AES-256-GCM under a key derived for this
purpose only, bound to the card id: `PiiCipher.seal_view`), so the store never holds a
name or document number in clear; the verify path opens it once per valid scan, and only
for scenes that receive more than the masked name and the pseudonym.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

import orjson

from app.cards.models import CardStatus
from app.security.errors import PiiError
from app.security.pii import PiiCipher, mask_document_number
from app.store import Store

CARD_CHANGES = "card-changes"
CARDS_VERSION = "cards:version"
"""A counter bumped on every card change: a cached status list older than it is rebuilt."""


def card_key(handle: str) -> str:
    """`handle` is the card handle as 32 lower-case hex characters."""
    return f"card:{handle}"


def card_state_key(card_id: uuid.UUID) -> str:
    """The card's status and handle by card id (`status|handle`), for the phone's QR path,
    which knows the card id of its access token, not the handle."""
    return f"card-state:{card_id.hex}"


def card_pool_key(card_id: uuid.UUID) -> str:
    """The card's status list index pool (comma-separated), cached for the QR path; dropped
    on every card change (a replacement draws a fresh pool)."""
    return f"card-pool:{card_id.hex}"


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class GrantedEntitlement:
    kind: str
    expires_at: float
    """Unix time after which the entitlement no longer shows."""


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class AttributeView:
    """Everything a scene may be shown of a card holder, in clear: only ever in memory.

    What a scene sees is kept in the form it is shown in (the masked document number, the
    birth date as a `day_number`), computed once when the view is sealed at card change
    rather than on every scan that opens it. Build one with `of`.
    """

    full_name: str
    document_type: str
    document_number: str
    masked_document_number: str
    born: int | None
    """The birth date as a `day_number`; None when the document states none."""
    entitlements: tuple[GrantedEntitlement, ...] = ()

    @classmethod
    def of(
        cls,
        full_name: str,
        document_type: str,
        document_number: str,
        birth_date: date | None,
        entitlements: tuple[GrantedEntitlement, ...] = (),
    ) -> AttributeView:
        return cls(
            full_name,
            document_type,
            document_number,
            mask_document_number(document_number),
            None if birth_date is None else day_number(birth_date),
            entitlements,
        )

    def seal(self, pii: PiiCipher, card_id: uuid.UUID) -> str:
        """base64url of the sealed view (text: snapshots travel in audit events too)."""
        plain = orjson.dumps(
            [
                self.full_name,
                self.document_type,
                self.document_number,
                self.masked_document_number,
                self.born,
                [[granted.kind, granted.expires_at] for granted in self.entitlements],
            ]
        )
        sealed = pii.seal_view(card_id.bytes, plain)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    @classmethod
    def open(cls, pii: PiiCipher, card_id: bytes, sealed: str) -> AttributeView:
        """`card_id`: the card id's 16 bytes (`UUID.bytes`).

        Opens the views sealed before the masked number and the day number were stored in
        them too (five fields, the birth date in ISO form): they stay in the store until
        their card next changes.

        :raises PiiError: when `sealed` is not a view of this card sealed under this key.
        """
        try:
            # base64url without padding; what `base64.urlsafe_b64decode` does, in one call
            raw = binascii.a2b_base64(sealed.encode("ascii").translate(_FROM_BASE64URL) + b"==")
        except (binascii.Error, ValueError):
            raise PiiError("sealed view is not base64url") from None
        fields = orjson.loads(pii.open_view(card_id, raw))
        if len(fields) == _FIELDS_BEFORE_DAY_NUMBERS:
            name, doc_type, number, born, granted = fields
            return cls.of(
                name,
                doc_type,
                number,
                None if born is None else date.fromisoformat(born),
                _granted(granted),
            )
        name, doc_type, number, masked, born, granted = fields
        return cls(name, doc_type, number, masked, born, _granted(granted))


_FROM_BASE64URL = bytes.maketrans(b"-_", b"+/")
_FIELDS_BEFORE_DAY_NUMBERS = 5


def _granted(granted: list[tuple[str, float]]) -> tuple[GrantedEntitlement, ...]:
    if not granted:  # most holders: no generator to build and run
        return ()
    return tuple(GrantedEntitlement(kind, float(expires)) for kind, expires in granted)


def day_number(day: date) -> int:
    """A date as the number yyyymmdd: the age in whole years on a day `d` of someone born on
    `b` is `(day_number(d) - day_number(b)) // 10000` (the year difference, less one before
    the birthday), with no date arithmetic on the verify path."""
    return day.year * 10000 + day.month * 100 + day.day


def age_band(born: int, today: int) -> str:
    """The age band a scene sees instead of the birth date; both days as `day_number`s."""
    return _AGE_BAND_NAMES[bisect_right(_AGE_BAND_UPPERS, (today - born) // 10000)]


_AGE_BAND_UPPERS = (14, 18, 60, 65, 70)
"""Each band but the last holds the ages below its upper bound and not below the one before."""
_AGE_BAND_NAMES = ("under_14", "14_17", "18_59", "60_64", "65_69", "70_plus")


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class CardSnapshot:
    """Build one with `of`. The card id is kept as its 16 bytes, the form the verify path
    uses (the pseudonym's HMAC, the view's binding): every scan decodes a snapshot, and a
    `uuid.UUID` built from its hex and turned back into bytes twice cost more than the rest
    of the decoding."""

    status: CardStatus
    card_bytes: bytes
    """The card id's 16 bytes (`UUID.bytes`)."""
    masked_name: str
    view: str = field(default="", compare=False)
    """The sealed `AttributeView`; empty in a snapshot written before views existed (the
    verify path then rebuilds the snapshot from SQL when a scene needs more)."""

    @classmethod
    def of(
        cls, status: CardStatus, card_id: uuid.UUID, masked_name: str, view: str = ""
    ) -> CardSnapshot:
        return cls(status, card_id.bytes, masked_name, view)

    @property
    def card_id(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.card_bytes)

    def encode(self) -> bytes:
        return (
            f"{self.status.value}|{self.card_bytes.hex()}|{self.view}|{self.masked_name}".encode()
        )

    @classmethod
    def decode(cls, raw: bytes) -> CardSnapshot:
        """:raises ValueError: when `raw` is not an encoded snapshot."""
        parts = raw.decode().split("|", 3)
        if len(parts) == 3:  # written before attribute views
            status, card_id, masked_name = parts
            return cls(_card_status(status), _card_bytes(card_id), masked_name)
        status, card_id, view, masked_name = parts
        return cls(_card_status(status), _card_bytes(card_id), masked_name, view)


def _card_bytes(card_id: str) -> bytes:
    """The 16 bytes of a card id written as 32 hex digits (`UUID.hex`), or in any other
    spelling `uuid.UUID` reads.

    :raises ValueError: when `card_id` is no card id.
    """
    if _CARD_HEX.fullmatch(card_id) is not None:
        return bytes.fromhex(card_id)
    return uuid.UUID(hex=card_id).bytes


_CARD_STATUSES: Mapping[str, CardStatus] = MappingProxyType({s.value: s for s in CardStatus})


def _card_status(value: str) -> CardStatus:
    """`CardStatus(value)` by a lookup, not the enum's call machinery (every scan decodes one).

    :raises ValueError: when `value` is no status.
    """
    status = _CARD_STATUSES.get(value)
    if status is None:
        raise ValueError(f"{value!r} is not a card status")
    return status


_CARD_HEX = re.compile(r"[0-9a-f]{32}")


def snapshot_card(encoded: str) -> tuple[str, str]:
    """The status (as written: compare with `CardStatus` values) and the card id (32 lower-case
    hex digits, as `card_id.hex`) of an encoded snapshot, without a `CardSnapshot`: the audit
    consumer reads both for every scan, where UUID objects cost more than the rest of it.

    :raises ValueError: when `encoded` is not an encoded snapshot.
    """
    parts = encoded.split("|", 3)
    if len(parts) < 3:
        raise ValueError("not an encoded card snapshot")
    card_id = parts[1]
    if _CARD_HEX.fullmatch(card_id) is None:
        card_id = uuid.UUID(hex=card_id).hex  # another spelling `CardSnapshot.decode` accepts
    return parts[0], card_id


def snapshot_without_view(encoded: str) -> str:
    """An encoded snapshot as the audit log keeps it: status, card id, masked name, no view."""
    parts = encoded.split("|", 3)
    if len(parts) != 4:
        return encoded
    status, card_id, _, masked_name = parts
    return f"{status}|{card_id}|{masked_name}"


async def publish_card_snapshot(store: Store, handle: str, snapshot: CardSnapshot) -> None:
    """Every card state change goes through here, so here the status list learns of it too,
    and the QR path (`app.holders.qr_state`): the card's state by id, its pool dropped."""
    await store.set(card_key(handle), snapshot.encode())
    card_id = snapshot.card_id
    await store.set(card_state_key(card_id), f"{snapshot.status.value}|{handle}".encode())
    await store.delete(card_pool_key(card_id))
    await store.incr(CARDS_VERSION)
    await store.publish(CARD_CHANGES, handle.encode())


async def retire_card_handle(store: Store, handle: str) -> None:
    """A card handle no card carries any more (an e-card re-issued on replacement): its
    snapshot goes, every worker drops what it cached, and a token sealing it finds no card
    (`app.verification.service.UNKNOWN_CARD_VERDICT`)."""
    await store.delete(card_key(handle))
    await store.incr(CARDS_VERSION)
    await store.publish(CARD_CHANGES, handle.encode())
