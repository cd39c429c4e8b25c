"""The verify hot path (docs/architecture.md): verdicts for scanned QR tokens, without SQL.

Per scan: the token is checked in process (signature, key, issuer, times); a scan that fails
there, or asks for a scene the scanner is not bound to, gets its verdict without consuming
the token. The remaining scans of a request are claimed in ONE store round trip
(`Store.claim_scans`): scanner still enabled, token not seen before (replay key), the card's
snapshot, the audit event. The functions take a list so the batch endpoint reuses them.

SQL is touched only on rare paths: a scanner or card missing from the store (flushed store,
cold memory store), after which the store is refilled.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlmodel import select

from app.audit.log import AUDIT_STREAM, audit_fields
from app.cards.models import Card, CardStatus, Person
from app.cards.service import load_card_snapshot
from app.cards.snapshot import (
    AttributeView,
    CardSnapshot,
    age_band,
    card_key,
    publish_card_snapshot,
)
from app.catalog.scenes import (
    BASE_ATTRIBUTE_NAMES,
    BASE_ATTRIBUTES,
    Attribute,
    Entitlement,
    Scene,
    default_attribute_names,
)
from app.clients.service import PRINCIPAL_ACTIVE, refill_scanner_principal
from app.licences.presentations import verify_presentation
from app.runtime import Runtime
from app.security.errors import PiiError
from app.security.principals import ScannerPrincipal
from app.store import EpochChanged, ScanClaim, ScanClaimResult, StoreUnavailable
from app.store.base import AUDIT_OUTCOME_PRINCIPAL_REJECTED
from app.unique_ids import unique_ids
from app.verification.epoch import MAX_CLAIM_ATTEMPTS
from app.verification.errors import ScannerDisabled
from app.verification.memo import PSEUDONYM_CHARS, ChinaDay, IsoClock, ScannerConstants
from token_service import Status, TokenCheck, Verdict

_CARD_VERDICTS: Mapping[CardStatus, Verdict] = {
    CardStatus.active: Verdict.VALID,
    CardStatus.lost: Verdict.CARD_LOST,
    CardStatus.cancelled: Verdict.CARD_CANCELLED,
    CardStatus.suspended: Verdict.CARD_SUSPENDED,
}
_LISTED_VERDICTS: Mapping[int, Verdict] = {
    Status.VALID: Verdict.VALID,
    Status.LOST: Verdict.CARD_LOST,
    Status.SUSPENDED: Verdict.CARD_SUSPENDED,
    Status.INVALID: Verdict.CARD_CANCELLED,
}
UNKNOWN_CARD_VERDICT = Verdict.CARD_CANCELLED
"""A genuine token whose card no longer exists anywhere: treated as a cancelled card."""


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class Scan:
    """One presentation: the scanned string (or the binary COSE_Sign1 it carries, as gateways
    may forward it), the scene scanned for, the scanner's scan id."""

    token: str | bytes
    scene: str | None = None
    idempotency_key: str | None = None


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class ScanResult:
    verdict: Verdict
    checked_at: str
    kid: str | None
    issuer: str | None
    scene: str | None
    holder: Mapping[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        answer: dict[str, object] = {
            "verdict": self.verdict.value,
            "checked_at": self.checked_at,
            "kid": self.kid,
            "iss": self.issuer,
            "scene": self.scene,
        }
        if self.holder is not None:
            answer["holder"] = self.holder
        return answer


@dataclass(slots=True)
class _Pending:
    """A scan that passed the in-process checks and awaits its claim."""

    index: int
    scan: Scan
    check: TokenCheck
    handle: str
    kid: str
    claim: ScanClaim
    constants: ScannerConstants
    catalogued: Scene | None
    """The scene scanned for, from the catalog (None: no scene, or one no longer catalogued),
    looked up once: its attributes are named in the audit event and disclosed in the answer."""


def pairwise_pseudonym(key: bytes, organisation_id: uuid.UUID, card_id: uuid.UUID) -> str:
    """Stable for one organisation and card; unlinkable across organisations without the key."""
    mac = hmac.new(key, organisation_id.bytes + card_id.bytes, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest())[:PSEUDONYM_CHARS].decode("ascii")


def iso_millis(now: float) -> str:
    """`checked_at` of a verdict: `datetime.isoformat(timespec="milliseconds")` in UTC with `Z`
    (`VerifyMemo.checked_at` writes the same, formatting the date once per second)."""
    return IsoClock()(now)


async def verify_scans(
    runtime: Runtime, scanner: ScannerPrincipal, scans: Sequence[Scan]
) -> list[ScanResult]:
    """A verdict per scan, in order.

    :raises ScannerDisabled: when the scanner was disabled after its token was issued.
    :raises StoreUnavailable: when the store cannot be reached (never a `valid` then).
    """
    now = time.time()
    memo = runtime.verify_memo
    checked_at = memo.checked_at(now)
    store = runtime.store
    constants = memo.scanner(scanner)
    org = constants.org
    verifier = runtime.token_verifier
    epochs = runtime.store_epochs
    if epochs.current is None:
        await epochs.check()
    refuse_before = epochs.refuse_before
    results: list[ScanResult | None] = [None] * len(scans)
    pending: list[_Pending] = []
    presented: list[tuple[int, Scan, TokenCheck, str | None]] = []
    refused: list[Mapping[str, str]] = []
    valid = Verdict.VALID  # a class attribute lookup of an enum costs, five per scan
    for index, scan in enumerate(scans):
        token = scan.token
        check = verifier.verify(token) if isinstance(token, str) else verifier.verify_cose(token)
        kid = None if check.kid is None else memo.kid_text(check.kid)
        verdict = check.verdict
        if verdict is valid and check.card_handle is None:
            verdict = foreign_status_verdict(runtime, check, now)
        if verdict is valid and _valid_from(check) < refuse_before:
            verdict = Verdict.REISSUE_REQUIRED
        if verdict is valid and scan.scene is not None and scan.scene not in scanner.scenes:
            verdict = Verdict.SCENE_NOT_ALLOWED
        if verdict is valid and check.presentation is not None and check.card_handle:
            presented.append((index, scan, check, kid))  # a licence QR: `app.licences`
            continue
        if verdict is not valid:
            results[index] = ScanResult(verdict, checked_at, kid, check.issuer, scan.scene)
            data = {"kid": kid, "scene": scan.scene, "org": org, "verdict": verdict.value}
            if verdict is Verdict.REISSUE_REQUIRED and check.cti is not None:
                data["cti"] = check.cti.hex()
            refused.append(audit_fields("verify", scanner.client_id, "", data))
            continue
        pending.append(
            _pending(runtime, scanner, constants, scan, check, index=index, kid=kid, now=now)
        )
    # Refused scans consume nothing, so their audit entries need no atomicity with the claim:
    # they are sent alongside it, concurrently, rather than one round trip after another.
    appends = [store.stream_append(AUDIT_STREAM, fields) for fields in refused]
    if pending:
        claim = _claim_in_epoch(runtime, scanner, pending, results, checked_at)
        if appends:
            claiming = asyncio.ensure_future(claim)
            await asyncio.gather(claiming, *appends)
            pending, claimed = claiming.result()
        else:
            pending, claimed = await claim
        for item, result in zip(pending, claimed, strict=True):
            results[item.index] = await _decide(runtime, scanner, item, result, checked_at)
    elif appends:
        await asyncio.gather(*appends)
    for index, scan, check, kid in presented:
        answer = await verify_presentation(
            runtime, scanner, check, scan.scene, scan.idempotency_key
        )
        results[index] = ScanResult(
            answer.verdict, checked_at, kid, check.issuer, scan.scene, answer.holder
        )
    return [result for result in results if result is not None]


def foreign_status_verdict(runtime: Runtime, check: TokenCheck, now: float) -> Verdict:
    """Another issuer's genuine token: its card handle is sealed under that issuer's key, so the
    card's status comes from the issuer's status list we hold. Without a current list, or
    without an index in the token, nothing says the card is not lost: refuse as untrusted."""
    listed = runtime.foreign_status_lists.get(check.issuer or "")
    index = check.status_index
    if listed is None or index is None or not 0 <= index < listed.status_list.size:
        return Verdict.ISSUER_UNTRUSTED
    if listed.expires_at is not None and listed.expires_at < now:
        return Verdict.ISSUER_UNTRUSTED
    return _LISTED_VERDICTS.get(listed.status_list.get(index), Verdict.CARD_CANCELLED)


def _pending(
    runtime: Runtime,
    scanner: ScannerPrincipal,
    constants: ScannerConstants,
    scan: Scan,
    check: TokenCheck,
    *,
    index: int,
    kid: str | None,
    now: float,
) -> _Pending:
    assert check.cti is not None and check.expires_at is not None and kid is not None
    cti = check.cti.hex()
    if check.card_handle is None:
        # Another issuer's card: replay keys are scoped by issuer, and no snapshot exists.
        handle = f"{check.issuer}:{check.status_index}"
        replay_key = f"cti:{check.issuer}:{cti}"
    else:
        handle = check.card_handle.hex()
        replay_key = f"cti:{cti}"
    scene = scan.scene
    catalogued = None if scene is None else runtime.catalog.scene(scene)
    # `handle`: the access log's card when the store had no snapshot of it.
    data: dict[str, object] = {
        "kid": kid,
        "cti": cti,
        "scene": scene,
        "org": constants.org,
        "handle": handle,
    }
    if scene is not None:
        # What the answer discloses under the catalog in effect now, for the holder's access
        # log (the consumer cannot tell: the catalog may have changed by the time it reads),
        # when it is not what the consumer takes for a scan that names nothing.
        names = BASE_ATTRIBUTE_NAMES if catalogued is None else catalogued.attribute_names
        if names != default_attribute_names(scene):
            data["attributes"] = names
    scan_id = scan.idempotency_key or "~" + unique_ids.next()
    # The replay key must outlive every moment at which the token could still verify.
    ttl = max(1, math.ceil(check.expires_at + runtime.settings.clock_skew - now) + 1)
    claim = ScanClaim(
        replay_key=replay_key,
        claim=(constants.claim_prefix + scan_id).encode(),
        ttl=ttl,
        status_key=card_key(handle),
        principal_key=constants.principal_key,
        audit_stream=AUDIT_STREAM,
        audit_fields=audit_fields("verify", scanner.client_id, "", data),
    )
    return _Pending(index, scan, check, handle, kid, claim, constants, catalogued)


def _valid_from(check: TokenCheck) -> float:
    """When the token's validity starts: the later of `iat` and `nbf`."""
    issued_at, not_before = check.issued_at, check.not_before
    if issued_at is None:
        return -math.inf if not_before is None else not_before
    return issued_at if not_before is None or not_before < issued_at else not_before


async def _claim_in_epoch(
    runtime: Runtime,
    scanner: ScannerPrincipal,
    pending: list[_Pending],
    results: list[ScanResult | None],
    checked_at: str,
) -> tuple[list[_Pending], list[ScanClaimResult]]:
    """Claims `pending` while the store is in the epoch this worker knows; returns the scans
    claimed and their results.

    When the store's epoch changed (it lost its data: `app.verification.epoch`), nothing was
    claimed; the worker settles the new epoch, answers `reissue_required` (and audits it) for
    the scans whose token is valid from before its line, and claims the rest again.

    :raises StoreUnavailable: when the epoch keeps changing, or the store is unreachable.
    """
    epochs = runtime.store_epochs
    for _ in range(MAX_CLAIM_ATTEMPTS):
        epoch = epochs.current or await epochs.check()
        try:
            claims = [item.claim for item in pending]
            return pending, await _claim(runtime, scanner, claims, epoch.value)
        except EpochChanged as changed:
            await epochs.changed(changed.found)
        line = epochs.refuse_before
        stale = [item for item in pending if _valid_from(item.check) < line]
        pending = [item for item in pending if _valid_from(item.check) >= line]
        reissue = Verdict.REISSUE_REQUIRED
        refused: list[dict[str, str]] = []
        for item in stale:
            issuer, scene = item.check.issuer, item.scan.scene
            results[item.index] = ScanResult(reissue, checked_at, item.kid, issuer, scene)
            fields = item.claim.audit_fields
            data = {**orjson.loads(fields["data"]), "verdict": reissue.value}
            refused.append({**fields, "data": orjson.dumps(data).decode()})
        await asyncio.gather(*(runtime.store.stream_append(AUDIT_STREAM, f) for f in refused))
        if not pending:
            return [], []
    raise StoreUnavailable("the store epoch changed on every attempt")


async def _claim(
    runtime: Runtime, scanner: ScannerPrincipal, claims: list[ScanClaim], epoch: bytes
) -> list[ScanClaimResult]:
    """One round trip; a second one only after refilling a scanner missing from the store.

    A claim that finds the scanner's mirror missing writes nothing, not even its audit entry
    (see `ScanClaim`): the claim after the refill, with the same audit event, is the one
    whose outcome is answered and persisted. Should the mirror be missing even then (the
    store lost it again), the refusal answered is audited here.
    """
    store = runtime.store
    results = await store.claim_scans(claims, epoch=epoch)
    principal = results[0].principal
    if principal is None:
        async with runtime.database.session() as session:
            await refill_scanner_principal(session, store, scanner.client_id)
        results = await store.claim_scans(claims, epoch=epoch)
        principal = results[0].principal
        if principal is None:
            rejected = {"outcome": AUDIT_OUTCOME_PRINCIPAL_REJECTED, "status": ""}
            await asyncio.gather(
                *(
                    store.stream_append(c.audit_stream, {**c.audit_fields, **rejected})
                    for c in claims
                )
            )
    if principal != PRINCIPAL_ACTIVE:
        raise ScannerDisabled("this scanner has been disabled")
    return results


async def _decide(
    runtime: Runtime,
    scanner: ScannerPrincipal,
    item: _Pending,
    result: ScanClaimResult,
    checked_at: str,
) -> ScanResult:
    if item.check.card_handle is None:
        return _foreign_verdict(runtime, scanner, item, result, checked_at)
    if result.first:
        snapshot = _snapshot(result.status)
        if snapshot is None:
            snapshot = await _load_snapshot(runtime, item.handle)
            if snapshot is not None:
                await runtime.store.set(
                    item.claim.replay_key,
                    item.claim.claim + b"|" + snapshot.encode(),
                    item.claim.ttl,
                )
    else:
        if not _is_retry(scanner, item, result):
            return ScanResult(
                Verdict.REPLAYED, checked_at, item.kid, item.check.issuer, item.scan.scene
            )
        # The first verdict again, from the card as it was then, even if it changed since.
        retry_of = f"{scanner.client_id}|{item.scan.idempotency_key}|".encode()
        snapshot = _snapshot((result.existing or b"")[len(retry_of) :]) or _snapshot(result.status)
        if snapshot is None:
            snapshot = await _load_snapshot(runtime, item.handle)
    catalogued = item.catalogued
    view = None
    if (
        catalogued is not None
        and catalogued.opens_view
        and snapshot is not None
        and snapshot.status is CardStatus.active
    ):
        view = _open_view(runtime, snapshot)
        if view is None:
            # A snapshot written before attribute views (or under another data key): the
            # card's current view, from SQL once; the store gets it for the next scans.
            fresh = await _load_snapshot(runtime, item.handle)
            view = None if fresh is None else _open_view(runtime, fresh)
    return _verdict(runtime, item, snapshot, checked_at, catalogued=catalogued, view=view)


def _is_retry(scanner: ScannerPrincipal, item: _Pending, result: ScanClaimResult) -> bool:
    """The same scanner sending the same scan again (its `Idempotency-Key`), not a replay."""
    if item.scan.idempotency_key is None:
        return False
    retry_of = f"{scanner.client_id}|{item.scan.idempotency_key}|".encode()
    return (result.existing or b"").startswith(retry_of)


def _foreign_verdict(
    runtime: Runtime,
    scanner: ScannerPrincipal,
    item: _Pending,
    result: ScanClaimResult,
    checked_at: str,
) -> ScanResult:
    """Another issuer's card, already found valid in its status list: no name is known here,
    only a pairwise pseudonym of (issuer, status index), stable for the card at this venue."""
    scene = item.scan.scene
    if not result.first and not _is_retry(scanner, item, result):
        return ScanResult(Verdict.REPLAYED, checked_at, item.kid, item.check.issuer, scene)
    subject = uuid.uuid5(uuid.NAMESPACE_URL, f"ssc-card:{item.handle}")
    holder = {
        "pseudonym": pairwise_pseudonym(runtime.pseudonym_key, scanner.organisation_id, subject)
    }
    return ScanResult(Verdict.VALID, checked_at, item.kid, item.check.issuer, scene, holder)


def _snapshot(raw: bytes | None) -> CardSnapshot | None:
    if not raw:
        return None
    try:
        return CardSnapshot.decode(raw)
    except ValueError:
        return None


def _verdict(
    runtime: Runtime,
    item: _Pending,
    snapshot: CardSnapshot | None,
    checked_at: str,
    *,
    catalogued: Scene | None,
    view: AttributeView | None,
) -> ScanResult:
    """`catalogued`: the scene scanned for, from the catalog (None: none, or not catalogued)."""
    scene = item.scan.scene
    verdict = UNKNOWN_CARD_VERDICT if snapshot is None else _CARD_VERDICTS[snapshot.status]
    if snapshot is None or verdict is not Verdict.VALID:
        return ScanResult(verdict, checked_at, item.kid, item.check.issuer, scene)
    if catalogued is None:
        allowed, readable = BASE_ATTRIBUTES, _NO_ENTITLEMENTS
    else:
        allowed, readable = catalogued.attributes, catalogued.entitlements
    holder: dict[str, object] = {}
    if _MASKED_NAME in allowed:
        holder["masked_name"] = snapshot.masked_name
    if _PSEUDONYM in allowed:
        holder["pseudonym"] = runtime.verify_memo.pseudonym(
            runtime.pseudonym_key, item.constants.org_bytes, snapshot.card_bytes
        )
    if view is not None:
        _disclose(holder, view, allowed, readable, now=time.time(), today=runtime.verify_memo.today)
    return ScanResult(verdict, checked_at, item.kid, item.check.issuer, scene, holder)


def _iso_seconds(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _open_view(runtime: Runtime, snapshot: CardSnapshot) -> AttributeView | None:
    if not snapshot.view:
        return None
    try:
        return AttributeView.open(runtime.pii, snapshot.card_bytes, snapshot.view)
    except (PiiError, ValueError, TypeError):
        return None


_MASKED_NAME, _PSEUDONYM, _FULL_NAME, _DOCUMENT_TYPE, _DOCUMENT_NUMBER = (
    Attribute.masked_name,
    Attribute.pseudonym,
    Attribute.full_name,
    Attribute.document_type,
    Attribute.document_number,
)
_MASKED_DOCUMENT_NUMBER, _AGE_BAND = Attribute.masked_document_number, Attribute.age_band
"""The attributes as module constants: an enum member is looked up through its class."""
_NO_ENTITLEMENTS = frozenset[Entitlement]()


def _disclose(
    holder: dict[str, object],
    view: AttributeView,
    allowed: frozenset[Attribute],
    readable: frozenset[Entitlement],
    *,
    now: float,
    today: ChinaDay,
) -> None:
    """Adds to `holder` exactly the view's attributes the scene lists, and nothing else."""
    if _FULL_NAME in allowed:
        holder["full_name"] = view.full_name
    if _DOCUMENT_TYPE in allowed:
        holder["document_type"] = view.document_type
    if _DOCUMENT_NUMBER in allowed:
        holder["document_number"] = view.document_number
    if _MASKED_DOCUMENT_NUMBER in allowed:
        holder["masked_document_number"] = view.masked_document_number
    if _AGE_BAND in allowed:
        born = view.born
        holder["age_band"] = None if born is None else age_band(born, today(now))
    if readable and view.entitlements:
        granted = [
            {"kind": entitlement.kind, "expires_at": _iso_seconds(entitlement.expires_at)}
            for entitlement in view.entitlements
            if entitlement.kind in readable and entitlement.expires_at > now
        ]
        if granted:  # absent when none: scenes reading entitlements keep the answer they had
            holder["entitlements"] = granted


async def _load_snapshot(runtime: Runtime, handle: str) -> CardSnapshot | None:
    """Rare path: the card is not in the store. Read it from SQL and publish its snapshot."""
    async with runtime.database.session() as session:
        statement = (
            select(Card, Person).where(Card.handle == handle).where(Card.person_id == Person.id)
        )
        row = (await session.exec(statement)).first()
        if row is None:
            return None
        card, person = row
        snapshot = await load_card_snapshot(session, runtime.pii, card, person)
    await publish_card_snapshot(runtime.store, handle, snapshot)
    return snapshot
