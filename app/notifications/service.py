"""Notifications from audit events, and the holder's inbox.

`notifications_of(event)` says which holders an event concerns and with what text; the
audit consumer stores them with the event (`record_notifications`), deduplicated by
(card, `dedup_key`). Events appended to the stream only after their business transaction
commits (payments, card lifecycle) have their notifications stored in that transaction
(`record_event_notifications`, the same drafts), so the consumer adds nothing for them.

Events of the holder's circle:

| audit action | who is told | kind |
| --- | --- | --- |
| `family.invited` | the ward | `family_link_asked` |
| `family.accepted`, `family.consent_recorded` | the guardian | `family_link_accepted` |
| `family.ended` | the other side | `family_link_ended` |
| `channel.linked` / `channel.unlinked` | the holder | `channel_linked` / `channel_unlinked` |
| `payment.credited` | the holder | `payment_made` (once per payment id) |
| `payment.rerouted` | the holder | `payment_rerouted` (once per payment id) |
| `bank.binding_changed` | the holder | `bank_changed` |
| `bank.ending_notice` | the holder | `bank_ending` (once per bank) |
| `card.<lifecycle action>` | the holder | `card_status_changed` |
| `consent.request` | the holder | `consent_requested` (once per request) |
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import tuple_
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.chain import AuditRecord
from app.notifications.delivery import NotificationSenders
from app.notifications.errors import NotificationNotFound
from app.notifications.models import Notification, NotificationKind
from app.runtime import Runtime

MAX_PAGE = 200
MAX_MESSAGE = 500
"""`Notification.message`'s column length."""
_CARD_ACTIONS = frozenset(
    {
        "card.report_loss",
        "card.cancel_loss",
        "card.replace",
        "card.cancel",
        "card.suspend",
        "card.unsuspend",
    }
)


@dataclass(frozen=True, slots=True)
class Draft:
    card_id: uuid.UUID
    kind: NotificationKind
    dedup_key: str
    message: str
    data: dict[str, str]


def _family(event: AuditRecord, data: dict[str, Any]) -> list[Draft]:
    guardian, ward = uuid.UUID(data["guardian"]), uuid.UUID(data["ward"])
    action = event.action.removeprefix("family.")
    link = str(data["link"])
    key = f"{event.action}:{link}"
    if action == "invited":
        message = (
            f"The holder of card {data['guardian_label']} asks to become your guardian "
            f"({', '.join(data.get('scopes', []))}). Accept in the app with your PIN, or "
            "ignore it."
        )
        return [Draft(ward, NotificationKind.family_link_asked, key, message, {"link": link})]
    if action in ("accepted", "consent_recorded"):
        message = f"The holder of card {data['ward_label']} accepted you as their guardian."
        return [
            Draft(guardian, NotificationKind.family_link_accepted, key, message, {"link": link})
        ]
    if action == "ended":
        told, label = (
            (ward, data["guardian_label"])
            if data.get("by") == "guardian"
            else (guardian, data["ward_label"])
        )
        message = f"The family link with card {label} was ended."
        return [Draft(told, NotificationKind.family_link_ended, key, message, {"link": link})]
    return []


def notifications_of(event: AuditRecord) -> list[Draft]:
    """The notifications an audit event makes (none for most events)."""
    action = event.action
    if not (
        action.startswith(("family.", "channel.", "payment.", "bank."))
        or action in _CARD_ACTIONS
        or action == "consent.request"
    ):
        return []
    try:
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            return []
        if action.startswith("family."):
            return _family(event, data)
        if action in _CARD_ACTIONS:
            return [
                Draft(
                    uuid.UUID(event.subject),
                    NotificationKind.card_status_changed,
                    f"card:{event.event_id}",
                    f"Your card is now {data['to']} (it was {data['from']}).",
                    {"from": str(data["from"]), "to": str(data["to"])},
                )
            ]
        if action == "consent.request":
            return _consent_requested(event, data)
        return _other(action, data)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return []


def _fit(message: str) -> str:
    """At most the stored length (free text from a department can be long)."""
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _consent_requested(event: AuditRecord, data: dict[str, Any]) -> list[Draft]:
    """A department asks for the holder's consent: its name, the items and the purpose (what
    the department wrote), no personal data. Events without a card (recorded before the
    holder was told of requests) make none."""
    if "card" not in data:
        return []
    items = ", ".join(str(item) for item in data["items"])
    return [
        Draft(
            uuid.UUID(str(data["card"])),
            NotificationKind.consent_requested,
            f"consent.request:{event.subject}",
            _fit(
                f"{data['department']} asks for your consent (approve with your PIN in the "
                f"app, or decline) to read {items} for: {data['purpose']}"
            ),
            {"request": event.subject, "department": str(data["department"])},
        )
    ]


