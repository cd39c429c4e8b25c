"""Verifying `SSC1` tokens: a verdict for any input, never an exception.

Checks run cheapest first and stop at the first failure: structure (`malformed`; an
algorithm other than ES256 is outside the profile and also `malformed`, since it fails the
fixed protected-header check before any key is looked up), kid (`unknown_key`, or
`revoked_key` for a key its issuer revoked in an emergency), the key's
issuer (`issuer_untrusted`), the signature (`bad_signature`, also for the high-S twin
`(r, n - s)` of a valid signature: see `codec`), the signed `iss` against the key's issuer
(`issuer_untrusted`), then times with a clock-skew allowance (`expired`, `not_yet_valid`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from token_service.codec import (
    ClaimValues,
    HandleCipher,
    der_signature,
    is_low_s,
    sig_structure,
    split_message,
    split_token,
)
from token_service.errors import MalformedTokenError
from token_service.keys import Clock, KeyRing, KeyState
from token_service.verdicts import Verdict

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key and the issuer it signs for."""

    issuer: str
    kid: bytes
    public_key: ec.EllipticCurvePublicKey


class KeyResolver(Protocol):
    """Finds the verification key of a kid; None if unknown or no longer valid."""

    def resolve(self, kid: bytes) -> VerificationKey | None:
        """The key with this kid, or None."""
        ...

    def is_revoked(self, kid: bytes) -> bool:
        """Whether this kid is a key revoked by its issuer (asked only when `resolve` found
        nothing): such tokens answer `revoked_key` rather than `unknown_key`."""
        ...


class KeyDirectory:
    """Resolves kids across the key rings of several issuers with one dict lookup.

    The table is rebuilt after any ring changes (rotation, pruning, reload); a retired key
    drops out when its grace ends even without a change.
    """

    def __init__(self, rings: Mapping[str, KeyRing], *, clock: Clock = time.time) -> None:
        """:param rings: issuer code -> that issuer's key ring.
        :raises ValueError: if two issuers share a kid.
        """
        self._rings = dict(rings)
        self._clock = clock
        self._table: dict[bytes, tuple[VerificationKey, float]] | None = None
        table = self._build()
        known = sum(len(ring.published()) for ring in self._rings.values())
        if len(table) != known:
            raise ValueError("a kid belongs to more than one issuer")
        self._table = table
        for ring in self._rings.values():
            ring.subscribe(self._invalidate)

    def resolve(self, kid: bytes) -> VerificationKey | None:
        """The key with this kid if one of the rings may verify with it now."""
        table = self._table
        if table is None:
            table = self._table = self._build()
        entry = table.get(kid)
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]

    def is_revoked(self, kid: bytes) -> bool:
        """Whether one of the rings holds this kid as a revoked key."""
        return any(ring.is_revoked(kid) for ring in self._rings.values())

    def _invalidate(self) -> None:
        self._table = None

    def _build(self) -> dict[bytes, tuple[VerificationKey, float]]:
        table: dict[bytes, tuple[VerificationKey, float]] = {}
        shared: set[bytes] = set()
        for issuer, ring in self._rings.items():
            for key in ring.published():
                if key.kid in table:
                    shared.add(key.kid)
                valid_until = math.inf
                if key.state is KeyState.RETIRED and key.retired_at is not None:
                    valid_until = key.retired_at + ring.retire_grace
                table[key.kid] = (VerificationKey(issuer, key.kid, key.public_key), valid_until)
        for kid in shared:
            del table[kid]
        return table


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class TokenCheck:
    """The verdict on one token and what it authentically says.

    `issuer` is the issuer of the key the kid resolved to. Claims (`cti`, times, handles,
    status index) are filled only once the signature has verified. `not_before` is when
    validity starts: `nbf` if present and later than `iat`, else `iat`. `card_handle` is the
    decrypted handle when this verifier holds the issuer's handle key, else None.
    """

    verdict: Verdict
    kid: bytes | None = None
    issuer: str | None = None
    cti: bytes | None = None
    issued_at: int | None = None
    not_before: int | None = None
    expires_at: int | None = None
    card_handle: bytes | None = None
    sealed_handle: bytes | None = None
    status_index: int | None = None
    presentation: int | None = None
    """Set in a presentation token (`codec.CLAIM_PRESENTATION`): `card_handle` is then the
    presentation's id, not a card's."""

    @property
    def valid(self) -> bool:
        """Whether the token passed every check."""
        return self.verdict is Verdict.VALID


