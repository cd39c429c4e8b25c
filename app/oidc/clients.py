"""Relying-party registration (by administrators) and client authentication at the token,
revocation, introspection and device endpoints.

Methods (RFC 7591 names): `client_secret_basic`, `client_secret_post` (the secret is stored as
an HMAC and shown once), `private_key_jwt` (RFC 7523 assertion signed with a key of the
client's registered JWKS; `jti` single use) and `none` (public clients: PKCE only).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.oidc.errors import (
    InvalidClient,
    InvalidOAuthRequest,
    InvalidRelyingParty,
    RelyingPartyNotFound,
)
from app.oidc.models import ClientAuthMethod, RelyingParty, SubjectType
from app.oidc.scopes import REQUIRED_SCOPE, SCOPES
from app.runtime import Runtime
from app.security.opaque import (
    hash_opaque_secret,
    new_opaque_secret,
    opaque_secret_matches,
)

CLIENT_ID_PREFIX = "rp_"
CLIENT_SECRET_PREFIX = "rps_"  # noqa: S105 - a label, not a secret
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]
MAX_ASSERTION_CHARS = 8192
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE)


@dataclass(frozen=True, slots=True)
class Registration:
    name: str
    redirect_uris: list[str]
    scopes: list[str]
    auth_method: ClientAuthMethod
    logo_uri: str | None = None
    jwks: dict[str, Any] | None = None
    post_logout_redirect_uris: list[str] | None = None
    sector_identifier: str | None = None
    subject_type: SubjectType = SubjectType.pairwise
    grant_types: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Registered:
    client: RelyingParty
    client_secret: str | None


def _check_redirect(uri: str) -> None:
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise InvalidRelyingParty(f"redirect URI {uri!r} cannot be read") from None
    if any(ch.isspace() or ord(ch) < 0x21 for ch in uri):
        raise InvalidRelyingParty(f"redirect URI {uri!r} holds white space or control characters")
    if parts.scheme not in ("https", "http") or not host or parts.fragment:
        raise InvalidRelyingParty(f"redirect URI {uri!r} must be an absolute http(s) URI")
    if parts.scheme == "http" and host not in ("127.0.0.1", "localhost", "[::1]", "::1"):
        raise InvalidRelyingParty(f"redirect URI {uri!r}: plain http only for loopback")


def _check_jwks(jwks: dict[str, Any] | None) -> None:
    keys = None if jwks is None else jwks.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= 10:
        raise InvalidRelyingParty("private_key_jwt needs the client's JWKS with 1 to 10 keys")
    for key in keys:
        if not isinstance(key, dict):
            raise InvalidRelyingParty("each key of the client's JWKS is a JSON object")
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise InvalidRelyingParty(f"the client's JWKS holds an unusable key: {error}") from None
        if "d" in key or "p" in key:
            raise InvalidRelyingParty("the client's JWKS must hold public keys only")


async def register(
    session: AsyncSession, runtime: Runtime, actor: str, registration: Registration
) -> Registered:
    """Registers a relying party; returns it and, for a secret method, the secret (once).

    :raises InvalidRelyingParty: an unusable redirect URI, scope, method or JWKS (422).
    """
    for uri in [*registration.redirect_uris, *(registration.post_logout_redirect_uris or [])]:
        _check_redirect(uri)
    unknown = sorted(set(registration.scopes) - set(SCOPES))
    if unknown:
        raise InvalidRelyingParty(f"unknown scopes: {', '.join(unknown)}")
    if REQUIRED_SCOPE not in registration.scopes:
        raise InvalidRelyingParty("a relying party must be allowed the openid scope")
    method = registration.auth_method
    if method is ClientAuthMethod.private_key_jwt:
        _check_jwks(registration.jwks)
    elif registration.jwks is not None:
        raise InvalidRelyingParty("a JWKS is registered only with private_key_jwt")
    grant_types = registration.grant_types or [AUTHORIZATION_CODE, REFRESH_TOKEN]
    sector = registration.sector_identifier or urlsplit(registration.redirect_uris[0]).hostname
    secret = None
    if method in (ClientAuthMethod.client_secret_basic, ClientAuthMethod.client_secret_post):
        secret = new_opaque_secret(CLIENT_SECRET_PREFIX)
    client = RelyingParty(
        client_id=CLIENT_ID_PREFIX + uuid.uuid4().hex[:20],
        name=registration.name,
        logo_uri=registration.logo_uri,
        auth_method=method.value,
        secret_hash=None if secret is None else hash_opaque_secret(secret, runtime.secret_hash_key),
        jwks=registration.jwks,
        redirect_uris=list(registration.redirect_uris),
        post_logout_redirect_uris=list(registration.post_logout_redirect_uris or []),
        scopes=[scope for scope in SCOPES if scope in registration.scopes],
        grant_types=[grant for grant in GRANT_TYPES if grant in grant_types],
        sector_identifier=sector or "",
        subject_type=registration.subject_type.value,
        created_by=actor,
    )
    session.add(client)
    await session.flush()
    await record(
        runtime.store,
        "oidc.client_registered",
        actor,
        client.client_id,
        {"name": client.name, "method": client.auth_method, "scopes": client.scopes},
    )
    return Registered(client, secret)


async def find_client(session: AsyncSession, client_id: str) -> RelyingParty | None:
    if not client_id or len(client_id) > 64 or not client_id.isprintable():
        return None  # (PostgreSQL refuses NUL in text: never send one to a query)
    found = (
        await session.exec(select(RelyingParty).where(RelyingParty.client_id == client_id))
    ).first()
    return found if found is not None and found.enabled else None


async def get_client(session: AsyncSession, client_id: str) -> RelyingParty:
    found = await find_client(session, client_id)
    if found is None:
        raise RelyingPartyNotFound(f"no relying party {client_id!r}")
    return found


async def list_clients(session: AsyncSession) -> list[RelyingParty]:
    rows = await session.exec(select(RelyingParty).order_by(col(RelyingParty.created_at)))
    return list(rows.all())


async def disable_client(
    session: AsyncSession, runtime: Runtime, actor: str, client_id: str
) -> None:
    client = await get_client(session, client_id)
    client.enabled = False
    session.add(client)
    await session.flush()
    await record(runtime.store, "oidc.client_disabled", actor, client_id, {})


# --- client authentication ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PresentedClient:
    """What a request says about its client: the id and the credential it carries."""

    client_id: str | None
    method: ClientAuthMethod
    secret: str | None = None
    assertion: str | None = None


def presented_client(form: dict[str, str], authorization: str | None) -> PresentedClient:
    """Reads the client credential of a token-endpoint request (exactly one method).

    :raises InvalidOAuthRequest: two methods at once, or a malformed Basic header.
    """
    methods = []
    basic: tuple[str, str] | None = None
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidClient("the Basic credentials cannot be read") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise InvalidClient("the Basic credentials cannot be read")
        basic = (unquote(user), unquote(password))
        methods.append(ClientAuthMethod.client_secret_basic)
    if "client_secret" in form:
        methods.append(ClientAuthMethod.client_secret_post)
    if "client_assertion" in form:
        methods.append(ClientAuthMethod.private_key_jwt)
    if len(methods) > 1:
        raise InvalidOAuthRequest("use one client authentication method per request")
    if basic is not None:
        if form.get("client_id") not in (None, basic[0]):
            raise InvalidOAuthRequest("client_id differs from the Basic credentials")
        return PresentedClient(basic[0], ClientAuthMethod.client_secret_basic, secret=basic[1])
    if "client_secret" in form:
        return PresentedClient(
            form.get("client_id"), ClientAuthMethod.client_secret_post, secret=form["client_secret"]
        )
    if "client_assertion" in form:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise InvalidOAuthRequest(f"client_assertion_type must be {ASSERTION_TYPE}")
        return PresentedClient(
            form.get("client_id"),
            ClientAuthMethod.private_key_jwt,
            assertion=form["client_assertion"],
        )
    return PresentedClient(form.get("client_id"), ClientAuthMethod.none)


async def authenticate_client(
    session: AsyncSession, runtime: Runtime, presented: PresentedClient, endpoint: str
) -> RelyingParty:
    """The client, authenticated with the method it was registered with.

    :param endpoint: the URL the request was sent to (a `private_key_jwt` assertion's `aud`
        may name it or the issuer).
    :raises InvalidClient: unknown client, another method, or a wrong credential (401).
    """
    client_id = presented.client_id
    if presented.method is ClientAuthMethod.private_key_jwt and presented.assertion:
        client_id = client_id or _unverified_issuer(presented.assertion)
    client = await find_client(session, client_id or "")
    if client is None:
        raise InvalidClient("client authentication failed")
    registered = ClientAuthMethod(client.auth_method)
    if presented.method is not registered:
        raise InvalidClient(f"this client authenticates with {registered.value}")
    if registered in (ClientAuthMethod.client_secret_basic, ClientAuthMethod.client_secret_post):
        secret = presented.secret or ""
        if client.secret_hash is None or not opaque_secret_matches(
            secret, runtime.secret_hash_key, client.secret_hash
        ):
            raise InvalidClient("client authentication failed")
    elif registered is ClientAuthMethod.private_key_jwt:
        await _check_assertion(runtime, client, presented.assertion or "", endpoint)
    return client


def _unverified_issuer(assertion: str) -> str | None:
    try:
        claims = jwt.decode(assertion[:MAX_ASSERTION_CHARS], options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


async def _check_assertion(
    runtime: Runtime, client: RelyingParty, assertion: str, endpoint: str
) -> None:
    if len(assertion) > MAX_ASSERTION_CHARS or len(assertion) < 10:
        raise InvalidClient("the client assertion cannot be read")
    issuer = runtime.settings.public_url.rstrip("/")
    try:
        header = jwt.get_unverified_header(assertion)
        keys = jwt.PyJWKSet.from_dict(client.jwks or {"keys": []}).keys
        kid = header.get("kid")
        candidates = [key for key in keys if kid is None or key.key_id == kid]
        if not candidates:
            raise InvalidClient("no registered key of the client matches the assertion")
        claims = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    assertion,
                    key.key,
                    algorithms=ASSERTION_ALGORITHMS,
                    audience=[endpoint, issuer, f"{issuer}/oidc/token"],
                    issuer=client.client_id,
                    leeway=runtime.settings.clock_skew,
                    options={"require": ["exp", "iss", "sub", "aud", "jti"]},
                )
                break
            except jwt.InvalidSignatureError:
                continue
        if claims is None:
            raise InvalidClient("the client assertion's signature does not verify")
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise InvalidClient(f"the client assertion is not valid: {error}") from None
    if claims.get("sub") != client.client_id:
        raise InvalidClient("the client assertion's sub must be the client id")
    lifetime = max(int(claims["exp"] - time.time()), 1) + 60
    jti = str(claims["jti"])[:200]
    if not await runtime.store.set_if_absent(f"oidc:jti:{client.client_id}:{jti}", b"1", lifetime):
        raise InvalidClient("this client assertion was already used")
