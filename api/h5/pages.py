"""Rendering a mobile page and knowing who asks: cookies, the CSRF check, the strict CSP.

Cookies (all `HttpOnly`, `SameSite=Lax`, `Path=/h5`, `Secure` except on a loopback host
outside production, where a developer's browser talks plain HTTP):

- `ssc_h5_device`: the browser's device secret (a year): what binds this browser to a card.
- `ssc_h5_session`: the page session id (a browser session cookie; the store forgets the
  session after the idle time-out).
- `ssc_h5_care`: `1` when elder mode is on (a year): remembered per device.

`Lax` and not `Strict`: a channel app opens the page with a top-level navigation from its
own site, and the page must keep its session through the launch redirect. Every write is a
POST carrying a CSRF token bound to the device secret and the session.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.deps import RuntimeDep
from api.h5.texts import text
from api.languages import Language, language_of
from app.cards.models import CardStatus
from app.config import Environment as Deployment
from app.h5.origins import frame_ancestors
from app.h5.sessions import (
    DEVICE_PREFIX,
    PageSession,
    csrf_matches,
    csrf_token,
    load_page_session,
    new_device_secret,
    well_formed,
)
from app.runtime import Runtime

BASE = "/h5"
DEVICE_COOKIE = "ssc_h5_device"
SESSION_COOKIE = "ssc_h5_session"
CARE_COOKIE = "ssc_h5_care"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
YEAR = 365 * 24 * 3600
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "h5"
MAX_FIELD = 4000
"""Longer form values are cut (the domain rules refuse them anyway); the body limit holds."""

templates = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def content_security_policy(frame_ancestors: list[str]) -> str:
    """Nothing inline, nothing from another origin; framed only by the channels registered."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {ancestors}"
    )


def _loopback(host: str | None) -> bool:
    if host in (None, ""):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class PageContext:
    """One request to a page: who, in which language and mode, and what to set on the way out."""

    request: Request
    runtime: Runtime
    language: Language
    care: bool
    device_secret: str
    new_device: bool
    session_id: str | None = None
    page: PageSession | None = None
    form: dict[str, str] = field(default_factory=dict)
    frame_ancestors: list[str] = field(default_factory=list)
    """The registered origins of the active channel apps (`app.h5.origins`)."""
    cookies: list[tuple[str, str | None, int | None]] = field(default_factory=list)
    """Cookies to set (value, max-age) or clear (None) on the response."""

    def t(self, key: str, **values: object) -> str:
        words = text(key, self.language, care=self.care)
        return words.format(**values) if values else words

    @property
    def csrf(self) -> str:
        return csrf_token(self.runtime, self.device_secret, self.session_id)

    @property
    def secure_cookies(self) -> bool:
        if self.runtime.settings.environment is Deployment.production:
            return True
        return not _loopback(self.request.url.hostname)

    @property
    def holder_page(self) -> PageSession:
        assert self.page is not None, "a holder page always has a session"
        return self.page

    def field(self, name: str) -> str:
        return self.form.get(name, "")[:MAX_FIELD].strip()

    def set_cookie(self, name: str, value: str | None, max_age: int | None = None) -> None:
        self.cookies.append((name, value, max_age))

    def finish(self, response: Response) -> Response:
        """Adds the page headers and the cookies to a response of this request."""
        if self.new_device:
            self.set_cookie(DEVICE_COOKIE, self.device_secret, YEAR)
            self.new_device = False
        for name, value, max_age in self.cookies:
            if value is None:
                response.delete_cookie(
                    name, path=BASE, secure=self.secure_cookies, httponly=True, samesite="lax"
                )
            else:
                response.set_cookie(
                    name,
                    value,
                    max_age=max_age,
                    path=BASE,
                    secure=self.secure_cookies,
                    httponly=True,
                    samesite="lax",
                )
        response.headers["Content-Security-Policy"] = content_security_policy(self.frame_ancestors)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Accept-Language, Cookie"
        return response

    def render(self, template: str, *, status_code: int = 200, **values: Any) -> Response:
        body = templates.get_template(f"h5/{template}").render(
            t=self.t,
            care=self.care,
            lang=self.language,
            csrf=self.csrf,
            signed_in=self.page is not None,
            here=self.request.url.path,
            **values,
        )
        return self.finish(HTMLResponse(body, status_code=status_code))

    def redirect(self, path: str) -> Response:
        return self.finish(RedirectResponse(path, status_code=303))

    def json(self, body: dict[str, Any], *, status_code: int = 200) -> Response:
        return self.finish(JSONResponse(body, status_code=status_code))


