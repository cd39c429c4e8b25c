"""The holder's mobile pages (`/h5/`), server-rendered: sign in with device binding, the card
with its live QR, loss report and its cancellation, PIN change, the access log, complaints,
elder mode. Each route reads the form, calls one rule of the holder domains and renders; the
machinery (cookies, CSRF, CSP, words) is in `api/h5/`.

Not in the OpenAPI document: these are pages for people, not an interface for programs.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from api.auth import CurrentAdmin, CurrentChannelHolder
from api.deps import RuntimeDep, SessionDep
from api.h5 import pages
from api.h5.messages import local_time, refusal
from api.h5.pages import (
    BASE,
    CARE_COOKIE,
    SESSION_COOKIE,
    STATUS_TEXT,
    YEAR,
    HolderFetch,
    HolderForm,
    HolderPage,
    PageContext,
    PageDep,
    PublicForm,
)
from api.h5.texts import BANK_NAMES_ZH
from api.json_bodies import StrictJsonRoute
from api.routes import h5_consents, h5_licences, h5_payments, h5_vault
from api.schemas.h5 import ChannelOriginsIn, ChannelOriginsOut, LaunchTicketOut
from app.accesslog.errors import InvalidCursor
from app.accesslog.service import holder_access_log
from app.cards import lifecycle_service
from app.cards.lifecycle import CardAction
from app.cards.models import CardStatus
from app.channels import service as channels
from app.channels.errors import ChannelLinkNotFound, ChannelSessionRevoked, ChannelSuspended
from app.complaints import service as complaints
from app.complaints.models import ComplaintKind, ComplaintStatus
from app.errors import DomainError, InvalidRequest
from app.family import service as family
from app.h5 import launch
from app.h5 import origins as h5_origins
from app.h5.service import confirm_pin
from app.h5.sessions import (
    PageSession,
    close_page_session,
    device_id_of,
    idle_timeout,
    note_pin_entered,
    open_page_session,
)
from app.holders import qr_tokens, service
from app.holders.errors import (
    CardNotActive,
    DeviceNotActivated,
    InvalidCredentials,
)
from app.holders.sessions import HolderSession
from app.notifications import service as notifications
from app.ratelimits import RateLimitRule, address_subject, card_subject, enforce
from app.ratelimits.errors import RateLimited
from app.security.errors import WeakPinError
from qr import modules

router = APIRouter(include_in_schema=False)
launch_router = APIRouter(tags=["channel apps"], route_class=StrictJsonRoute)
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}

ACCESS_LOG_PAGE = 20
ACCESS_LOG_PAGE_CARE = 5
"""Elder mode shows fewer entries per screen."""
COMPLAINTS_SHOWN = 20
DONE_MESSAGES = {
    "lost": "report_loss_done",
    "found": "cancel_loss_done",
    "pin": "pin_done",
    "out": "signed_out",
}
"""`?done=` keys of the page shown after a form (post/redirect/get), and their message."""
KINDS = [kind.value for kind in ComplaintKind]


async def _limit(context: PageContext, rule: RateLimitRule, subject: str) -> None:
    runtime = context.runtime
    await enforce(runtime.store, runtime.pii, runtime.settings, rule, subject)


def _address(context: PageContext) -> str:
    client = context.request.client
    return address_subject(client.host if client else None)


async def _signed_in(context: PageContext, opened: HolderSession) -> Response:
    """Opens the page session (a new id: no fixation) and goes to the card."""
    raw, page = await open_page_session(
        context.runtime, opened, care=context.care, pin_entered=True
    )
    return _enter(context, raw, page)


def _enter(context: PageContext, raw: str, page: PageSession) -> Response:
    context.session_id, context.page = raw, page
    context.set_cookie(SESSION_COOKIE, raw)
    return context.redirect(f"{BASE}/card")


# --- public pages ----------------------------------------------------------------------------


@router.get(f"{BASE}/")
async def home(context: PageDep) -> Response:
    return context.redirect(f"{BASE}/card" if context.page is not None else f"{BASE}/login")


@router.get(f"{BASE}/login")
async def login_page(context: PageDep, done: str | None = None) -> Response:
    if context.page is not None:
        return context.redirect(f"{BASE}/card")
    message = context.t(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None
    return context.render("login.html", title=context.t("login_title"), message=message)


@router.post(f"{BASE}/login")
async def login(context: PublicForm) -> Response:
    card_number = context.field("card_number")
    try:
        await _limit(context, RateLimitRule.login_per_address, _address(context))
        await _limit(context, RateLimitRule.login_per_card, card_subject(card_number, None, None))
        opened = await service.login(
            context.runtime,
            service.Login(
                pin=context.field("pin"),
                device_id=device_id_of(context.runtime, context.device_secret),
                card_number=card_number,
            ),
        )
    except DeviceNotActivated as error:
        return context.render(
            "activate.html",
            status_code=403,
            title=context.t("activate_title"),
            message=refusal(context, error),
            card_number=card_number,
        )
    except DomainError as error:
        return context.render(
            "login.html",
            status_code=error.status,
            title=context.t("login_title"),
            message=refusal(context, error),
            kind="error",
            card_number=card_number,
        )
    return await _signed_in(context, opened)


@router.get(f"{BASE}/activate")
async def activate_page(context: PageDep) -> Response:
    return context.render("activate.html", title=context.t("activate_title"))


@router.post(f"{BASE}/activate")
async def activate(context: PublicForm) -> Response:
    """Binds this browser to the card (as a phone is bound): both numbers and the PIN."""
    card_number = context.field("card_number")
    try:
        await _limit(context, RateLimitRule.login_per_address, _address(context))
        await _limit(context, RateLimitRule.login_per_card, card_subject(card_number, None, None))
        opened = await service.activate(
            context.runtime,
            service.Activation(
                card_number=card_number,
                document_number=context.field("document_number"),
                device_id=device_id_of(context.runtime, context.device_secret),
                pin=context.field("pin"),
            ),
        )
    except DomainError as error:
        message = (
            context.t("error_activation")
            if isinstance(error, InvalidCredentials)
            else refusal(context, error)
        )
        return context.render(
            "activate.html",
            status_code=error.status,
            title=context.t("activate_title"),
            message=message,
            kind="error",
            card_number=card_number,
        )
    return await _signed_in(context, opened)


@router.post(f"{BASE}/care")
async def care_mode(context: PublicForm) -> Response:
    """Elder mode on or off, remembered on this device; back to the page it was switched on."""
    care = context.field("care") == "1"
    context.care = care
    context.set_cookie(CARE_COOKIE, "1" if care else "0", YEAR)
    back = context.field("next")
    return context.redirect(_return_page(back))


@launch_router.post(
    "/v1/channel/h5-launch",
    status_code=201,
    summary="As a channel, for a linked holder: a single-use ticket that opens the e-card "
    "pages (/h5/) in your web view without the PIN",
    responses={
        401: {"description": "session-revoked (unlinked)", **_PROBLEM},
        403: {"description": "channel-suspended", **_PROBLEM},
    },
)
async def launch_ticket(
    holder: CurrentChannelHolder, runtime: RuntimeDep, response: Response
) -> LaunchTicketOut:
    """The ticket lives `SSC_H5_LAUNCH_TICKET_TTL` seconds and opens one page session; the
    page asks for the PIN before the first QR of the day."""
    issued = await launch.issue_launch_ticket(runtime, holder)
    response.headers["Cache-Control"] = "no-store"
    url = f"{runtime.settings.public_url.rstrip('/')}{BASE}/launch?ticket={issued.ticket}"
    return LaunchTicketOut(ticket=issued.ticket, url=url, expires_at=issued.expires_at)


ChannelId = Annotated[str, Path(min_length=1, max_length=64, description="The channel's id")]
_ORIGIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "The role may not", **_PROBLEM},
    404: {"description": "channel-not-found", **_PROBLEM},
}


@launch_router.put(
    "/v1/admin/channels/{channel_id}/h5-origins",
    summary="The web origins of a channel app that may frame the e-card pages (/h5/)",
    responses={**_ORIGIN_ERRORS, 422: {"description": "invalid-origin", **_PROBLEM}},
)
async def set_channel_origins(
    channel_id: ChannelId,
    body: ChannelOriginsIn,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ChannelOriginsOut:
    """Replaces the list; the pages' CSP `frame-ancestors` names the origins of every active
    channel (a suspended channel's drop out within 30 s)."""
    origins = await h5_origins.set_channel_origins(
        session, runtime, admin.client_id, channel_id, body.origins
    )
    return ChannelOriginsOut(channel_id=channel_id, origins=origins)


@launch_router.get(
    "/v1/admin/channels/{channel_id}/h5-origins",
    summary="The web origins of a channel app that may frame the e-card pages",
    responses=_ORIGIN_ERRORS,
)
async def get_channel_origins(
    channel_id: ChannelId, admin: CurrentAdmin, session: SessionDep
) -> ChannelOriginsOut:
    origins = await h5_origins.channel_origins(session, channel_id)
    return ChannelOriginsOut(channel_id=channel_id, origins=origins)


@router.get(f"{BASE}/launch")
async def launch_page(
    context: PageDep, ticket: Annotated[str, Query(max_length=128)] = ""
) -> Response:
    """A channel app opens the pages: the ticket is spent, this web view bound to the card, and
    the browser sent on without the ticket in its address."""
    try:
        raw, page = await launch.redeem_launch_ticket(
            context.runtime, ticket, context.device_secret, care=context.care
        )
    except (launch.InvalidLaunchTicket, ChannelSessionRevoked, ChannelSuspended) as error:
        return context.render(
            "message.html",
            status_code=error.status,
            title=context.t("app_name"),
            message=context.t("error_launch"),
            kind="error",
        )
    return _enter(context, raw, page)


# --- the holder's pages ----------------------------------------------------------------------


@router.get(f"{BASE}/card")
async def card_page(context: HolderPage, session: SessionDep, done: str | None = None) -> Response:
    message = context.t(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None
    return await _card(context, session, message=message, kind="done")


async def _card(
    context: PageContext,
    session: AsyncSession,
    *,
    status_code: int = 200,
    message: str | None = None,
    kind: str = "done",
) -> Response:
    card = await service.holder_card(session, context.runtime, context.holder_page.holder)
    return context.render(
        "card.html",
        status_code=status_code,
        title=context.t("card_title"),
        card=card,
        bank_name=BANK_NAMES_ZH.get(card.bank_code, card.bank_name)
        if context.language == "zh"
        else card.bank_name,
        status_text=context.t(STATUS_TEXT.get(card.status, "qr_inactive")),
        active=card.status is CardStatus.active,
        lost=card.status is CardStatus.lost,
        pin_today=context.holder_page.pin_entered_today(),
        idle=idle_timeout(context.runtime, care=context.care),
        message=message,
        kind=kind,
    )


@router.get(f"{BASE}/qr")
async def qr(context: HolderFetch) -> Response:
    """The page script's QR: the token and its modules (the large, ECC Q variant in elder
    mode), drawn by the page; `state` says why there is none."""
    page = context.holder_page
    if not page.pin_entered_today():
        return context.json({"state": "pin_required"}, status_code=403)
    try:
        # counts `qr_per_holder` in the same store round trip that reads the card's state
        tokens = await qr_tokens.issue_qr_tokens(context.runtime, page.holder)
    except CardNotActive as error:
        return context.json({"state": error.code.replace("-", "_")}, status_code=409)
    except RateLimited as error:
        retry = error.extensions["retry_after"]
        return context.json({"state": "too_many", "retry_after": retry}, status_code=429)
    current = tokens.current
    return context.json(
        {
            "state": "ok",
            "token": current.token,
            "expires_at": current.expires_at.timestamp(),
            "refresh_after": tokens.refresh_after,
            "large": context.care,
            "modules": modules(current.token, large_high_contrast=context.care),
        }
    )


@router.post(f"{BASE}/qr/unlock")
async def unlock_qr(context: HolderForm) -> Response:
    """The PIN before the first QR of the day (a session a channel opened without one)."""
    page = context.holder_page
    try:
        await confirm_pin(context.runtime, page.holder, context.field("pin"))
    except DomainError as error:
        return await _card_with_error(context, error)
    context.page = await note_pin_entered(context.runtime, page, care=context.care)
    return context.redirect(f"{BASE}/card")


async def _card_with_error(context: PageContext, error: DomainError) -> Response:
    async with context.runtime.database.session() as session:
        return await _card(
            context,
            session,
            status_code=error.status,
            message=refusal(context, error),
            kind="error",
        )


@router.get(f"{BASE}/card/report-loss")
async def report_loss_page(context: HolderPage) -> Response:
    return context.render("report_loss.html", title=context.t("report_loss_title"), back="card")


@router.post(f"{BASE}/card/report-loss")
async def report_loss(context: HolderForm) -> Response:
    try:
        await lifecycle_service.holder_transition(
            context.runtime, context.holder_page.holder, CardAction.report_loss
        )
    except DomainError as error:
        return await _card_with_error(context, error)
    return context.redirect(f"{BASE}/card?done=lost")


@router.get(f"{BASE}/card/cancel-loss")
async def cancel_loss_page(context: HolderPage) -> Response:
    return context.render("cancel_loss.html", title=context.t("cancel_loss_title"), back="card")


@router.post(f"{BASE}/card/cancel-loss")
async def cancel_loss(context: HolderForm) -> Response:
    try:
        await lifecycle_service.holder_transition(
            context.runtime,
            context.holder_page.holder,
            CardAction.cancel_loss,
            pin=context.field("pin"),
        )
    except DomainError as error:
        return context.render(
            "cancel_loss.html",
            status_code=error.status,
            title=context.t("cancel_loss_title"),
            back="card",
            message=refusal(context, error),
            kind="error",
        )
    return context.redirect(f"{BASE}/card?done=found")


@router.get(f"{BASE}/pin")
async def pin_page(context: HolderPage) -> Response:
    return context.render("pin.html", title=context.t("pin_title"), back="card")


@router.post(f"{BASE}/pin")
async def change_pin(context: HolderForm) -> Response:
    new_pin = context.field("new_pin")
    try:
        if new_pin != context.field("new_pin_again"):
            raise WeakPinError(context.t("pin_mismatch"), rule="mismatch")
        await service.change_pin(
            context.runtime, context.holder_page.holder, context.field("old_pin"), new_pin
        )
    except DomainError as error:
        mismatch = isinstance(error, WeakPinError) and error.extensions.get("rule") == "mismatch"
        return context.render(
            "pin.html",
            status_code=error.status,
            title=context.t("pin_title"),
            back="card",
            message=context.t("pin_mismatch") if mismatch else refusal(context, error),
            kind="error",
        )
    return context.redirect(f"{BASE}/card?done=pin")


@router.get(f"{BASE}/access-log")
async def access_log_page(
    context: HolderPage,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    limit = ACCESS_LOG_PAGE_CARE if context.care else ACCESS_LOG_PAGE
    try:
        log = await holder_access_log(
            session, context.holder_page.card_id, limit=limit, cursor=cursor
        )
    except InvalidCursor:
        return context.redirect(f"{BASE}/access-log")
    return context.render(
        "access_log.html",
        title=context.t("access_log_title"),
        back="card",
        entries=log.entries,
        next_cursor=log.next_cursor,
        local_time=local_time,
        scene_title=lambda code: _scene_title(context, code),
    )


def _scene_title(context: PageContext, code: str) -> str:
    scene = context.runtime.catalog.scenes.get(code)
    if scene is None:
        return code
    return scene.title_zh if context.language == "zh" else scene.title_en


@router.get(f"{BASE}/complaints")
async def complaints_page(context: HolderPage, session: SessionDep) -> Response:
    filed = await complaints.holder_complaints(
        session, context.holder_page.card_id, COMPLAINTS_SHOWN
    )
    return context.render(
        "complaints.html",
        title=context.t("complaints_title"),
        back="card",
        complaints=filed,
        kinds=KINDS,
        statuses={status.value: f"complaint_status_{status.value}" for status in ComplaintStatus},
        local_time=local_time,
    )


@router.post(f"{BASE}/complaints")
async def file_complaint(context: HolderForm, session: SessionDep) -> Response:
    kind, details = context.field("kind"), context.field("details")
    try:
        if kind not in KINDS or not details or len(details) > 2000:
            raise InvalidRequest("a complaint needs a kind and at most 2000 characters of details")
        filed = await complaints.file_complaint(
            session,
            context.runtime.store,
            context.runtime.pii,
            complaints.ComplaintForm(kind=ComplaintKind(kind), details=details),
            card_id=context.holder_page.card_id,
        )
    except DomainError as error:
        listed = await complaints.holder_complaints(
            session, context.holder_page.card_id, COMPLAINTS_SHOWN
        )
        return context.render(
            "complaints.html",
            status_code=error.status,
            title=context.t("complaints_title"),
            back="card",
            complaints=listed,
            kinds=KINDS,
            statuses={s.value: f"complaint_status_{s.value}" for s in ComplaintStatus},
            local_time=local_time,
            message=refusal(context, error),
            kind="error",
            details=details,
        )
    await session.commit()
    listed = await complaints.holder_complaints(
        session, context.holder_page.card_id, COMPLAINTS_SHOWN
    )
    return context.render(
        "complaints.html",
        status_code=201,
        title=context.t("complaints_title"),
        back="card",
        complaints=listed,
        kinds=KINDS,
        statuses={s.value: f"complaint_status_{s.value}" for s in ComplaintStatus},
        local_time=local_time,
        message=context.t("complaint_filed", tracking=filed.tracking_number),
        kind="done",
    )


@router.get(f"{BASE}/notifications")
async def notifications_page(context: HolderPage, session: SessionDep) -> Response:
    limit = ACCESS_LOG_PAGE_CARE if context.care else ACCESS_LOG_PAGE
    shown = await notifications.inbox(
        session, context.holder_page.card_id, unread_only=False, limit=limit
    )
    return context.render(
        "notifications.html",
        title=context.t("notifications"),
        back="card",
        notifications=shown,
        local_time=local_time,
    )


@router.post(f"{BASE}/notifications/read")
async def notifications_read(context: HolderForm, session: SessionDep) -> Response:
    await notifications.mark_read(session, context.holder_page.card_id, None)
    await session.commit()
    return context.redirect(f"{BASE}/notifications")


@router.get(f"{BASE}/channels")
async def channels_page(
    context: HolderPage, session: SessionDep, done: str | None = None
) -> Response:
    linked = await channels.holder_channels(session, context.holder_page.holder)
    return context.render(
        "channels.html",
        title=context.t("channels"),
        back="card",
        channels=linked,
        local_time=local_time,
        message=context.t("channel_unlinked") if done == "unlinked" else None,
        kind="done",
    )


@router.post(f"{BASE}/channels/unlink")
async def unlink_channel(context: HolderForm, session: SessionDep) -> Response:
    try:
        await channels.unlink_channel(
            session, context.runtime, context.holder_page.holder, context.field("channel_id")
        )
    except ChannelLinkNotFound:
        return context.redirect(f"{BASE}/channels")
    await session.commit()
    return context.redirect(f"{BASE}/channels?done=unlinked")


@router.get(f"{BASE}/family")
async def family_page(context: HolderPage, session: SessionDep) -> Response:
    links = await family.list_links(session, context.holder_page.holder)
    return context.render("family.html", title=context.t("family"), back="card", links=links)


@router.get(f"{BASE}/family/{{link_id}}")
async def ward_page(context: HolderPage, session: SessionDep, link_id: uuid.UUID) -> Response:
    """A ward's QR, shown by the guardian (scope `show_qr`), drawn as the holder's own is."""
    links = await family.list_links(session, context.holder_page.holder)
    shown = [v for v in links if v.link.id == link_id and v.role == "guardian"]
    if not shown:
        return context.redirect(f"{BASE}/family")
    return context.render(
        "family_ward.html",
        title=context.t("family_ward_qr"),
        back="family",
        ward_number=shown[0].other_card_number,
        qr_endpoint=f"{BASE}/family/{link_id}/qr",
        idle=idle_timeout(context.runtime, care=context.care),
    )


@router.get(f"{BASE}/family/{{link_id}}/qr")
async def ward_qr(context: HolderFetch, session: SessionDep, link_id: uuid.UUID) -> Response:
    page = context.holder_page
    if not page.pin_entered_today():
        return context.json({"state": "pin_required"}, status_code=403)
    try:
        await _limit(context, RateLimitRule.qr_per_holder, str(page.card_id))
        issued = await family.ward_qr(session, context.runtime, page.holder, link_id)
    except CardNotActive as error:
        return context.json({"state": error.code.replace("-", "_")}, status_code=409)
    except RateLimited as error:
        retry = error.extensions["retry_after"]
        return context.json({"state": "too_many", "retry_after": retry}, status_code=429)
    except DomainError:
        return context.json({"state": "failed"}, status_code=403)
    return context.json(
        {
            "state": "ok",
            "token": issued.token,
            "expires_at": issued.expires_at.timestamp(),
            "refresh_after": context.runtime.settings.qr_refresh_after,
            "large": context.care,
            "modules": modules(issued.token, large_high_contrast=context.care),
        }
    )


@router.get(f"{BASE}/more")
async def more_page(context: HolderPage) -> Response:
    return context.render("more.html", title=context.t("more"), back="card")


@router.post(f"{BASE}/logout")
async def logout(context: HolderForm) -> Response:
    await close_page_session(context.runtime, context.holder_page)
    context.page, context.session_id = None, None
    context.set_cookie(SESSION_COOKIE, None)
    return context.redirect(f"{BASE}/login?done=out")


_RETURN_PAGES = {
    f"{BASE}/",
    f"{BASE}/login",
    f"{BASE}/activate",
    f"{BASE}/card",
    f"{BASE}/card/report-loss",
    f"{BASE}/card/cancel-loss",
    f"{BASE}/pin",
    f"{BASE}/access-log",
    f"{BASE}/complaints",
    f"{BASE}/more",
    f"{BASE}/notifications",
    f"{BASE}/channels",
    f"{BASE}/family",
    f"{BASE}/licences",
    f"{BASE}/documents",
    f"{BASE}/consents",
    f"{BASE}/payments",
    f"{BASE}/bank",
}
"""Where switching elder mode may lead back to (never an address from outside)."""
_RETURN_DETAIL = re.compile(
    rf"{BASE}/(licences|documents|family)/[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-"
    r"[0-9a-f]{4}-[0-9a-f]{12}(/present)?"
)
"""A licence, a document or a ward's code: an id, nothing else."""


def _return_page(back: str) -> str:
    return back if back in _RETURN_PAGES or _RETURN_DETAIL.fullmatch(back) else f"{BASE}/"


def install(app: FastAPI) -> None:
    """The pages, their static files (vendored, same origin) and their two refusals."""
    app.include_router(router)
    for area in (h5_licences, h5_vault, h5_consents, h5_payments):
        app.include_router(area.router)
    app.include_router(launch_router)
    app.mount(f"{BASE}/static", StaticFiles(directory=pages.STATIC_DIR), name="h5-static")
    app.add_exception_handler(pages.LoginRequired, pages.login_required)
    app.add_exception_handler(pages.CsrfRefused, pages.csrf_refused)
