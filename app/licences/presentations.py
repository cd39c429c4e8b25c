"""Showing an e-licence: a short-lived, single-use presentation QR for one licence.

The QR is an `SSC1` token like the card's, signed by the same keys, with the presentation
claim (`token_service.codec.CLAIM_PRESENTATION` = `PRESENTATION_LICENCE`); its sealed handle
is a random 16-byte presentation id, not the card's handle, so the QR carries no personal
data and two presentations cannot be linked by anyone but us. What the id stands for (the
licence, the card) is in the store under `presentation:<id>`, for the token's lifetime.

At `POST /v1/verify` (`app.verification.service` hands presentation tokens here): the scene
must be one of the scanner's and must list the licence's type (catalog `licences`), else
`scene_not_allowed` (nothing consumed); then the token is claimed once (the card QR's replay
rules: a retry of the same scan with its `Idempotency-Key` gets the first answer again,
anything else `replayed`), the card must be active, and the answer carries the licence's
fields with its verification state computed now. The read is audited (`licence.presented`)
and the audit consumer writes it to the holder's access log.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import Card, CardStatus
from app.cards.snapshot import CardSnapshot, card_key
from app.china_time import today_in_china
from app.holders.errors import card_not_active
from app.holders.service import holder_card_and_device
from app.licences.service import holder_licence
from app.runtime import Runtime
from app.security.principals import HolderPrincipal, ScannerPrincipal
from token_service import TokenCheck, Verdict
from token_service.codec import PRESENTATION_LICENCE

PRESENTED_ACTION = "licence.presented"
CREATED_ACTION = "licence.presentation.create"
LICENCE_ATTRIBUTE_PREFIX = "licence:"
"""Access-log attribute of a licence read: `licence:driving_licence`."""


def presentation_key(presentation_id: str) -> str:
    return f"presentation:{presentation_id}"


@dataclass(frozen=True, slots=True)
class Presentation:
    token: str
    licence_id: uuid.UUID
    expires_at: datetime


async def create_presentation(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal, licence_id: uuid.UUID
) -> Presentation:
    """:raises LicenceNotFound, CardNotActive, DeviceUnbound:"""
    card, _ = await holder_card_and_device(session, holder)
    status = CardStatus(card.status)
    if status is not CardStatus.active:
        raise card_not_active(status)
    view = await holder_licence(session, runtime, card.person_id, licence_id)
    presentation_id = secrets.token_bytes(16)
    lifetime = runtime.settings.presentation_lifetime
    issued = runtime.token_issuer.issue(
        presentation_id, presentation=PRESENTATION_LICENCE, lifetime=lifetime
    )
    ttl = lifetime + math.ceil(runtime.settings.clock_skew) + 5
    value = f"{view.licence.id}|{view.licence.document_type}|{card.handle}|{card.id}"
    await runtime.store.set(presentation_key(presentation_id.hex()), value.encode(), ttl)
    await record(
        runtime.store,
        CREATED_ACTION,
        str(card.id),
        str(view.licence.id),
        {"type": view.licence.document_type, "cti": issued.cti.hex()},
    )
    return Presentation(
        issued.token, view.licence.id, datetime.fromtimestamp(issued.expires_at, UTC)
    )


@dataclass(frozen=True, slots=True)
class PresentationAnswer:
    verdict: Verdict
    holder: dict[str, object] | None = None


async def verify_presentation(
    runtime: Runtime,
    scanner: ScannerPrincipal,
    check: TokenCheck,
    scene: str | None,
    idempotency_key: str | None,
) -> PresentationAnswer:
    """The verdict (and, when valid, the licence) for a presentation token whose signature
    and times already verified."""
    assert check.card_handle is not None and check.cti is not None
    assert check.expires_at is not None
    store = runtime.store
    org = str(scanner.organisation_id)
    raw = await store.get(presentation_key(check.card_handle.hex()))
    if raw is None:
        return await _refused(runtime, scanner, Verdict.REISSUE_REQUIRED, scene, check)
    licence_id, licence_type, handle, card_id = raw.decode().split("|")
    catalogued = None if scene is None else runtime.catalog.scene(scene)
    if (
        scene is None
        or scene not in scanner.scenes
        or catalogued is None
        or licence_type not in catalogued.licences
    ):
        return await _refused(runtime, scanner, Verdict.SCENE_NOT_ALLOWED, scene, check)
    scan_id = idempotency_key or "~" + secrets.token_hex(8)
    claim = f"{scanner.client_id}|{scan_id}".encode()
    ttl = max(1, math.ceil(check.expires_at + runtime.settings.clock_skew - time.time()) + 1)
    replay_key = f"cti:{check.cti.hex()}"
    first = await store.set_if_absent(replay_key, claim, ttl)
    if not first:
        existing = await store.get(replay_key)
        if idempotency_key is None or existing != claim:
            return await _refused(runtime, scanner, Verdict.REPLAYED, scene, check)
    snapshot_raw = await store.get(card_key(handle))
    snapshot = None if snapshot_raw is None else CardSnapshot.decode(snapshot_raw)
    if snapshot is None or snapshot.status is not CardStatus.active:
        verdict = Verdict.CARD_CANCELLED if snapshot is None else _card_verdict(snapshot.status)
        return await _refused(runtime, scanner, verdict, scene, check)
    async with runtime.database.session() as session:
        card = await session.get(Card, uuid.UUID(card_id))
        if card is None:
            return await _refused(runtime, scanner, Verdict.CARD_CANCELLED, scene, check)
        view = await holder_licence(session, runtime, card.person_id, uuid.UUID(licence_id))
    payload, verification = view.payload, view.verification
    licence: dict[str, object] = {
        "type": view.licence.document_type,
        "issuer": f"{view.issuer.code} {view.issuer.name}",
        "number": payload.number,
        "holder_name": payload.holder.name,
        "category": payload.category,
        "valid_from": payload.valid_from.isoformat(),
        "valid_until": None if payload.valid_until is None else payload.valid_until.isoformat(),
        "status": verification.status,
        "verified": verification.verified,
        "reason": verification.reason,
    }
    holder: dict[str, object] = {"masked_name": snapshot.masked_name, "licence": licence}
    if first:
        await record(
            store,
            PRESENTED_ACTION,
            scanner.client_id,
            card_id,
            {
                "org": org,
                "scene": scene,
                "licence": licence_id,
                "attributes": [LICENCE_ATTRIBUTE_PREFIX + licence_type, "masked_name"],
                "cti": check.cti.hex(),
                "verified": verification.verified,
                "on": today_in_china().isoformat(),
            },
        )
    return PresentationAnswer(Verdict.VALID, holder)


def _card_verdict(status: CardStatus) -> Verdict:
    return {
        CardStatus.lost: Verdict.CARD_LOST,
        CardStatus.suspended: Verdict.CARD_SUSPENDED,
    }.get(status, Verdict.CARD_CANCELLED)


async def _refused(
    runtime: Runtime,
    scanner: ScannerPrincipal,
    verdict: Verdict,
    scene: str | None,
    check: TokenCheck,
) -> PresentationAnswer:
    await record(
        runtime.store,
        "verify",
        scanner.client_id,
        "",
        {
            "scene": scene,
            "org": str(scanner.organisation_id),
            "verdict": verdict.value,
            "presentation": True,
        },
    )
    return PresentationAnswer(verdict)
