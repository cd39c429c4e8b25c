"""Errors of consent requests and consent reads."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, InvalidRequest, NotFound


class ConsentNotFound(NotFound):
    code = "consent-request-not-found"
    title = "No such consent request"


class InvalidConsentRequest(InvalidRequest):
    code = "invalid-consent-request"
    title = "Invalid consent request"


class ConsentNotPending(Conflict):
    code = "consent-request-not-pending"
    title = "The request is no longer pending"


class ConsentNotActive(Conflict):
    code = "consent-not-active"
    title = "The consent is not in effect"


class ConsentRequired(Forbidden):
    """A read without a consent in effect that names the item: refused and audited."""

    code = "consent-required"
    title = "No consent in effect for this read"
