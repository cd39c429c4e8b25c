"""The phone's QR tokens: only an active card on a bound device gets one.

A phone refreshes its code every `qr_refresh_after` seconds; prefetched tokens start when the
one before them is due to be replaced, so a phone that loses signal keeps showing a valid
code for a few more periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.cards.status_indexes import pick
from app.holders.qr_state import qr_card
from app.runtime import Runtime
from app.security.principals import HolderPrincipal
from qr import ImageFormat, render
from token_service import IssuedToken
from token_service.keys import b64url

MAX_PREFETCH = 5


@dataclass(frozen=True, slots=True)
class QrToken:
    token: str
    kid: str
    not_before: datetime
    expires_at: datetime

    @classmethod
    def of(cls, issued: IssuedToken) -> QrToken:
        return cls(
            token=issued.token,
            kid=b64url(issued.kid),
            not_before=datetime.fromtimestamp(issued.not_before, UTC),
            expires_at=datetime.fromtimestamp(issued.expires_at, UTC),
        )


@dataclass(frozen=True, slots=True)
class QrTokens:
    current: QrToken
    refresh_after: int
    upcoming: tuple[QrToken, ...]


async def issue_qr_tokens(runtime: Runtime, holder: HolderPrincipal, prefetch: int = 0) -> QrTokens:
    """The token to show now and `prefetch` (0..5) later ones with staggered validity.

    Reads the store, not SQL (`app.holders.qr_state`), and checks the session there too.

    :raises CardNotActive: (a subclass naming the state) when the card is not active (409).
    :raises DeviceUnbound: when the session's device was unbound (403).
    :raises SessionRevoked: when the session was revoked (401).
    :raises ValueError: for `prefetch` outside 0..5 (the API validates it first).
    """
    if not 0 <= prefetch <= MAX_PREFETCH:
        raise ValueError(f"prefetch must be 0 to {MAX_PREFETCH}")
    card = await qr_card(runtime, holder)
    issuer = runtime.token_issuer
    step = runtime.settings.qr_refresh_after
    # Each token carries another index of the card's pool (`app.cards.status_indexes`), so
    # two tokens of one card rarely share one. Prefetched tokens carry one too (no `nbf`
    # claim, so it fits the QR budget): an offline verifier refuses a token without one.
    first, *later = pick(card.pool, 1 + prefetch)
    current = issuer.issue(card.handle, status_index=first)
    upcoming = tuple(
        QrToken.of(
            issuer.issue(card.handle, not_before=current.issued_at + k * step, status_index=i)
        )
        for k, i in enumerate(later, start=1)
    )
    return QrTokens(QrToken.of(current), step, upcoming)


async def render_qr_image(
    runtime: Runtime,
    holder: HolderPrincipal,
    fmt: ImageFormat,
    *,
    large: bool = False,
) -> bytes:
    """A fresh token as a QR image; `large` is the high-contrast variant for poor eyesight."""
    tokens = await issue_qr_tokens(runtime, holder)
    return render(tokens.current.token, fmt, large_high_contrast=large)
