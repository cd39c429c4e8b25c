"""Errors of the family service."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, InvalidRequest, NotFound


class FamilyError(Exception):
    """Marker base for this domain (every error below is also a `DomainError`)."""


class FamilyLinkNotFound(NotFound, FamilyError):
    code = "family-link-not-found"
    title = "No such family link"


class WardNotFound(NotFound, FamilyError):
    code = "ward-not-found"
    title = "No card with this number"


class FamilyLinkExists(Conflict, FamilyError):
    code = "family-link-exists"
    title = "These two people are already linked or invited"


class FamilyLimitReached(Conflict, FamilyError):
    code = "family-limit-reached"
    title = "Too many family links"


class FamilyLinkInactive(Forbidden, FamilyError):
    code = "family-link-inactive"
    title = "The family link is not in force"


class ScopeNotGranted(Forbidden, FamilyError):
    code = "family-scope-not-granted"
    title = "The link does not grant this"


class GuardianNotPermitted(Forbidden, FamilyError):
    code = "guardian-not-permitted"
    title = "A guardian may never do this for a ward"


class NotYourInvitation(Forbidden, FamilyError):
    code = "not-your-invitation"
    title = "Only the invited ward may accept"


class InvalidInvitation(InvalidRequest, FamilyError):
    code = "invalid-invitation"
    title = "Invalid invitation"
