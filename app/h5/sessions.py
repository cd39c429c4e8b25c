"""Browser sessions of the mobile pages, kept in the store under a keyed hash of their id.

A browser holds three things in `HttpOnly` cookies (set by `api/h5/`): a device secret (its
binding to the card, the way a phone's `device_id` is; stored as a keyed hash in `devices`),
the session id and the elder-mode choice. The session itself lives in the store: the holder
principal (card, device, session family), the day the PIN was last entered (the QR needs the
PIN once a day) and the channel that launched it. Each request slides its idle time-out
(longer in elder mode), so a page left alone signs out by itself.

A session rides on a holder session family (`app.holders.sessions`): revoking the family
(a reused refresh token, an unbound device, signing out) ends the page session too, because
every request checks the family mark as the API does (`ensure_session_live`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from app.channels.errors import ChannelSessionRevoked, ChannelSuspended
from app.channels.service import ChannelHolderPrincipal, ensure_channel_session_live
from app.china_time import today_in_china
from app.holders.errors import SessionRevoked
from app.holders.sessions import (
    HolderSession,
    ensure_session_live,
    mark_family_revoked,
    revoke_family,
)
from app.runtime import Runtime
from app.security.opaque import (
    MAX_SECRET_CHARS,
    form_token,
    form_token_matches,
    hash_opaque_secret,
    new_opaque_secret,
)
from app.security.principals import HolderPrincipal, Scope
from app.security.tokens import PrincipalKind

SESSION_PREFIX = "hs_"
DEVICE_PREFIX = "hd_"


@dataclass(frozen=True, slots=True)
class PageSession:
    """What a signed-in browser is: the holder principal and the page-only facts."""

    sid_hash: str
    card_id: uuid.UUID
    device_pk: uuid.UUID
    family: uuid.UUID
    pin_day: str | None
    """ISO date (China time) the PIN was last entered in this session; None: never."""
    channel: str | None = None
    """The channel (API client) whose launch ticket opened the session; None: a PIN login."""
    link: uuid.UUID | None = None
    """The channel link of a launched session: its channel's suspension ends the session."""

    @property
    def holder(self) -> HolderPrincipal:
        return HolderPrincipal(
            self.card_id, self.device_pk, frozenset({Scope.holder_card.value}), self.family
        )

    def pin_entered_today(self, now: datetime | None = None) -> bool:
        return self.pin_day == today_in_china(now).isoformat()


def new_device_secret() -> str:
    return new_opaque_secret(DEVICE_PREFIX)


def well_formed(secret: str | None, prefix: str) -> bool:
    return secret is not None and secret.startswith(prefix) and len(secret) <= MAX_SECRET_CHARS


def device_id_of(runtime: Runtime, device_secret: str) -> str:
    """The `devices.device_id` of a browser: a keyed hash of its cookie, so the table holds
    nothing a thief could put back into a cookie."""
    return "h5-" + hash_opaque_secret("h5-device|" + device_secret, runtime.secret_hash_key)[:40]


def csrf_token(runtime: Runtime, device_secret: str, session_id: str | None) -> str:
    """The token every form carries: bound to the browser and to its session, so another
    browser's or another holder's token is refused."""
    return form_token(runtime.secret_hash_key, "h5-csrf", device_secret, session_id or "")


def csrf_matches(
    runtime: Runtime, presented: str | None, device_secret: str, session_id: str | None
) -> bool:
    return form_token_matches(
        presented, runtime.secret_hash_key, "h5-csrf", device_secret, session_id or ""
    )


def _key(sid_hash: str) -> str:
    return f"h5:session:{sid_hash}"


def idle_timeout(runtime: Runtime, *, care: bool) -> int:
    settings = runtime.settings
    return settings.h5_care_idle_timeout if care else settings.h5_idle_timeout


async def open_page_session(
    runtime: Runtime,
    opened: HolderSession,
    *,
    care: bool,
    pin_entered: bool,
) -> tuple[str, PageSession]:
    """Stores a page session for a holder session just opened (login, activation); returns the
    raw session id (for the cookie, once) and the session."""
    claims = runtime.access_tokens.decode(opened.access_token, PrincipalKind.holder)
    holder = HolderPrincipal.from_claims(claims)
    assert holder.family is not None, "new sessions always name their family"
    return await open_bound_session(
        runtime,
        holder.card_id,
        holder.device_pk,
        holder.family,
        care=care,
        pin_entered=pin_entered,
    )


async def open_bound_session(
    runtime: Runtime,
    card_id: uuid.UUID,
    device_pk: uuid.UUID,
    family: uuid.UUID,
    *,
    care: bool,
    pin_entered: bool = False,
    channel: str | None = None,
    link: uuid.UUID | None = None,
) -> tuple[str, PageSession]:
    """A page session of a card on a bound device, in session family `family` (revoking the
    family ends it); the raw session id and the session."""
    raw = new_opaque_secret(SESSION_PREFIX)
    page = PageSession(
        sid_hash=hash_opaque_secret(raw, runtime.secret_hash_key),
        card_id=card_id,
        device_pk=device_pk,
        family=family,
        pin_day=today_in_china().isoformat() if pin_entered else None,
        channel=channel,
        link=link,
    )
    await _save(runtime, page, care=care)
    return raw, page


async def _save(runtime: Runtime, page: PageSession, *, care: bool) -> None:
    data = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in asdict(page).items()}
    await runtime.store.set(
        _key(page.sid_hash), json.dumps(data).encode(), idle_timeout(runtime, care=care)
    )


async def load_page_session(
    runtime: Runtime, session_id: str | None, *, care: bool
) -> PageSession | None:
    """The live session of a cookie, its idle time-out slid forward; None when there is none,
    it timed out, or its holder session family was revoked.

    :raises StoreUnavailable: the store cannot answer (the page fails closed, 503).
    """
    if not well_formed(session_id, SESSION_PREFIX):
        return None
    assert session_id is not None
    sid_hash = hash_opaque_secret(session_id, runtime.secret_hash_key)
    raw = await runtime.store.get(_key(sid_hash))
    if raw is None:
        return None
    data = json.loads(raw)
    page = PageSession(
        sid_hash=sid_hash,
        card_id=uuid.UUID(data["card_id"]),
        device_pk=uuid.UUID(data["device_pk"]),
        family=uuid.UUID(data["family"]),
        pin_day=data.get("pin_day"),
        channel=data.get("channel"),
        link=uuid.UUID(data["link"]) if data.get("link") else None,
    )
    try:
        await ensure_session_live(runtime, page.holder)
        if page.channel is not None and page.link is not None:
            await ensure_channel_session_live(
                runtime,
                ChannelHolderPrincipal(
                    page.card_id, page.channel, page.link, page.family, frozenset()
                ),
            )
    except (SessionRevoked, ChannelSessionRevoked, ChannelSuspended):
        await runtime.store.delete(_key(sid_hash))
        return None
    await _save(runtime, page, care=care)
    return page


async def note_pin_entered(runtime: Runtime, page: PageSession, *, care: bool) -> PageSession:
    entered = replace(page, pin_day=today_in_china().isoformat())
    await _save(runtime, entered, care=care)
    return entered


async def close_page_session(runtime: Runtime, page: PageSession) -> None:
    """Signs out: the page session is gone and its holder session family revoked (its refresh
    token, and any access token of it, stop working at once)."""
    await runtime.store.delete(_key(page.sid_hash))
    async with runtime.database.session() as session:
        await revoke_family(session, page.family)
    await mark_family_revoked(runtime, page.family)
