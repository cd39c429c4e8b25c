"""Errors of card applications and card issuance; each has a stable problem `type`."""

from __future__ import annotations

from app.errors import Conflict, InvalidRequest, NotFound


class InvalidApplication(InvalidRequest):
    """An application field that cannot be right (name, phone, bank, region)."""

    code = "invalid-application"
    title = "Invalid card application"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail, field=field)
        self.field = field


class ApplicationExists(Conflict):
    """The person already has an application waiting for a decision (one card per person)."""

    code = "application-exists"
    title = "An application for this person is already pending"


class CardExists(Conflict):
    """The person already holds a card (one card per person)."""

    code = "card-exists"
    title = "This person already has a card"


class ApplicationNotFound(NotFound):
    code = "application-not-found"
    title = "No such card application"


class ApplicationDecided(Conflict):
    """Approving or rejecting an application that was already decided."""

    code = "application-decided"
    title = "The application was already decided"
