"""Organisations (venues), their scanner clients, admin clients and the client-credentials grant.

A scanner's liveness is mirrored in the store under `principal_key(client_id)` (b"1" active,
b"0" disabled), which the verify path checks inside its one round trip: disabling a scanner
stops its already-issued access tokens at the next scan. SQL stays the source of truth; a
missing key is refilled from it (`refill_scanner_principal`).

A scanner is mirrored active only while it is active and its organisation's approval is not
withdrawn: withdrawing an organisation rewrites the mirror of every one of its scanners, so
they all stop at their next scan, on every worker (the mirror is in the shared store).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.catalog.scenes import DEFAULT_CATALOG, CatalogSnapshot, UnknownSceneError
from app.clients.errors import (
    InvalidClient,
    InvalidRole,
    InvalidScope,
    OAuthInvalidRequest,
    OrganisationNotFound,
    ScannerNotFound,
    SceneNotOffered,
    UnknownScene,
    UnsupportedGrantType,
    VenueNotFound,
)
from app.clients.models import ApiClient, ClientKind, ClientStatus, Organisation, Venue
from app.security.opaque import hash_opaque_secret, new_opaque_secret, opaque_secret_matches
from app.security.principals import Scope
from app.security.roles import DEFAULT_ROLE, REGION_CLAIM, ROLE_CLAIM, RoleError, checked_role
from app.security.tokens import AccessTokenCodec, PrincipalKind
from app.store import Store

PRINCIPAL_ACTIVE = b"1"
PRINCIPAL_DISABLED = b"0"
PRINCIPAL_TTL = 24 * 3600
"""The mirror expires daily and is refilled from SQL, so it cannot drift from it for long."""

CLIENT_SECRET_PREFIX = "cs_"  # noqa: S105 - the visible prefix of a secret, not a secret
CLIENT_CREDENTIALS = "client_credentials"
_CLIENT_ID_PREFIX = {
    ClientKind.scanner: "scn_",
    ClientKind.admin: "adm_",
    ClientKind.channel: "chn_",
}
_TOKEN_KIND = {
    ClientKind.scanner: PrincipalKind.scanner,
    ClientKind.admin: PrincipalKind.admin,
    ClientKind.channel: PrincipalKind.channel,
}
# Compared against when the client id is unknown, so the answer takes as long as a wrong secret.
_NO_SUCH_CLIENT_HASH = "0" * 64


def principal_key(client_id: str) -> str:
    return f"scanner:{client_id}"


@dataclass(frozen=True, slots=True)
class IssuedClient:
    """A new client and its secret, which exists in clear only in this object."""

    client: ApiClient
    client_secret: str


@dataclass(frozen=True, slots=True)
class ClientCredentialsRequest:
    """An RFC 6749 section 4.4 token request, credentials already taken from Basic or the form."""

    grant_type: str | None
    client_id: str | None
    client_secret: str | None
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in: int
    scopes: tuple[str, ...]


def _scenes(codes: Sequence[str], catalog: CatalogSnapshot, region: str) -> list[str]:
    """The codes in catalog order, each a scene of the province or of the region's city."""
    try:
        return catalog.require_scenes(codes, region)
    except UnknownSceneError as error:
        raise UnknownScene(str(error), scenes=error.codes) from None


def _new_client_id(kind: ClientKind) -> str:
    return _CLIENT_ID_PREFIX[kind] + secrets.token_hex(10)


async def create_organisation(
    session: AsyncSession,
    store: Store,
    actor: str,
    *,
    name: str,
    venue_type: str,
    region_code: str,
    scenes: Sequence[str],
    latitude: float | None = None,
    longitude: float | None = None,
    catalog: CatalogSnapshot = DEFAULT_CATALOG,
) -> Organisation:
    """The venue's location (degrees, WGS 84) lets the misuse watch spot impossible travel.

    :param catalog: the worker's snapshot (`Runtime.catalog`): the scenes must be the
        province's or those of the region's city supplement.
    :raises UnknownScene: when a scene code is not in the catalog.
    """
    organisation = Organisation(
        name=name,
        venue_type=venue_type,
        region_code=region_code,
        scenes=_scenes(scenes, catalog, region_code),
        latitude=latitude,
        longitude=longitude,
    )
    session.add(organisation)
    await session.flush()
    session.add(
        Venue(
            organisation_id=organisation.id,
            name=name,
            region_code=region_code,
            latitude=latitude,
            longitude=longitude,
            is_default=True,
        )
    )
    await session.flush()
    await record(store, "organisation.create", actor, str(organisation.id), {"name": name})
    return organisation


