"""Consents on the mobile pages: departments' requests to read the holder's data (approve
with the PIN, decline, revoke an approval) and the apps the holder lets log in with the card
(withdraw). The rules are `app.consents`' and `app.oidc`'s."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response

from api.deps import SessionDep
from api.h5.messages import local_time, refusal
from api.h5.pages import BASE, HolderForm, HolderPage, PageContext
from app.consents import service as consents
from app.consents.errors import ConsentNotActive, ConsentNotFound, ConsentNotPending
from app.consents.models import ConsentStatus
from app.departments.types import DOCUMENT_TYPES
from app.errors import DomainError
from app.oidc import service as oidc
from app.oidc.errors import ConsentNotFound as AppConsentNotFound

router = APIRouter(include_in_schema=False)

ITEM_KEYS = {"item_full_name", "item_document_type", "item_document_number"}
"""The card attributes a department may ask for, in words."""

SHOWN_CARE = 5
"""Elder mode shows fewer requests per screen (the pending ones first)."""
DONE = {
    "approved": "consent_approved",
    "declined": "consent_declined",
    "revoked": "consent_revoked",
    "withdrawn": "app_consent_withdrawn",
    "gone": "consent_gone",
}


def item_label(context: PageContext, item: str) -> str:
    spec = DOCUMENT_TYPES.get(item)
    if spec is not None:
        return spec.title_zh if context.language == "zh" else spec.title_en
    return context.t(f"item_{item}") if f"item_{item}" in ITEM_KEYS else item


async def _consents_page(
    context: PageContext,
    session: AsyncSession,
    *,
    status_code: int = 200,
    message: str | None = None,
    kind: str = "done",
) -> Response:
    holder = context.holder_page.holder
    requests = await consents.holder_requests(session, holder)
    requests.sort(key=lambda r: r.status is not ConsentStatus.pending)  # stable: newest first
    apps = await oidc.list_consents(session, context.holder_page.card_id)
    if context.care:
        requests, apps = requests[:SHOWN_CARE], apps[:SHOWN_CARE]
    return context.render(
        "consents.html",
        status_code=status_code,
        title=context.t("consents"),
        back="card",
        requests=requests,
        apps=apps,
        item_label=lambda item: item_label(context, item),
        local_time=local_time,
        message=message,
        kind=kind,
    )


@router.get(f"{BASE}/consents")
async def consents_page(
    context: HolderPage, session: SessionDep, done: str | None = None
) -> Response:
    message = context.t(DONE[done]) if done in DONE else None
    return await _consents_page(context, session, message=message)


async def _decide(context: PageContext, request_id: uuid.UUID, *, approve: bool) -> Response:
    try:
        await consents.decide(
            context.runtime,
            context.holder_page.holder,
            request_id,
            approve=approve,
            pin=context.field("pin") if approve else None,
        )
    except (ConsentNotFound, ConsentNotPending):
        return context.redirect(f"{BASE}/consents?done=gone")
    except DomainError as error:
        async with context.runtime.database.session() as session:
            return await _consents_page(
                context,
                session,
                status_code=error.status,
                message=refusal(context, error),
                kind="error",
            )
    return context.redirect(f"{BASE}/consents?done={'approved' if approve else 'declined'}")


@router.post(f"{BASE}/consents/{{request_id}}/approve")
async def approve(context: HolderForm, request_id: uuid.UUID) -> Response:
    """With the PIN, as `POST /v1/me/consent-requests/{id}/approve`."""
    return await _decide(context, request_id, approve=True)


@router.post(f"{BASE}/consents/{{request_id}}/decline")
async def decline(context: HolderForm, request_id: uuid.UUID) -> Response:
    return await _decide(context, request_id, approve=False)


@router.post(f"{BASE}/consents/{{request_id}}/revoke")
async def revoke(context: HolderForm, request_id: uuid.UUID) -> Response:
    try:
        await consents.revoke(context.runtime, context.holder_page.holder, request_id)
    except (ConsentNotFound, ConsentNotActive):
        return context.redirect(f"{BASE}/consents?done=gone")
    return context.redirect(f"{BASE}/consents?done=revoked")


@router.post(f"{BASE}/consents/apps/withdraw")
async def withdraw_app(context: HolderForm, session: SessionDep) -> Response:
    """The app's tokens for this card are revoked, as `DELETE /v1/me/consents/{client_id}`."""
    try:
        await oidc.withdraw_consent(
            session, context.runtime, context.holder_page.card_id, context.field("client_id")
        )
    except AppConsentNotFound:
        return context.redirect(f"{BASE}/consents?done=gone")
    await session.commit()
    return context.redirect(f"{BASE}/consents?done=withdrawn")
