"""The OpenID Connect provider's rules: authorization requests, login sessions, consents,
codes, tokens (ID, access, refresh), userinfo, revocation and introspection.

- Authorization codes live 60 s (`SSC_OIDC_CODE_TTL`) and are single use: the first
  redemption marks the code spent (`SET NX`); a second one revokes every token issued from
  it (its refresh-token family, and the family's access tokens on every worker).
- Refresh tokens rotate; a spent one presented again revokes its family (RFC 6819 5.2.2.3).
- Access tokens are opaque and held in the store for their lifetime, so revocation and
  introspection are exact and immediate.
- Subjects are pairwise per sector identifier (HMAC of sector and card under a key derived
  from the data key), or one public value per card for clients configured `public`.
- Every login (a code or device grant), refresh and userinfo read is an audit event with the
  claims released; the audit consumer turns it into the holder's access-log entry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import Card, CardStatus, HolderEntitlement, Person, utcnow
from app.cards.service import DOCUMENT_NUMBER_FIELD, NAME_FIELD, PHONE_FIELD
from app.errors import DomainError
from app.holders.service import mask_card_number
from app.holders.sessions import as_utc
from app.oidc import state
from app.oidc.clients import AUTHORIZATION_CODE, REFRESH_TOKEN, find_client
from app.oidc.errors import (
    CardNotActive,
    ConsentNotFound,
    InvalidGrant,
    InvalidOAuthRequest,
    InvalidRedirect,
    InvalidScope,
    InvalidToken,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from app.oidc.models import OidcConsent, OidcRefreshToken, RelyingParty, SubjectType
from app.oidc.scopes import REQUIRED_SCOPE, claims_of, ordered, parse_scope
from app.runtime import Runtime, derive_key
from app.security.opaque import (
    form_token,
    form_token_matches,
    hash_opaque_secret,
    new_opaque_secret,
)
from token_service.keys import b64url
from token_service.oidc import at_hash, s256_challenge, sign_id_token

ACR = "urn:ssc:acr:card-pin"
"""Authentication context: the social security card's PIN (one factor: knowledge, with the
card number)."""
AMR = ["pin"]
ACCESS_TOKEN_PREFIX = "sat_"  # noqa: S105 - labels, not secrets
REFRESH_TOKEN_PREFIX = "srt_"  # noqa: S105
CODE_PREFIX = "sac_"
PENDING_TTL = 600
"""Seconds a pending authorization request (login and consent pages) stays usable."""
MAX_STATE = 512
MAX_NONCE = 256
VERIFIER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

T = TypeVar("T")

LOGIN_ACTION = "oidc.login"
REFRESH_ACTION = "oidc.refresh"
USERINFO_ACTION = "oidc.userinfo"


async def settle(runtime: Runtime, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Runs `work` in a transaction that is committed even when it ends in a domain error
    (raised after the commit): a spent code's revoked tokens, a reused refresh token's
    revoked grant and a wrong PIN's count must stay written although the request fails."""
    async with runtime.database.session() as session:
        try:
            outcome: T | DomainError = await work(session)
        except DomainError as error:
            outcome = error
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def issuer(runtime: Runtime) -> str:
    return runtime.settings.public_url.rstrip("/")


# --- authorization requests ------------------------------------------------------------------


UNSUPPORTED_PARAMETERS = {
    "request": "request_not_supported",
    "request_uri": "request_uri_not_supported",
    "registration": "registration_not_supported",
}
PROMPTS = ("none", "login", "consent", "select_account")
"""`select_account` asks for the login page: a browser holds one card's login here, so
choosing an account is logging in with the card to use."""


@dataclass(slots=True)
class AuthorizationRequest:
    """A validated `/authorize` request, kept in the store while the holder logs in and
    consents (`id` is the key, carried by the pages' hidden field)."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: list[str]
    max_age: int | None
    id: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    card_id: str | None = None
    auth_time: int | None = None
    phone_code: str | None = None
    """The device code of an "approve on my phone" login the page waits on."""

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class RedirectError:
    """An error to send back to the client's redirect URI (RFC 6749 4.1.2.1)."""

    redirect_uri: str
    error: str
    description: str
    state: str | None


