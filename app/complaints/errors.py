"""Errors of complaints; each has a stable problem `type`."""

from __future__ import annotations

from app.errors import Conflict, InvalidRequest, NotFound


class ComplaintNotFound(NotFound):
    code = "complaint-not-found"
    title = "No such complaint"


class ComplaintClosed(Conflict):
    code = "complaint-closed"
    title = "The complaint is closed"


class ContactRequired(InvalidRequest):
    code = "contact-required"
    title = "A contact is required"
