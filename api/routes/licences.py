"""Linked e-licences: departments push them (one, or JSON Lines in bulk); holders see them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from api.auth import CurrentHolder, CurrentIssuer
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.problems import PROBLEM_BASE
from api.schemas.licences import (
    BulkLine,
    BulkResult,
    IssuerRef,
    LicenceDetail,
    LicenceOut,
    LicencePush,
    LicencePushed,
    LineError,
    PresentationOut,
    Verification,
)
from app.departments.types import DOCUMENT_TYPES
from app.errors import DomainError
from app.licences import presentations, service
from app.licences.errors import InvalidBulk
from app.media_types import media_type_of

router = APIRouter(tags=["licences"], route_class=StrictJsonRoute)

BULK_PATH = "/v1/licences/bulk"
JSONL_TYPES = frozenset(
    {"application/jsonl", "application/x-ndjson", "application/json-lines", "text/plain"}
)
"""JSON Lines under its names in use, and as plain text."""
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_PUSH_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"description": "document-type-not-allowed (scope issue:<type> or registry)", **_PROBLEM},
    404: {"description": "holder-not-found: no card holder has the document", **_PROBLEM},
    409: {"description": "licence-version-stale, licence-version-conflict", **_PROBLEM},
    422: {
        "description": "signature-rejected (reason), invalid-licence, invalid-document, "
        "holder-mismatch",
        **_PROBLEM,
    },
}
_BULK_BODY: dict[str, object] = {
    # Documented as text/plain only: schemathesis (the fuzz test) cannot serialise a media
    # type it does not know, and application/jsonl is not one; the route takes both.
    "required": True,
    "description": 'JSON Lines: one {"signed": "<JWS>"} per line. Send it as '
    "`application/jsonl` (also `application/x-ndjson`) or `text/plain`.",
    "content": {
        "text/plain": {
            "schema": {"type": "string"},
            "example": '{"signed": "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"}\n',
        }
    },
}


def _pushed(pushed: service.Pushed) -> LicencePushed:
    return LicencePushed(
        licence_id=pushed.licence_id,
        result=pushed.result.value,
        document_id=pushed.document_id,
        version=pushed.version,
        status=pushed.status,
    )


def _line_error(error: DomainError) -> LineError:
    return LineError(
        type=PROBLEM_BASE + error.code,
        title=error.title,
        status=error.status,
        detail=error.detail,
        extensions=dict(error.extensions),
    )


@router.post(
    "/v1/licences",
    summary="Link (or update) one signed licence to its holder's card",
    status_code=201,
    responses={200: {"description": "updated, or unchanged (a retry)"}, **_PUSH_ERRORS},
)
async def push_licence(
    body: LicencePush, issuer: CurrentIssuer, runtime: RuntimeDep, response: Response
) -> LicencePushed:
    """201 for a new licence; 200 for a newer version or an identical retry."""
    pushed = await service.push_licence(runtime, issuer, body.signed)
    if pushed.result is not service.PushResult.created:
        response.status_code = 200
    return _pushed(pushed)


@router.post(
    BULK_PATH,
    summary="Link many signed licences: JSON Lines, a result per line",
    openapi_extra={"requestBody": _BULK_BODY},
    responses={
        415: {"description": "Not application/jsonl (or text/plain)", **_PROBLEM},
        422: {"description": "invalid-bulk: not UTF-8, no line, too many lines", **_PROBLEM},
    },
)
async def push_bulk(request: Request, issuer: CurrentIssuer, runtime: RuntimeDep) -> BulkResult:
    """Good lines are stored (together, in one transaction), bad lines reported with the
    problem each would have had alone; a line is never half-written."""
    media_type = media_type_of(request.headers.get("content-type"))
    if media_type not in JSONL_TYPES:
        raise UnsupportedBulkType("send the lines as application/jsonl")
    lines = service.parse_lines(await request.body(), runtime.settings.licence_bulk_max_lines)
    outcomes = await service.push_bulk(runtime, issuer, lines)
    results = [
        BulkLine(
            line=outcome.line,
            pushed=None if outcome.pushed is None else _pushed(outcome.pushed),
            error=None if outcome.error is None else _line_error(outcome.error),
        )
        for outcome in outcomes
    ]
    unchanged = sum(
        1
        for o in outcomes
        if o.pushed is not None and o.pushed.result is service.PushResult.unchanged
    )
    failed = sum(1 for o in outcomes if o.error is not None)
    return BulkResult(
        stored=len(outcomes) - unchanged - failed,
        unchanged=unchanged,
        failed=failed,
        results=results,
    )


class UnsupportedBulkType(InvalidBulk):
    code = "unsupported-media-type"
    title = "Unsupported media type"
    status = 415


# --- the holder's view ---------------------------------------------------------------------


def _licence_out(view: service.LicenceView, checked_at: datetime) -> dict[str, object]:
    spec = DOCUMENT_TYPES.get(view.licence.document_type)
    verification = view.verification
    return {
        "id": view.licence.id,
        "type": view.licence.document_type,
        "type_title": spec.title_en if spec else view.licence.document_type,
        "type_title_zh": spec.title_zh if spec else view.licence.document_type,
        "issuer": IssuerRef(code=view.issuer.code, name=view.issuer.name),
        "number": view.payload.number,
        "holder_name": view.payload.holder.name,
        "category": view.payload.category,
        "valid_from": view.payload.valid_from,
        "valid_until": view.payload.valid_until,
        "version": view.licence.version,
        "updated_at": view.licence.updated_at,
        "verification": Verification(
            verified=verification.verified,
            signature_valid=verification.signature_valid,
            key_trusted=verification.key_trusted,
            status=verification.status,
            expired=verification.expired,
            reason=verification.reason,
            checked_at=checked_at,
        ),
    }


_HOLDER_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid holder token", **_PROBLEM},
}


@router.get(
    "/v1/me/licences",
    summary="Your linked licences, each with its verification state computed now",
    responses=_HOLDER_ERRORS,
)
async def my_licences(
    holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> list[LicenceOut]:
    person_id = await service.holder_person(session, holder.card_id)
    now = datetime.now(UTC)
    return [
        LicenceOut.model_validate(_licence_out(view, now))
        for view in await service.holder_licences(session, runtime, person_id)
    ]


@router.get(
    "/v1/me/licences/{licence_id}",
    summary="One of your licences, with the department's signed original",
    responses={**_HOLDER_ERRORS, 404: {"description": "licence-not-found", **_PROBLEM}},
)
async def my_licence(
    licence_id: uuid.UUID, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> LicenceDetail:
    person_id = await service.holder_person(session, holder.card_id)
    view = await service.holder_licence(session, runtime, person_id, licence_id)
    return LicenceDetail.model_validate(
        {
            **_licence_out(view, datetime.now(UTC)),
            "document_id": view.licence.document_id,
            "signed": await service.licence_signed_original(session, runtime, view.licence),
        }
    )


@router.post(
    "/v1/me/licences/{licence_id}/presentation",
    status_code=201,
    summary="A short-lived, single-use QR token presenting one of your licences",
    responses={
        **_HOLDER_ERRORS,
        403: {"description": "device-unbound", **_PROBLEM},
        404: {"description": "licence-not-found", **_PROBLEM},
        409: {"description": "The card is not active", **_PROBLEM},
    },
)
async def present_licence(
    licence_id: uuid.UUID, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> PresentationOut:
    """The token carries no personal data (render it as a QR code at level M: version 8 or
    lower); a scanner whose scene reads this licence type gets its fields once."""
    presentation = await presentations.create_presentation(session, runtime, holder, licence_id)
    return PresentationOut(
        token=presentation.token,
        licence_id=presentation.licence_id,
        expires_at=presentation.expires_at,
    )