def _other(action: str, data: dict[str, Any]) -> list[Draft]:
    card = uuid.UUID(str(data["card"]))
    if action == "channel.linked":
        return [
            Draft(
                card,
                NotificationKind.channel_linked,
                f"channel.linked:{data['link']}",
                f"{data['channel_name']} is now linked to your e-card. You can unlink it at "
                "any time in the app.",
                {"channel_id": str(data["channel_id"])},
            )
        ]
    if action == "channel.unlinked":
        return [
            Draft(
                card,
                NotificationKind.channel_unlinked,
                f"channel.unlinked:{data['link']}",
                f"{data['channel_name']} was unlinked from your e-card.",
                {"channel_id": str(data["channel_id"])},
            )
        ]
    if action == "payment.credited":
        return [
            Draft(
                card,
                NotificationKind.payment_made,
                f"payment:{data['payer']}:{data['payment_id']}",
                f"{data['amount']} yuan ({data['kind']}) was paid to your account at "
                f"{data['bank_code']} ({data['account']}).",
                {"payment_id": str(data["payment_id"])},
            )
        ]
    if action == "payment.rerouted":
        return [
            Draft(
                card,
                NotificationKind.payment_rerouted,
                f"rerouted:{data['payer']}:{data['payment_id']}",
                f"Your bank account changed: the {data['kind']} payment of {data['amount']} "
                f"yuan went to your new account at {data['bank_code']} ({data['account']}).",
                {"payment_id": str(data["payment_id"])},
            )
        ]
    if action == "bank.binding_changed":
        return [
            Draft(
                card,
                NotificationKind.bank_changed,
                f"bank:{data['binding']}",
                f"Your card's bank account is now at {data['bank_code']} ({data['account']}); "
                "payments from now on go there.",
                {"bank_code": str(data["bank_code"])},
            )
        ]
    if action == "bank.ending_notice":
        return [
            Draft(
                card,
                NotificationKind.bank_ending,
                f"bank-ending:{data['bank_code']}:{data['plan']}",
                f"The cooperation with {data['bank_code']} ends on {data['ends_on']}. Choose "
                "a new bank for your card in the app.",
                {"bank_code": str(data["bank_code"])},
            )
        ]
    return []


async def record_notifications(
    session: AsyncSession,
    events: Sequence[AuditRecord],
    senders: NotificationSenders | None = None,
) -> list[Notification]:
    """Stores the notifications of `events` not stored yet (in the caller's transaction),
    with a pending delivery for each of `senders`; returns the new ones."""
    drafts: dict[tuple[uuid.UUID, str], Draft] = {}
    for event in events:
        for draft in notifications_of(event):
            drafts.setdefault((draft.card_id, draft.dedup_key), draft)
    if not drafts:
        return []
    stored = await session.exec(
        select(Notification.card_id, Notification.dedup_key).where(
            tuple_(col(Notification.card_id), col(Notification.dedup_key)).in_(list(drafts))
        )
    )
    for key in stored.all():
        drafts.pop((key[0], key[1]), None)
    fresh = [
        Notification(
            card_id=d.card_id,
            kind=d.kind.value,
            dedup_key=d.dedup_key,
            message=d.message,
            data=d.data,
        )
        for d in drafts.values()
    ]
    session.add_all(fresh)
    await session.flush()
    if senders is not None and fresh:
        session.add_all(senders.pending_rows(fresh))
        await session.flush()
    return fresh


async def record_event_notifications(
    session: AsyncSession, runtime: Runtime, events: Sequence[Mapping[str, str]]
) -> list[Notification]:
    """For events appended to the audit stream only after the business transaction commits
    (`app.audit.log.append_event`): stores their notifications in that transaction, so a
    crash between the commit and the append loses none. The event, when the consumer stores
    it (once, or again after a redelivery), finds the same (card, `dedup_key`) and adds
    nothing.

    :param events: the stream entries to append after the commit (`audit_fields`).
    """
    records = [
        AuditRecord(
            fields["eid"],
            datetime.fromtimestamp(float(fields["at"]), UTC),
            fields["action"],
            fields["actor"],
            fields.get("subject", ""),
            fields.get("data", "{}"),
        )
        for fields in events
    ]
    return await record_notifications(session, records, runtime.notification_senders)


async def inbox(
    session: AsyncSession, card_id: uuid.UUID, *, unread_only: bool, limit: int
) -> Sequence[Notification]:
    statement = select(Notification).where(Notification.card_id == card_id)
    if unread_only:
        statement = statement.where(col(Notification.read_at).is_(None))
    statement = statement.order_by(col(Notification.created_at).desc(), col(Notification.id)).limit(
        limit
    )
    return (await session.exec(statement)).all()


async def mark_read(
    session: AsyncSession, card_id: uuid.UUID, notification_id: uuid.UUID | None
) -> int:
    """Marks one notification (or, with None, every unread one) read; returns how many.

    :raises NotificationNotFound: not a notification of this card.
    """
    now = datetime.now(UTC)
    if notification_id is not None:
        found = await session.get(Notification, notification_id)
        if found is None or found.card_id != card_id:
            raise NotificationNotFound("no such notification of yours")
        if found.read_at is None:
            found.read_at = now
            session.add(found)
            await session.flush()
        return 1
    marked = await session.exec(
        update(Notification)
        .where(col(Notification.card_id) == card_id, col(Notification.read_at).is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(marked.rowcount)
