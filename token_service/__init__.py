"""Signed rotating QR tokens (`SSC1`) for the electronic social security card.

A pure library: key rings, the token codec, issuing and verifying. It imports nothing from
the service, so scanner vendors can use it on its own.
"""

from token_service.codec import BUDGET_CHARS, MAX_TOKEN_CHARS, PREFIX, Claims, decode_token
from token_service.errors import (
    KeyRingError,
    MalformedTokenError,
    TokenBudgetError,
    TokenServiceError,
)
from token_service.issue import IssuedToken, TokenIssuer
from token_service.keys import KeyRing, KeyState, PublishedKey, SigningKey, key_id
from token_service.verdicts import Verdict
from token_service.verify import (
    KeyDirectory,
    KeyResolver,
    TokenCheck,
    TokenVerifier,
    VerificationKey,
)

__all__ = [
    "BUDGET_CHARS",
    "MAX_TOKEN_CHARS",
    "PREFIX",
    "Claims",
    "IssuedToken",
    "KeyDirectory",
    "KeyResolver",
    "KeyRing",
    "KeyRingError",
    "KeyState",
    "MalformedTokenError",
    "PublishedKey",
    "SigningKey",
    "TokenBudgetError",
    "TokenCheck",
    "TokenIssuer",
    "TokenServiceError",
    "TokenVerifier",
    "Verdict",
    "VerificationKey",
    "decode_token",
    "key_id",
]
