"""Errors of the scene catalog."""

from __future__ import annotations

from app.errors import Conflict, InvalidRequest, NotFound


class CatalogVersionNotFound(NotFound):
    code = "catalog-version-not-found"
    title = "No such catalog version"


class InvalidCatalog(InvalidRequest):
    code = "invalid-catalog"
    title = "Invalid catalog version"


class CatalogConflict(Conflict):
    code = "catalog-conflict"
    title = "The catalog changed meanwhile, or the version was decided already"