async def validate_authorization(
    session: AsyncSession, params: dict[str, str]
) -> tuple[RelyingParty, AuthorizationRequest | RedirectError]:
    """Checks an authorization request in the order RFC 6749 4.1.2.1 asks for.

    :raises InvalidRedirect: unknown client or a redirect URI that is not exactly one of its
        registered ones (never redirected).
    """
    client = await find_client(session, params.get("client_id", ""))
    if client is None:
        raise InvalidRedirect("unknown client_id")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:
        raise InvalidRedirect("the redirect_uri is not registered for this client")
    request_state = params.get("state")
    if request_state is not None and len(request_state) > MAX_STATE:
        raise InvalidRedirect("state is too long")

    def refuse(error: type[Exception], description: str) -> RedirectError:
        code = getattr(error, "error", "invalid_request")
        return RedirectError(redirect_uri, code, description, request_state)

    # OIDC Core 3.1.2.6: request objects (by value or by reference) and the `registration`
    # parameter are refused with their own codes, never ignored.
    for parameter, code in UNSUPPORTED_PARAMETERS.items():
        if parameter in params:
            return client, RedirectError(
                redirect_uri, code, f"the {parameter} parameter is not supported", request_state
            )
    response_type = params.get("response_type")
    if not response_type:
        return client, refuse(InvalidOAuthRequest, "response_type is required")
    if response_type != "code":
        return client, refuse(UnsupportedResponseType, "only response_type=code is supported")
    if AUTHORIZATION_CODE not in client.grant_types:
        return client, refuse(UnauthorizedClient, "this client may not use the code flow")
    scopes = parse_scope(params.get("scope"))
    if REQUIRED_SCOPE not in scopes:
        return client, refuse(InvalidScope, "the openid scope is required")
    not_allowed = [scope for scope in scopes if scope not in client.scopes]
    if not_allowed:
        return client, refuse(InvalidScope, f"scopes not allowed: {' '.join(not_allowed)}")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if not challenge:
        return client, refuse(InvalidOAuthRequest, "PKCE is required: code_challenge (S256)")
    if method != "S256":
        return client, refuse(InvalidOAuthRequest, "code_challenge_method must be S256")
    if not (43 <= len(challenge) <= 128) or any(c not in VERIFIER_CHARS for c in challenge):
        return client, refuse(InvalidOAuthRequest, "code_challenge is malformed")
    nonce = params.get("nonce")
    if nonce is not None and len(nonce) > MAX_NONCE:
        return client, refuse(InvalidOAuthRequest, "nonce is too long")
    prompt = (params.get("prompt") or "").split()
    if any(p not in PROMPTS for p in prompt) or ("none" in prompt and len(prompt) > 1):
        return client, refuse(
            InvalidOAuthRequest, "prompt must be none alone, or login, consent, select_account"
        )
    max_age: int | None = None
    if params.get("max_age") is not None:
        text = params["max_age"]
        if not text.isdigit() or len(text) > 9:
            return client, refuse(InvalidOAuthRequest, "max_age must be a number of seconds")
        max_age = int(text)
    return client, AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=request_state,
        nonce=nonce,
        code_challenge=challenge,
        prompt=prompt,
        max_age=max_age,
    )


async def save_pending(runtime: Runtime, request: AuthorizationRequest) -> None:
    await state.put(runtime, f"oidc:pending:{request.id}", request.as_json(), PENDING_TTL)


async def load_pending(runtime: Runtime, request_id: str) -> AuthorizationRequest | None:
    if not request_id or len(request_id) > 64:
        return None
    stored = await state.get(runtime, f"oidc:pending:{request_id}")
    if stored is None:
        return None
    try:
        return AuthorizationRequest(**stored)
    except TypeError:
        return None


async def drop_pending(runtime: Runtime, request_id: str) -> None:
    await runtime.store.delete(f"oidc:pending:{request_id}")


