"""Errors of holder authentication and of the holder's own card; stable problem `type`s.

Authentication failures never say which part was wrong (card number, document number or PIN),
so the answers cannot be used to find out which cards exist.
"""

from __future__ import annotations

from datetime import datetime

from app.cards.models import CardStatus
from app.errors import Conflict, DomainError, Forbidden, InvalidRequest, NotFound, Unauthorized

CREDENTIALS_REJECTED = "the card number, document number or PIN is not correct"


class InvalidCredentials(Unauthorized):
    code = "invalid-credentials"
    title = "Invalid credentials"

    def __init__(self) -> None:
        super().__init__(CREDENTIALS_REJECTED)


class PinLocked(DomainError):
    """Too many wrong PINs: the PIN is refused, even when right, until `unlocks_at`."""

    code = "pin-locked"
    title = "PIN locked after too many wrong attempts"
    status = 423

    def __init__(self, unlocks_at: datetime) -> None:
        super().__init__(
            f"the PIN is locked until {unlocks_at.isoformat()} after too many wrong attempts",
            unlocks_at=unlocks_at.isoformat(),
        )
        self.unlocks_at = unlocks_at


class InvalidRefreshToken(Unauthorized):
    code = "invalid-refresh-token"
    title = "Invalid refresh token"


class RefreshTokenReused(Unauthorized):
    """A spent refresh token came back: someone copied it, so its whole family is revoked."""

    code = "refresh-token-reused"
    title = "Refresh token reused; the session was revoked"


class SessionRevoked(Unauthorized):
    """The access token belongs to a session family that was revoked (a refresh token of it
    was reused): every token of the family is refused, however long it had left."""

    code = "session-revoked"
    title = "This session was revoked; log in again"


class DeviceNotActivated(Forbidden):
    """The credentials are right but the e-card is not activated on this device."""

    code = "device-not-activated"
    title = "The e-card is not activated on this device"


class DeviceUnbound(Forbidden):
    """The device of this session was unbound; it gets no QR code."""

    code = "device-unbound"
    title = "This device is no longer bound to the card"


class DeviceNotFound(NotFound):
    code = "device-not-found"
    title = "No such device on this card"


class InvalidDeviceKey(InvalidRequest):
    code = "invalid-device-key"
    title = "Invalid device public key"


class CardNotActive(Conflict):
    """The card is not active; subclasses name the state (`card-lost`, ...)."""

    code = "card-not-active"
    title = "The card is not active"


class CardLost(CardNotActive):
    code = "card-lost"
    title = "The card is reported lost"


class CardSuspended(CardNotActive):
    code = "card-suspended"
    title = "The card is suspended"


class CardCancelled(CardNotActive):
    code = "card-cancelled"
    title = "The card is cancelled"


def card_not_active(status: CardStatus) -> CardNotActive:
    """The error naming why a card in `status` gets no QR code."""
    kinds: dict[CardStatus, type[CardNotActive]] = {
        CardStatus.lost: CardLost,
        CardStatus.suspended: CardSuspended,
        CardStatus.cancelled: CardCancelled,
    }
    kind = kinds.get(status, CardNotActive)
    return kind(f"the card is {status.value}: no QR code is issued", card_status=status.value)
