"""RFC 8628 device authorization grant: scan-to-login for web sites and kiosks.

The site asks for a device code and shows the verification URI with the user code (as a QR);
the holder's logged-in phone app reads the request (`view`), and approves or denies it with
the PIN (`decide`, the PIN checked at the holder's own gate, as every PIN-confirmed action on
the phone); the site polls the token endpoint, which answers `authorization_pending` until
then, `slow_down` when it polls faster than the interval (the interval grows by 5 s, RFC
8628 3.5), `access_denied` after a denial and `expired_token` after the code's lifetime.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import Card, CardStatus
from app.cards.numbers import normalise_card_number
from app.holders.service import check_holder_pin
from app.oidc import state
from app.oidc.clients import DEVICE_CODE, get_client
from app.oidc.errors import (
    AccessDenied,
    AuthorizationPending,
    DeviceRequestDecided,
    DeviceRequestNotFound,
    ExpiredToken,
    InvalidGrant,
    InvalidScope,
    SlowDown,
    UnauthorizedClient,
)
from app.oidc.models import RelyingParty
from app.oidc.scopes import REQUIRED_SCOPE, parse_scope
from app.oidc.service import TokenSet, ensure_card_active, issue_for_grant, issuer, remember_consent
from app.runtime import Runtime
from app.security.opaque import new_opaque_secret

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
"""RFC 8628 6.1: consonants only (no words), upper case, 20^8 codes."""
DEVICE_CODE_PREFIX = "sdc_"
SLOW_DOWN_STEP = 5
KIOSK_SCENE = "service_hall_login"
"""The catalog scene of a service-hall kiosk that scans the holder's code to sign in."""
KIOSK_SCAN_ACTION = "oidc.kiosk_scan"
PENDING, APPROVED, DENIED = "pending", "approved", "denied"


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


def new_user_code() -> str:
    letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def normalise_user_code(text: str) -> str:
    compact = "".join(ch for ch in text.upper() if ch.isalnum())[:8]
    return f"{compact[:4]}-{compact[4:]}"


def _card_key(card_id: uuid.UUID) -> str:
    return f"oidc:kiosk-requests:{card_id}"


async def start_for_scanned_card(
    session: AsyncSession, runtime: Runtime, client: RelyingParty, scope: str | None, qr: str
) -> DeviceAuthorization:
    """The service-hall kiosk's reverse flow: the kiosk scanned the holder's e-card QR code;
    the request waits for that holder's approval on the phone. The code is spent here (a
    screenshot cannot start a second sign-in).

    :raises InvalidGrant: not a valid e-card code of ours, spent, or not an active card.
    """
    if runtime.catalog.scene(KIOSK_SCENE) is None:
        raise UnauthorizedClient(f"the application catalog has no {KIOSK_SCENE} scene")
    check = runtime.token_verifier.verify(qr[:600])
    if not check.valid or check.card_handle is None or check.cti is None:
        raise InvalidGrant(f"the scanned e-card code is not valid ({check.verdict.value})")
    ttl = max(int((check.expires_at or 0) - state.now()) + 60, 60)
    if not await runtime.store.set_if_absent(f"oidc:kiosk-cti:{check.cti.hex()}", b"1", ttl):
        raise InvalidGrant("this e-card code was already used")
    card = (await session.exec(select(Card).where(Card.handle == check.card_handle.hex()))).first()
    if card is None or card.status != CardStatus.active:
        raise InvalidGrant("the scanned card is not active")
    started = await start(runtime, client, scope, card_id=card.id)
    # The read of the code is in the holder's access log at once (nothing disclosed yet): a
    # kiosk the holder never stood at shows up even if the sign-in is never approved.
    await record(
        runtime.store,
        KIOSK_SCAN_ACTION,
        f"rp:{client.client_id}",
        str(card.id),
        {"client": client.client_id, "name": client.name, "scene": KIOSK_SCENE, "attributes": []},
    )
    return started


async def pending_for_card(
    session: AsyncSession, runtime: Runtime, card_id: uuid.UUID
) -> list[DeviceRequestView]:
    """The kiosk sign-ins waiting for this holder's decision."""
    listed = await state.get(runtime, _card_key(card_id)) or {"codes": []}
    found: list[DeviceRequestView] = []
    for code in listed["codes"]:
        try:
            seen = await view(session, runtime, str(code), card_id=card_id)
        except DeviceRequestNotFound:
            continue
        if seen.pending:
            found.append(seen)
    return found


