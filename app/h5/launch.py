"""Channel launch tickets: a channel app opens the pages for a linked holder without a PIN.

The channel's server, holding a linked holder's channel session (`app.channels`), asks for a
ticket; its app opens `/h5/launch?ticket=...` in a web view. The ticket is opaque, short-lived
(`SSC_H5_LAUNCH_TICKET_TTL`) and single-use; only its keyed hash names it in the store. Redeemed,
it binds the web view as a device of the card (the channel link is the holder's consent) and
opens a page session in the link's session family, so unlinking the channel (or suspending
it) ends the page session on every worker at once. No PIN was entered: the card page asks for
it before the first QR of the day (`PageSession.pin_entered_today`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.audit.log import record
from app.cards.models import Card
from app.channels.errors import ChannelSessionRevoked
from app.channels.models import ChannelLink, LinkStatus
from app.channels.service import ChannelHolderPrincipal, ensure_channel_session_live
from app.errors import Unauthorized
from app.h5.sessions import PageSession, device_id_of, open_bound_session
from app.holders.devices import bind_device
from app.runtime import Runtime
from app.security.opaque import hash_opaque_secret, new_opaque_secret

TICKET_PREFIX = "lt_"


class InvalidLaunchTicket(Unauthorized):
    code = "invalid-launch-ticket"
    title = "Invalid or spent launch ticket"


@dataclass(frozen=True, slots=True)
class LaunchTicket:
    ticket: str
    """The raw ticket, handed out once."""
    expires_at: datetime


def _key(ticket_hash: str) -> str:
    return f"h5:ticket:{ticket_hash}"


def _spent_key(ticket_hash: str) -> str:
    return f"h5:ticket-spent:{ticket_hash}"


async def issue_launch_ticket(runtime: Runtime, holder: ChannelHolderPrincipal) -> LaunchTicket:
    """A ticket for the linked holder of a live channel session.

    :raises StoreUnavailable: the ticket cannot be stored (503).
    """
    ttl = runtime.settings.h5_launch_ticket_ttl
    raw = new_opaque_secret(TICKET_PREFIX)
    ticket = {
        "card_id": str(holder.card_id),
        "client_id": holder.client_id,
        "link_id": str(holder.link_id),
        "family": str(holder.family),
    }
    ticket_hash = hash_opaque_secret(raw, runtime.secret_hash_key)
    await runtime.store.set(_key(ticket_hash), json.dumps(ticket).encode(), ttl)
    await record(
        runtime.store,
        "h5.launch_ticket_issued",
        f"channel:{holder.client_id}",
        str(holder.card_id),
        {"link": str(holder.link_id)},
    )
    return LaunchTicket(raw, datetime.now(UTC) + timedelta(seconds=ttl))


async def redeem_launch_ticket(
    runtime: Runtime, raw: str, device_secret: str, *, care: bool
) -> tuple[str, PageSession]:
    """Spends a ticket (once, across workers) and opens the page session of its holder on this
    browser, bound as a device of the card.

    :raises InvalidLaunchTicket: unknown, expired or spent ticket (401).
    :raises ChannelSessionRevoked, ChannelSuspended: the channel was unlinked or suspended.
    """
    if not raw.startswith(TICKET_PREFIX) or len(raw) > 128:
        raise InvalidLaunchTicket("the launch ticket is not valid")
    ticket_hash = hash_opaque_secret(raw, runtime.secret_hash_key)
    stored = await runtime.store.get(_key(ticket_hash))
    ttl = runtime.settings.h5_launch_ticket_ttl
    if stored is None or not await runtime.store.set_if_absent(_spent_key(ticket_hash), b"1", ttl):
        raise InvalidLaunchTicket("the launch ticket is not valid or was used already")
    await runtime.store.delete(_key(ticket_hash))
    data = json.loads(stored)
    holder = ChannelHolderPrincipal(
        card_id=uuid.UUID(data["card_id"]),
        client_id=data["client_id"],
        link_id=uuid.UUID(data["link_id"]),
        family=uuid.UUID(data["family"]),
        scopes=frozenset(),
    )
    await ensure_channel_session_live(runtime, holder)
    async with runtime.database.session() as session:
        link = await session.get(ChannelLink, holder.link_id)
        card = await session.get(Card, holder.card_id)
        if link is None or card is None or link.status != LinkStatus.active.value:
            raise ChannelSessionRevoked("the holder unlinked this channel; link again")
        device = await bind_device(
            session, card.id, device_id_of(runtime, device_secret), public_key=None
        )
        device_pk = device.id
    opened = await open_bound_session(
        runtime,
        card.id,
        device_pk,
        holder.family,
        care=care,
        channel=holder.client_id,
        link=holder.link_id,
    )
    await record(
        runtime.store,
        "h5.launched",
        f"channel:{holder.client_id}",
        str(card.id),
        {"link": str(holder.link_id), "device": str(device_pk)},
    )
    return opened
