"""Scanner access tokens on the verify hot path, decoded once per token rather than per scan.

A scanner sends the same bearer token with every scan for up to an hour; checking its HMAC
and claims costs more than a third of what the rest of a scan costs outside the signature.
The cache maps the exact token string to the principal it proved, until the token's own
expiry. It holds only tokens that passed every check, so it cannot make a bad token good;
disablement still takes effect at once because the principal's state is read inside the
store's claim script on every scan, not from here.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from app.clients.service import PRINCIPAL_ACTIVE, principal_key, refill_scanner_principal
from app.errors import Forbidden, Unauthorized
from app.security.principals import ScannerPrincipal, Scope
from app.security.tokens import AccessTokenCodec, PrincipalKind
from app.store import Store
from app.verification.errors import ScannerDisabled

DEFAULT_CAPACITY = 4096


class ScannerTokenCache:
    """Bounded LRU from scanner access token to principal; entries end at the token's expiry."""

    __slots__ = ("_capacity", "_clock", "_codec", "_entries")

    def __init__(
        self,
        codec: AccessTokenCodec,
        *,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._codec = codec
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, tuple[ScannerPrincipal, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def principal(self, token: str) -> ScannerPrincipal:
        """The scanner this token proves, with the verify scope.

        :raises InvalidAccessToken: for a token that is invalid, expired or not a scanner's.
        :raises Unauthorized: for a scanner token without the claims of its kind.
        :raises Forbidden: for a scanner token without the verify scope.
        """
        entry = self._entries.get(token)
        if entry is not None:
            if entry[1] > self._clock():
                self._entries.move_to_end(token)
                return entry[0]
            del self._entries[token]
        claims = self._codec.decode(token, PrincipalKind.scanner)
        if Scope.scanner_verify.value not in claims.scopes:
            raise Forbidden(f"this operation needs the {Scope.scanner_verify.value!r} scope")
        try:
            principal = ScannerPrincipal.from_claims(claims)
        except (KeyError, ValueError):
            raise Unauthorized("the access token lacks the claims of its kind") from None
        self._entries[token] = (principal, claims.expires_at.timestamp())
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return principal


async def ensure_scanner_enabled(session: AsyncSession, store: Store, client_id: str) -> None:
    """Off the verify path (which reads the mirror inside its claim): refuses a scanner that
    was disabled, or whose organisation was withdrawn, after its token was issued.

    :raises ScannerDisabled:
    """
    key = principal_key(client_id)
    mirror = await store.get(key)
    if mirror is None:
        await refill_scanner_principal(session, store, client_id)
        mirror = await store.get(key)
    if mirror != PRINCIPAL_ACTIVE:
        raise ScannerDisabled("this scanner has been disabled, or its organisation withdrawn")
