"""Channel apps: registered clients (kind `channel`) that embed the e-card for holders who
linked them.

The link flow (the channel never sees the PIN):
1. the channel (client credentials, scope `channel`) asks: `POST /v1/channel/link-requests`
   -> a request id, valid `LINK_REQUEST_TTL` seconds, which it hands to our app (deep link);
2. the holder sees the channel's name in our app and approves with the PIN
   (`POST /v1/me/channel-link-requests/{id}/approve`): the link exists from now on;
3. the channel redeems the approved request once (`POST /v1/channel/link-requests/{id}/session`)
   for a channel-scoped session: an access token of kind `channel_holder` (never accepted on
   the holder's own routes) and a rotating refresh token, and the holder's pairwise id.

Every token of a link carries the link's session family. Unlinking (the holder) revokes the
refresh tokens in SQL and marks the family revoked in the store (the mark of
`app.holders.sessions`), which every channel-holder request checks: on every worker at once.
Suspending a channel (administrators) writes its mirror in the store (`channel:<client id>`),
checked on the same requests, and refuses it new client tokens.

Identifiers a channel sees are pairwise: HMAC(pseudonym key, channel || card), so two channels
cannot correlate a holder.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import Card, CardStatus, Person
from app.cards.service import NAME_FIELD
from app.cards.status_indexes import token_indexes
from app.channels.errors import (
    ChannelLinkNotFound,
    ChannelNotFound,
    ChannelSessionRevoked,
    ChannelSuspended,
    InvalidChannelRefreshToken,
    LinkRequestNotApproved,
    LinkRequestNotFound,
)
from app.channels.models import (
    ChannelLink,
    ChannelLinkRequest,
    ChannelRefreshToken,
    ChannelType,
    LinkStatus,
    RequestStatus,
)
from app.clients.models import ApiClient, ClientKind, ClientStatus
from app.clients.service import IssuedClient, new_client
from app.errors import DomainError
from app.holders.errors import card_not_active
from app.holders.service import check_holder_pin, holder_card_and_device
from app.holders.sessions import as_utc, mark_family_revoked, revoked_family_key
from app.runtime import Runtime
from app.security.opaque import MAX_SECRET_CHARS, hash_opaque_secret, new_opaque_secret
from app.security.pii import mask_name
from app.security.principals import HolderPrincipal, Scope
from app.security.tokens import AccessClaims, PrincipalKind
from token_service import IssuedToken

LINK_REQUEST_TTL = 300
REFRESH_PREFIX = "crt_"
CHANNEL_CLAIM = "chn"
LINK_CLAIM = "lnk"
FAMILY_CLAIM = "fam"
MIRROR_TTL = 24 * 3600
_ACTIVE = b"1"
_SUSPENDED = b"0"


def channel_mirror_key(client_id: str) -> str:
    return f"channel:{client_id}"


@dataclass(frozen=True, slots=True)
class ChannelPrincipal:
    """A channel app's own client token."""

    client_id: str
    scopes: frozenset[str]

    @classmethod
    def from_claims(cls, claims: AccessClaims) -> ChannelPrincipal:
        return cls(claims.subject, claims.scopes)


@dataclass(frozen=True, slots=True)
class ChannelHolderPrincipal:
    """A holder's session inside one channel app (subject: the card id, never shown)."""

    card_id: uuid.UUID
    client_id: str
    link_id: uuid.UUID
    family: uuid.UUID
    scopes: frozenset[str]

    @classmethod
    def from_claims(cls, claims: AccessClaims) -> ChannelHolderPrincipal:
        """:raises KeyError, ValueError: claims of another shape."""
        return cls(
            uuid.UUID(claims.subject),
            claims.extra[CHANNEL_CLAIM],
            uuid.UUID(claims.extra[LINK_CLAIM]),
            uuid.UUID(claims.extra[FAMILY_CLAIM]),
            claims.scopes,
        )


