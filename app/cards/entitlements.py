"""Entitlements (GD7: elderly preferential, disability, veteran preferential, transport
enabled), granted and withdrawn by administrators, each with an expiry.

They belong to the holder (a replaced card keeps them). A grant or withdrawal commits, then
the card's snapshot is rebuilt from the committed rows and republished (`CARD_CHANGES`), so
every worker's verify path shows the change at once; the scenes that list the kind read it
from the sealed attribute view (`app.cards.snapshot`), never from SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.errors import EntitlementNotGranted, InvalidEntitlement
from app.cards.lifecycle_service import find_operator_card
from app.cards.models import Card, HolderEntitlement, Person
from app.cards.service import load_card_snapshot
from app.cards.snapshot import publish_card_snapshot
from app.catalog.scenes import Entitlement
from app.runtime import Runtime

GRANTED_ACTION = "entitlement.granted"
WITHDRAWN_ACTION = "entitlement.withdrawn"


@dataclass(frozen=True, slots=True)
class Granted:
    card_number: str
    kind: Entitlement
    expires_at: datetime
    granted_by: str


async def grant_entitlement(
    runtime: Runtime, actor: str, card_number: str, kind: Entitlement, expires_at: datetime
) -> Granted:
    """Grants (or extends, or shortens) `kind` to the holder of the card until `expires_at`.

    :raises CardNotFound, CardNumberRetired: no card has this number (any more).
    :raises InvalidEntitlement: `expires_at` is not in the future (422).
    """
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= datetime.now(UTC):
        raise InvalidEntitlement("expires_at must be in the future", field="expires_at")
    async with runtime.database.session() as session:
        card = await find_operator_card(session, card_number)
        await session.refresh(card, with_for_update=True)
        statement = select(HolderEntitlement).where(
            HolderEntitlement.person_id == card.person_id, HolderEntitlement.kind == kind.value
        )
        row = (await session.exec(statement)).first()
        if row is None:
            row = HolderEntitlement(
                person_id=card.person_id, kind=kind.value, expires_at=expires_at, granted_by=actor
            )
        else:
            row.expires_at, row.granted_by = expires_at, actor
        session.add(row)
        card_id, number = card.id, card.card_number
    await _republish(runtime, card_id)
    await record(
        runtime.store,
        GRANTED_ACTION,
        actor,
        str(card_id),
        {"kind": kind.value, "expires_at": expires_at.isoformat()},
    )
    return Granted(number, kind, expires_at, actor)


async def withdraw_entitlement(
    runtime: Runtime, actor: str, card_number: str, kind: Entitlement
) -> None:
    """:raises CardNotFound, CardNumberRetired, EntitlementNotGranted: (404, 410, 404)."""
    async with runtime.database.session() as session:
        card = await find_operator_card(session, card_number)
        await session.refresh(card, with_for_update=True)
        statement = select(HolderEntitlement).where(
            HolderEntitlement.person_id == card.person_id, HolderEntitlement.kind == kind.value
        )
        row = (await session.exec(statement)).first()
        if row is None:
            raise EntitlementNotGranted(f"the holder has no {kind.value} entitlement")
        await session.delete(row)
        card_id = card.id
    await _republish(runtime, card_id)
    await record(runtime.store, WITHDRAWN_ACTION, actor, str(card_id), {"kind": kind.value})


async def _republish(runtime: Runtime, card_id: uuid.UUID) -> None:
    """The snapshot from the committed rows, published to every worker."""
    async with runtime.database.session() as session:
        card = await session.get(Card, card_id)
        assert card is not None
        person = await session.get(Person, card.person_id)
        assert person is not None, "cards reference their person"
        snapshot = await load_card_snapshot(session, runtime.pii, card, person)
    await publish_card_snapshot(runtime.store, card.handle, snapshot)


async def mirror_entitlement(
    session: AsyncSession,
    person_id: uuid.UUID,
    kind: Entitlement,
    expires_at: datetime | None,
    source: str,
) -> bool:
    """Sets (`expires_at` given) or clears an entitlement that a document grants (GD7: an
    elderly card, a disability or veteran certificate linked by its department), in the
    caller's transaction; returns whether anything changed. `source` names the document
    (`granted_by`); clearing removes only a grant of that source, never an administrator's.
    After the commit, `republish_holder` makes the change visible to the scenes.
    """
    statement = select(HolderEntitlement).where(
        HolderEntitlement.person_id == person_id, HolderEntitlement.kind == kind.value
    )
    row = (await session.exec(statement)).first()
    if expires_at is None:
        if row is None or row.granted_by != source:
            return False
        await session.delete(row)
        await session.flush()
        return True
    if row is None:
        row = HolderEntitlement(
            person_id=person_id, kind=kind.value, expires_at=expires_at, granted_by=source
        )
    elif row.granted_by == source and _aware(row.expires_at) == expires_at:
        return False
    else:
        row.expires_at, row.granted_by = expires_at, source
    session.add(row)
    await session.flush()
    return True


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def republish_holder(runtime: Runtime, person_id: uuid.UUID) -> None:
    """The holder's card snapshot rebuilt from the committed rows and published to every
    worker (a no-op for a person without a card)."""
    async with runtime.database.session() as session:
        card = (await session.exec(select(Card).where(Card.person_id == person_id))).first()
        if card is None:
            return
        card_id = card.id
    await _republish(runtime, card_id)
