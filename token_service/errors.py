"""One error hierarchy for the library; each error carries a stable machine code."""

from __future__ import annotations


class TokenServiceError(Exception):
    """Base of every error this library raises on purpose."""

    code = "token_service_error"


class KeyRingError(TokenServiceError):
    """A key directory cannot be read, decrypted or trusted (wrong KEK, tampered file, ...)."""

    code = "key_ring"


class MalformedTokenError(TokenServiceError, ValueError):
    """A token string is not a well-formed `SSC1` token (raised by the codec, never by verify)."""

    code = "malformed"


class TokenBudgetError(TokenServiceError, ValueError):
    """An encoded token would exceed the QR budget, so it would not scan as version 8 at M."""

    code = "token_too_large"