async def ensure_channel_session_live(runtime: Runtime, holder: ChannelHolderPrincipal) -> None:
    """Two store reads: the link's family not revoked (unlinked), the channel not suspended.

    :raises ChannelSessionRevoked: (401) :raises ChannelSuspended: (403)
    :raises StoreUnavailable: fails closed (503).
    """
    if await runtime.store.get(revoked_family_key(holder.family)) is not None:
        raise ChannelSessionRevoked("the holder unlinked this channel; link again")
    if await runtime.store.get(channel_mirror_key(holder.client_id)) == _SUSPENDED:
        raise ChannelSuspended("this channel is suspended")


def pairwise_id(runtime: Runtime, channel_pk: uuid.UUID, card_id: uuid.UUID) -> str:
    """The holder's identifier for one channel: stable there, unrelated across channels."""
    digest = hmac.new(
        runtime.pseudonym_key, b"channel|" + channel_pk.bytes + card_id.bytes, hashlib.sha256
    )
    return digest.hexdigest()[:32]


# --- administrators ---------------------------------------------------------------------------


async def register_channel(
    session: AsyncSession, runtime: Runtime, actor: str, *, name: str, channel_type: ChannelType
) -> IssuedClient:
    issued = new_client(ClientKind.channel, name, runtime.secret_hash_key, [Scope.channel.value])
    issued.client.channel_type = channel_type.value
    session.add(issued.client)
    await session.flush()
    await runtime.store.set(channel_mirror_key(issued.client.client_id), _ACTIVE, MIRROR_TTL)
    await record(
        runtime.store,
        "channel.register",
        actor,
        issued.client.client_id,
        {"name": name, "type": channel_type.value},
    )
    return issued


async def list_channels(session: AsyncSession) -> Sequence[ApiClient]:
    statement = (
        select(ApiClient)
        .where(ApiClient.kind == ClientKind.channel.value)
        .order_by(col(ApiClient.created_at), col(ApiClient.client_id))
    )
    return (await session.exec(statement)).all()


async def _channel(session: AsyncSession, client_id: str) -> ApiClient:
    if len(client_id) > 64:
        raise ChannelNotFound(f"no channel {client_id}")
    channel = (
        await session.exec(
            select(ApiClient)
            .where(ApiClient.client_id == client_id)
            .where(ApiClient.kind == ClientKind.channel.value)
        )
    ).first()
    if channel is None:
        raise ChannelNotFound(f"no channel {client_id}")
    return channel


async def set_channel_suspended(
    session: AsyncSession, runtime: Runtime, actor: str, client_id: str, *, suspended: bool
) -> ApiClient:
    """Suspends (or reinstates) a channel: no new client token, and every holder session it
    holds is refused at its next request on every worker (the store mirror).

    :raises ChannelNotFound:
    """
    channel = await _channel(session, client_id)
    channel.status = (ClientStatus.disabled if suspended else ClientStatus.active).value
    channel.disabled_at = datetime.now(UTC) if suspended else None
    session.add(channel)
    await session.flush()
    await runtime.store.set(
        channel_mirror_key(client_id), _SUSPENDED if suspended else _ACTIVE, MIRROR_TTL
    )
    await record(
        runtime.store, "channel.suspend" if suspended else "channel.reinstate", actor, client_id
    )
    return channel


# --- the link flow ----------------------------------------------------------------------------


async def create_link_request(
    session: AsyncSession, channel: ChannelPrincipal
) -> ChannelLinkRequest:
    """:raises ChannelNotFound, ChannelSuspended:"""
    client = await _channel(session, channel.client_id)
    if client.status != ClientStatus.active.value:
        raise ChannelSuspended("this channel is suspended")
    request = ChannelLinkRequest(
        channel_pk=client.id,
        expires_at=datetime.now(UTC) + timedelta(seconds=LINK_REQUEST_TTL),
    )
    session.add(request)
    await session.flush()
    return request


