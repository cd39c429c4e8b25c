"""Builders for the trust tests: cards with a pool of indexes in the status list, their tokens."""

from __future__ import annotations

from sqlmodel import select

from app.cards.models import Card, CardStatus, Person
from app.cards.snapshot import CardSnapshot, publish_card_snapshot
from app.cards.status_indexes import current_pool, renew_pool
from app.runtime import Runtime
from app.security.pii import mask_name
from tests.factories import create_scannable_card


async def create_listed_card(runtime: Runtime, status: CardStatus = CardStatus.active) -> Card:
    """A card (as `create_scannable_card`) with a pool of status list indexes, as issuance
    gives it; `status_index` is the pool's first."""
    card = await create_scannable_card(runtime, status=status)
    settings = runtime.settings
    async with runtime.database.session() as session:
        stored = (await session.exec(select(Card).where(Card.id == card.id))).one()
        await renew_pool(session, stored, settings.status_index_pool, settings.status_list_size)
    return stored


async def status_pool(runtime: Runtime, card: Card) -> list[int]:
    """The indexes of the card's current pool."""
    async with runtime.database.session() as session:
        return sorted(await current_pool(session, card.id))


async def set_card_status(runtime: Runtime, card: Card, status: CardStatus) -> None:
    """Changes the state in the database and publishes it, as the lifecycle service does."""
    async with runtime.database.session() as session:
        stored = (await session.exec(select(Card).where(Card.id == card.id))).one()
        person = (await session.exec(select(Person).where(Person.id == stored.person_id))).one()
        stored.status = status.value
        session.add(stored)
        name = runtime.pii.open("name", person.name_sealed)
    await publish_card_snapshot(
        runtime.store, card.handle, CardSnapshot.of(status, card.id, mask_name(name))
    )


def listed_token(runtime: Runtime, card: Card) -> str:
    """A QR token of the card carrying its status index, as the phone gets it."""
    return runtime.token_issuer.issue(
        bytes.fromhex(card.handle), status_index=card.status_index
    ).token
