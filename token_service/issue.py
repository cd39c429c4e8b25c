"""Issuing `SSC1` tokens for a card handle."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from token_service.codec import CTI_LENGTH, Claims, HandleCipher, sign_token
from token_service.keys import Clock, KeyRing


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed token and what the issuer needs to remember about it (unix seconds).

    `issued_at` is the token's `iat` claim, which is also its start of validity: equal to
    `not_before` (kept as a separate field for callers written when prefetched tokens
    carried `nbf`).
    """

    token: str
    cti: bytes
    kid: bytes
    issued_at: int
    not_before: int
    expires_at: int


class TokenIssuer:
    """Signs tokens with the active key of one issuer's key ring."""

    def __init__(
        self,
        keyring: KeyRing,
        issuer: str,
        handle_key: bytes,
        lifetime: int = 60,
        clock: Clock = time.time,
    ) -> None:
        """:param issuer: the short issuer code put in `iss`, e.g. a region code "360000".
        :param handle_key: 16 or 32 bytes; encrypts card handles so tokens are unlinkable.
        :param lifetime: seconds from the start of validity to `exp`.
        :raises ValueError: on an empty issuer, a wrong key length or a non-positive lifetime.
        """
        if not issuer:
            raise ValueError("an issuer code is required")
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self._keyring = keyring
        self._issuer = issuer
        self._handles = HandleCipher(handle_key)
        self._lifetime = lifetime
        self._clock = clock

    @property
    def issuer(self) -> str:
        """The issuer code of every token this issuer signs."""
        return self._issuer

    def issue(
        self,
        card_handle: bytes,
        *,
        not_before: int | None = None,
        status_index: int | None = None,
        presentation: int | None = None,
        lifetime: int | None = None,
    ) -> IssuedToken:
        """Signs a fresh token for a card.

        A `not_before` in the future (a prefetched token) becomes the token's `iat`, and the
        lifetime starts there; a `not_before` now or in the past is the same as none. No `nbf`
        claim is written: its 2 to 6 bytes would push a prefetched token that carries a 32-bit
        status index past the QR budget (230 characters, version 9), while verifiers already
        refuse a token whose `iat` lies ahead of their clock (`not_yet_valid`). So `iat` means
        "valid from", not "signed at"; the signing time is not disclosed.

        :param card_handle: the card's 16-byte opaque handle (never personal data).
        :param status_index: the card's index in the issuer's status list, if any.
        :param presentation: for a presentation token (`codec.CLAIM_PRESENTATION`), what it
            presents; `card_handle` is then the presentation's id.
        :param lifetime: seconds of validity, instead of the issuer's default.
        :raises ValueError: on a handle that is not 16 bytes or a negative status index.
        :raises TokenBudgetError: if the claims would make the token too long for the QR budget.
        """
        if status_index is not None and status_index < 0:
            raise ValueError("a status index is not negative")
        now = int(self._clock())
        starts = now if not_before is None else max(now, not_before)
        cti = secrets.token_bytes(CTI_LENGTH)
        signing = self._keyring.signing_key
        claims = Claims(
            issuer=self._issuer,
            issued_at=starts,
            expires_at=starts + (lifetime or self._lifetime),
            cti=cti,
            sealed_handle=self._handles.seal(card_handle, cti),
            status_index=status_index,
            presentation=presentation,
        )
        return IssuedToken(
            token=sign_token(claims, signing.kid, signing.private_key),
            cti=cti,
            kid=signing.kid,
            issued_at=starts,
            not_before=starts,
            expires_at=claims.expires_at,
        )