async def _open_request(session: AsyncSession, request_id: uuid.UUID) -> ChannelLinkRequest:
    request = await session.get(ChannelLinkRequest, request_id, with_for_update=True)
    if request is None or as_utc(request.expires_at) <= datetime.now(UTC):
        raise LinkRequestNotFound("no such link request, or it expired")
    return request


@dataclass(frozen=True, slots=True)
class PendingRequest:
    request_id: uuid.UUID
    channel_id: str
    channel_name: str
    channel_type: str | None
    expires_at: datetime


async def show_link_request(session: AsyncSession, request_id: uuid.UUID) -> PendingRequest:
    """What the holder is asked to approve (the channel's name).

    :raises LinkRequestNotFound:
    """
    request = await _open_request(session, request_id)
    client = await session.get(ApiClient, request.channel_pk)
    assert client is not None, "requests reference their channel"
    return PendingRequest(
        request.id, client.client_id, client.name, client.channel_type, request.expires_at
    )


async def approve_link_request(
    runtime: Runtime, holder_principal: HolderPrincipal, request_id: uuid.UUID, pin: str
) -> ChannelLink:
    """The holder approves with the PIN (counted toward the lockout); an earlier link with
    the same channel is replaced (its sessions die).

    :raises LinkRequestNotFound, ChannelSuspended, InvalidCredentials, PinLocked:
    """
    async with runtime.database.session() as session:
        outcome = await _approve(session, runtime, holder_principal, request_id, pin)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def _approve(
    session: AsyncSession,
    runtime: Runtime,
    holder: HolderPrincipal,
    request_id: uuid.UUID,
    pin: str,
) -> ChannelLink | DomainError:
    card, _ = await holder_card_and_device(session, holder)
    request = await _open_request(session, request_id)
    if request.status != RequestStatus.pending.value:
        raise LinkRequestNotFound("this link request was already answered")
    client = await session.get(ApiClient, request.channel_pk)
    assert client is not None, "requests reference their channel"
    if client.status != ClientStatus.active.value:
        raise ChannelSuspended("this channel is suspended")
    refusal = await check_holder_pin(session, runtime, card, pin, "channel_link")
    if refusal is not None:
        return refusal
    for earlier in await _active_links(session, card.id, client.id):
        await _unlink(session, runtime, earlier, client, actor=f"holder:{card.id}", notify=False)
    link = ChannelLink(card_id=card.id, channel_pk=client.id, family_id=uuid.uuid4())
    session.add(link)
    await session.flush()
    request.status = RequestStatus.approved.value
    request.link_id = link.id
    session.add(request)
    await session.flush()
    await record(
        runtime.store,
        "channel.linked",
        f"holder:{card.id}",
        client.client_id,
        {
            "card": str(card.id),
            "link": str(link.id),
            "channel_id": client.client_id,
            "channel_name": client.name,
        },
    )
    return link


async def _active_links(
    session: AsyncSession, card_id: uuid.UUID, channel_pk: uuid.UUID | None = None
) -> Sequence[ChannelLink]:
    statement = (
        select(ChannelLink)
        .where(ChannelLink.card_id == card_id)
        .where(ChannelLink.status == LinkStatus.active.value)
    )
    if channel_pk is not None:
        statement = statement.where(ChannelLink.channel_pk == channel_pk)
    return (await session.exec(statement)).all()


@dataclass(frozen=True, slots=True)
class ChannelSession:
    access_token: str
    expires_in: int
    refresh_token: str
    subject: str
    """The holder's pairwise id for this channel."""


