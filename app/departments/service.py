"""The issuer registry: issuers, their API clients, their signing keys, and the verification
of what they sign.

- An administrator registers an issuer (`create_issuer`) with the document types it may
  issue (`app.departments.types`); this creates its first API client (kind `department`,
  scopes `issue`, `consent` and `issue:<type>` per type) and returns the client secret once.
  The client gets access tokens at `POST /v1/oauth/token` (client credentials) like any other
  client; its tokens carry the issuer id (`ext.issuer`) and are checked against the registry
  on every request (`ensure_issuer_live`), so disabling an issuer stops it at once.
- An administrator registers each of the issuer's public keys (`register_key`, a JWK, ES256
  or EdDSA), rotates them (register the new, then `retire_key` the old: a retired key verifies
  what it signed but signs no new push) and revokes them (`revoke_key`: nothing it signed
  verifies any more).
- `verify_signed` checks a pushed document against the issuer's active keys (ingest);
  `signature_state` computes, now, whether a stored document still verifies (display).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.clients.models import ApiClient, ClientKind, ClientStatus
from app.clients.service import IssuedClient, create_issuer_client
from app.departments.errors import (
    InvalidIssuerKey,
    IssuerExists,
    IssuerKeyExists,
    IssuerKeyNotFound,
    IssuerKeyRevoked,
    IssuerNotFound,
    SignatureRejected,
    TypeNotIssued,
    UnknownDocumentType,
)
from app.departments.models import Issuer, IssuerKey, IssuerKind, KeyStatus
from app.departments.types import DOCUMENT_TYPES, issue_scope
from app.errors import Unauthorized
from app.runtime import Runtime
from app.security.principals import DepartmentPrincipal, Scope
from app.store import Store
from token_service.jws import (
    UNKNOWN_KEY,
    JwsError,
    PublicJwk,
    VerifiedDocument,
    parse_jwk,
    read_kid,
    verify_document,
)


@dataclass(frozen=True, slots=True)
class IssuedIssuer:
    issuer: Issuer
    client: IssuedClient


def _checked_types(codes: Iterable[str]) -> list[str]:
    wanted = sorted(set(codes))
    unknown = [code for code in wanted if code not in DOCUMENT_TYPES]
    if unknown:
        raise UnknownDocumentType(f"unknown document types: {', '.join(unknown)}", types=unknown)
    return wanted


def client_scopes(issued_types: Iterable[str]) -> list[str]:
    """What an issuer's client may ask for: push, consent, and one scope per issued type."""
    return sorted(
        {Scope.issuer_push.value, Scope.issuer_consent.value, *map(issue_scope, issued_types)}
    )


async def create_issuer(
    session: AsyncSession,
    store: Store,
    secret_hash_key: bytes,
    actor: str,
    *,
    code: str,
    name: str,
    kind: IssuerKind,
    issued_types: Sequence[str],
    region_code: str | None = None,
) -> IssuedIssuer:
    """:raises UnknownDocumentType, IssuerExists:"""
    types = _checked_types(issued_types)
    existing = (await session.exec(select(Issuer).where(Issuer.code == code))).first()
    if existing is not None:
        raise IssuerExists(f"issuer {code!r} exists")
    issuer = Issuer(
        code=code, name=name, kind=kind.value, region_code=region_code, issued_types=types
    )
    session.add(issuer)
    await session.flush()
    client = await create_issuer_client(
        session, secret_hash_key, issuer.id, name, client_scopes(types)
    )
    await record(
        store,
        "issuer.create",
        actor,
        str(issuer.id),
        {"code": code, "types": types, "client": client.client.client_id},
    )
    return IssuedIssuer(issuer, client)


async def list_issuers(session: AsyncSession) -> Sequence[Issuer]:
    statement = select(Issuer).order_by(col(Issuer.created_at), col(Issuer.id))
    return (await session.exec(statement)).all()


async def get_issuer(session: AsyncSession, issuer_id: uuid.UUID) -> Issuer:
    """:raises IssuerNotFound:"""
    issuer = await session.get(Issuer, issuer_id)
    if issuer is None:
        raise IssuerNotFound(f"no issuer {issuer_id}")
    return issuer


async def issuer_clients(session: AsyncSession, issuer_id: uuid.UUID) -> Sequence[ApiClient]:
    statement = (
        select(ApiClient)
        .where(ApiClient.issuer_id == issuer_id)
        .where(ApiClient.kind == ClientKind.department.value)
        .order_by(col(ApiClient.created_at))
    )
    return (await session.exec(statement)).all()


