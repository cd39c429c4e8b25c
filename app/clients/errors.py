"""Errors of organisations, API clients and the OAuth2 token endpoint."""

from __future__ import annotations

from typing import ClassVar

from app.errors import DomainError, InvalidRequest, NotFound


class OrganisationNotFound(NotFound):
    code = "organisation-not-found"
    title = "No such organisation"


class ScannerNotFound(NotFound):
    code = "scanner-not-found"
    title = "No such scanner"


class VenueNotFound(NotFound):
    code = "venue-not-found"
    title = "No such venue of this organisation"


class UnknownScene(InvalidRequest):
    code = "unknown-scene"
    title = "Scene not in the catalog"


class SceneNotOffered(InvalidRequest):
    code = "scene-not-offered"
    title = "Scene not offered by the organisation"


class InvalidRole(InvalidRequest):
    code = "invalid-role"
    title = "Role and region do not fit"


class OAuthError(DomainError):
    """An RFC 6749 section 5.2 error.

    It is answered as problem+json (one error format for the whole API) that also carries the
    RFC 6749 members `error` and `error_description`, so OAuth2 client libraries, which read
    those members, understand it too.
    """

    error: ClassVar[str] = "invalid_request"
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error=self.error, error_description=detail)


class OAuthInvalidRequest(OAuthError):
    code = "oauth-invalid-request"
    title = "Invalid token request"
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Unknown client, wrong secret or disabled client: one answer, so none can be told apart."""

    code = "oauth-invalid-client"
    title = "Client authentication failed"
    error = "invalid_client"
    status = 401


class UnsupportedGrantType(OAuthError):
    code = "oauth-unsupported-grant-type"
    title = "Unsupported grant type"
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    code = "oauth-invalid-scope"
    title = "Invalid scope"
    error = "invalid_scope"
