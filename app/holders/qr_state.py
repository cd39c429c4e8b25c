"""What the phone's QR path needs to know, read from the store in one round trip, not SQL.

`GET /v1/me/qr` (and its images) asks for a new token every `qr_refresh_after` seconds per
phone, so it must not cost SQL. One `Store.get_many` reads:

- the session family's revocation mark (`session:revoked:<family>`, as every holder route);
- the phone's binding (`device-state:<device>`): the card id it is bound to, or `unbound`;
- the card's status and handle (`card-state:<card id>`), written with the card snapshot on
  every card change (`app.cards.snapshot.publish_card_snapshot`), so it is as current as
  the status the verify path reads;
- the card's status list index pool (`card-pool:<card id>`), dropped on every card change;
- and, in the same round trip, counts the request under the holder's QR rate limit
  (`Store.incr_and_get_many`: one Lua script on Redis, sent on a pipelined `ClaimChannel`
  connection like the verify path's claims unless `SSC_REDIS_CLAIM_CHANNEL=false`).

Nothing is cached in the worker: every request reads the store, so a change reaches every
worker as soon as it is written (well within 1 s). A key that is missing (first request,
a flushed or restarted store) sends the request to SQL once, which fills it again.

Who writes what, and why a refill cannot bring back an old state:
- card state: `publish_card_snapshot` SETs it after the change commits; a refill only adds it
  when absent (`set_if_absent`), so a refill that read SQL before the change either comes
  first and is overwritten, or comes later and writes nothing.
- binding: unbinding SETs `unbound` (for as long as the phone's access tokens live); a refill
  adds the binding only when absent, and never caches an unbound phone. Activating a phone
  again deletes the mark.
- pool: a refill adds it with a TTL (`POOL_TTL`); a card change deletes it. A refill racing a
  counter replacement could put back the retired pool for at most `POOL_TTL`: the status
  and the binding are never affected, and tokens stay valid online (the handle names the card).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.cards.models import CardStatus
from app.cards.snapshot import card_pool_key, card_state_key
from app.cards.status_indexes import add_to_pool, current_pool
from app.errors import Unauthorized
from app.holders.devices import DEVICE_UNBOUND, device_state_key
from app.holders.errors import DeviceUnbound, SessionRevoked, card_not_active
from app.holders.service import holder_card_and_device
from app.holders.sessions import revoked_family_key
from app.ratelimits import RateLimitRule
from app.ratelimits.service import rate_count
from app.runtime import Runtime
from app.security.principals import HolderPrincipal

POOL_TTL = 3600.0
"""Seconds a refilled pool lives in the store (bounds the race described above)."""
REFILL_TTL = 86400.0
"""Seconds a binding or card state added by a refill lives (a later change overwrites it)."""


@dataclass(frozen=True, slots=True)
class QrCard:
    """An active card on a bound phone: what a token needs."""

    card_id: uuid.UUID
    handle: bytes
    pool: tuple[int, ...]


def _decode_state(raw: bytes) -> tuple[CardStatus, str]:
    status, _, handle = raw.decode().partition("|")
    return CardStatus(status), handle


def _decode_pool(raw: bytes) -> tuple[int, ...]:
    return tuple(int(index) for index in raw.split(b",") if index)


async def qr_card(runtime: Runtime, holder: HolderPrincipal) -> QrCard:
    """The holder's active card on a bound phone, from the store (SQL only to refill it).

    :raises SessionRevoked: the token's session family was revoked (401).
    :raises RateLimited: the holder's QR budget (`SSC_RATE_LIMIT_QR_PER_HOLDER`) is spent (429);
        counted in the same round trip.
    :raises DeviceUnbound: the phone was unbound (403).
    :raises Unauthorized: the token's card or device no longer match (401).
    :raises CardNotActive: (a subclass naming the state) the card is not active (409).
    :raises StoreUnavailable: the store cannot be read (503: no token without knowing).
    """
    keys = [device_state_key(holder.device_pk), card_state_key(holder.card_id)]
    keys.append(card_pool_key(holder.card_id))
    if holder.family is not None:
        keys.append(revoked_family_key(holder.family))
    counted = rate_count(
        runtime.pii, runtime.settings, RateLimitRule.qr_per_holder, str(holder.card_id)
    )
    count, values = await runtime.store.incr_and_get_many(counted.key, counted.limit.seconds, keys)
    device, state, pool, *revoked = values
    if revoked and revoked[0] is not None:
        raise SessionRevoked("this session was revoked; log in again")
    counted.check(count)
    if device == DEVICE_UNBOUND:
        raise DeviceUnbound("this device was unbound from the card; activate it again")
    if device is None or state is None or pool is None:
        return await _refill(runtime, holder)
    if device != holder.card_id.hex.encode():
        raise Unauthorized("this session no longer matches a card; log in again")
    status, handle = _decode_state(state)
    if status is not CardStatus.active:
        raise card_not_active(status)
    indexes = _decode_pool(pool)
    if not indexes:
        return await _refill(runtime, holder)
    return QrCard(holder.card_id, bytes.fromhex(handle), indexes)


async def _refill(runtime: Runtime, holder: HolderPrincipal) -> QrCard:
    """Rare path: read SQL (topping up a short pool), then add what the store lacks."""
    settings = runtime.settings
    async with runtime.database.session() as session:
        card, _ = await holder_card_and_device(session, holder)
        status = CardStatus(card.status)
        handle = card.handle
        pool = await current_pool(session, card.id)
        if status is CardStatus.active and len(pool) < settings.status_index_pool:
            pool += await add_to_pool(
                session,
                card,
                settings.status_index_pool - len(pool),
                settings.status_list_size,
            )
    store = runtime.store
    # Only a bound phone is cached (`holder_card_and_device` raised otherwise).
    await store.set_if_absent(
        device_state_key(holder.device_pk), holder.card_id.hex.encode(), REFILL_TTL
    )
    await store.set_if_absent(
        card_state_key(holder.card_id), f"{status.value}|{handle}".encode(), REFILL_TTL
    )
    if status is not CardStatus.active:
        raise card_not_active(status)
    await store.set_if_absent(
        card_pool_key(holder.card_id), ",".join(map(str, pool)).encode(), POOL_TTL
    )
    return QrCard(holder.card_id, bytes.fromhex(handle), tuple(pool))