async def redeem_link_request(
    session: AsyncSession, runtime: Runtime, channel: ChannelPrincipal, request_id: uuid.UUID
) -> ChannelSession:
    """Once: the approved request becomes the channel's session for the holder.

    :raises LinkRequestNotFound (another channel's, expired, redeemed),
        LinkRequestNotApproved (409: not yet), ChannelSuspended:
    """
    client = await _channel(session, channel.client_id)
    request = await _open_request(session, request_id)
    if request.channel_pk != client.id or request.status == RequestStatus.redeemed.value:
        raise LinkRequestNotFound("no such link request of this channel")
    if request.status != RequestStatus.approved.value or request.link_id is None:
        raise LinkRequestNotApproved("the holder has not approved this request yet")
    if client.status != ClientStatus.active.value:
        raise ChannelSuspended("this channel is suspended")
    spent = await session.exec(
        update(ChannelLinkRequest)
        .where(
            col(ChannelLinkRequest.id) == request.id,
            col(ChannelLinkRequest.status) == RequestStatus.approved.value,
        )
        .values(status=RequestStatus.redeemed.value)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        raise LinkRequestNotFound("no such link request of this channel")
    link = await session.get(ChannelLink, request.link_id)
    assert link is not None
    if link.status != LinkStatus.active.value:
        raise LinkRequestNotFound("the holder unlinked this channel meanwhile")
    return await _open_session(session, runtime, link, client)


async def _open_session(
    session: AsyncSession, runtime: Runtime, link: ChannelLink, client: ApiClient
) -> ChannelSession:
    settings = runtime.settings
    access = runtime.access_tokens.issue(
        PrincipalKind.channel_holder,
        str(link.card_id),
        [Scope.channel_holder.value],
        settings.access_token_ttl,
        extra={
            CHANNEL_CLAIM: client.client_id,
            LINK_CLAIM: str(link.id),
            FAMILY_CLAIM: str(link.family_id),
        },
    )
    raw = new_opaque_secret(REFRESH_PREFIX)
    session.add(
        ChannelRefreshToken(
            link_id=link.id,
            token_hash=hash_opaque_secret(raw, runtime.secret_hash_key),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl),
        )
    )
    link.last_used_at = datetime.now(UTC)
    session.add(link)
    await session.flush()
    return ChannelSession(
        access.token, settings.access_token_ttl, raw, pairwise_id(runtime, client.id, link.card_id)
    )