def csrf_token(runtime: Runtime, browser_secret: str, request_id: str) -> str:
    """The CSRF token of a form: bound to the browser's cookie and to the request."""
    return form_token(runtime.secret_hash_key, "oidc-csrf", browser_secret, request_id)


def csrf_ok(runtime: Runtime, browser_secret: str | None, request_id: str, presented: str) -> bool:
    if not browser_secret:
        return False
    return form_token_matches(
        presented, runtime.secret_hash_key, "oidc-csrf", browser_secret, request_id
    )


# --- browser login sessions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginSession:
    card_id: uuid.UUID
    auth_time: int


async def open_login(runtime: Runtime, card_id: uuid.UUID) -> tuple[str, LoginSession]:
    """A login session for the browser (its cookie value, returned raw once)."""
    raw = secrets.token_urlsafe(32)
    login = LoginSession(card_id, state.now())
    key = state.secret_key(runtime, "login", raw)
    assert key is not None
    await state.put(
        runtime,
        key,
        {"card_id": str(card_id), "auth_time": login.auth_time},
        runtime.settings.oidc_login_ttl,
    )
    return raw, login


async def read_login(runtime: Runtime, raw: str | None) -> LoginSession | None:
    stored = await state.get(runtime, state.secret_key(runtime, "login", raw or ""))
    if stored is None:
        return None
    return LoginSession(uuid.UUID(stored["card_id"]), int(stored["auth_time"]))


async def end_login(runtime: Runtime, raw: str | None) -> None:
    key = state.secret_key(runtime, "login", raw or "")
    if key is not None:
        await runtime.store.delete(key)


def login_needed(request: AuthorizationRequest, login: LoginSession | None) -> bool:
    """Whether the holder must (re-)enter the PIN for this request."""
    if login is None or "login" in request.prompt or "select_account" in request.prompt:
        return True
    return request.max_age is not None and state.now() - login.auth_time > request.max_age


async def ensure_card_active(session: AsyncSession, card_id: uuid.UUID) -> Card:
    card = await session.get(Card, card_id)
    if card is None or card.status != CardStatus.active:
        raise CardNotActive("only an active card can be used to log in")
    return card


# --- consents --------------------------------------------------------------------------------


async def remembered_consent(
    session: AsyncSession, card_id: uuid.UUID, client_id: str
) -> OidcConsent | None:
    statement = select(OidcConsent).where(
        OidcConsent.card_id == card_id, OidcConsent.client_id == client_id
    )
    return (await session.exec(statement)).first()


def consent_covers(consent: OidcConsent | None, scopes: list[str]) -> list[str] | None:
    """The scopes to grant without asking (the requested ones the holder already agreed to),
    or None when the holder must be asked (a requested scope was never decided)."""
    if consent is None:
        return None
    decided = set(consent.scopes)
    if not set(scopes) <= decided:
        return None
    return ordered([scope for scope in scopes if scope in decided])


async def remember_consent(
    session: AsyncSession, card_id: uuid.UUID, client_id: str, scopes: list[str]
) -> None:
    consent = await remembered_consent(session, card_id, client_id)
    if consent is None:
        consent = OidcConsent(card_id=card_id, client_id=client_id, scopes=ordered(scopes))
    else:
        consent.scopes = ordered(scopes)
        consent.granted_at = utcnow()
    session.add(consent)
    await session.flush()


async def list_consents(
    session: AsyncSession, card_id: uuid.UUID
) -> list[tuple[OidcConsent, RelyingParty | None]]:
    rows = await session.exec(
        select(OidcConsent)
        .where(OidcConsent.card_id == card_id)
        .order_by(col(OidcConsent.granted_at))
    )
    consents = list(rows.all())
    clients = {
        client.client_id: client
        for client in (
            await session.exec(
                select(RelyingParty).where(
                    col(RelyingParty.client_id).in_([c.client_id for c in consents])
                )
            )
        ).all()
    }
    return [(consent, clients.get(consent.client_id)) for consent in consents]


