"""The phones an e-card is activated on, and the public keys they may register."""

from __future__ import annotations

import base64
import binascii
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cards.models import Device, DeviceStatus, RefreshToken, utcnow
from app.holders.errors import InvalidDeviceKey

MAX_DEVICE_KEY_CHARS = 512


DEVICE_UNBOUND = b"unbound"
"""What `device_state_key` holds once the phone was unbound (else its card id in hex)."""


def device_state_key(device_pk: uuid.UUID) -> str:
    """The phone's binding as the QR path reads it (`app.holders.qr_state`)."""
    return f"device-state:{device_pk.hex}"


def normalise_device_key(encoded: str | None) -> str | None:
    """Checks that `encoded` is a base64 DER SubjectPublicKeyInfo of a P-256 key.

    Returns it in canonical form (standard base64 of the re-encoded DER), or None when absent.

    :raises InvalidDeviceKey: for anything else.
    """
    if encoded is None:
        return None
    if len(encoded) > MAX_DEVICE_KEY_CHARS:
        raise InvalidDeviceKey(f"a device public key has at most {MAX_DEVICE_KEY_CHARS} characters")
    compact = "".join(encoded.split())
    try:
        der = base64.b64decode(compact + "=" * (-len(compact) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        try:
            der = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidDeviceKey("the device public key is not base64") from None
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise InvalidDeviceKey("the device public key is not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise InvalidDeviceKey("the device public key must be an EC key on P-256 (secp256r1)")
    canonical = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(canonical).decode("ascii")


async def bind_device(
    session: AsyncSession, card_id: uuid.UUID, device_id: str, public_key: str | None
) -> Device:
    """Registers a phone for the card; activating an unbound phone again re-binds it."""
    device = (
        await session.exec(
            select(Device).where(Device.card_id == card_id, Device.device_id == device_id)
        )
    ).first()
    if device is None:
        device = Device(card_id=card_id, device_id=device_id, public_key=public_key)
    else:
        device.status = DeviceStatus.active
        device.public_key = public_key
        device.activated_at = utcnow()
        device.unbound_at = None
    session.add(device)
    await session.flush()
    return device


async def active_device(session: AsyncSession, card_id: uuid.UUID, device_id: str) -> Device | None:
    """The card's device with the phone's id, when it is bound."""
    statement = select(Device).where(
        Device.card_id == card_id,
        Device.device_id == device_id,
        Device.status == DeviceStatus.active,
    )
    return (await session.exec(statement)).first()


async def revoke_device_sessions(session: AsyncSession, device_pk: uuid.UUID) -> None:
    """Revokes every refresh token of the device, so no session of it can be renewed."""
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.device_id) == device_pk, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
