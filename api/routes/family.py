"""The family service (亲情服务): links both ways, invitations, a guardian's actions for a ward."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from starlette.responses import Response

from api.auth import CardCounterAdmin, CurrentHolder
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.routes.access_log import _entry_out
from api.schemas.access_log import AccessLogPageOut
from api.schemas.family import (
    AcceptRequest,
    FamilyLinkOut,
    InvitationRequest,
    OperatorConsentRequest,
    WardQrOut,
    WardStatusOut,
)
from api.schemas.lifecycle import HolderTransitionResponse
from app.accesslog.service import MAX_PAGE
from app.family import service
from app.family.models import LinkStatus
from app.family.service import LinkView

router = APIRouter(tags=["family"], route_class=StrictJsonRoute)

NO_STORE = {"Cache-Control": "no-store"}
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_LINK_ERRORS: dict[int | str, dict[str, object]] = {
    403: {
        "description": "family-link-inactive, family-scope-not-granted, guardian-not-permitted",
        **_PROBLEM,
    },
    404: {"description": "family-link-not-found", **_PROBLEM},
}
LinkId = Annotated[uuid.UUID, Path(description="The family link's id")]


def _out(view: LinkView) -> FamilyLinkOut:
    link = view.link
    return FamilyLinkOut(
        id=link.id,
        role="guardian" if view.role == "guardian" else "ward",
        other_card_number=view.other_card_number,
        scopes=list(link.scopes),
        status=LinkStatus(link.status),
        created_at=link.created_at,
        accepted_at=link.accepted_at,
        consent_recorded_by=link.consent_recorded_by,
        ended_at=link.ended_at,
        ended_by="guardian" if link.ended_by == "guardian" else "ward" if link.ended_by else None,
    )


@router.get(
    "/v1/me/family",
    summary="Your family links both ways: the wards you guard and your guardians",
)
async def my_family(holder: CurrentHolder, session: SessionDep) -> list[FamilyLinkOut]:
    return [_out(view) for view in await service.list_links(session, holder)]


@router.post(
    "/v1/me/family/invitations",
    status_code=status.HTTP_201_CREATED,
    summary="Invite a relative (by card number) to become your ward, with the scopes asked for",
    responses={
        404: {"description": "ward-not-found", **_PROBLEM},
        409: {"description": "family-link-exists, family-limit-reached", **_PROBLEM},
    },
)
async def invite(
    body: InvitationRequest, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> FamilyLinkOut:
    """At most 8 wards per guardian and 3 guardians per ward (pending invitations count)."""
    view = await service.invite(session, runtime, holder, body.ward_card_number, body.scopes)
    return _out(view)


@router.post(
    "/v1/me/family/invitations/{link_id}/accept",
    summary="Accept an invitation as the ward, with your PIN",
    responses={
        **_LINK_ERRORS,
        401: {"description": "invalid-credentials", **_PROBLEM},
        423: {"description": "pin-locked", **_PROBLEM},
    },
)
async def accept(
    link_id: LinkId, body: AcceptRequest, holder: CurrentHolder, runtime: RuntimeDep
) -> FamilyLinkOut:
    return _out(await service.accept(runtime, holder, link_id, body.pin))


@router.delete(
    "/v1/me/family/{link_id}",
    summary="End a family link (either side), or withdraw or decline an invitation, at once",
    responses={404: {"description": "family-link-not-found", **_PROBLEM}},
)
async def end_link(
    link_id: LinkId, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> FamilyLinkOut:
    return _out(await service.end(session, runtime, holder, link_id))


@router.get(
    "/v1/me/family/wards/{link_id}/qr",
    summary="A QR token of your ward's card to show for them (scope show_qr)",
    responses={**_LINK_ERRORS, 409: {"description": "card-lost, ...", **_PROBLEM}},
)
async def ward_qr(
    link_id: LinkId,
    holder: CurrentHolder,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> WardQrOut:
    """The scan's entry in the ward's access log (and in yours) names you."""
    qr = await service.ward_qr(session, runtime, holder, link_id)
    response.headers.update(NO_STORE)
    return WardQrOut(token=qr.token, kid=qr.kid, expires_at=qr.expires_at)


@router.get(
    "/v1/me/family/wards/{link_id}/card",
    summary="Your ward's card status (scope view)",
    responses=_LINK_ERRORS,
)
async def ward_card(
    link_id: LinkId, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> WardStatusOut:
    ward = await service.ward_status(session, runtime, holder, link_id)
    return WardStatusOut(
        card_number=ward.masked_card_number,
        status=ward.status,
        status_changed_at=ward.status_changed_at,
    )


@router.get(
    "/v1/me/family/wards/{link_id}/access-log",
    summary="Your ward's access log, newest first (scope view)",
    responses={**_LINK_ERRORS, 422: {"description": "invalid-cursor", **_PROBLEM}},
)
async def ward_access_log(  # noqa: PLR0917 - FastAPI passes dependencies by name
    link_id: LinkId,
    holder: CurrentHolder,
    session: SessionDep,
    runtime: RuntimeDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> AccessLogPageOut:
    page = await service.ward_access_log(
        session, runtime, holder, link_id, limit=limit, cursor=cursor
    )
    return AccessLogPageOut(
        entries=[_entry_out(entry) for entry in page.entries], next_cursor=page.next_cursor
    )


@router.post(
    "/v1/me/family/wards/{link_id}/report-loss",
    summary="Report your ward's card lost (scope report_loss): its QR codes stop at once",
    responses={**_LINK_ERRORS, 409: {"description": "transition-not-allowed", **_PROBLEM}},
)
async def ward_report_loss(
    link_id: LinkId, holder: CurrentHolder, runtime: RuntimeDep
) -> HolderTransitionResponse:
    transition = await service.ward_report_loss(runtime, holder, link_id)
    return HolderTransitionResponse(
        action=transition.action,
        from_status=transition.from_status,
        to_status=transition.to_status,
        at=transition.at,
    )


@router.post(
    "/v1/me/family/wards/{link_id}/{action}",
    status_code=status.HTTP_403_FORBIDDEN,
    summary="Never allowed: a guardian cannot change the ward's PIN, cancel the card, or "
    "approve logins or consents for the ward",
    responses={
        403: {"description": "guardian-not-permitted (always)", **_PROBLEM},
        404: {"description": "family-link-not-found", **_PROBLEM},
    },
)
async def forbidden_for_guardian(
    link_id: LinkId,
    action: Literal["pin", "cancel", "login-approvals", "consents"],
    holder: CurrentHolder,
    session: SessionDep,
) -> None:
    await service.refuse_for_guardian(session, holder, link_id, action)


@router.post(
    "/v1/admin/cards/{card_number}/family-consent",
    summary="Record at the service hall the consent of a ward with no phone (identity checked)",
    responses={
        403: {"description": "holder-not-verified (the document does not match)", **_PROBLEM},
        404: {"description": "card-not-found, family-link-not-found", **_PROBLEM},
    },
)
async def record_consent(
    card_number: Annotated[str, Path(min_length=1, max_length=32)],
    body: OperatorConsentRequest,
    admin: CardCounterAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> FamilyLinkOut:
    view = await service.record_consent(
        session,
        runtime,
        admin,
        ward_card_number=card_number,
        link_id=body.link_id,
        holder_document_number=body.holder_document_number,
    )
    return _out(view)
