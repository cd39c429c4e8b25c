"""Verifier bundles: what one scanner needs to verify offline, signed by our key ring.

A bundle holds the scanner's scenes, the trusted issuers with their keys, and each issuer's
signed status list. An issuer that announces a status list but whose current list we do not
hold (never uploaded, or expired) is left out of the bundle: offline, its tokens then answer
`issuer_untrusted` instead of passing unchecked, so a card reported lost there never passes.

The entity tag is the bundle's content digest (without its issue time), so a scanner that
asks with `If-None-Match` gets "not modified" until a status list, an issuer or its scenes
change; our own status list is re-signed every `SSC_STATUS_LIST_TTL` seconds, which bounds
how long a scanner can go without a new bundle while online.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from app.runtime import Runtime
from app.security.principals import ScannerPrincipal
from app.trust.issuers import list_issuers, own_issuer, trusted_issuer
from app.trust.status_lists import published_status_list
from token_service import SignedBundle, TrustedIssuer, build_bundle

MEDIA_TYPE = "application/ssc-verifier-bundle+cwt"


async def scanner_bundle(
    runtime: Runtime, scanner: ScannerPrincipal, *, now: float | None = None
) -> SignedBundle:
    """The signed bundle of one scanner, built from current data."""
    moment = time.time() if now is None else now
    settings = runtime.settings
    own = await published_status_list(runtime, settings.issuer, now=moment)
    issuers: list[TrustedIssuer] = [own_issuer(runtime)]
    status_lists = {settings.issuer: own.cwt}
    current = datetime.fromtimestamp(moment, UTC)
    async with runtime.database.session() as session:
        for record in await list_issuers(session):
            if record.status_list_uri is None:
                issuers.append(trusted_issuer(record))
                continue
            signed = record.status_list
            if signed is not None and _current(record.status_list_expires_at, current):
                issuers.append(trusted_issuer(record))
                status_lists[record.code] = signed
    return build_bundle(
        keyring=runtime.keyring,
        client_id=scanner.client_id,
        scenes=scanner.scenes,
        issuers=issuers,
        status_lists=status_lists,
        issued_at=int(moment),
        max_age=settings.bundle_max_age,
    )


def _current(expires_at: datetime | None, now: datetime) -> bool:
    if expires_at is None:
        return False
    if expires_at.tzinfo is None:  # SQLite returns naive datetimes
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at > now
