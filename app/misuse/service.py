"""What administrators do with misuse signals: read alerts, close them, write credit records.

Nothing here punishes: suspending a card is a lifecycle transition
(`app.cards.lifecycle_service.operator_transition`), decided by a person.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accesslog.reads import record_operator_read
from app.audit.log import record
from app.cards.lifecycle_service import find_operator_card
from app.cards.models import Card, utcnow
from app.misuse.errors import AlertClosed, AlertNotFound
from app.misuse.models import AlertStatus, CreditRecord, MisuseAlert
from app.store import Store


async def list_alerts(
    session: AsyncSession, *, status: AlertStatus | None, limit: int
) -> Sequence[tuple[MisuseAlert, str]]:
    """Alerts with the card number they concern, newest first."""
    statement = select(MisuseAlert, Card.card_number).where(MisuseAlert.card_id == Card.id)
    if status is not None:
        statement = statement.where(MisuseAlert.status == status.value)
    statement = statement.order_by(col(MisuseAlert.created_at).desc(), col(MisuseAlert.id)).limit(
        limit
    )
    return [(alert, number) for alert, number in (await session.exec(statement)).all()]


async def close_alert(
    session: AsyncSession, store: Store, actor: str, alert_id: uuid.UUID, note: str | None
) -> tuple[MisuseAlert, str]:
    """Marks an alert as dealt with.

    :raises AlertNotFound: unknown id (404).
    :raises AlertClosed: it was closed before (409).
    """
    alert = await session.get(MisuseAlert, alert_id, with_for_update=True)
    if alert is None:
        raise AlertNotFound(f"no misuse alert {alert_id}")
    if alert.status == AlertStatus.closed:
        raise AlertClosed("the alert was already closed", closed_by=alert.closed_by)
    alert.status = AlertStatus.closed
    alert.closed_at = utcnow()
    alert.closed_by = actor
    session.add(alert)
    await session.flush()
    card = await session.get(Card, alert.card_id)
    assert card is not None, "alerts reference their card"
    await record(
        store,
        "misuse.alert_closed",
        actor,
        str(alert.card_id),
        {
            "alert": str(alert.id),
            "note": note,
        },
    )
    return alert, card.card_number


async def add_credit_record(
    session: AsyncSession, store: Store, author: str, card_number: str, note: str
) -> CreditRecord:
    """Writes a note into the holder's credit record (JX18, SY13).

    :raises CardNotFound, CardNumberRetired: as for lifecycle actions.
    """
    card = await find_operator_card(session, card_number)
    entry = CreditRecord(card_id=card.id, note=note, author=author)
    session.add(entry)
    await session.flush()
    await record(store, "misuse.credit_record", author, str(card.id), {"record": str(entry.id)})
    return entry


async def list_credit_records(
    session: AsyncSession, store: Store, reader: str, card_number: str
) -> Sequence[CreditRecord]:
    """The credit record notes of a card, oldest first; the read shows in the holder's access
    log (`app.accesslog.reads`).

    :raises CardNotFound, CardNumberRetired: as for lifecycle actions.
    :raises StoreUnavailable: when the read cannot be audited.
    """
    card = await find_operator_card(session, card_number)
    statement = (
        select(CreditRecord)
        .where(CreditRecord.card_id == card.id)
        .order_by(col(CreditRecord.created_at), col(CreditRecord.id))
    )
    records = (await session.exec(statement)).all()
    await record_operator_read(store, reader, card.id, "credit_records", ["credit_records"])
    return records
