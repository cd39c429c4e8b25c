"""Errors of the notification inbox."""

from __future__ import annotations

from app.errors import NotFound


class NotificationNotFound(NotFound):
    code = "notification-not-found"
    title = "No such notification"
