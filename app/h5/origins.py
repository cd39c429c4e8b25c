"""Which sites may frame the pages: the registered origins of the active channel apps.

The pages' CSP names them in `frame-ancestors` (none registered: `'none'`). The list is read
from SQL and cached in the store for `CACHE_SECONDS`; a change through the administrators' API
drops the cache at once, a channel's suspension reaches the list within `CACHE_SECONDS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.channels.errors import ChannelNotFound
from app.clients.models import ApiClient, ClientKind, ClientStatus
from app.errors import InvalidRequest
from app.h5.models import ChannelOrigin
from app.runtime import Runtime

CACHE_KEY = "h5:frame-ancestors"
CACHE_SECONDS = 30
MAX_ORIGINS = 10
ORIGIN_PATTERN = (
    r"^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$"
)
_ORIGIN = re.compile(ORIGIN_PATTERN)


class InvalidOrigin(InvalidRequest):
    code = "invalid-origin"
    title = "Not an https origin"


def normal_origin(origin: str) -> str:
    """`https://host[:port]` in lower case, without a path.

    :raises InvalidOrigin: anything else (another scheme, a path, a wildcard, ...).
    """
    normal = origin.strip().lower().rstrip("/")
    if len(normal) > 255 or not _ORIGIN.fullmatch(normal):
        raise InvalidOrigin(f"{origin!r} is not an https origin (https://host[:port])")
    return normal


async def _channel_pk(session: AsyncSession, client_id: str) -> ApiClient:
    channel = (
        await session.exec(
            select(ApiClient).where(
                ApiClient.client_id == client_id, ApiClient.kind == ClientKind.channel.value
            )
        )
    ).first()
    if channel is None:
        raise ChannelNotFound(f"no channel {client_id}")
    return channel


async def set_channel_origins(
    session: AsyncSession, runtime: Runtime, actor: str, client_id: str, origins: Sequence[str]
) -> list[str]:
    """Replaces a channel's origins; returns them normalised and sorted.

    :raises ChannelNotFound: no channel of this id (404).
    :raises InvalidOrigin: an origin that is not `https://host[:port]`, or too many (422).
    """
    if len(origins) > MAX_ORIGINS:
        raise InvalidOrigin(f"at most {MAX_ORIGINS} origins per channel")
    normal = sorted({normal_origin(origin) for origin in origins})
    channel = await _channel_pk(session, client_id)
    await session.exec(delete(ChannelOrigin).where(col(ChannelOrigin.channel_pk) == channel.id))
    for origin in normal:
        session.add(ChannelOrigin(channel_pk=channel.id, origin=origin))
    await session.flush()
    await runtime.store.delete(CACHE_KEY)
    await record(runtime.store, "h5.channel_origins_set", actor, client_id, {"origins": normal})
    return normal


async def channel_origins(session: AsyncSession, client_id: str) -> list[str]:
    """:raises ChannelNotFound:"""
    channel = await _channel_pk(session, client_id)
    rows = await session.exec(
        select(ChannelOrigin.origin)
        .where(ChannelOrigin.channel_pk == channel.id)
        .order_by(col(ChannelOrigin.origin))
    )
    return list(rows.all())


async def frame_ancestors(runtime: Runtime) -> list[str]:
    """The origins of every active channel app, from the store's cache or SQL.

    :raises StoreUnavailable, DatabaseUnavailable: the page fails closed (503).
    """
    cached = await runtime.store.get(CACHE_KEY)
    if cached is not None:
        return list(json.loads(cached))
    async with runtime.database.session() as session:
        rows = await session.exec(
            select(ChannelOrigin.origin)
            .join(ApiClient, col(ApiClient.id) == col(ChannelOrigin.channel_pk))
            .where(ApiClient.status == ClientStatus.active.value)
            .order_by(col(ChannelOrigin.origin))
        )
        origins = sorted(set(rows.all()))
    await runtime.store.set(CACHE_KEY, json.dumps(origins).encode(), CACHE_SECONDS)
    return origins
