"""The registry of other issuers (provinces, cities) whose tokens we accept.

An administrator registers an issuer with its published keys (JWK set or COSE key set
contents), its status list URL and token lifetime, and may later upload the issuer's latest
signed status list (verified against its keys and URL) for verifier bundles.

Changes run in their own transaction and are announced only after the commit (counter
`trust:version`, channel `trust-changes`), so a worker that reloads on the announcement
never reads the state before the change. This worker's verifier is refreshed at once;
the others within a second through pub/sub, or at their next periodic check.

Online verification of another issuer's token checks signature, time and trust; its card
handle is sealed under that issuer's key, so we cannot look its card up here: the status of
such a card comes from that issuer's status list.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import utcnow
from app.runtime import Runtime
from app.trust.errors import InvalidIssuer, IssuerExists, IssuerNotFound
from app.trust.models import TrustedIssuerRecord
from app.trust.status_lists import status_list_uri
from app.trust.verifier import build_token_verifier
from token_service import (
    KeySetError,
    PublicKeySet,
    StatusListError,
    StatusListToken,
    TrustedIssuer,
    TrustListError,
    verify_status_list_cwt,
)
from token_service.trust_list import check_issuers

TRUST_VERSION = "trust:version"
TRUST_CHANGES = "trust-changes"
OWN_NAME = "This deployment"


@dataclass(frozen=True, slots=True)
class IssuerRegistration:
    """What an administrator supplies; exactly one of `jwks` and `cose_key_set`."""

    code: str
    name: str
    token_lifetime: int
    jwks: dict[str, Any] | None = None
    cose_key_set: bytes | None = None
    status_list_uri: str | None = None


def _key_set(registration: IssuerRegistration) -> PublicKeySet:
    try:
        if registration.jwks is not None:
            keys = PublicKeySet.from_jwks(registration.jwks)
        elif registration.cose_key_set is not None:
            keys = PublicKeySet.from_cose_key_set(registration.cose_key_set)
        else:
            raise InvalidIssuer("give the issuer's keys as jwks or cose_key_set")
    except KeySetError as error:
        raise InvalidIssuer(f"the issuer's keys: {error}") from None
    if len(keys) == 0:
        raise InvalidIssuer("the issuer publishes no key")
    return keys


def trusted_issuer(record: TrustedIssuerRecord) -> TrustedIssuer:
    """The trust entry of a stored issuer (its keys were checked when registered)."""
    return TrustedIssuer(
        code=record.code,
        name=record.name,
        keys=PublicKeySet.from_jwks(record.jwks),
        token_lifetime=record.token_lifetime,
        status_list_uri=record.status_list_uri,
    )


def foreign_status_lists(
    records: Sequence[TrustedIssuerRecord], issuers: Sequence[TrustedIssuer], *, now: float
) -> dict[str, StatusListToken]:
    """The uploaded status lists that still verify against their issuer's keys and URL.

    Expired ones are kept: the verify path refuses them at the moment they expire.
    """
    lists: dict[str, StatusListToken] = {}
    for stored, issuer in zip(records, issuers, strict=True):
        if stored.status_list is None:
            continue
        try:
            lists[stored.code] = verify_status_list_cwt(
                stored.status_list,
                issuer.keys,
                now=now,
                uri=stored.status_list_uri,
                allow_expired=True,
            )
        except StatusListError:
            continue
    return lists


def own_issuer(runtime: Runtime) -> TrustedIssuer:
    """Our own trust entry: our published keys and our status list."""
    settings = runtime.settings
    return TrustedIssuer(
        code=settings.issuer,
        name=OWN_NAME,
        keys=PublicKeySet.from_keyring(runtime.keyring),
        token_lifetime=settings.token_lifetime,
        status_list_uri=status_list_uri(settings),
    )


async def list_issuers(session: AsyncSession) -> Sequence[TrustedIssuerRecord]:
    """The registered issuers (not ourselves), by code."""
    return (
        await session.exec(select(TrustedIssuerRecord).order_by(TrustedIssuerRecord.code))
    ).all()


async def trusted_issuers(session: AsyncSession, runtime: Runtime) -> tuple[TrustedIssuer, ...]:
    """Ourselves first, then every registered issuer."""
    return (own_issuer(runtime), *(trusted_issuer(r) for r in await list_issuers(session)))


async def register_issuer(
    runtime: Runtime, admin_id: str, registration: IssuerRegistration
) -> TrustedIssuerRecord:
    """Registers an issuer; its tokens verify on every worker within about a second.

    :raises InvalidIssuer: on unreadable keys, a kid we or another issuer already use, or our
        own code.
    :raises IssuerExists: when the code is registered already (remove it first).
    """
    if registration.code == runtime.settings.issuer:
        raise InvalidIssuer("this is our own issuer code")
    keys = _key_set(registration)
    entry = TrustedIssuer(
        registration.code,
        registration.name,
        keys,
        registration.token_lifetime,
        registration.status_list_uri,
    )
    async with runtime.database.session() as session:
        if await session.get(TrustedIssuerRecord, registration.code) is not None:
            raise IssuerExists(f"issuer {registration.code} is already registered")
        try:
            check_issuers([*(await trusted_issuers(session, runtime)), entry])
        except TrustListError as error:
            raise InvalidIssuer(str(error)) from None
        issuer = TrustedIssuerRecord(
            code=entry.code,
            name=entry.name,
            jwks=keys.jwks(),
            token_lifetime=entry.token_lifetime,
            status_list_uri=entry.status_list_uri,
            created_by=admin_id,
        )
        session.add(issuer)
        try:
            await session.flush()
        except IntegrityError:  # registered concurrently by another request
            raise IssuerExists(f"issuer {registration.code} is already registered") from None
    await _announce(runtime, "trust.issuer_registered", admin_id, entry.code)
    return issuer


async def remove_issuer(runtime: Runtime, admin_id: str, code: str) -> None:
    """Stops trusting an issuer; its tokens answer `unknown_key` from then on.

    :raises IssuerNotFound: when no such issuer is registered.
    """
    async with runtime.database.session() as session:
        issuer = await session.get(TrustedIssuerRecord, code)
        if issuer is None:
            raise IssuerNotFound(f"issuer {code} is not registered")
        await session.delete(issuer)
    await _announce(runtime, "trust.issuer_removed", admin_id, code)


async def store_status_list(
    runtime: Runtime, admin_id: str, code: str, signed: bytes
) -> TrustedIssuerRecord:
    """Keeps an issuer's latest signed status list (CWT) for the verifier bundles.

    :raises IssuerNotFound: when no such issuer is registered.
    :raises InvalidIssuer: when the list is not signed by the issuer, names another URL,
        has expired, or is older than the one kept.
    """
    async with runtime.database.session() as session:
        issuer = await session.get(TrustedIssuerRecord, code)
        if issuer is None:
            raise IssuerNotFound(f"issuer {code} is not registered")
        entry = trusted_issuer(issuer)
        try:
            verified = verify_status_list_cwt(
                signed,
                entry.keys,
                now=time.time(),
                uri=entry.status_list_uri,
                clock_skew=runtime.settings.clock_skew,
            )
        except StatusListError as error:
            raise InvalidIssuer(f"status list refused ({error.reason}): {error}") from None
        if verified.expires_at is None:
            raise InvalidIssuer("a status list for offline use needs an expiry")
        if issuer.status_list is not None:
            try:
                kept = verify_status_list_cwt(
                    issuer.status_list, entry.keys, now=time.time(), allow_expired=True
                )
            except StatusListError:
                kept = None
            if kept is not None and kept.issued_at > verified.issued_at:
                raise InvalidIssuer("this status list is older than the one kept")
        issuer.status_list = signed
        issuer.status_list_expires_at = datetime.fromtimestamp(verified.expires_at, UTC)
        issuer.updated_at = utcnow()
        session.add(issuer)
        await session.flush()
    await _announce(runtime, "trust.status_list_updated", admin_id, code)
    return issuer


async def _announce(runtime: Runtime, action: str, admin_id: str, code: str) -> None:
    await record(runtime.store, action, admin_id, code)
    await runtime.store.incr(TRUST_VERSION)
    await runtime.store.publish(TRUST_CHANGES, code.encode())
    await refresh_verifier(runtime)


async def refresh_verifier(runtime: Runtime) -> None:
    """Rebuilds this worker's token verifier and the other issuers' status lists from the
    registry (after any trust change)."""
    async with runtime.database.session() as session:
        records = list(await list_issuers(session))
    issuers = [trusted_issuer(record) for record in records]
    runtime.foreign_status_lists = foreign_status_lists(records, issuers, now=time.time())
    settings = runtime.settings
    runtime.token_verifier = build_token_verifier(
        issuer=settings.issuer,
        own_keys=runtime.key_directory,
        card_handle_key=runtime.card_handle_key,
        clock_skew=settings.clock_skew,
        others=issuers,
    )
