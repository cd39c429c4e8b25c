"""What the verify hot path knows about a card without touching SQL.

The cards domain writes a `CardSnapshot` into the store under `card_key(handle)` whenever a
card is created or changes state, and publishes the handle on `CARD_CHANGES` so every
worker drops what it cached. The verify path reads it in the same round trip that claims
the token (see `app.store.base.ScanClaim`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.cards.models import CardStatus
from app.store import Store

CARD_CHANGES = "card-changes"
CARDS_VERSION = "cards:version"
"""A counter bumped on every card change: a cached status list older than it is rebuilt."""


def card_key(handle: str) -> str:
    """`handle` is the card handle as 32 lower-case hex characters."""
    return f"card:{handle}"


@dataclass(frozen=True, slots=True)
class CardSnapshot:
    status: CardStatus
    card_id: uuid.UUID
    masked_name: str

    def encode(self) -> bytes:
        return f"{self.status.value}|{self.card_id.hex}|{self.masked_name}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> CardSnapshot:
        """:raises ValueError: when `raw` is not an encoded snapshot."""
        status, card_id, masked_name = raw.decode().split("|", 2)
        return cls(CardStatus(status), uuid.UUID(hex=card_id), masked_name)


async def publish_card_snapshot(store: Store, handle: str, snapshot: CardSnapshot) -> None:
    """Every card state change goes through here, so here the status list learns of it too."""
    await store.set(card_key(handle), snapshot.encode())
    await store.incr(CARDS_VERSION)
    await store.publish(CARD_CHANGES, handle.encode())


async def retire_card_handle(store: Store, handle: str) -> None:
    """A card handle no card carries any more (an e-card re-issued on replacement): its
    snapshot goes, every worker drops what it cached, and a token sealing it finds no card
    (`app.verification.service.UNKNOWN_CARD_VERDICT`)."""
    await store.delete(card_key(handle))
    await store.incr(CARDS_VERSION)
    await store.publish(CARD_CHANGES, handle.encode())
