"""The holder's access log (who read my card), and offline scanners' scan-log uploads."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.auth import CurrentHolder, CurrentScanner
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.access_log import (
    AccessLogEntryOut,
    AccessLogPageOut,
    OfflineScanUpload,
    OfflineScanUploadResult,
)
from api.schemas.common import Rfc3339DateTime
from app.accesslog import offline
from app.accesslog.models import AccessLogEntry, AccessSource
from app.accesslog.service import MAX_PAGE, AccessLogFilter, holder_access_log
from app.media_types import media_type_of
from app.verification.scanners import ensure_scanner_enabled

router = APIRouter(tags=["access log"], route_class=StrictJsonRoute)

CSV = "text/csv"
NO_STORE = {"Cache-Control": "no-store"}
CSV_COLUMNS = (
    "occurred_at",
    "source",
    "organisation",
    "venue",
    "region_code",
    "scene",
    "attributes",
    "outcome",
    "id",
)
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}


def _entry_out(entry: AccessLogEntry) -> AccessLogEntryOut:
    return AccessLogEntryOut(
        id=entry.event_id,
        occurred_at=entry.occurred_at,
        source=AccessSource(entry.source),
        organisation_id=entry.organisation_id,
        organisation=entry.organisation,
        venue=entry.venue,
        region_code=entry.region_code,
        scene=entry.scene,
        attributes=list(entry.attributes),
        outcome=entry.outcome,
        party=entry.party,
    )


def _wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any(media_type_of(part) == CSV for part in accept.split(","))


def _cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: one starting like a formula is prefixed with
    an apostrophe (organisation and venue names are not the holder's to choose)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(entries: list[AccessLogEntryOut]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow(
            [
                entry.occurred_at.isoformat(),
                entry.source.value,
                _cell(entry.organisation),
                _cell(entry.venue),
                entry.region_code,
                entry.scene or "",
                " ".join(entry.attributes),
                entry.outcome,
                entry.id,
            ]
        )
    return out.getvalue()


@router.get(
    "/v1/me/access-log",
    summary="Who read your card: every scan and operator read, newest first",
    response_model=AccessLogPageOut,
    responses={
        200: {
            "content": {CSV: {"schema": {"type": "string"}}},
            "headers": {
                "X-Next-Cursor": {
                    "description": "CSV only: the next page's cursor, absent on the last page",
                    "schema": {"type": "string"},
                }
            },
            "description": "A page of entries; `Accept: text/csv` gives it as CSV, with the "
            "next page's cursor in the `X-Next-Cursor` header",
        },
        401: {"description": "No or invalid holder token, or session-revoked", **_PROBLEM},
        403: {"description": "device-unbound", **_PROBLEM},
        422: {"description": "validation-error, invalid-cursor", **_PROBLEM},
    },
)
async def my_access_log(
    holder: CurrentHolder,
    session: SessionDep,
    request: Request,
    *,
    since: Annotated[Rfc3339DateTime | None, Query(description="From (inclusive)")] = None,
    until: Annotated[Rfc3339DateTime | None, Query(description="Before this time")] = None,
    organisation_id: Annotated[uuid.UUID | None, Query(description="Only this reader")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="From `next_cursor`")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Response:
    page = await holder_access_log(
        session,
        holder.card_id,
        limit=limit,
        cursor=cursor,
        where=AccessLogFilter(since, until, organisation_id),
    )
    entries = [_entry_out(entry) for entry in page.entries]
    if _wants_csv(request):
        headers = dict(NO_STORE)
        if page.next_cursor is not None:
            headers["X-Next-Cursor"] = page.next_cursor
        return Response(_csv(entries), media_type=f"{CSV}; charset=utf-8", headers=headers)
    body = AccessLogPageOut(entries=entries, next_cursor=page.next_cursor)
    return Response(body.model_dump_json(), media_type="application/json", headers=NO_STORE)


@router.post(
    "/v1/scanner/scans",
    summary="Upload an offline verifier's scan log; idempotent by scan id",
    responses={
        401: {"description": "No, invalid or disabled scanner token", **_PROBLEM},
        403: {"description": "Token lacks the verify scope", **_PROBLEM},
        422: {"description": "validation-error", **_PROBLEM},
        503: {"description": "Store unavailable: upload again later", **_PROBLEM},
    },
)
async def upload_scans(
    body: OfflineScanUpload, scanner: CurrentScanner, session: SessionDep, runtime: RuntimeDep
) -> OfflineScanUploadResult:
    """Valid scans (a genuine token of ours, within its validity at `scanned_at`) reach the
    holders' access logs through the audit stream, like online scans; sending a scan id
    again changes nothing."""
    await ensure_scanner_enabled(session, runtime.store, scanner.client_id)
    scans = [
        offline.OfflineScan(s.scan_id, s.token, s.scanned_at, s.scene, s.verdict)
        for s in body.scans
    ]
    result = await offline.upload_scans(runtime, scanner, scans)
    return OfflineScanUploadResult(accepted=result.accepted, ignored=result.ignored)
