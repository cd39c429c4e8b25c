"""Builders for the trust tests: cards with an index inside the status list, their tokens."""

from __future__ import annotations

import secrets

from sqlmodel import select

from app.cards.models import Card, CardStatus, Person
from app.cards.snapshot import CardSnapshot, publish_card_snapshot
from app.runtime import Runtime
from app.security.pii import mask_name
from tests.factories import create_scannable_card

LIST_INDEXES = 1 << 20
"""The default status list size: cards built here get an index below it."""


async def create_listed_card(runtime: Runtime, status: CardStatus = CardStatus.active) -> Card:
    """A card (as `create_scannable_card`) whose status index lies inside the status list."""
    card = await create_scannable_card(runtime, status=status)
    async with runtime.database.session() as session:
        stored = (await session.exec(select(Card).where(Card.id == card.id))).one()
        stored.status_index = secrets.randbelow(LIST_INDEXES)
        session.add(stored)
    return stored


async def set_card_status(runtime: Runtime, card: Card, status: CardStatus) -> None:
    """Changes the state in the database and publishes it, as the lifecycle service does."""
    async with runtime.database.session() as session:
        stored = (await session.exec(select(Card).where(Card.id == card.id))).one()
        person = (await session.exec(select(Person).where(Person.id == stored.person_id))).one()
        stored.status = status.value
        session.add(stored)
        name = runtime.pii.open("name", person.name_sealed)
    await publish_card_snapshot(
        runtime.store, card.handle, CardSnapshot(status, card.id, mask_name(name))
    )


def listed_token(runtime: Runtime, card: Card) -> str:
    """A QR token of the card carrying its status index, as the phone gets it."""
    return runtime.token_issuer.issue(
        bytes.fromhex(card.handle), status_index=card.status_index
    ).token