async def start_for_browser(
    session: AsyncSession, runtime: Runtime, client: RelyingParty, scopes: list[str], number: str
) -> tuple[str, str]:
    """ "Approve on my phone" on the login page: a request in the app of the card named on the
    page, for the authorization request's scopes. Returns the device code the page waits on
    (never given to the client). An unknown card gets a code that never completes, so the
    page does not tell which cards exist. Returns the device code and the user code the page
    shows (the phone shows it too, so the holder can match them).
    """
    compact = normalise_card_number(number)[:32]
    card = (await session.exec(select(Card).where(Card.card_number == compact))).first()
    if card is None or card.status != CardStatus.active:
        return new_opaque_secret(DEVICE_CODE_PREFIX), new_user_code()
    started = await start(runtime, client, " ".join(scopes), card_id=card.id, for_browser=True)
    return started.device_code, started.user_code


@dataclass(frozen=True, slots=True)
class BrowserApproval:
    status: str
    card_id: uuid.UUID | None = None
    scopes: tuple[str, ...] = ()
    auth_time: int = 0


async def browser_approval(runtime: Runtime, device_code: str) -> BrowserApproval:
    """Where the login page's phone approval stands: pending, approved, denied or expired."""
    key = state.secret_key(runtime, "device", device_code)
    stored = await state.get(runtime, key)
    if key is None:
        return BrowserApproval("expired")
    if stored is None:
        return BrowserApproval(PENDING)  # an unknown card's code: it never completes
    if state.now() > int(stored["expires_at"]):
        return BrowserApproval("expired")
    if stored["status"] != APPROVED:
        return BrowserApproval(str(stored["status"]))
    await runtime.store.delete(key)
    return BrowserApproval(
        APPROVED,
        uuid.UUID(stored["card_id"]),
        tuple(stored["granted"]),
        int(stored["auth_time"]),
    )


def _user_key(user_code: str) -> str:
    return f"oidc:user-code:{normalise_user_code(user_code)}"


async def start(
    runtime: Runtime,
    client: RelyingParty,
    scope: str | None,
    *,
    card_id: uuid.UUID | None = None,
    for_browser: bool = False,
) -> DeviceAuthorization:
    """:raises UnauthorizedClient, InvalidScope: the client may not, or asks too much.

    With `card_id` (a kiosk that scanned the holder's e-card code) only that card's holder
    can approve, and the request is listed in that holder's app."""
    if DEVICE_CODE not in client.grant_types and not for_browser:
        raise UnauthorizedClient("this client may not use the device grant")
    scopes = parse_scope(scope)
    if REQUIRED_SCOPE not in scopes:
        raise InvalidScope("the openid scope is required")
    if not set(scopes) <= set(client.scopes):
        raise InvalidScope("a scope is not allowed for this client")
    settings = runtime.settings
    device_code = new_opaque_secret(DEVICE_CODE_PREFIX)
    user_code = new_user_code()
    key = state.secret_key(runtime, "device", device_code)
    assert key is not None
    ttl = settings.oidc_device_code_ttl
    await state.put(
        runtime,
        key,
        {
            "client_id": client.client_id,
            "scopes": scopes,
            "user_code": user_code,
            "status": PENDING,
            "expires_at": state.now() + ttl,
            "interval": settings.oidc_device_interval,
            "last_poll": 0,
            "for_card": None if card_id is None else str(card_id),
            "for_browser": for_browser,
        },
        ttl + 60,
    )
    await runtime.store.set(_user_key(user_code), key.encode(), ttl)
    if card_id is not None:
        listed = await state.get(runtime, _card_key(card_id)) or {"codes": []}
        codes = [*listed["codes"][-9:], user_code]
        await state.put(runtime, _card_key(card_id), {"codes": codes}, ttl)
    uri = f"{issuer(runtime)}/oidc/device"
    return DeviceAuthorization(
        device_code=device_code,
        user_code=user_code,
        verification_uri=uri,
        verification_uri_complete=f"{uri}?user_code={user_code}",
        expires_in=ttl,
        interval=settings.oidc_device_interval,
    )


@dataclass(frozen=True, slots=True)
class DeviceRequestView:
    user_code: str
    client: RelyingParty
    scopes: list[str]
    expires_at: int
    pending: bool = True


