"""Offline verifiers' scan logs: uploaded when they sync, put on the audit stream.

Each valid scan becomes a `verify.offline` audit event whose id is derived from (scanner,
scan id): uploading the same log again appends events with the same ids, which the audit
consumer skips as stored, so the upload is idempotent without a table of its own. The
access-log entry follows from the event (`app.accesslog.recorder`), as for online scans.

A scan reaches the log only if its token is genuine (our signature, our card) and was
within its validity at the reported scan time: a scanner cannot put a made-up read of a
card into a holder's log.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from app.accesslog.recorder import OFFLINE_SCAN_ACTION, VALID_OUTCOME
from app.audit.log import AUDIT_STREAM
from app.runtime import Runtime
from app.security.principals import ScannerPrincipal
from token_service import TokenCheck, Verdict

_GENUINE = frozenset({Verdict.VALID, Verdict.EXPIRED, Verdict.NOT_YET_VALID})


@dataclass(frozen=True, slots=True)
class OfflineScan:
    scan_id: str
    token: str
    scanned_at: datetime
    scene: str | None
    verdict: str


@dataclass(frozen=True, slots=True)
class UploadResult:
    accepted: list[str]
    """Scan ids whose scans reach the access log (also when uploaded before)."""
    ignored: dict[str, str]
    """Scan id -> why it does not (not a valid scan, a token not ours, ...)."""


def offline_event_id(scanner: str, scan_id: str) -> str:
    digest = hashlib.sha256(f"{scanner}\x00{scan_id}".encode()).hexdigest()
    return f"offline:{digest[:48]}"


def _checked(runtime: Runtime, scanner: ScannerPrincipal, scan: OfflineScan) -> TokenCheck | str:
    """The token's check when `scan` reaches the log, otherwise why it does not."""
    if scan.verdict != VALID_OUTCOME:
        return "not a valid scan: nothing was disclosed"
    if scan.scene is not None and scan.scene not in scanner.scenes:
        return "scene not allowed for this scanner"
    check = runtime.token_verifier.verify(scan.token)
    if (
        check.verdict not in _GENUINE
        or check.card_handle is None
        or check.cti is None
        or check.expires_at is None
        or check.not_before is None
    ):
        return "token not genuine or not a card of this issuer"
    at = scan.scanned_at.timestamp()
    skew = runtime.settings.clock_skew
    if at > time.time() + skew or at > check.expires_at + skew or check.not_before - skew > at:
        return "the token was not valid at scanned_at"
    return check


async def upload_scans(
    runtime: Runtime, scanner: ScannerPrincipal, scans: Sequence[OfflineScan]
) -> UploadResult:
    """Appends an audit event per valid scan.

    :raises StoreUnavailable: when the stream cannot be reached (the scanner uploads again).
    """
    accepted: list[str] = []
    ignored: dict[str, str] = {}
    now = f"{time.time():.6f}"
    org = str(scanner.organisation_id)
    for scan in scans:
        check = _checked(runtime, scanner, scan)
        if isinstance(check, str):
            ignored[scan.scan_id] = check
            continue
        assert check.card_handle is not None and check.cti is not None
        data: dict[str, object] = {
            "scan_id": scan.scan_id,
            "scanned_at": scan.scanned_at.astimezone(UTC).isoformat(),
            "scene": scan.scene,
            "verdict": scan.verdict,
            "org": org,
            "handle": check.card_handle.hex(),
            "cti": check.cti.hex(),
            "attributes": [],  # an offline answer is the verdict and the scene, no attribute
        }
        fields = {
            "eid": offline_event_id(scanner.client_id, scan.scan_id),
            "at": now,
            "action": OFFLINE_SCAN_ACTION,
            "actor": scanner.client_id,
            "subject": "",
            "data": orjson.dumps(data).decode(),
        }
        await runtime.store.stream_append(AUDIT_STREAM, fields)
        accepted.append(scan.scan_id)
    return UploadResult(accepted, ignored)