async def withdraw_consent(
    session: AsyncSession, runtime: Runtime, card_id: uuid.UUID, client_id: str
) -> None:
    """Forgets the consent and revokes every token the client holds for this card.

    :raises ConsentNotFound: no consent to this client (404).
    """
    consent = await remembered_consent(session, card_id, client_id)
    if consent is None:
        raise ConsentNotFound("you have not given this app any consent")
    await session.delete(consent)
    families = (
        await session.exec(
            select(OidcRefreshToken.family_id)
            .where(OidcRefreshToken.card_id == card_id, OidcRefreshToken.client_id == client_id)
            .distinct()
        )
    ).all()
    for family in families:
        await revoke_family(session, runtime, family)
    await session.flush()
    await record(
        runtime.store,
        "oidc.consent_withdrawn",
        f"holder:{card_id}",
        str(card_id),
        {"client": client_id},
    )


# --- codes -----------------------------------------------------------------------------------


async def issue_code(runtime: Runtime, request: AuthorizationRequest, scopes: list[str]) -> str:
    """A single-use authorization code for the request's holder and the granted scopes."""
    assert request.card_id is not None and request.auth_time is not None
    code = new_opaque_secret(CODE_PREFIX)
    key = state.secret_key(runtime, "code", code)
    assert key is not None
    ttl = runtime.settings.oidc_code_ttl
    await state.put(
        runtime,
        key,
        {
            "client_id": request.client_id,
            "redirect_uri": request.redirect_uri,
            "card_id": request.card_id,
            "scopes": scopes,
            "nonce": request.nonce,
            "challenge": request.code_challenge,
            "auth_time": request.auth_time,
            "family": str(uuid.uuid4()),
            "expires_at": state.now() + ttl,
        },
        ttl + 60,
    )
    return code


# --- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    expires_in: int
    refresh_token: str
    id_token: str
    scope: str


def subject(runtime: Runtime, client: RelyingParty, card_id: uuid.UUID) -> str:
    """The holder's `sub` for this client: pairwise per sector identifier, or public."""
    key = derive_key(runtime.pseudonym_key, "ssc/oidc-subject/v1")
    sector = "public" if client.subject_type == SubjectType.public else client.sector_identifier
    digest = hmac.new(key, f"{sector}|{card_id}".encode(), hashlib.sha256).digest()
    return b64url(digest)