class LoginRequired(Exception):
    """A holder page without a live session: the browser is sent to sign in."""

    def __init__(self, context: PageContext) -> None:
        self.context = context


class CsrfRefused(Exception):
    """A form without this browser's and session's CSRF token."""

    def __init__(self, context: PageContext) -> None:
        self.context = context


async def page_context(request: Request, runtime: RuntimeDep) -> PageContext:
    """Any page: language, mode, the browser's device secret (a new one on a first visit) and
    its session, if it has a live one."""
    care = request.cookies.get(CARE_COOKIE) == "1"
    device = request.cookies.get(DEVICE_COOKIE)
    new_device = not well_formed(device, DEVICE_PREFIX)
    context = PageContext(
        request=request,
        runtime=runtime,
        language=language_of(request.headers.get("accept-language")),
        care=care,
        device_secret=new_device_secret() if new_device else str(device),
        new_device=new_device,
        frame_ancestors=await frame_ancestors(runtime),
    )
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is not None:
        context.page = await load_page_session(runtime, session_id, care=care)
        if context.page is None:
            context.set_cookie(SESSION_COOKIE, None)
        else:
            context.session_id = session_id
    return context


PageDep = Annotated[PageContext, Depends(page_context)]


async def _read_form(context: PageContext) -> None:
    form = await context.request.form()
    context.form = {
        name: value for name, value in form.multi_items() if not isinstance(value, UploadFile)
    }


async def public_form(context: PageDep) -> PageContext:
    """A form anyone may post (sign in, elder mode): the CSRF token of this browser."""
    await _read_form(context)
    if not csrf_matches(
        context.runtime, context.form.get(CSRF_FIELD), context.device_secret, context.session_id
    ):
        raise CsrfRefused(context)
    return context


async def holder_page(context: PageDep) -> PageContext:
    """A page of the signed-in holder: without a live session, the browser signs in first."""
    if context.page is None:
        raise LoginRequired(context)
    return context


async def holder_form(context: Annotated[PageContext, Depends(holder_page)]) -> PageContext:
    """A holder's form: the session, then the CSRF token of this browser and session."""
    return await public_form(context)


async def holder_fetch(context: Annotated[PageContext, Depends(holder_page)]) -> PageContext:
    """The page script's own requests: the session and the CSRF token in `X-CSRF-Token`."""
    presented = context.request.headers.get(CSRF_HEADER)
    if not csrf_matches(context.runtime, presented, context.device_secret, context.session_id):
        raise CsrfRefused(context)
    return context


PublicForm = Annotated[PageContext, Depends(public_form)]
HolderPage = Annotated[PageContext, Depends(holder_page)]
HolderForm = Annotated[PageContext, Depends(holder_form)]
HolderFetch = Annotated[PageContext, Depends(holder_fetch)]


def wants_json(request: Request) -> bool:
    """The page script's code fetches (`/h5/qr`, a ward's, a licence's): JSON, not a page."""
    path = request.url.path
    return path.startswith(f"{BASE}/") and path.endswith("/qr")


async def login_required(request: Request, error: Exception) -> Response:
    assert isinstance(error, LoginRequired)
    context = error.context
    if wants_json(request):
        return context.json({"state": "signed_out"}, status_code=401)
    return context.redirect(f"{BASE}/login")


async def csrf_refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, CsrfRefused)
    context = error.context
    if wants_json(request):
        return context.json({"state": "forbidden"}, status_code=403)
    return context.render(
        "message.html",
        status_code=403,
        title=context.t("csrf_title"),
        message=context.t("error_csrf"),
        kind="error",
    )


STATUS_TEXT = {
    CardStatus.active: "status_active",
    CardStatus.lost: "status_lost",
    CardStatus.suspended: "status_suspended",
    CardStatus.cancelled: "status_cancelled",
}
