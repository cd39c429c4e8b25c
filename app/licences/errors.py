"""Errors of linked e-licences, their presentations and consent reads."""

from __future__ import annotations

from app.errors import Conflict, InvalidRequest, NotFound


class InvalidLicence(InvalidRequest):
    code = "invalid-licence"
    title = "The signed licence is not acceptable"


class HolderNotFound(NotFound):
    """No card holder has the document the licence names: never a guess."""

    code = "holder-not-found"
    title = "No card holder with this document"


class HolderMismatch(InvalidRequest):
    code = "holder-mismatch"
    title = "The licence's holder name is not the card holder's"


class LicenceNotFound(NotFound):
    code = "licence-not-found"
    title = "No such licence"


class StaleLicenceVersion(Conflict):
    """An older version than the one held: pushes must come in order."""

    code = "licence-version-stale"
    title = "An older version than the one linked"


class LicenceVersionConflict(Conflict):
    """The same (document id, version) pushed again with other content, or a new version
    that changes the holder or the type."""

    code = "licence-version-conflict"
    title = "Conflicts with the version already linked"


class InvalidBulk(InvalidRequest):
    code = "invalid-bulk"
    title = "Not a JSON Lines body of signed licences"
