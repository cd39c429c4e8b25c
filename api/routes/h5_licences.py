"""The holder's e-licences on the mobile pages: the list with each one's verification state
computed now, one licence, and its presentation QR (single-use, short-lived), drawn and
refreshed by the page script as the card's QR is. The rules are `app.licences`'."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response

from api.deps import SessionDep
from api.h5.messages import local_time
from api.h5.pages import BASE, HolderFetch, HolderPage, PageContext
from app.departments.types import DOCUMENT_TYPES
from app.errors import DomainError
from app.h5.sessions import idle_timeout
from app.holders.errors import CardNotActive
from app.licences import presentations
from app.licences import service as licences
from app.licences.errors import LicenceNotFound
from app.licences.service import LicenceView
from app.ratelimits import RateLimitRule, enforce
from app.ratelimits.errors import RateLimited
from qr import modules

router = APIRouter(include_in_schema=False)

LICENCES_SHOWN_CARE = 5
"""Elder mode shows fewer licences per screen."""


def type_title(context: PageContext, view: LicenceView) -> str:
    spec = DOCUMENT_TYPES.get(view.licence.document_type)
    if spec is None:
        return view.licence.document_type
    return spec.title_zh if context.language == "zh" else spec.title_en


def verification_key(view: LicenceView) -> str:
    """The words for the state: verified, or why not (expired, revoked, bad signature...)."""
    if view.verification.verified:
        return "licence_verified"
    reason = view.verification.reason or "unverified"
    return {
        "expired": "licence_expired",
        "not_yet_valid": "licence_not_yet_valid",
        "revoked": "licence_revoked",
        "suspended": "licence_suspended",
    }.get(reason, "licence_unverified")


@router.get(f"{BASE}/licences")
async def licences_page(context: HolderPage, session: SessionDep) -> Response:
    person_id = await licences.holder_person(session, context.holder_page.card_id)
    views = await licences.holder_licences(session, context.runtime, person_id)
    if context.care:
        views = views[:LICENCES_SHOWN_CARE]
    return context.render(
        "licences.html",
        title=context.t("licences"),
        back="card",
        licences=views,
        type_title=lambda view: type_title(context, view),
        verification_key=verification_key,
    )


async def _own_licence(
    context: PageContext, session: AsyncSession, licence_id: uuid.UUID
) -> LicenceView | None:
    """The signed-in holder's licence; None for another holder's or an unknown one (the pages
    then go back to the holder's own list: nothing to probe)."""
    try:
        person_id = await licences.holder_person(session, context.holder_page.card_id)
        return await licences.holder_licence(session, context.runtime, person_id, licence_id)
    except LicenceNotFound:
        return None


@router.get(f"{BASE}/licences/{{licence_id}}")
async def licence_page(context: HolderPage, session: SessionDep, licence_id: uuid.UUID) -> Response:
    view = await _own_licence(context, session, licence_id)
    if view is None:
        return context.redirect(f"{BASE}/licences")
    return context.render(
        "licence.html",
        title=type_title(context, view),
        back="licences",
        view=view,
        verification_key=verification_key(view),
        local_time=local_time,
    )


@router.get(f"{BASE}/licences/{{licence_id}}/present")
async def present_page(context: HolderPage, session: SessionDep, licence_id: uuid.UUID) -> Response:
    view = await _own_licence(context, session, licence_id)
    if view is None:
        return context.redirect(f"{BASE}/licences")
    return context.render(
        "licence_present.html",
        title=context.t("licence_present"),
        back=f"licences/{licence_id}",
        view=view,
        type_title=type_title(context, view),
        qr_endpoint=f"{BASE}/licences/{licence_id}/qr",
        qr_label=context.t("licence_qr_label"),
        idle=idle_timeout(context.runtime, care=context.care),
    )


@router.get(f"{BASE}/licences/{{licence_id}}/qr")
async def presentation_qr(
    context: HolderFetch, session: SessionDep, licence_id: uuid.UUID
) -> Response:
    """A new presentation each time (the page fetches the next before this one ends); the
    PIN of the day first, as for the card's own QR, and the same per-holder rate limit."""
    page = context.holder_page
    if not page.pin_entered_today():
        return context.json({"state": "pin_required"}, status_code=403)
    runtime = context.runtime
    try:
        await enforce(
            runtime.store,
            runtime.pii,
            runtime.settings,
            RateLimitRule.qr_per_holder,
            str(page.card_id),
        )
        presentation = await presentations.create_presentation(
            session, runtime, page.holder, licence_id
        )
    except CardNotActive as error:
        return context.json({"state": error.code.replace("-", "_")}, status_code=409)
    except RateLimited as error:
        retry = error.extensions["retry_after"]
        return context.json({"state": "too_many", "retry_after": retry}, status_code=429)
    except DomainError as error:
        return context.json({"state": "failed"}, status_code=error.status)
    lifetime = runtime.settings.presentation_lifetime
    return context.json(
        {
            "state": "ok",
            "token": presentation.token,
            "expires_at": presentation.expires_at.timestamp(),
            "refresh_after": min(runtime.settings.qr_refresh_after, max(5, lifetime // 2)),
            "large": context.care,
            "modules": modules(presentation.token, large_high_contrast=context.care),
        }
    )
