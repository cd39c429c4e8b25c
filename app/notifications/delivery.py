"""Delivery of notifications: a pluggable interface; the inbox is the embedded default.

A notification is made from an audit event by the audit consumer, in the transaction that
stores the event (`app.notifications.service.record_notifications`): the stream delivers each
event at least once, and the per-card `dedup_key` makes a redelivered event add nothing. The
stored row IS the inbox delivery. Another channel (SMS, push) is a class with `deliver`,
registered on the consumer's `NotificationSenders`; it is called after the commit with the
notifications that were new in that transaction, and a failure is logged and leaves the
inbox copy (the holder always finds it in `GET /v1/me/notifications`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from app.notifications.models import Notification

logger = logging.getLogger("ssc.notifications")


class NotificationSender(Protocol):
    """One delivery channel. `deliver` may be called again for a notification already
    delivered (after a crash between delivery and bookkeeping): senders deduplicate by
    `notification.id` where the channel can (push collapse keys, SMS provider ids)."""

    name: str

    async def deliver(self, notification: Notification) -> None: ...


class InboxSender:
    """The embedded default: storing the row is the delivery; nothing more to do."""

    name = "inbox"

    async def deliver(self, notification: Notification) -> None:
        return None


class NotificationSenders:
    """The senders besides the inbox (none by default)."""

    def __init__(self, senders: Sequence[NotificationSender] = ()) -> None:
        self._senders = tuple(senders)

    async def deliver(self, notifications: Sequence[Notification]) -> int:
        """Hands every notification to every sender; returns how many deliveries failed."""
        failed = 0
        for notification in notifications:
            for sender in self._senders:
                try:
                    await sender.deliver(notification)
                except Exception:
                    failed += 1
                    logger.exception(
                        "notification %s: the %s sender failed; it stays in the inbox",
                        notification.id,
                        sender.name,
                    )
        return failed
