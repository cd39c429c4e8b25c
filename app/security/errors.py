"""Errors of the security primitives.

They derive from `DomainError` so that the one problem+json handler maps them; each carries a
stable `code`. Messages never contain the secret, the PIN or the personal data involved.
"""

from __future__ import annotations

from enum import StrEnum

from app.errors import DomainError


class SecurityError(DomainError):
    """Base class of failures of the security primitives."""

    code = "security-error"
    title = "Security check failed"
    status = 400


class PiiError(SecurityError):
    """A sealed personal-data value cannot be opened: tampered, truncated, moved or wrong key.

    This is a server-side integrity failure, never the caller's fault, hence 500.
    """

    code = "pii-integrity"
    title = "Stored personal data failed its integrity check"
    status = 500


class WeakPinError(SecurityError):
    """A new PIN breaks the PIN rules; `rule` names the rule, the message explains it."""

    code = "weak-pin"
    title = "PIN not accepted"
    status = 422

    def __init__(self, detail: str, *, rule: str) -> None:
        super().__init__(detail, rule=rule)
        self.rule = rule


class TokenRejection(StrEnum):
    """Why an access token was refused (for logs and for clients that refresh on `expired`)."""

    malformed = "malformed"
    too_large = "too_large"
    algorithm_not_allowed = "algorithm_not_allowed"
    bad_signature = "bad_signature"
    wrong_kind = "wrong_kind"
    wrong_issuer = "wrong_issuer"
    missing_claim = "missing_claim"
    expired = "expired"
    not_yet_valid = "not_yet_valid"


class InvalidAccessToken(SecurityError):
    """Any failure to accept an access token; `reason` says which check failed."""

    code = "invalid-access-token"
    title = "Invalid access token"
    status = 401

    def __init__(self, reason: TokenRejection, detail: str | None = None) -> None:
        super().__init__(detail or f"access token rejected: {reason}", reason=str(reason))
        self.reason = reason
