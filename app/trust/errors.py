"""Errors of the trust domain (other issuers, published lists, bundles)."""

from __future__ import annotations

from app.errors import Conflict, InvalidRequest, NotFound


class IssuerNotFound(NotFound):
    code = "issuer-not-found"
    title = "No such trusted issuer"


class IssuerExists(Conflict):
    code = "issuer-exists"
    title = "The issuer is already registered"


class InvalidIssuer(InvalidRequest):
    code = "invalid-issuer"
    title = "The issuer's keys or status list cannot be accepted"


class StatusListNotFound(NotFound):
    code = "status-list-not-found"
    title = "No status list is published for this issuer"
