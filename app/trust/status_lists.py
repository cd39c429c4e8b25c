"""Our Token Status List (IETF draft, 2 bits per card), built from the cards table.

Entries: active -> VALID, lost -> LOST, suspended -> SUSPENDED, anything else (cancelled,
a replaced carrier's retired pool) -> INVALID. Only entries that are not VALID are read: a
fresh list is all VALID.
The signed list (CWT and JWT) is cached in the store and rebuilt when `cards:version`
moved (every card change bumps it in `publish_card_snapshot`) or after
`SSC_STATUS_LIST_TTL` seconds, whichever comes first.

Each card has a pool of indexes (`app.cards.status_indexes`), all set to the card's status
together; a replaced carrier's retired pool reads INVALID for good. Linkability and the
list's capacity: see that module and README ("Status list capacity").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cards.models import Card, CardStatus, CardStatusIndex
from app.cards.snapshot import CARDS_VERSION
from app.config import Settings
from app.runtime import Runtime
from app.trust.documents import SignedDocument, cached_document, signed_cache_key
from app.trust.errors import StatusListNotFound
from token_service import Status, StatusList, sign_status_list_cwt, sign_status_list_jwt

logger = logging.getLogger("ssc.trust.status_lists")

CWT_MEDIA_TYPE = "application/statuslist+cwt"
JWT_MEDIA_TYPE = "application/statuslist+jwt"
_CACHE_KEY = "status-list:own"
_STATUSES: Mapping[str, Status] = {
    CardStatus.active.value: Status.VALID,
    CardStatus.lost.value: Status.LOST,
    CardStatus.suspended.value: Status.SUSPENDED,
    CardStatus.cancelled.value: Status.INVALID,
}


def status_list_uri(settings: Settings, issuer: str | None = None) -> str:
    """The stable URL of an issuer's list at this deployment: the `sub` of the signed list."""
    return f"{settings.public_url.rstrip('/')}/v1/status-lists/{issuer or settings.issuer}"


def card_status_entry(status: str) -> Status:
    """Unknown states are INVALID: a state we cannot name must never read as valid."""
    return _STATUSES.get(status, Status.INVALID)


async def status_entries(session: AsyncSession) -> list[tuple[int, Status]]:
    """Every entry that is not VALID: each index of a card's pool carries the card's status
    (all set together), each index of a retired pool (a replaced carrier) INVALID for good."""
    rows = await session.exec(
        select(CardStatusIndex.status_index, Card.status, CardStatusIndex.retired_at)
        .join(Card, col(Card.id) == col(CardStatusIndex.card_id))
        .where(
            or_(
                col(Card.status) != CardStatus.active.value,
                col(CardStatusIndex.retired_at).is_not(None),
            )
        )
    )
    return [
        (index, Status.INVALID if retired_at is not None else card_status_entry(status))
        for index, status, retired_at in rows
    ]


def build_status_list(entries: list[tuple[int, Status]], size: int) -> StatusList:
    """The list of `size` entries; entries beyond it are left out (logged)."""
    status_list = StatusList(size, bits=2)
    outside = 0
    for index, entry in entries:
        if 0 <= index < status_list.size:
            status_list.set(index, entry)
        else:
            outside += 1
    if outside:
        logger.warning("%d status list entries lie beyond the list size", outside)
    return status_list


async def published_status_list(
    runtime: Runtime, issuer: str, *, now: float | None = None
) -> SignedDocument:
    """Our signed status list, current to the last card change or the TTL.

    :raises StatusListNotFound: for an issuer other than ourselves (we publish only ours).
    """
    settings = runtime.settings
    if issuer != settings.issuer:
        raise StatusListNotFound(f"this service publishes the status list of {settings.issuer}")
    uri = status_list_uri(settings)
    ttl = settings.status_list_ttl

    async def sign(issued_at: int) -> tuple[bytes, str]:
        async with runtime.database.session() as session:
            entries = await status_entries(session)
        # Building, compressing and signing take time in proportion to the list's size
        # (tens of milliseconds at the default size): off the event loop, which serves verify.
        return await asyncio.to_thread(sign_list, entries, issued_at)

    def sign_list(entries: list[tuple[int, Status]], issued_at: int) -> tuple[bytes, str]:
        status_list = build_status_list(entries, settings.status_list_size)
        # Valid as long as a bundle embedding it may be used offline; refetch after `ttl`.
        expires_in = settings.bundle_max_age + ttl
        cwt = sign_status_list_cwt(
            status_list,
            uri=uri,
            keyring=runtime.keyring,
            issued_at=issued_at,
            expires_in=expires_in,
            ttl=ttl,
        )
        jwt = sign_status_list_jwt(
            status_list,
            uri=uri,
            keyring=runtime.keyring,
            issued_at=issued_at,
            expires_in=expires_in,
            ttl=ttl,
        )
        return cwt, jwt

    return await cached_document(
        runtime.store,
        signed_cache_key(runtime, _CACHE_KEY),
        CARDS_VERSION,
        ttl=ttl,
        now=time.time() if now is None else now,
        sign=sign,
    )
