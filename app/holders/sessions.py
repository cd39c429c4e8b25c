"""Holder sessions: a short access token and a rotating refresh token.

Refresh tokens are opaque; only their HMAC is stored. Each refresh spends the presented token
and issues the next one of the same family. A spent token presented again means two parties
hold the chain (a copy was stolen), so the whole family is revoked: both must log in again.

Access tokens name their family (`fam`), and a revoked family is marked in the store for as
long as any of its access tokens can live; every holder request checks the mark (one store
GET, `ensure_session_live`), so a revocation reaches the access tokens on every worker at
once instead of after their expiry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import Card, Device, DeviceStatus, RefreshToken, utcnow
from app.errors import DomainError
from app.holders.errors import InvalidRefreshToken, RefreshTokenReused, SessionRevoked
from app.runtime import Runtime
from app.security.opaque import MAX_SECRET_CHARS, hash_opaque_secret, new_opaque_secret
from app.security.principals import SESSION_FAMILY_CLAIM, HolderPrincipal, Scope
from app.security.tokens import PrincipalKind

REFRESH_TOKEN_PREFIX = "rt_"  # noqa: S105 - a label, not a secret
REVOCATION_MARGIN = 60
"""Seconds a revocation mark outlives the access token TTL (clock leeway, in-flight requests)."""


@dataclass(frozen=True, slots=True)
class HolderSession:
    """What a holder receives at activation, login and refresh; the raw refresh token once."""

    access_token: str
    access_expires_in: int
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    card_id: uuid.UUID
    device_pk: uuid.UUID


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)


async def open_session(
    session: AsyncSession,
    runtime: Runtime,
    card: Card,
    device: Device,
    family_id: uuid.UUID | None = None,
) -> HolderSession:
    """Issues an access token and a refresh token (a new family unless `family_id` is given)."""
    settings = runtime.settings
    family_id = family_id or uuid.uuid4()
    access = runtime.access_tokens.issue(
        PrincipalKind.holder,
        str(card.id),
        [Scope.holder_card.value],
        settings.access_token_ttl,
        extra={"device": str(device.id), SESSION_FAMILY_CLAIM: str(family_id)},
    )
    raw = new_opaque_secret(REFRESH_TOKEN_PREFIX)
    refresh = RefreshToken(
        family_id=family_id,
        card_id=card.id,
        device_id=device.id,
        token_hash=hash_opaque_secret(raw, runtime.secret_hash_key),
        expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl),
    )
    session.add(refresh)
    await session.flush()
    return HolderSession(
        access_token=access.token,
        access_expires_in=settings.access_token_ttl,
        access_expires_at=access.expires_at,
        refresh_token=raw,
        refresh_expires_at=refresh.expires_at,
        card_id=card.id,
        device_pk=device.id,
    )


async def rotate(
    session: AsyncSession, runtime: Runtime, raw_token: str
) -> HolderSession | DomainError:
    """Spends `raw_token` and returns the next session, or the error to answer.

    The error is returned rather than raised so that the caller commits the revocation of a
    family before answering: a rolled-back revocation would leave the thief's chain alive.
    """
    if len(raw_token) > MAX_SECRET_CHARS or not raw_token.startswith(REFRESH_TOKEN_PREFIX):
        return InvalidRefreshToken("the refresh token is not valid")
    token_hash = hash_opaque_secret(raw_token, runtime.secret_hash_key)
    stored = (
        await session.exec(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    ).first()
    if stored is None or stored.revoked_at is not None:
        return InvalidRefreshToken("the refresh token is not valid")
    now = utcnow()
    if as_utc(stored.expires_at) <= now:
        return InvalidRefreshToken("the refresh token has expired; log in again")
    # Spend it only if still unspent: of two concurrent refreshes exactly one wins.
    spent = await session.exec(
        update(RefreshToken)
        .where(
            col(RefreshToken.id) == stored.id,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        await revoke_family(session, stored.family_id)
        await mark_family_revoked(runtime, stored.family_id)
        await record(
            runtime.store,
            "holder.refresh_reused",
            f"holder:{stored.card_id}",
            str(stored.card_id),
            {"family": str(stored.family_id), "device": str(stored.device_id)},
        )
        return RefreshTokenReused(
            "this refresh token was already used; every session of its chain is revoked"
        )
    card = await session.get(Card, stored.card_id)
    device = await session.get(Device, stored.device_id)
    if card is None or device is None or device.status != DeviceStatus.active:
        return InvalidRefreshToken("the device of this session is no longer bound")
    return await open_session(session, runtime, card, device, stored.family_id)


def revoked_family_key(family_id: uuid.UUID) -> str:
    return f"session:revoked:{family_id}"


async def mark_family_revoked(runtime: Runtime, family_id: uuid.UUID) -> None:
    """Refuses the family's access tokens on every worker from now until they have expired."""
    ttl = runtime.settings.access_token_ttl + REVOCATION_MARGIN
    await runtime.store.set(revoked_family_key(family_id), b"1", ttl)


async def ensure_session_live(runtime: Runtime, holder: HolderPrincipal) -> None:
    """:raises SessionRevoked: the token's session family was revoked (401).
    :raises StoreUnavailable: the mark cannot be read; the request fails closed (503)."""
    if holder.family is None:
        return
    if await runtime.store.get(revoked_family_key(holder.family)) is not None:
        raise SessionRevoked("this session was revoked; log in again")


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
