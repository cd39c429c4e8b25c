"""Errors of misuse alerts and credit records; each has a stable problem `type`."""

from __future__ import annotations

from app.errors import Conflict, NotFound


class AlertNotFound(NotFound):
    code = "alert-not-found"
    title = "No such misuse alert"


class AlertClosed(Conflict):
    code = "alert-closed"
    title = "The misuse alert is already closed"
