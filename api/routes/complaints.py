"""Complaints: filed by anyone (rate-limited per address) or a holder, read back with the
tracking number, handled by administrators (provincial; a city administrator for its city;
an auditor reads)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.auth import CurrentHolder, RegionalAdmin
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.rate_limits import COMPLAINT_LIMITS, COMPLAINT_LOOKUP_LIMITS, RATE_LIMITED
from api.schemas.complaints import (
    AdminComplaintOut,
    AdminTimelineEntry,
    ComplaintAnswer,
    ComplaintAssign,
    ComplaintClose,
    ComplaintCreate,
    ComplaintFiled,
    ComplaintOut,
    ComplaintSummary,
    HolderComplaintCreate,
    Region,
    TimelineEntry,
    TrackingNumber,
)
from app.complaints import service
from app.complaints.models import Complaint, ComplaintKind, ComplaintStatus, ComplaintStep
from app.runtime import Runtime
from app.security.principals import AdminPrincipal
from app.security.roles import AdminRole, require_region

router = APIRouter(tags=["complaints"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"description": "complaint-not-found", **_PROBLEM}
}
_HOLDER_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid holder token", **_PROBLEM},
    403: {"description": "Token lacks the card scope", **_PROBLEM},
}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Role may not, or outside-region: another city's complaint", **_PROBLEM},
}
_HANDLING_ERRORS: dict[int | str, dict[str, object]] = {
    **_ADMIN_ERRORS,
    **_NOT_FOUND,
    409: {"description": "complaint-closed", **_PROBLEM},
}
ComplaintId = Annotated[uuid.UUID, Path(description="The complaint's id (admin listing)")]


def _form(body: HolderComplaintCreate) -> service.ComplaintForm:
    return service.ComplaintForm(
        kind=body.kind,
        details=body.details,
        contact=body.contact,
        region_code=body.region_code,
        access_log_ref=body.access_log_entry,
    )


def _filed(filed: service.FiledComplaint) -> ComplaintFiled:
    return ComplaintFiled(
        tracking_number=filed.tracking_number,
        status=ComplaintStatus(filed.complaint.status),
        created_at=filed.complaint.created_at,
    )


def _complainant_view(view: service.ComplaintView) -> ComplaintOut:
    complaint = view.complaint
    return ComplaintOut(
        kind=ComplaintKind(complaint.kind),
        status=ComplaintStatus(complaint.status),
        region_code=complaint.region_code,
        access_log_entry=complaint.access_log_ref,
        details=view.details,
        answer=complaint.answer,
        created_at=complaint.created_at,
        updated_at=complaint.updated_at,
        timeline=[
            TimelineEntry(step=ComplaintStep(event.step), at=event.created_at, note=event.note)
            for event in view.timeline
        ],
    )


def _admin_view(view: service.ComplaintView) -> AdminComplaintOut:
    complaint = view.complaint
    return AdminComplaintOut(
        id=complaint.id,
        kind=ComplaintKind(complaint.kind),
        status=ComplaintStatus(complaint.status),
        region_code=complaint.region_code,
        access_log_entry=complaint.access_log_ref,
        filed_by_holder=complaint.card_id is not None,
        details=view.details,
        contact=view.contact,
        assignee=complaint.assignee,
        answer=complaint.answer,
        created_at=complaint.created_at,
        updated_at=complaint.updated_at,
        timeline=[
            AdminTimelineEntry(
                step=ComplaintStep(event.step),
                at=event.created_at,
                note=event.note,
                actor=event.actor,
            )
            for event in view.timeline
        ],
    )


@router.post(
    "/v1/complaints",
    status_code=status.HTTP_201_CREATED,
    summary="File a complaint or report without logging in (a contact is required); keep the "
    "tracking number",
    responses={422: {"description": "validation-error", **_PROBLEM}, **RATE_LIMITED},
    dependencies=COMPLAINT_LIMITS,
)
async def file_complaint(
    body: ComplaintCreate, session: SessionDep, runtime: RuntimeDep
) -> ComplaintFiled:
    return _filed(await service.file_complaint(session, runtime.store, runtime.pii, _form(body)))


@router.get(
    "/v1/complaints/{tracking_number}",
    summary="A complaint's status, answer and timeline, by its tracking number",
    responses={**_NOT_FOUND, **RATE_LIMITED},
    dependencies=COMPLAINT_LOOKUP_LIMITS,
)
async def track_complaint(
    tracking_number: Annotated[TrackingNumber, Path(description="As given when filed")],
    session: SessionDep,
    runtime: RuntimeDep,
) -> ComplaintOut:
    complaint = await service.by_tracking_number(session, runtime.pii, tracking_number)
    return _complainant_view(await service.view(session, runtime.pii, complaint))


@router.post(
    "/v1/me/complaints",
    status_code=status.HTTP_201_CREATED,
    summary="File a complaint as the holder (about a venue, a misuse of your card, a "
    "disclosure in your access log)",
    responses={**_HOLDER_ERRORS, 422: {"description": "validation-error", **_PROBLEM}},
)
async def file_my_complaint(
    body: HolderComplaintCreate, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> ComplaintFiled:
    filed = await service.file_complaint(
        session, runtime.store, runtime.pii, _form(body), card_id=holder.card_id
    )
    return _filed(filed)


@router.get(
    "/v1/me/complaints",
    summary="Your complaints, newest first, each with its answer and timeline",
    responses=_HOLDER_ERRORS,
)
async def my_complaints(
    holder: CurrentHolder,
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[ComplaintOut]:
    complaints = await service.holder_complaints(session, holder.card_id, limit)
    return [
        _complainant_view(await service.view(session, runtime.pii, complaint))
        for complaint in complaints
    ]


@router.get(
    "/v1/admin/complaints",
    summary="Complaints, newest first, by status, kind, region or assignee (a city "
    "administrator sees its city's only)",
    responses=_ADMIN_ERRORS,
)
async def list_complaints(
    *,
    admin: RegionalAdmin,
    session: SessionDep,
    status: ComplaintStatus | None = None,
    kind: ComplaintKind | None = None,
    region: Annotated[Region | None, Query(description="A city's region code")] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ComplaintSummary]:
    if admin.role is AdminRole.city_admin:
        region = region or admin.region
        require_region(admin, region)
    where = service.ComplaintFilter(status, kind, region, assignee, limit)
    return [
        ComplaintSummary(
            id=complaint.id,
            kind=ComplaintKind(complaint.kind),
            status=ComplaintStatus(complaint.status),
            region_code=complaint.region_code,
            assignee=complaint.assignee,
            created_at=complaint.created_at,
            updated_at=complaint.updated_at,
        )
        for complaint in await service.list_complaints(session, where)
    ]


async def _complaint(
    session: SessionDep, admin: AdminPrincipal, complaint_id: uuid.UUID
) -> Complaint:
    complaint = await service.get_complaint(session, complaint_id)
    require_region(admin, complaint.region_code)
    return complaint


async def _answered(
    session: SessionDep, runtime: Runtime, complaint: Complaint
) -> AdminComplaintOut:
    return _admin_view(await service.view(session, runtime.pii, complaint))


@router.get(
    "/v1/admin/complaints/{complaint_id}",
    summary="A complaint with its contact and timeline",
    responses={**_ADMIN_ERRORS, **_NOT_FOUND},
)
async def get_complaint(
    complaint_id: ComplaintId, admin: RegionalAdmin, session: SessionDep, runtime: RuntimeDep
) -> AdminComplaintOut:
    return await _answered(session, runtime, await _complaint(session, admin, complaint_id))


@router.post(
    "/v1/admin/complaints/{complaint_id}/assign",
    summary="Assign a complaint to an administrator (by default, yourself)",
    responses=_HANDLING_ERRORS,
)
async def assign_complaint(
    complaint_id: ComplaintId,
    body: ComplaintAssign,
    admin: RegionalAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AdminComplaintOut:
    complaint = await _complaint(session, admin, complaint_id)
    await service.assign(
        session, runtime.store, admin.client_id, complaint, body.assignee or admin.client_id
    )
    return await _answered(session, runtime, complaint)


@router.post(
    "/v1/admin/complaints/{complaint_id}/answer",
    summary="Answer the complainant (who reads it with the tracking number or in the app)",
    responses=_HANDLING_ERRORS,
)
async def answer_complaint(
    complaint_id: ComplaintId,
    body: ComplaintAnswer,
    admin: RegionalAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AdminComplaintOut:
    complaint = await _complaint(session, admin, complaint_id)
    await service.answer(session, runtime.store, admin.client_id, complaint, body.answer)
    return await _answered(session, runtime, complaint)


@router.post(
    "/v1/admin/complaints/{complaint_id}/close",
    summary="Close a complaint",
    responses=_HANDLING_ERRORS,
)
async def close_complaint(
    complaint_id: ComplaintId,
    body: ComplaintClose,
    admin: RegionalAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AdminComplaintOut:
    complaint = await _complaint(session, admin, complaint_id)
    await service.close(session, runtime.store, admin.client_id, complaint, body.note)
    return await _answered(session, runtime, complaint)
