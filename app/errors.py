"""The root of every domain error. Each domain defines a small hierarchy under `DomainError`;
`api/problems.py` turns any of them into RFC 9457 problem+json in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """An expected failure with a stable machine code (`code`) and an HTTP status."""

    code: ClassVar[str] = "domain-error"
    title: ClassVar[str] = "Request failed"
    status: ClassVar[int] = 400

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry besides the problem body (e.g. `Retry-After`)."""
        return {}


class NotFound(DomainError):
    code = "not-found"
    title = "Not found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict with the current state"
    status = 409


class InvalidRequest(DomainError):
    code = "invalid-request"
    title = "Invalid request"
    status = 422


class Unauthorized(DomainError):
    code = "unauthorized"
    title = "Authentication required"
    status = 401


class Forbidden(DomainError):
    code = "forbidden"
    title = "Not allowed"
    status = 403


class ServiceUnavailable(DomainError):
    """A backing service (store, database) is down; callers must fail closed."""

    code = "service-unavailable"
    title = "Service temporarily unavailable"
    status = 503