_MALFORMED = TokenCheck(Verdict.MALFORMED)


class TokenVerifier:
    """Verifies tokens of trusted issuers. Cheap to call; holds no per-token state."""

    def __init__(
        self,
        keys: KeyResolver,
        trusted_issuers: Collection[str],
        handle_keys: Mapping[str, bytes],
        clock_skew: float = 5,
        clock: Clock = time.time,
    ) -> None:
        """:param keys: resolves kids to public keys and their issuers.
        :param trusted_issuers: issuer codes whose tokens are accepted.
        :param handle_keys: issuer code -> handle key, for the issuers whose handles we open.
        :param clock_skew: seconds of tolerance on `exp`, `nbf` and `iat`.
        :raises ValueError: on a negative skew or a handle key that is not 16 or 32 bytes.
        """
        if clock_skew < 0:
            raise ValueError("clock_skew must not be negative")
        self._keys = keys
        self._trusted = frozenset(trusted_issuers)
        self._handles = {issuer: HandleCipher(key) for issuer, key in handle_keys.items()}
        self._skew = float(clock_skew)
        self._clock = clock

    def verify(self, token: str) -> TokenCheck:
        """Checks a scanned token string. Never raises on hostile input."""
        try:
            parts = split_token(token)
        except MalformedTokenError:
            return _MALFORMED
        return self._check(*parts)

    def verify_cose(self, message: bytes) -> TokenCheck:
        """Checks the binary COSE_Sign1 inside a token (what a gateway forwards instead of the
        base45 string): the same checks and verdicts as `verify`. Never raises on hostile input.
        """
        try:
            parts = split_message(message)
        except MalformedTokenError:
            return _MALFORMED
        return self._check(*parts)

    def _check(
        self,
        kid: bytes,
        protected: bytes,
        payload: bytes,
        signature: bytes,
        claims: ClaimValues,
    ) -> TokenCheck:
        key = self._keys.resolve(kid)
        if key is None:
            if self._keys.is_revoked(kid):
                return TokenCheck(Verdict.REVOKED_KEY, kid=kid)
            return TokenCheck(Verdict.UNKNOWN_KEY, kid=kid)
        issuer = key.issuer
        if issuer not in self._trusted:
            return TokenCheck(Verdict.ISSUER_UNTRUSTED, kid=kid, issuer=issuer)
        if not is_low_s(signature):
            return TokenCheck(Verdict.BAD_SIGNATURE, kid=kid, issuer=issuer)
        try:
            key.public_key.verify(
                der_signature(signature),
                sig_structure(protected, payload),
                _ECDSA_SHA256,
            )
        except InvalidSignature:
            return TokenCheck(Verdict.BAD_SIGNATURE, kid=kid, issuer=issuer)
        claimed_issuer, issued_at, expires_at, cti, sealed, not_before, status_index, shown = claims
        if claimed_issuer != issuer:
            return TokenCheck(Verdict.ISSUER_UNTRUSTED, kid=kid, issuer=issuer)
        now = self._clock()
        starts = issued_at if not_before is None or not_before < issued_at else not_before
        if expires_at + self._skew < now:
            verdict = Verdict.EXPIRED
        elif starts - self._skew > now:
            verdict = Verdict.NOT_YET_VALID
        else:
            verdict = Verdict.VALID
        handles = self._handles.get(issuer)
        return TokenCheck(  # positional: measurably cheaper on this hot path
            verdict,
            kid,
            issuer,
            cti,
            issued_at,
            starts,
            expires_at,
            None if handles is None else handles.open(sealed, cti),
            sealed,
            status_index,
            shown,
        )