async def _issue(
    session: AsyncSession,
    runtime: Runtime,
    client: RelyingParty,
    card_id: uuid.UUID,
    scopes: list[str],
    *,
    auth_time: int,
    family: uuid.UUID,
    nonce: str | None,
) -> TokenSet:
    settings = runtime.settings
    sub = subject(runtime, client, card_id)
    access = new_opaque_secret(ACCESS_TOKEN_PREFIX)
    issued = state.now()
    key = state.secret_key(runtime, "at", access)
    assert key is not None
    await state.put(
        runtime,
        key,
        {
            "client_id": client.client_id,
            "card_id": str(card_id),
            "sub": sub,
            "scopes": scopes,
            "family": str(family),
            "iat": issued,
            "exp": issued + settings.oidc_access_token_ttl,
        },
        settings.oidc_access_token_ttl,
    )
    refresh = new_opaque_secret(REFRESH_TOKEN_PREFIX)
    session.add(
        OidcRefreshToken(
            family_id=family,
            token_hash=hash_opaque_secret(refresh, runtime.secret_hash_key),
            client_id=client.client_id,
            card_id=card_id,
            scopes=scopes,
            auth_time=auth_time,
            expires_at=utcnow() + timedelta(seconds=settings.oidc_refresh_token_ttl),
        )
    )
    await session.flush()
    claims: dict[str, Any] = {
        "iss": issuer(runtime),
        "sub": sub,
        "aud": client.client_id,
        "azp": client.client_id,
        "exp": issued + settings.oidc_id_token_ttl,
        "iat": issued,
        "auth_time": auth_time,
        "acr": ACR,
        "amr": AMR,
        "at_hash": at_hash(access),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return TokenSet(
        access_token=access,
        expires_in=settings.oidc_access_token_ttl,
        refresh_token=refresh,
        id_token=sign_id_token(runtime.oidc_keyring, claims),
        scope=" ".join(scopes),
    )


async def redeem_code(
    session: AsyncSession,
    runtime: Runtime,
    client: RelyingParty,
    code: str,
    *,
    redirect_uri: str | None,
    verifier: str | None,
) -> TokenSet:
    """Exchanges a code (RFC 6749 4.1.3 with RFC 7636 S256).

    :raises InvalidGrant: unknown, expired, spent (its tokens are then revoked), another
        client's code, another redirect URI, or a wrong verifier.
    """
    key = state.secret_key(runtime, "code", code)
    stored = await state.get(runtime, key)
    if key is None or stored is None:
        raise InvalidGrant("the authorization code is not valid")
    if stored["client_id"] != client.client_id:
        raise InvalidGrant("the authorization code was issued to another client")
    spent = await runtime.store.set_if_absent(
        f"{key}:spent", b"1", runtime.settings.oidc_code_ttl + 60
    )
    if not spent:
        family = uuid.UUID(stored["family"])
        await revoke_family(session, runtime, family)
        await record(
            runtime.store,
            "oidc.code_reused",
            f"rp:{client.client_id}",
            stored["card_id"],
            {"client": client.client_id, "family": str(family)},
        )
        raise InvalidGrant("the authorization code was already used; its tokens are revoked")
    if state.now() > int(stored["expires_at"]):
        raise InvalidGrant("the authorization code has expired")
    if redirect_uri != stored["redirect_uri"]:
        raise InvalidGrant("redirect_uri differs from the authorization request's")
    if (
        not verifier
        or not (43 <= len(verifier) <= 128)
        or any(c not in VERIFIER_CHARS for c in verifier)
        or not hmac.compare_digest(s256_challenge(verifier), stored["challenge"])
    ):
        raise InvalidGrant("the PKCE code_verifier does not match the code_challenge")
    card_id = uuid.UUID(stored["card_id"])
    await ensure_card_active(session, card_id)
    tokens = await _issue(
        session,
        runtime,
        client,
        card_id,
        list(stored["scopes"]),
        auth_time=int(stored["auth_time"]),
        family=uuid.UUID(stored["family"]),
        nonce=stored.get("nonce"),
    )
    await audit_disclosure(runtime, LOGIN_ACTION, client, card_id, list(stored["scopes"]))
    return tokens


async def issue_for_grant(
    session: AsyncSession,
    runtime: Runtime,
    client: RelyingParty,
    card_id: uuid.UUID,
    scopes: list[str],
    *,
    auth_time: int,
) -> TokenSet:
    """Tokens of an approved device grant (a login without a code)."""
    await ensure_card_active(session, card_id)
    tokens = await _issue(
        session,
        runtime,
        client,
        card_id,
        scopes,
        auth_time=auth_time,
        family=uuid.uuid4(),
        nonce=None,
    )
    await audit_disclosure(runtime, LOGIN_ACTION, client, card_id, scopes)
    return tokens


async def refresh(
    session: AsyncSession, runtime: Runtime, client: RelyingParty, raw: str, scope: str | None
) -> TokenSet:
    """Rotates a refresh token. Run it under `settle`: a reuse revokes the grant and raises."""
    if REFRESH_TOKEN not in client.grant_types:
        raise UnauthorizedClient("this client may not use refresh tokens")
    if not raw.startswith(REFRESH_TOKEN_PREFIX) or len(raw) > 256:
        raise InvalidGrant("the refresh token is not valid")
    token_hash = hash_opaque_secret(raw, runtime.secret_hash_key)
    stored = (
        await session.exec(
            select(OidcRefreshToken).where(OidcRefreshToken.token_hash == token_hash)
        )
    ).first()
    if stored is None or stored.revoked_at is not None or stored.client_id != client.client_id:
        raise InvalidGrant("the refresh token is not valid")
    if as_utc(stored.expires_at) <= utcnow():
        raise InvalidGrant("the refresh token has expired")
    # Checked before the token is spent: a refused request must leave it usable (spending it
    # would make the client's next, correct refresh look like a reuse and end the grant).
    scopes = list(stored.scopes)
    if scope is not None:
        asked = parse_scope(scope)
        if not set(asked) <= set(scopes):
            raise InvalidScope("a refresh may not widen the granted scopes")
        scopes = ordered(asked)
    spent = await session.exec(
        update(OidcRefreshToken)
        .where(
            col(OidcRefreshToken.id) == stored.id,
            col(OidcRefreshToken.used_at).is_(None),
            col(OidcRefreshToken.revoked_at).is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        await revoke_family(session, runtime, stored.family_id)
        await record(
            runtime.store,
            "oidc.refresh_reused",
            f"rp:{client.client_id}",
            str(stored.card_id),
            {"client": client.client_id, "family": str(stored.family_id)},
        )
        raise InvalidGrant("this refresh token was already used; the grant is revoked")
    await ensure_card_active(session, stored.card_id)
    tokens = await _issue(
        session,
        runtime,
        client,
        stored.card_id,
        scopes,
        auth_time=stored.auth_time,
        family=stored.family_id,
        nonce=None,
    )
    await audit_disclosure(runtime, REFRESH_ACTION, client, stored.card_id, scopes)
    return tokens


async def revoke_family(session: AsyncSession, runtime: Runtime, family: uuid.UUID) -> None:
    await session.exec(
        update(OidcRefreshToken)
        .where(
            col(OidcRefreshToken.family_id) == family, col(OidcRefreshToken.revoked_at).is_(None)
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await state.mark_family_revoked(runtime, family)


# --- access tokens: userinfo, revocation, introspection ---------------------------------------


@dataclass(frozen=True, slots=True)
class AccessGrant:
    key: str
    client_id: str
    card_id: uuid.UUID
    sub: str
    scopes: list[str]
    family: str
    iat: int
    exp: int


async def access_grant(runtime: Runtime, raw: str) -> AccessGrant | None:
    """The grant of a live access token, or None (unknown, expired, revoked)."""
    if not raw.startswith(ACCESS_TOKEN_PREFIX):
        return None
    key = state.secret_key(runtime, "at", raw)
    stored = await state.get(runtime, key)
    if key is None or stored is None or int(stored["exp"]) <= state.now():
        return None
    if await state.family_is_revoked(runtime, stored["family"]):
        return None
    return AccessGrant(
        key,
        stored["client_id"],
        uuid.UUID(stored["card_id"]),
        stored["sub"],
        list(stored["scopes"]),
        stored["family"],
        int(stored["iat"]),
        int(stored["exp"]),
    )


async def userinfo(session: AsyncSession, runtime: Runtime, raw: str) -> dict[str, Any]:
    """The consented claims of the token's holder (OIDC Core 5.3), and an access-log entry.

    :raises InvalidToken: the token is unknown, expired or revoked (401).
    """
    grant = await access_grant(runtime, raw)
    if grant is None or REQUIRED_SCOPE not in grant.scopes:
        raise InvalidToken("the access token is not valid")
    card = await ensure_card_active(session, grant.card_id)
    claims = await holder_claims(session, runtime, card, grant.scopes)
    client = (
        await session.exec(select(RelyingParty).where(RelyingParty.client_id == grant.client_id))
    ).first()
    if client is None or not client.enabled:
        raise InvalidToken("the access token's client is no longer registered")
    await audit_disclosure(runtime, USERINFO_ACTION, client, card.id, grant.scopes)
    return {"sub": grant.sub, **claims}


async def holder_claims(
    session: AsyncSession, runtime: Runtime, card: Card, scopes: list[str]
) -> dict[str, Any]:
    """Exactly the claims of the granted scopes."""
    wanted = set(claims_of(scopes))
    person = await session.get(Person, card.person_id)
    assert person is not None, "cards reference their person"
    claims: dict[str, Any] = {}
    if "name" in wanted:
        claims["name"] = runtime.pii.open(NAME_FIELD, person.name_sealed)
    if "card_status" in wanted:
        claims["card_status"] = str(card.status)
        claims["card_number_masked"] = mask_card_number(card.card_number)
        claims["issuing_region"] = card.region_code
    if "document_type" in wanted:
        claims["document_type"] = person.document_type
        claims["document_number"] = runtime.pii.open(
            DOCUMENT_NUMBER_FIELD, person.document_number_sealed
        )
    if "phone_number" in wanted:
        claims["phone_number"] = runtime.pii.open(PHONE_FIELD, person.phone_sealed)
    if "entitlements" in wanted:
        rows = await session.exec(
            select(HolderEntitlement.kind).where(
                HolderEntitlement.person_id == person.id,
                col(HolderEntitlement.expires_at) > utcnow(),
            )
        )
        claims["entitlements"] = sorted(rows.all())
    return claims


async def audit_disclosure(
    runtime: Runtime, action: str, client: RelyingParty, card_id: uuid.UUID, scopes: list[str]
) -> None:
    """An access-log entry (through the audit stream): which app got which claims."""
    await record(
        runtime.store,
        action,
        f"rp:{client.client_id}",
        str(card_id),
        {
            "client": client.client_id,
            "name": client.name,
            "attributes": ["sub", *claims_of(scopes)],
        },
    )


async def revoke_token(
    session: AsyncSession, runtime: Runtime, client: RelyingParty, token: str
) -> None:
    """RFC 7009: revokes an access or refresh token of this client (and, for a refresh token,
    its whole grant). Unknown tokens and other clients' tokens change nothing."""
    grant = await access_grant(runtime, token)
    if grant is not None:
        if grant.client_id == client.client_id:
            await runtime.store.delete(grant.key)
        return
    if not token.startswith(REFRESH_TOKEN_PREFIX) or len(token) > 256:
        return
    stored = (
        await session.exec(
            select(OidcRefreshToken).where(
                OidcRefreshToken.token_hash == hash_opaque_secret(token, runtime.secret_hash_key)
            )
        )
    ).first()
    if stored is not None and stored.client_id == client.client_id:
        await revoke_family(session, runtime, stored.family_id)


async def introspect(
    session: AsyncSession, runtime: Runtime, client: RelyingParty, token: str
) -> dict[str, Any]:
    """RFC 7662: whether the token is active, and what it grants, for its own client only."""
    grant = await access_grant(runtime, token)
    if grant is not None and grant.client_id == client.client_id:
        return {
            "active": True,
            "scope": " ".join(grant.scopes),
            "client_id": grant.client_id,
            "sub": grant.sub,
            "token_type": "Bearer",
            "exp": grant.exp,
            "iat": grant.iat,
            "iss": issuer(runtime),
            "aud": grant.client_id,
        }
    if token.startswith(REFRESH_TOKEN_PREFIX) and len(token) <= 256:
        stored = (
            await session.exec(
                select(OidcRefreshToken).where(
                    OidcRefreshToken.token_hash
                    == hash_opaque_secret(token, runtime.secret_hash_key)
                )
            )
        ).first()
        if (
            stored is not None
            and stored.client_id == client.client_id
            and stored.used_at is None
            and stored.revoked_at is None
            and as_utc(stored.expires_at) > utcnow()
        ):
            return {
                "active": True,
                "scope": " ".join(stored.scopes),
                "client_id": stored.client_id,
                "sub": subject(runtime, client, stored.card_id),
                "token_type": "refresh_token",
                "exp": int(as_utc(stored.expires_at).timestamp()),
                "iss": issuer(runtime),
            }
    return {"active": False}


def registered_logout_uri(client: RelyingParty, uri: str) -> bool:
    return uri in client.post_logout_redirect_uris


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"
