"""The runtime's token verifier: our own key ring plus the keys of every trusted issuer.

Our keys come from a `KeyDirectory` (it follows rotations and reloads of the ring); other
issuers' keys from their registered key sets. When the registry changes, a new
`TokenVerifier` replaces the old one (`Runtime.token_verifier` is read once per request),
so no lock is needed on the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence

from token_service import (
    KeyDirectory,
    TokenVerifier,
    TrustedIssuer,
    TrustedKeys,
    VerificationKey,
)


class OwnAndTrustedKeys:
    """Resolves a kid among our keys first, then among the trusted issuers' keys."""

    __slots__ = ("_own", "_trusted")

    def __init__(self, own: KeyDirectory, trusted: TrustedKeys) -> None:
        self._own = own
        self._trusted = trusted

    def resolve(self, kid: bytes) -> VerificationKey | None:
        return self._own.resolve(kid) or self._trusted.resolve(kid)

    def is_revoked(self, kid: bytes) -> bool:
        return self._own.is_revoked(kid) or self._trusted.is_revoked(kid)


def build_token_verifier(
    *,
    issuer: str,
    own_keys: KeyDirectory,
    card_handle_key: bytes,
    clock_skew: float,
    others: Sequence[TrustedIssuer] = (),
) -> TokenVerifier:
    """A verifier accepting our tokens and those of `others` (whose handles we cannot open).

    :raises ValueError: if two issuers share a kid (registration refuses that first).
    """
    foreign = [entry for entry in others if entry.code != issuer]
    return TokenVerifier(
        OwnAndTrustedKeys(own_keys, TrustedKeys(foreign)),
        trusted_issuers={issuer, *(entry.code for entry in foreign)},
        handle_keys={issuer: card_handle_key},
        clock_skew=clock_skew,
    )