async def _by_user_code(
    runtime: Runtime, user_code: str, card_id: uuid.UUID
) -> tuple[str, dict[str, object]]:
    pointer = await runtime.store.get(_user_key(user_code))
    stored = None if pointer is None else await state.get(runtime, pointer.decode())
    if pointer is None or stored is None or int(str(stored["expires_at"])) < state.now():
        raise DeviceRequestNotFound("no pending sign-in with this code (it may have expired)")
    if stored.get("for_card") not in (None, str(card_id)):
        raise DeviceRequestNotFound("no pending sign-in with this code (it may have expired)")
    return pointer.decode(), stored


async def view(
    session: AsyncSession, runtime: Runtime, user_code: str, *, card_id: uuid.UUID
) -> DeviceRequestView:
    """What the holder's phone shows: the app and the claims it asks for (a kiosk's request
    only to the holder whose code it scanned)."""
    _, stored = await _by_user_code(runtime, user_code, card_id)
    client = await get_client(session, str(stored["client_id"]))
    return DeviceRequestView(
        normalise_user_code(user_code),
        client,
        [str(scope) for scope in stored["scopes"]],  # type: ignore[attr-defined]
        int(str(stored["expires_at"])),
        pending=stored["status"] == PENDING,
    )


async def decide(
    session: AsyncSession,
    runtime: Runtime,
    card_id: uuid.UUID,
    user_code: str,
    *,
    pin: str,
    approve: bool,
    scopes: list[str] | None,
) -> list[str]:
    """Approves (with the granted scopes, `openid` always) or denies the request with the PIN.

    :raises DeviceRequestNotFound, DeviceRequestDecided, InvalidCredentials, PinLocked.
    """
    key, stored = await _by_user_code(runtime, user_code, card_id)
    if stored["status"] != PENDING:
        raise DeviceRequestDecided("this sign-in was already decided")
    card = await ensure_card_active(session, card_id)
    refusal = await check_holder_pin(session, runtime, card, pin, "oidc_device")
    if refusal is not None:
        raise refusal  # `settle` commits the failure count before answering
    asked = [str(scope) for scope in stored["scopes"]]  # type: ignore[attr-defined]
    granted = asked if scopes is None else [s for s in asked if s in scopes or s == REQUIRED_SCOPE]
    stored.update(
        status=APPROVED if approve else DENIED,
        card_id=str(card_id),
        granted=granted,
        auth_time=state.now(),
    )
    ttl = int(str(stored["expires_at"])) - state.now() + 60
    await state.put(runtime, key, stored, ttl)
    if approve:
        await remember_consent(session, card_id, str(stored["client_id"]), granted)
    return granted if approve else []


async def poll(
    session: AsyncSession, runtime: Runtime, client: RelyingParty, device_code: str
) -> TokenSet:
    """The token endpoint's answer to a device-code poll (RFC 8628 3.4, 3.5)."""
    if DEVICE_CODE not in client.grant_types:
        raise UnauthorizedClient("this client may not use the device grant")
    key = state.secret_key(runtime, "device", device_code)
    stored = await state.get(runtime, key)
    if key is None or stored is None or stored["client_id"] != client.client_id:
        raise InvalidGrant("the device code is not valid")
    if stored.get("for_browser"):
        raise InvalidGrant("the device code is not valid")  # the login page's, never a client's
    now = state.now()
    if now > int(stored["expires_at"]):
        raise ExpiredToken("the device code has expired; start again")
    if stored["status"] == DENIED:
        await runtime.store.delete(key)
        raise AccessDenied("the holder denied the sign-in")
    if stored["status"] == APPROVED:
        await runtime.store.delete(key)
        return await issue_for_grant(
            session,
            runtime,
            client,
            uuid.UUID(stored["card_id"]),
            list(stored["granted"]),
            auth_time=int(stored["auth_time"]),
        )
    interval = int(stored["interval"])
    too_soon = now - int(stored["last_poll"]) < interval
    stored["last_poll"] = now
    if too_soon:
        stored["interval"] = interval + SLOW_DOWN_STEP
    await state.put(runtime, key, stored, int(stored["expires_at"]) - now + 60)
    if too_soon:
        raise SlowDown(f"poll at most every {stored['interval']} seconds")
    raise AuthorizationPending("the holder has not decided yet")
