"""Each card's pool of status list indexes (`SSC_STATUS_INDEX_POOL`, 16 by default).

Every QR token carries one status list index (claim -65002), signed but not encrypted. With
one index per card, two venues that pool their scans could link a person's presentations by
it. So each card holds a pool of indexes, drawn at random within the list's capacity
(`SSC_STATUS_LIST_SIZE`); the status list writer sets every index of a pool to the card's
status at once (`app.trust.status_lists.build_status_list`), and each token carries a
different index of the pool, drawn at random (the EUDI batch-issuance pattern). On
replacement (补换) the pool is retired and a fresh one drawn: the retired indexes read
INVALID for good and are never drawn again, so the new carrier cannot be linked to the old.

Online verification never reads the index (the sealed card handle names the card), so the
hot path is unchanged. Capacity: a list of `SSC_STATUS_LIST_SIZE` entries holds
`SSC_STATUS_LIST_SIZE / SSC_STATUS_INDEX_POOL` cards' pools, less every retired pool; keep
it at most half full so random draws rarely collide (README, "Status list capacity").
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cards.errors import StatusListFull
from app.cards.models import Card, CardStatusIndex, utcnow

logger = logging.getLogger("ssc.cards.status_indexes")

_DRAW_ROUNDS = 16
_INSERT_ATTEMPTS = 8
_random = secrets.SystemRandom()


def draw_status_index(status_list_size: int) -> int:
    """A random free-or-taken slot of the status list; the primary key settles which."""
    return secrets.randbelow(status_list_size)


async def free_indexes(session: AsyncSession, count: int, capacity: int) -> list[int]:
    """`count` distinct random indexes below `capacity` that no pool holds (at this read).

    :raises StatusListFull: when draws keep landing on taken indexes.
    """
    chosen: list[int] = []
    for _ in range(_DRAW_ROUNDS):
        wanted = count - len(chosen)
        candidates = {draw_status_index(capacity) for _ in range(wanted)} - set(chosen)
        taken = set(
            (
                await session.exec(
                    select(CardStatusIndex.status_index).where(
                        col(CardStatusIndex.status_index).in_(candidates)
                    )
                )
            ).all()
        )
        chosen.extend(index for index in candidates if index not in taken)
        if len(chosen) >= count:
            return chosen[:count]
    logger.error(
        "no free status list index after %d draws: SSC_STATUS_LIST_SIZE (%d) is too small for"
        " the cards times SSC_STATUS_INDEX_POOL",
        _DRAW_ROUNDS,
        capacity,
    )
    raise StatusListFull("the status list is full; the operator must enlarge it")


def pool_entries(card_id: uuid.UUID, indexes: Sequence[int]) -> list[CardStatusIndex]:
    """The rows of a pool (a new card inserts them with its own row, in one savepoint)."""
    return [CardStatusIndex(status_index=index, card_id=card_id) for index in indexes]


async def add_to_pool(session: AsyncSession, card: Card, count: int, capacity: int) -> list[int]:
    """Adds `count` fresh indexes to the card's current pool (inside a savepoint, retried when
    a concurrent draw took one).

    :raises StatusListFull: when no free indexes can be drawn.
    """
    for _ in range(_INSERT_ATTEMPTS):
        indexes = await free_indexes(session, count, capacity)
        try:
            async with session.begin_nested():
                session.add_all(pool_entries(card.id, indexes))
        except IntegrityError:
            continue
        return indexes
    raise StatusListFull("status list indexes kept colliding; retry")


async def current_pool(session: AsyncSession, card_id: uuid.UUID) -> list[int]:
    """The indexes of the card's current (not retired) pool."""
    statement = select(CardStatusIndex.status_index).where(
        CardStatusIndex.card_id == card_id, col(CardStatusIndex.retired_at).is_(None)
    )
    return list((await session.exec(statement)).all())


async def renew_pool(session: AsyncSession, card: Card, size: int, capacity: int) -> list[int]:
    """Retires the card's pool (INVALID for good in the list) and draws a fresh one; the
    card row's `status_index` follows. Only flushes; the caller commits."""
    await session.exec(
        update(CardStatusIndex)
        .where(col(CardStatusIndex.card_id) == card.id, col(CardStatusIndex.retired_at).is_(None))
        .values(retired_at=utcnow())
    )
    fresh = await add_to_pool(session, card, size, capacity)
    card.status_index = fresh[0]
    session.add(card)
    await session.flush()
    return fresh


async def token_indexes(
    session: AsyncSession, card: Card, count: int, size: int, capacity: int
) -> list[int]:
    """`count` indexes of the card's pool for `count` tokens, distinct while the pool allows,
    each drawn at random. A pool smaller than `size` (a card from before the pools, or a
    larger setting) is topped up first: the new entries read VALID like the card, so the
    published list does not change."""
    pool = await current_pool(session, card.id)
    if len(pool) < size:
        pool += await add_to_pool(session, card, size - len(pool), capacity)
    return pick(pool, count)


def pick(pool: Sequence[int], count: int) -> list[int]:
    """`count` random indexes of `pool`: distinct when it has enough of them."""
    if count <= len(pool):
        return _random.sample(list(pool), count)
    return [_random.choice(pool) for _ in range(count)]
