"""Delivery of notifications: a pluggable interface; the inbox is the embedded default.

A notification is stored in the transaction that stores its cause: by the audit consumer
with the event (`app.notifications.service.record_notifications`), or, where the event is
appended to the stream only after the business commit (payments, card lifecycle), by the
business transaction itself (`record_event_notifications`); the per-card `dedup_key` makes
the event, when the consumer stores it (once or redelivered), add nothing. The stored row IS
the inbox delivery.

Another channel (SMS, push) is a class with `name` and `deliver`, registered on the
runtime's `NotificationSenders` at start (`runtime.notification_senders.register`). Its
delivery is at least once and deduplicated: the transaction that stores a notification also
stores a `pending` `NotificationDelivery` per registered sender; a sweep next to the audit
consumer tries every pending one that is due, every `SSC_NOTIFICATION_SWEEP_INTERVAL` s and
at once when a commit that made some wakes it (the consumer's, a payment's, a card
change's: `NotificationSenders.wake`). Senders are never called on the consumer's task, so
a slow or hanging channel never holds up the audit stream. Each attempt first claims its row (a
conditional update that only one worker wins, holding it for `CLAIM_SECONDS`), so two
workers never send one delivery at once; success marks it `delivered` (never tried again),
failure schedules the next attempt with exponential backoff (`SSC_NOTIFICATION_RETRY_*`),
and after `SSC_NOTIFICATION_DELIVERY_ATTEMPTS` attempts it is `failed`: logged, counted
(`ssc_notification_deliveries_given_up_total`), and the inbox copy stays.

A crash after a sender accepted a notification and before its row is marked sends it again
after the claim ends: senders deduplicate by `notification.id` where the channel can (push
collapse keys, SMS provider ids).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlmodel import col, select, update

from app.background_tasks import stop_tasks
from app.db import Database, DatabaseUnavailable
from app.notifications.models import DeliveryStatus, Notification, NotificationDelivery

logger = logging.getLogger("ssc.notifications")

CLAIM_SECONDS = 120.0
"""How long an attempt holds its delivery: beyond `ATTEMPT_TIMEOUT`, so a live attempt is
never taken over; a worker that died mid-attempt leaves it to the sweep after this."""
ATTEMPT_TIMEOUT = 30.0
"""An attempt still running after this counts as failed."""
SWEEP_BATCH = 200
"""Deliveries claimed per round trip of the sweep."""


class NotificationSender(Protocol):
    """One delivery channel. `deliver` may be called again for a notification already
    delivered (after a crash between delivery and bookkeeping): senders deduplicate by
    `notification.id` where the channel can (push collapse keys, SMS provider ids). Raising
    is a failed attempt (retried with backoff)."""

    name: str

    async def deliver(self, notification: Notification) -> None: ...


class InboxSender:
    """The embedded default: storing the row is the delivery; nothing more to do (it is
    never registered on `NotificationSenders`)."""

    name = "inbox"

    async def deliver(self, notification: Notification) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    initial: float = 30.0
    longest: float = 3600.0

    def pause(self, attempts: int) -> float:
        """Seconds before the attempt after `attempts` failed ones."""
        return float(min(self.initial * 2.0 ** max(attempts - 1, 0), self.longest))


@dataclass(slots=True)
class DeliveryRound:
    delivered: int = 0
    retried: int = 0
    given_up: int = 0


class NotificationSenders:
    """The senders besides the inbox (none by default), with their retry policy and counts."""

    def __init__(
        self, senders: Sequence[NotificationSender] = (), *, policy: RetryPolicy | None = None
    ) -> None:
        self._senders: dict[str, NotificationSender] = {}
        self.policy = policy or RetryPolicy()
        self.given_up = 0
        """Deliveries this process gave up (`failed`) since it started."""
        self._due = asyncio.Event()
        for sender in senders:
            self.register(sender)

    def register(self, sender: NotificationSender) -> None:
        """Adds a sender (at start, before notifications are made): notifications stored from
        now on get a pending delivery for it."""
        if sender.name == InboxSender.name:
            return  # the stored row is the inbox delivery
        if not sender.name or len(sender.name) > 32:
            raise ValueError("a sender's name is 1 to 32 characters")
        if sender.name in self._senders:
            raise ValueError(f"a sender named {sender.name} is registered already")
        self._senders[sender.name] = sender

    def wake(self) -> None:
        """New deliveries were committed: the sweep of this process runs now rather than at
        its next interval (no effect without a sender)."""
        if self._senders:
            self._due.set()

    async def wait_due(self, seconds: float) -> None:
        """Until `wake` or `seconds` have passed."""
        try:
            async with asyncio.timeout(seconds):
                await self._due.wait()
        except TimeoutError:
            pass
        self._due.clear()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._senders)

    def pending_rows(self, notifications: Sequence[Notification]) -> list[NotificationDelivery]:
        """The deliveries to store with `notifications` (in their transaction)."""
        return [
            NotificationDelivery(notification_id=notification.id, sender=name)
            for notification in notifications
            for name in self._senders
        ]

    async def deliver_due(
        self,
        database: Database,
        *,
        limit: int = SWEEP_BATCH,
        now: datetime | None = None,
    ) -> DeliveryRound:
        """Claims up to `limit` due pending deliveries of the registered senders, tries each
        once and records the outcome.

        :raises DatabaseUnavailable, SQLAlchemyError: reading, claiming or recording failed
            (a claimed delivery is then tried again once its claim ends).
        """
        outcome = DeliveryRound()
        if not self._senders:
            return outcome
        now = now or datetime.now(UTC)
        claimed = await self._claim(database, limit, now)
        if not claimed:
            return outcome
        results: list[tuple[NotificationDelivery, str | None]] = []
        for delivery, notification in claimed:
            results.append((delivery, await self._attempt(delivery, notification)))
        await self._record(database, results, outcome)
        return outcome

    async def _claim(
        self,
        database: Database,
        limit: int,
        now: datetime,
    ) -> list[tuple[NotificationDelivery, Notification | None]]:
        until = now + timedelta(seconds=CLAIM_SECONDS)
        claimed: list[tuple[NotificationDelivery, Notification | None]] = []
        async with database.session() as session:
            statement = (
                select(NotificationDelivery)
                .where(NotificationDelivery.status == DeliveryStatus.pending.value)
                .where(col(NotificationDelivery.next_attempt_at) <= now)
                .where(col(NotificationDelivery.sender).in_(self.names))
                .order_by(col(NotificationDelivery.next_attempt_at))
                .limit(limit)
                # PostgreSQL: rows another sweep is claiming are skipped, not waited for (two
                # claiming in different orders would deadlock); SQLite serialises writers.
                .with_for_update(skip_locked=True)
            )
            due = (await session.exec(statement)).all()
            for row in due:
                # Only one worker wins a row: the others find it claimed (next_attempt_at moved).
                won = await session.exec(
                    update(NotificationDelivery)
                    .where(
                        col(NotificationDelivery.notification_id) == row.notification_id,
                        col(NotificationDelivery.sender) == row.sender,
                        col(NotificationDelivery.status) == DeliveryStatus.pending.value,
                        col(NotificationDelivery.next_attempt_at) <= now,
                    )
                    .values(attempts=col(NotificationDelivery.attempts) + 1, next_attempt_at=until)
                    .execution_options(synchronize_session=False)
                )
                if won.rowcount == 1:
                    claimed.append(
                        (
                            NotificationDelivery(
                                notification_id=row.notification_id,
                                sender=row.sender,
                                attempts=row.attempts + 1,
                            ),
                            None,
                        )
                    )
            if claimed:
                ids = {delivery.notification_id for delivery, _ in claimed}
                found = await session.exec(
                    select(Notification).where(col(Notification.id).in_(ids))
                )
                by_id = {notification.id: notification for notification in found.all()}
                claimed = [(d, by_id.get(d.notification_id)) for d, _ in claimed]
        return claimed

    async def _attempt(
        self, delivery: NotificationDelivery, notification: Notification | None
    ) -> str | None:
        """None when delivered, else what went wrong."""
        if notification is None:
            return "the notification is gone"
        sender = self._senders[delivery.sender]
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                await sender.deliver(notification)
        except Exception as error:
            logger.warning(
                "notification %s: the %s sender failed (attempt %d of %d): %r",
                notification.id,
                sender.name,
                delivery.attempts,
                self.policy.attempts,
                error,
            )
            return repr(error)[:200] or type(error).__name__
        return None

    async def _record(
        self,
        database: Database,
        results: Sequence[tuple[NotificationDelivery, str | None]],
        outcome: DeliveryRound,
    ) -> None:
        now = datetime.now(UTC)
        async with database.session() as session:
            for delivery, error in results:
                key = (
                    col(NotificationDelivery.notification_id) == delivery.notification_id,
                    col(NotificationDelivery.sender) == delivery.sender,
                )
                if error is None:
                    values: dict[str, object] = {
                        "status": DeliveryStatus.delivered.value,
                        "delivered_at": now,
                        "last_error": None,
                    }
                    outcome.delivered += 1
                elif delivery.attempts >= self.policy.attempts:
                    values = {"status": DeliveryStatus.failed.value, "last_error": error}
                    outcome.given_up += 1
                    self.given_up += 1
                    logger.error(
                        "notification %s: the %s sender failed %d times; given up (the "
                        "notification stays in the inbox)",
                        delivery.notification_id,
                        delivery.sender,
                        delivery.attempts,
                    )
                else:
                    pause = timedelta(seconds=self.policy.pause(delivery.attempts))
                    values = {"next_attempt_at": now + pause, "last_error": error}
                    outcome.retried += 1
                await session.exec(
                    update(NotificationDelivery)
                    .where(*key)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )


async def sweep_once(senders: NotificationSenders, database: Database) -> DeliveryRound:
    """Tries every delivery due now, a batch at a time. Never raises: a failure is logged and
    what is left waits for the next sweep."""
    total = DeliveryRound()
    try:
        while True:
            done = await senders.deliver_due(database)
            total.delivered += done.delivered
            total.retried += done.retried
            total.given_up += done.given_up
            if done.delivered + done.retried + done.given_up < SWEEP_BATCH:
                return total
    except DatabaseUnavailable:
        pass  # the database logs the outage once; the deliveries wait
    except Exception:
        logger.exception("notification sweep failed; retried at the next sweep")
    return total


async def _sweep_forever(senders: NotificationSenders, database: Database, every: float) -> None:
    while True:
        await sweep_once(senders, database)
        await senders.wait_due(every)


@asynccontextmanager
async def notification_sweep(
    senders: NotificationSenders, database: Database, *, every: float
) -> AsyncIterator[None]:
    """Sweeps every `every` seconds, and at once when woken (`NotificationSenders.wake`),
    while the block runs. Without a registered sender a sweep reads nothing."""
    task = asyncio.create_task(_sweep_forever(senders, database, every), name="notifications:sweep")
    try:
        yield
    finally:
        await stop_tasks([task])