async def update_issuer(
    session: AsyncSession,
    store: Store,
    actor: str,
    issuer_id: uuid.UUID,
    *,
    issued_types: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> Issuer:
    """Changes what an issuer may issue (its clients' scopes follow; tokens already issued
    are checked against the registry on every request) or disables / re-enables it (its
    clients with it).

    :raises IssuerNotFound, UnknownDocumentType:
    """
    issuer = await get_issuer(session, issuer_id)
    clients = await issuer_clients(session, issuer.id)
    if issued_types is not None:
        issuer.issued_types = _checked_types(issued_types)
        for client in clients:
            client.scopes = client_scopes(issuer.issued_types)
            session.add(client)
    if enabled is not None:
        issuer.disabled_at = None if enabled else (issuer.disabled_at or datetime.now(UTC))
        status = ClientStatus.active if enabled else ClientStatus.disabled
        for client in clients:
            client.status = status.value
            client.disabled_at = None if enabled else datetime.now(UTC)
            session.add(client)
    session.add(issuer)
    await session.flush()
    await record(
        store,
        "issuer.update",
        actor,
        str(issuer.id),
        {"types": issuer.issued_types, "enabled": issuer.disabled_at is None},
    )
    return issuer


async def ensure_issuer_live(runtime: Runtime, principal: DepartmentPrincipal) -> None:
    """A department token is honoured only while its client is active and its issuer enabled
    (checked in SQL on every request: these routes are not the hot path).

    :raises Unauthorized:
    """
    async with runtime.database.session() as session:
        statement = (
            select(ApiClient.status, Issuer.disabled_at)
            .join(Issuer, col(Issuer.id) == col(ApiClient.issuer_id))
            .where(ApiClient.client_id == principal.client_id)
            .where(ApiClient.issuer_id == principal.issuer_id)
        )
        row = (await session.exec(statement)).first()
    if row is None or row[0] != ClientStatus.active.value or row[1] is not None:
        raise Unauthorized("this issuer client is disabled", reason="revoked")


async def require_issuable(
    session: AsyncSession, principal: DepartmentPrincipal, document_type: str
) -> Issuer:
    """The principal's issuer, if it (and its token) may issue `document_type`.

    :raises UnknownDocumentType, TypeNotIssued, IssuerNotFound:
    """
    if document_type not in DOCUMENT_TYPES:
        raise UnknownDocumentType(f"unknown document type {document_type[:64]!r}")
    issuer = await get_issuer(session, principal.issuer_id)
    if document_type not in issuer.issued_types or not principal.may_issue(document_type):
        raise TypeNotIssued(f"{issuer.code} may not issue {document_type}")
    return issuer


# --- keys ----------------------------------------------------------------------------------


async def register_key(
    session: AsyncSession, store: Store, actor: str, issuer_id: uuid.UUID, jwk: dict[str, Any]
) -> IssuerKey:
    """Registers a public key (active at once).

    :raises IssuerNotFound, InvalidIssuerKey, IssuerKeyExists:
    """
    issuer = await get_issuer(session, issuer_id)
    try:
        parsed = parse_jwk(jwk)
    except JwsError as error:
        raise InvalidIssuerKey(error.detail) from None
    statement = select(IssuerKey).where(
        IssuerKey.issuer_id == issuer.id, IssuerKey.kid == parsed.kid
    )
    if (await session.exec(statement)).first() is not None:
        raise IssuerKeyExists(f"{issuer.code} has a key {parsed.kid!r}")
    key = IssuerKey(issuer_id=issuer.id, kid=parsed.kid, alg=parsed.alg, jwk=dict(parsed.jwk))
    session.add(key)
    await session.flush()
    await record(
        store, "issuer.key.register", actor, str(issuer.id), {"kid": key.kid, "alg": key.alg}
    )
    return key


async def list_keys(session: AsyncSession, issuer_id: uuid.UUID) -> Sequence[IssuerKey]:
    """:raises IssuerNotFound:"""
    await get_issuer(session, issuer_id)
    statement = (
        select(IssuerKey)
        .where(IssuerKey.issuer_id == issuer_id)
        .order_by(col(IssuerKey.created_at), col(IssuerKey.kid))
    )
    return (await session.exec(statement)).all()


async def _key(session: AsyncSession, issuer_id: uuid.UUID, kid: str) -> IssuerKey:
    await get_issuer(session, issuer_id)
    statement = select(IssuerKey).where(IssuerKey.issuer_id == issuer_id, IssuerKey.kid == kid)
    key = (await session.exec(statement)).first()
    if key is None:
        raise IssuerKeyNotFound(f"no key {kid[:128]!r} of issuer {issuer_id}")
    return key


async def retire_key(
    session: AsyncSession, store: Store, actor: str, issuer_id: uuid.UUID, kid: str
) -> IssuerKey:
    """Rotation: the key signs no new push; what it signed still verifies.

    :raises IssuerNotFound, IssuerKeyNotFound, IssuerKeyRevoked:
    """
    key = await _key(session, issuer_id, kid)
    if key.status == KeyStatus.revoked.value:
        raise IssuerKeyRevoked(f"key {kid!r} is revoked")
    if key.status == KeyStatus.active.value:
        key.status, key.retired_at = KeyStatus.retired.value, datetime.now(UTC)
        session.add(key)
        await session.flush()
        await record(store, "issuer.key.retire", actor, str(issuer_id), {"kid": kid})
    return key


async def revoke_key(
    session: AsyncSession,
    store: Store,
    actor: str,
    issuer_id: uuid.UUID,
    kid: str,
    *,
    reason: str,
) -> IssuerKey:
    """Compromise: nothing this key signed verifies any more, from now on.

    :raises IssuerNotFound, IssuerKeyNotFound:
    """
    key = await _key(session, issuer_id, kid)
    if key.status != KeyStatus.revoked.value:
        key.status, key.revoked_at = KeyStatus.revoked.value, datetime.now(UTC)
        key.revocation_reason = reason
        session.add(key)
        await session.flush()
        await record(
            store, "issuer.key.revoke", actor, str(issuer_id), {"kid": kid, "reason": reason}
        )
    return key


# --- signatures ----------------------------------------------------------------------------


def _public(keys: Iterable[IssuerKey], statuses: frozenset[str]) -> dict[str, PublicJwk]:
    return {key.kid: parse_jwk(key.jwk) for key in keys if key.status in statuses}


_SIGNING = frozenset({KeyStatus.active.value})
_VERIFYING = frozenset({KeyStatus.active.value, KeyStatus.retired.value})


async def issuer_keys(session: AsyncSession, issuer_id: uuid.UUID) -> Sequence[IssuerKey]:
    statement = select(IssuerKey).where(IssuerKey.issuer_id == issuer_id)
    return (await session.exec(statement)).all()


async def verify_signed(
    session: AsyncSession, issuer_id: uuid.UUID, compact: str
) -> VerifiedDocument:
    """A pushed document, verified against the issuer's **active** keys.

    :raises SignatureRejected: with `reason`: a `token_service.jws` code, or `key_revoked` /
        `key_retired` when the kid names such a key of the issuer.
    """
    keys = await issuer_keys(session, issuer_id)
    return verify_with(keys, compact, ingest=True)


def verify_with(keys: Sequence[IssuerKey], compact: str, *, ingest: bool) -> VerifiedDocument:
    """`verify_signed` on keys already loaded; `ingest=False` accepts retired keys too (a
    stored document signed before a rotation).

    :raises SignatureRejected:
    """
    try:
        return verify_document(compact, _public(keys, _SIGNING if ingest else _VERIFYING))
    except JwsError as error:
        reason, detail = error.code, error.detail
        if error.code == UNKNOWN_KEY:
            kid = read_kid(compact)
            known = next((key for key in keys if key.kid == kid), None)
            if known is not None and known.status == KeyStatus.revoked.value:
                reason, detail = "key_revoked", f"key {kid!r} of this issuer is revoked"
            elif known is not None:
                reason = "key_retired"
                detail = f"key {kid!r} of this issuer is retired: sign with an active key"
        raise SignatureRejected(detail, reason=reason) from None


@dataclass(frozen=True, slots=True)
class SignatureState:
    """Whether a stored signed document verifies now, and if not, why."""

    valid: bool
    reason: str | None = None
    kid: str | None = None


def signature_state(keys: Sequence[IssuerKey], compact: str) -> SignatureState:
    """Computed now: the signature verifies under a key of the issuer that is not revoked."""
    try:
        verified = verify_with(keys, compact, ingest=False)
    except SignatureRejected as error:
        return SignatureState(False, str(error.extensions.get("reason")))
    return SignatureState(True, None, verified.kid)