async def list_organisations(session: AsyncSession) -> Sequence[Organisation]:
    statement = select(Organisation).order_by(col(Organisation.created_at), col(Organisation.id))
    return (await session.exec(statement)).all()


async def get_organisation(
    session: AsyncSession, organisation_id: uuid.UUID, *, lock: bool = False
) -> Organisation:
    """:param lock: hold the row until the transaction ends (PostgreSQL), so that writing
        the scanner mirrors of an organisation and withdrawing it happen one after the other
        (a scanner created or enabled during a withdrawal cannot be left mirrored active).
    :raises OrganisationNotFound:
    """
    organisation = await session.get(Organisation, organisation_id, with_for_update=lock or None)
    if organisation is None:
        raise OrganisationNotFound(f"no organisation {organisation_id}")
    return organisation


async def add_venue(
    session: AsyncSession,
    store: Store,
    actor: str,
    organisation_id: uuid.UUID,
    *,
    name: str,
    region_code: str,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Venue:
    """Another venue of an organisation (its location, WGS 84 degrees, for the misuse watch).

    :raises OrganisationNotFound:
    """
    organisation = await get_organisation(session, organisation_id)
    venue = Venue(
        organisation_id=organisation.id,
        name=name,
        region_code=region_code,
        latitude=latitude,
        longitude=longitude,
    )
    session.add(venue)
    await session.flush()
    await record(
        store, "venue.create", actor, str(venue.id), {"org": str(organisation.id), "name": name}
    )
    return venue


async def list_venues(session: AsyncSession, organisation_id: uuid.UUID) -> Sequence[Venue]:
    """The default venue first, then the others in the order they were added.

    :raises OrganisationNotFound:
    """
    await get_organisation(session, organisation_id)
    statement = (
        select(Venue)
        .where(Venue.organisation_id == organisation_id)
        .order_by(col(Venue.is_default).desc(), col(Venue.created_at), col(Venue.id))
    )
    return (await session.exec(statement)).all()


async def _venue(
    session: AsyncSession, organisation: Organisation, venue_id: uuid.UUID | None
) -> Venue:
    """The organisation's venue `venue_id`, or its default venue.

    :raises VenueNotFound: for a venue of another organisation, or none.
    """
    statement = select(Venue).where(Venue.organisation_id == organisation.id)
    if venue_id is None:
        statement = statement.where(col(Venue.is_default).is_(True))
    else:
        statement = statement.where(Venue.id == venue_id)
    venue = (await session.exec(statement)).first()
    if venue is None:
        raise VenueNotFound(f"no venue {venue_id or '(default)'} of organisation {organisation.id}")
    return venue


def _mirror(scanner: ApiClient, organisation: Organisation | None) -> bytes:
    """What the store holds for a scanner: active only if it and its organisation are."""
    active = scanner.status == ClientStatus.active.value and (
        organisation is not None and organisation.withdrawn_at is None
    )
    return PRINCIPAL_ACTIVE if active else PRINCIPAL_DISABLED


async def create_scanner(
    session: AsyncSession,
    store: Store,
    secret_hash_key: bytes,
    actor: str,
    organisation_id: uuid.UUID,
    *,
    name: str,
    scenes: Sequence[str],
    venue_id: uuid.UUID | None = None,
    catalog: CatalogSnapshot = DEFAULT_CATALOG,
) -> IssuedClient:
    """A scanner at one of the organisation's venues (default: its default venue), bound to a
    subset of its scenes; active at once (unless the organisation is withdrawn).

    :raises OrganisationNotFound, VenueNotFound, UnknownScene, SceneNotOffered:
    """
    organisation = await get_organisation(session, organisation_id, lock=True)
    venue = await _venue(session, organisation, venue_id)
    codes = _scenes(scenes, catalog, organisation.region_code)
    not_offered = sorted(set(codes).difference(organisation.scenes))
    if not_offered:
        raise SceneNotOffered(
            f"the organisation does not offer {', '.join(not_offered)}", scenes=not_offered
        )
    issued = new_client(ClientKind.scanner, name, secret_hash_key, [Scope.scanner_verify.value])
    issued.client.organisation_id = organisation.id
    issued.client.venue_id = venue.id
    issued.client.scenes = codes
    session.add(issued.client)
    await session.flush()
    mirror = _mirror(issued.client, organisation)
    await store.set(principal_key(issued.client.client_id), mirror, PRINCIPAL_TTL)
    await record(
        store,
        "scanner.create",
        actor,
        issued.client.client_id,
        {"org": str(organisation.id), "venue": str(venue.id), "scenes": codes},
    )
    return issued


async def create_admin_client(
    session: AsyncSession,
    secret_hash_key: bytes,
    name: str,
    *,
    role: str | None = None,
    region: str | None = None,
) -> IssuedClient:
    """An administrator's client (scope admin) with its role (default provincial_admin) and,
    for a city_admin, its city; only the CLI creates them.

    :raises InvalidRole: an unknown role, a city_admin without a city or another role with one.
    """
    try:
        checked, region = checked_role(role, region)
    except RoleError as error:
        raise InvalidRole(str(error)) from None
    issued = new_client(ClientKind.admin, name, secret_hash_key, [Scope.admin.value])
    issued.client.role = checked.value
    issued.client.region_code = region
    session.add(issued.client)
    await session.flush()
    return issued


def new_client(
    kind: ClientKind, name: str, secret_hash_key: bytes, scopes: list[str]
) -> IssuedClient:
    secret = new_opaque_secret(CLIENT_SECRET_PREFIX)
    client = ApiClient(
        client_id=_new_client_id(kind),
        secret_hash=hash_opaque_secret(secret, secret_hash_key),
        kind=kind.value,
        name=name,
        scopes=scopes,
        status=ClientStatus.active.value,
    )
    return IssuedClient(client, secret)


async def list_scanners(session: AsyncSession, organisation_id: uuid.UUID) -> Sequence[ApiClient]:
    """:raises OrganisationNotFound:"""
    await get_organisation(session, organisation_id)
    statement = (
        select(ApiClient)
        .where(ApiClient.organisation_id == organisation_id)
        .where(ApiClient.kind == ClientKind.scanner.value)
        .order_by(col(ApiClient.created_at), col(ApiClient.client_id))
    )
    return (await session.exec(statement)).all()


async def _scanner(session: AsyncSession, client_id: str) -> ApiClient | None:
    statement = (
        select(ApiClient)
        .where(ApiClient.client_id == client_id)
        .where(ApiClient.kind == ClientKind.scanner.value)
    )
    return (await session.exec(statement)).first()


async def set_scanner_enabled(
    session: AsyncSession, store: Store, actor: str, client_id: str, *, enabled: bool
) -> ApiClient:
    """Disables or re-enables a scanner; its issued tokens follow at their next scan.

    The mirror is written explicitly (never deleted), so a concurrent refill that read the
    old row cannot resurrect a disabled scanner (refills only fill an absent key).

    :raises ScannerNotFound:
    """
    scanner = await _scanner(session, client_id)
    if scanner is None:
        raise ScannerNotFound(f"no scanner {client_id}")
    if enabled:
        scanner.status = ClientStatus.active.value
        scanner.disabled_at = None
    elif scanner.status != ClientStatus.disabled.value:
        scanner.status = ClientStatus.disabled.value
        scanner.disabled_at = datetime.now(UTC)
    session.add(scanner)
    await session.flush()
    organisation = await _organisation_of(session, scanner, lock=True)
    mirror = _mirror(scanner, organisation)
    await store.set(principal_key(client_id), mirror, PRINCIPAL_TTL)
    await record(store, "scanner.enable" if enabled else "scanner.disable", actor, client_id)
    return scanner


async def _organisation_of(
    session: AsyncSession, scanner: ApiClient, *, lock: bool = False
) -> Organisation | None:
    if scanner.organisation_id is None:
        return None
    return await session.get(Organisation, scanner.organisation_id, with_for_update=lock or None)


async def set_organisation_withdrawn(
    session: AsyncSession, store: Store, actor: str, organisation_id: uuid.UUID, *, withdrawn: bool
) -> Organisation:
    """Withdraws (or reinstates) the province's approval of an organisation: every one of its
    scanners stops verifying at its next scan, on every worker, already-issued access tokens
    included, and gets no new token; reinstating restores the scanners that are enabled.

    :raises OrganisationNotFound:
    """
    organisation = await get_organisation(session, organisation_id, lock=True)
    if not withdrawn:
        organisation.withdrawn_at = None
    elif organisation.withdrawn_at is None:
        organisation.withdrawn_at = datetime.now(UTC)
    session.add(organisation)
    await session.flush()
    statement = (
        select(ApiClient)
        .where(ApiClient.organisation_id == organisation.id)
        .where(ApiClient.kind == ClientKind.scanner.value)
    )
    scanners = (await session.exec(statement)).all()
    for scanner in scanners:
        await store.set(
            principal_key(scanner.client_id), _mirror(scanner, organisation), PRINCIPAL_TTL
        )
    await record(
        store,
        "organisation.withdraw" if withdrawn else "organisation.reinstate",
        actor,
        str(organisation.id),
        {"scanners": len(scanners)},
    )
    return organisation


async def refill_scanner_principal(session: AsyncSession, store: Store, client_id: str) -> None:
    """Rebuilds a missing mirror from SQL; an unknown client is mirrored as disabled."""
    scanner = await _scanner(session, client_id)
    mirror = PRINCIPAL_DISABLED
    if scanner is not None:
        mirror = _mirror(scanner, await _organisation_of(session, scanner))
    await store.set_if_absent(principal_key(client_id), mirror, PRINCIPAL_TTL)


async def warm_scanner_principals(session: AsyncSession, store: Store) -> int:
    """Mirrors every active scanner of an approved organisation at start; returns how many
    were written."""
    statement = (
        select(ApiClient.client_id)
        .join(Organisation, col(Organisation.id) == col(ApiClient.organisation_id))
        .where(ApiClient.kind == ClientKind.scanner.value)
        .where(ApiClient.status == ClientStatus.active.value)
        .where(col(Organisation.withdrawn_at).is_(None))
    )
    written = 0
    for client_id in (await session.exec(statement)).all():
        written += await store.set_if_absent(
            principal_key(client_id), PRINCIPAL_ACTIVE, PRINCIPAL_TTL
        )
    return written


async def grant_client_credentials(
    session: AsyncSession,
    codec: AccessTokenCodec,
    secret_hash_key: bytes,
    request: ClientCredentialsRequest,
    *,
    scanner_ttl: int,
    admin_ttl: int,
) -> TokenGrant:
    """RFC 6749 section 4.4: an access token for an authenticated, active client.

    :raises OAuthInvalidRequest, UnsupportedGrantType, InvalidClient, InvalidScope:
    """
    if not request.grant_type:
        raise OAuthInvalidRequest("grant_type is required")
    if request.grant_type != CLIENT_CREDENTIALS:
        raise UnsupportedGrantType("only the client_credentials grant is supported")
    if not request.client_id or request.client_secret is None:
        raise InvalidClient("client authentication is required")
    client = await _authenticated(
        session, secret_hash_key, request.client_id, request.client_secret
    )
    granted = tuple(sorted(client.scopes))
    if request.scope is not None:
        asked = tuple(sorted(set(request.scope.split())))
        if not asked or not set(asked).issubset(granted):
            raise InvalidScope(f"this client may only ask for: {' '.join(granted)}")
        granted = asked
    kind = ClientKind(client.kind)
    extra: dict[str, str] = {}
    ttl = admin_ttl
    if kind is ClientKind.scanner:
        extra = {"org": str(client.organisation_id), "scenes": ",".join(client.scenes)}
        ttl = scanner_ttl
    elif kind is ClientKind.channel:
        ttl = scanner_ttl
    elif kind is ClientKind.admin:
        extra = {ROLE_CLAIM: client.role or DEFAULT_ROLE.value}
        if client.region_code is not None:
            extra[REGION_CLAIM] = client.region_code
    issued = codec.issue(_TOKEN_KIND[kind], client.client_id, granted, ttl, extra)
    return TokenGrant(issued.token, ttl, granted)


async def _authenticated(
    session: AsyncSession, secret_hash_key: bytes, client_id: str, client_secret: str
) -> ApiClient:
    """One error for unknown client, wrong secret and disabled client: nothing to enumerate."""
    client: ApiClient | None = None
    if len(client_id) <= 64:
        statement = select(ApiClient).where(ApiClient.client_id == client_id)
        client = (await session.exec(statement)).first()
    stored = client.secret_hash if client is not None else _NO_SUCH_CLIENT_HASH
    matches = opaque_secret_matches(client_secret, secret_hash_key, stored)
    if (
        client is None
        or not matches
        or client.status != ClientStatus.active.value
        or client.kind not in _TOKEN_KIND
    ):
        raise InvalidClient("client authentication failed")
    if client.kind == ClientKind.scanner.value:
        organisation = await _organisation_of(session, client)
        if organisation is None or organisation.withdrawn_at is not None:
            raise InvalidClient("client authentication failed")
    return client