async def refresh_channel_session(
    runtime: Runtime, channel: ChannelPrincipal, raw_token: str
) -> ChannelSession:
    """Spends a channel refresh token for the next session; a spent one presented again
    revokes the link's whole family (like the holder's own sessions).

    :raises InvalidChannelRefreshToken: (401)
    """
    async with runtime.database.session() as session:
        outcome = await _refresh(session, runtime, channel, raw_token)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def _refresh(
    session: AsyncSession, runtime: Runtime, channel: ChannelPrincipal, raw_token: str
) -> ChannelSession | DomainError:
    invalid = InvalidChannelRefreshToken("the refresh token is not valid")
    if len(raw_token) > MAX_SECRET_CHARS or not raw_token.startswith(REFRESH_PREFIX):
        return invalid
    token_hash = hash_opaque_secret(raw_token, runtime.secret_hash_key)
    stored = (
        await session.exec(
            select(ChannelRefreshToken).where(ChannelRefreshToken.token_hash == token_hash)
        )
    ).first()
    if stored is None or stored.revoked_at is not None:
        return invalid
    link = await session.get(ChannelLink, stored.link_id)
    client = await _channel(session, channel.client_id)
    if link is None or link.channel_pk != client.id or link.status != LinkStatus.active.value:
        return invalid
    if client.status != ClientStatus.active.value:
        return ChannelSuspended("this channel is suspended")
    now = datetime.now(UTC)
    if as_utc(stored.expires_at) <= now:
        return invalid
    spent = await session.exec(
        update(ChannelRefreshToken)
        .where(
            col(ChannelRefreshToken.id) == stored.id,
            col(ChannelRefreshToken.used_at).is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        await _revoke(session, runtime, link)
        return InvalidChannelRefreshToken(
            "this refresh token was already used; the session is revoked"
        )
    return await _open_session(session, runtime, link, client)


# --- the holder's view ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkedChannel:
    channel_id: str
    name: str
    channel_type: str | None
    linked_at: datetime
    last_used_at: datetime | None


async def holder_channels(session: AsyncSession, holder: HolderPrincipal) -> list[LinkedChannel]:
    card, _ = await holder_card_and_device(session, holder)
    rows = await session.exec(
        select(ChannelLink, ApiClient)
        .join(ApiClient, col(ApiClient.id) == col(ChannelLink.channel_pk))
        .where(ChannelLink.card_id == card.id)
        .where(ChannelLink.status == LinkStatus.active.value)
        .order_by(col(ChannelLink.linked_at).desc())
    )
    return [
        LinkedChannel(
            client.client_id, client.name, client.channel_type, link.linked_at, link.last_used_at
        )
        for link, client in rows.all()
    ]


async def _revoke(session: AsyncSession, runtime: Runtime, link: ChannelLink) -> None:
    await session.exec(
        update(ChannelRefreshToken)
        .where(
            col(ChannelRefreshToken.link_id) == link.id,
            col(ChannelRefreshToken.revoked_at).is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    await mark_family_revoked(runtime, link.family_id)


async def _unlink(
    session: AsyncSession,
    runtime: Runtime,
    link: ChannelLink,
    client: ApiClient,
    *,
    actor: str,
    notify: bool = True,
) -> None:
    link.status = LinkStatus.unlinked.value
    link.unlinked_at = datetime.now(UTC)
    session.add(link)
    await session.flush()
    await _revoke(session, runtime, link)
    await record(
        runtime.store,
        "channel.unlinked" if notify else "channel.relinked",
        actor,
        client.client_id,
        {
            "card": str(link.card_id),
            "link": str(link.id),
            "channel_id": client.client_id,
            "channel_name": client.name,
        },
    )


async def unlink_channel(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal, channel_id: str
) -> None:
    """At once: the channel's refresh tokens are revoked and its access tokens refused on
    every worker (the family's revocation mark in the store).

    :raises ChannelLinkNotFound:
    """
    card, _ = await holder_card_and_device(session, holder)
    try:
        client = await _channel(session, channel_id)
    except ChannelNotFound:
        raise ChannelLinkNotFound("no linked channel with this id") from None
    links = await _active_links(session, card.id, client.id)
    if not links:
        raise ChannelLinkNotFound("no linked channel with this id")
    for link in links:
        await _unlink(session, runtime, link, client, actor=f"holder:{card.id}")


# --- what a channel does for its linked holder ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelView:
    subject: str
    status: CardStatus
    masked_name: str


async def _used(session: AsyncSession, holder: ChannelHolderPrincipal) -> tuple[ChannelLink, Card]:
    link = await session.get(ChannelLink, holder.link_id)
    card = await session.get(Card, holder.card_id)
    if link is None or card is None or link.status != LinkStatus.active.value:
        raise ChannelSessionRevoked("the holder unlinked this channel; link again")
    link.last_used_at = datetime.now(UTC)
    session.add(link)
    await session.flush()
    return link, card


async def channel_view(
    session: AsyncSession, runtime: Runtime, holder: ChannelHolderPrincipal
) -> ChannelView:
    """What the channel shows: the pairwise id, the card status, the masked name."""
    link, card = await _used(session, holder)
    person = await session.get(Person, card.person_id)
    assert person is not None
    return ChannelView(
        pairwise_id(runtime, link.channel_pk, card.id),
        CardStatus(card.status),
        mask_name(runtime.pii.open(NAME_FIELD, person.name_sealed)),
    )


async def channel_qr(
    session: AsyncSession, runtime: Runtime, holder: ChannelHolderPrincipal
) -> IssuedToken:
    """A QR token of the holder's card, shown inside the channel app.

    :raises CardNotActive:
    """
    _, card = await _used(session, holder)
    status = CardStatus(card.status)
    if status is not CardStatus.active:
        raise card_not_active(status)
    settings = runtime.settings
    (index,) = await token_indexes(
        session, card, 1, settings.status_index_pool, settings.status_list_size
    )
    return runtime.token_issuer.issue(bytes.fromhex(card.handle), status_index=index)
