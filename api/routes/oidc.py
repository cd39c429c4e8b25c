"""OpenID Connect provider: discovery, keys, the authorization endpoint with its login and
consent pages, token, userinfo, revocation, introspection, logout and the device grant; the
administrators' relying-party registration and the holder's consents and device sign-ins.

The protocol endpoints (`/oidc/...`) speak OAuth, not problem+json: errors are
`{"error", "error_description"}` (RFC 6749 5.2) or a redirect to the client (4.1.2.1). They
take form bodies and are left out of the OpenAPI document (docs/oidc.md describes them);
their clients authenticate in the request (`app.oidc.clients`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request, status
from fastapi import Path as PathParam
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.auth import CurrentAdmin, CurrentHolder
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.languages import language_of
from api.rate_limits import OIDC_LOGIN_LIMITS, TOKEN_LIMITS
from api.schemas.oidc import (
    ClientIdText,
    ConsentOut,
    DeviceDecided,
    DeviceDecision,
    DeviceRequestOut,
    RelyingPartyCreate,
    RelyingPartyCreated,
    RelyingPartyOut,
    UserCode,
    read_form,
    single_values,
)
from app.db import is_unavailable_error
from app.errors import DomainError, ServiceUnavailable
from app.holders.errors import InvalidCredentials, PinLocked
from app.holders.service import authenticate_on_the_web
from app.oidc import clients as rp
from app.oidc import device, service, state
from app.oidc.clients import AUTHORIZATION_CODE, DEVICE_CODE, REFRESH_TOKEN
from app.oidc.errors import (
    CardNotActive,
    InvalidClient,
    InvalidGrant,
    InvalidOAuthRequest,
    InvalidRedirect,
    InvalidToken,
    OAuthError,
    UnsupportedGrantType,
)
from app.oidc.models import ClientAuthMethod, RelyingParty, SubjectType
from app.oidc.scopes import CLAIMS_SUPPORTED, REQUIRED_SCOPE, SCOPES, ordered
from app.runtime import Runtime
from app.store import StoreUnavailable
from token_service.oidc import IdTokenError, verify_id_token

router = APIRouter(tags=["oidc"], route_class=StrictJsonRoute)
logger = logging.getLogger(__name__)

LOGIN_COOKIE = "ssc_oidc_login"
BROWSER_COOKIE = "ssc_oidc_browser"
COOKIE_PATH = "/oidc"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "lang": "zh-CN",
        "service": "电子社保卡 · 授权登录",
        "login_title": "使用社保卡登录",
        "login_for": "请求使用您的社保卡登录",
        "card_number": "社会保障卡号或身份证号",
        "pin": "社保卡密码（6位数字）",
        "login_button": "登录",
        "login_hint": "也可以在电子社保卡 App 中扫码登录。",
        "consent_title": "授权确认",
        "consent_asks": "申请获取以下信息",
        "required": "必需",
        "consent_hint": "可取消勾选不愿提供的信息；授权可随时在 App 中撤销。",
        "approve": "同意并继续",
        "deny": "拒绝",
        "wrong": "卡号或密码不正确。",
        "locked": "密码错误次数过多，已被锁定，请稍后再试。",
        "inactive": "该社保卡当前不可用于登录。",
        "error": "无法完成登录",
        "expired": "登录请求已失效，请返回应用重新发起。",
        "forbidden": "请求校验失败，请返回应用重新发起。",
        "logged_out": "您已退出登录。",
        "device": "请打开电子社保卡 App，扫描二维码或输入代码确认登录。",
        "phone_button": "改为在手机上确认",
        "phone_title": "请在手机上确认",
        "phone_hint": "已向该卡的电子社保卡 App 发送登录请求。"
        "请核对以下代码，并在手机上输入密码确认：",
        "phone_wait": "确认后本页面会自动继续。",
        "phone_refresh": "已确认？点此继续",
    },
    "en": {
        "lang": "en",
        "service": "E-social security card · Sign in",
        "login_title": "Sign in with your social security card",
        "login_for": "asks you to sign in with your card",
        "card_number": "Card number or resident ID number",
        "pin": "Card PIN (6 digits)",
        "login_button": "Sign in",
        "login_hint": "You can also scan to sign in with the e-card app.",
        "consent_title": "Allow access",
        "consent_asks": "asks for the following",
        "required": "required",
        "consent_hint": "Untick what you do not want to share; you can withdraw this in the app.",
        "approve": "Allow and continue",
        "deny": "Deny",
        "wrong": "The card number or PIN is not correct.",
        "locked": "Too many wrong PINs: the PIN is locked for now. Try again later.",
        "inactive": "This card cannot be used to sign in.",
        "error": "Sign-in cannot continue",
        "expired": "This sign-in request has expired. Go back to the app and start again.",
        "forbidden": "The form could not be verified. Go back to the app and start again.",
        "logged_out": "You are signed out.",
        "device": "Open the e-card app and scan the code, or enter it, to approve the sign-in.",
        "phone_button": "Approve on my phone instead",
        "phone_title": "Approve on your phone",
        "phone_hint": "The e-card app of this card has the request. Check that it shows this code, "
        "then approve it there with your PIN:",
        "phone_wait": "This page continues by itself once you have approved.",
        "phone_refresh": "Approved? Continue",
    },
}


def texts(request: Request) -> dict[str, str]:
    """Chinese unless the browser prefers English."""
    return TEXTS[language_of(request.headers.get("accept-language"))]


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    body = _TEMPLATES.get_template(f"oidc/{template}").render(t=texts(request), **context)
    return HTMLResponse(body, status_code=status_code, headers=NO_STORE)


def _message(request: Request, key: str, status_code: int) -> HTMLResponse:
    t = texts(request)
    return _page(request, "message.html", status_code, heading=t["error"], message=t[key])


def _secure(runtime: Runtime) -> bool:
    return service.issuer(runtime).startswith("https://")


def _set_cookie(response: Response, runtime: Runtime, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        secure=_secure(runtime),
        samesite="lax",
    )


def _redirect(uri: str, params: dict[str, str | None], code: int) -> RedirectResponse:
    query = urlencode({name: value for name, value in params.items() if value is not None})
    joiner = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{joiner}{query}", status_code=code, headers=NO_STORE)


def _redirect_error(
    runtime: Runtime,
    uri: str,
    error: str,
    description: str,
    *,
    state: str | None,
    code: int = 302,
) -> RedirectResponse:
    return _redirect(
        uri,
        {
            "error": error,
            "error_description": description,
            "state": state,
            "iss": service.issuer(runtime),
        },
        code,
    )


def _oauth_error(error: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if isinstance(error, InvalidClient):
        headers["WWW-Authenticate"] = 'Basic realm="oidc"'
    if isinstance(error, InvalidToken):
        headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", error_description="{error.detail}"'
        )
    body = {"error": error.error, "error_description": error.detail}
    return Response(
        orjson.dumps(body), status_code=error.status, media_type="application/json", headers=headers
    )


def _json(body: dict[str, Any], status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=NO_STORE
    )


# --- discovery and keys ----------------------------------------------------------------------


@router.get(
    "/.well-known/openid-configuration",
    summary="OpenID Connect discovery (OpenID Connect Discovery 1.0)",
    response_model=dict[str, Any],
)
async def discovery(runtime: RuntimeDep) -> dict[str, Any]:
    base = service.issuer(runtime)
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oidc/authorize",
        "token_endpoint": f"{base}/oidc/token",
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "jwks_uri": f"{base}/oidc/jwks.json",
        "revocation_endpoint": f"{base}/oidc/revoke",
        "introspection_endpoint": f"{base}/oidc/introspect",
        "end_session_endpoint": f"{base}/oidc/logout",
        "device_authorization_endpoint": f"{base}/oidc/device_authorization",
        "scopes_supported": list(SCOPES),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": [SubjectType.pairwise.value, SubjectType.public.value],
        "token_endpoint_auth_methods_supported": [method.value for method in ClientAuthMethod],
        "token_endpoint_auth_signing_alg_values_supported": rp.ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": [method.value for method in ClientAuthMethod],
        "introspection_endpoint_auth_methods_supported": [
            method.value for method in ClientAuthMethod
        ],
        "prompt_values_supported": list(service.PROMPTS),
        "acr_values_supported": [service.ACR],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["zh-CN", "en"],
    }


@router.get(
    "/oidc/jwks.json",
    summary="The ID token signing keys (purpose oidc; never the QR token keys)",
    response_class=Response,
    responses={200: {"content": {"application/jwk-set+json": {}}}},
)
async def oidc_jwks(runtime: RuntimeDep) -> Response:
    keys = [{**key.jwk(), "purpose": "oidc"} for key in runtime.oidc_keyring.published()]
    return Response(
        orjson.dumps({"keys": keys}),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


# --- the authorization endpoint --------------------------------------------------------------


def _query(request: Request) -> dict[str, str] | None:
    """The query's parameters, or None when one is repeated (RFC 6749 3.1)."""
    items = request.query_params.multi_items()
    params = dict(items)
    return params if len(params) == len(items) else None


@router.get("/oidc/authorize", include_in_schema=False)
async def authorize(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    params = _query(request)
    if params is None:
        return _message(request, "expired", 400)
    try:
        client, outcome = await service.validate_authorization(session, params)
    except InvalidRedirect:
        return _message(request, "expired", 400)
    if isinstance(outcome, service.RedirectError):
        return _redirect_error(
            runtime, outcome.redirect_uri, outcome.error, outcome.description, state=outcome.state
        )
    pending = outcome

    async def step() -> Response:
        login = await service.read_login(runtime, request.cookies.get(LOGIN_COOKIE))
        return await _proceed(
            request, runtime, session, client, pending, login=login, redirect_code=302
        )

    return await _failures_redirected(runtime, session, pending, step, code=302)


async def _failures_redirected(
    runtime: Runtime,
    session: AsyncSession,
    pending: service.AuthorizationRequest,
    step: Callable[[], Awaitable[Response]],
    *,
    code: int,
) -> Response:
    """Runs one step of a validated request. An outage (database or store) or a bug in it goes
    back to the client as RFC 6749 4.1.2.1's `temporarily_unavailable` or `server_error`
    instead of leaving the browser on an error page of ours; the transaction is rolled back,
    so nothing of the step is stored."""
    try:
        return await step()
    except (StoreUnavailable, ServiceUnavailable):
        error, description = "temporarily_unavailable", "the service is busy; try again shortly"
    except DomainError:
        raise
    except Exception as failure:
        if is_unavailable_error(failure):
            runtime.database.unavailable(failure)
            error, description = "temporarily_unavailable", "the service is busy; try again"
        else:
            logger.exception("an authorization step failed")
            error, description = "server_error", "the sign-in failed; try again later"
    with contextlib.suppress(Exception):
        await session.rollback()
    return _redirect_error(
        runtime, pending.redirect_uri, error, description, state=pending.state, code=code
    )


async def _proceed(
    request: Request,
    runtime: Runtime,
    session: AsyncSession,
    client: RelyingParty,
    pending: service.AuthorizationRequest,
    *,
    login: service.LoginSession | None,
    redirect_code: int,
) -> Response:
    """The next step of a request: the login page, the consent page, or the code."""
    if pending.card_id is None:
        if service.login_needed(pending, login):
            if "none" in pending.prompt:
                return _redirect_error(
                    runtime,
                    pending.redirect_uri,
                    "login_required",
                    "log in first",
                    state=pending.state,
                )
            return await _login_page(request, runtime, client, pending)
        assert login is not None
        pending.card_id, pending.auth_time = str(login.card_id), login.auth_time
    consent = await service.remembered_consent(session, _card(pending), client.client_id)
    granted = service.consent_covers(consent, pending.scopes)
    if granted is not None and "consent" not in pending.prompt:
        return await _code(runtime, pending, granted, redirect_code)
    if "none" in pending.prompt:
        return _redirect_error(
            runtime, pending.redirect_uri, "consent_required", "consent first", state=pending.state
        )
    return await _consent_page(request, runtime, client, pending)


def _card(pending: service.AuthorizationRequest) -> uuid.UUID:
    return uuid.UUID(pending.card_id)


async def _code(
    runtime: Runtime, pending: service.AuthorizationRequest, scopes: list[str], redirect_code: int
) -> Response:
    code = await service.issue_code(runtime, pending, scopes)
    await service.drop_pending(runtime, pending.id)
    return _redirect(
        pending.redirect_uri,
        {"code": code, "state": pending.state, "iss": service.issuer(runtime)},
        redirect_code,
    )


def _browser_secret(request: Request) -> tuple[str, bool]:
    existing = request.cookies.get(BROWSER_COOKIE)
    if existing and 20 <= len(existing) <= 64:
        return existing, False
    return secrets.token_urlsafe(24), True


async def _login_page(
    request: Request,
    runtime: Runtime,
    client: RelyingParty,
    pending: service.AuthorizationRequest,
    *,
    error: str | None = None,
    status_code: int = 200,
    card_number: str = "",
) -> Response:
    pending.card_id = pending.auth_time = None
    await service.save_pending(runtime, pending)
    secret, fresh = _browser_secret(request)
    response = _page(
        request,
        "login.html",
        status_code,
        client=client,
        action="/oidc/authorize",
        request_id=pending.id,
        csrf=service.csrf_token(runtime, secret, pending.id),
        error=error,
        card_number=card_number,
    )
    if fresh:
        _set_cookie(response, runtime, BROWSER_COOKIE, secret, 24 * 3600)
    return response


async def _consent_page(
    request: Request, runtime: Runtime, client: RelyingParty, pending: service.AuthorizationRequest
) -> Response:
    await service.save_pending(runtime, pending)
    secret, fresh = _browser_secret(request)
    zh = texts(request)["lang"] == "zh-CN"
    scopes = [
        {
            "name": name,
            "required": name == REQUIRED_SCOPE,
            "label": SCOPES[name].label_zh if zh else SCOPES[name].label_en,
        }
        for name in pending.scopes
    ]
    response = _page(
        request,
        "consent.html",
        client=client,
        action="/oidc/authorize",
        request_id=pending.id,
        csrf=service.csrf_token(runtime, secret, pending.id),
        scopes=scopes,
    )
    if fresh:
        _set_cookie(response, runtime, BROWSER_COOKIE, secret, 24 * 3600)
    return response


@router.post("/oidc/authorize", include_in_schema=False, dependencies=OIDC_LOGIN_LIMITS)
async def authorize_form(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The login and consent forms post here (the hidden `step` says which)."""
    try:
        form = read_form(
            await request.body(),
            request.headers.get("content-type"),
            repeatable=frozenset({"scope"}),
        )
    except InvalidOAuthRequest:
        return _message(request, "forbidden", 400)
    fields = single_values(form)
    request_id = fields.get("request_id", "")
    pending = await service.load_pending(runtime, request_id)
    if pending is None:
        return _message(request, "expired", 400)
    if not service.csrf_ok(
        runtime, request.cookies.get(BROWSER_COOKIE), request_id, fields.get("csrf_token", "")
    ):
        return _message(request, "forbidden", 403)
    client = await rp.find_client(session, pending.client_id)
    if client is None:
        return _message(request, "expired", 400)
    loaded = pending

    async def step() -> Response:
        return await _form_step(request, runtime, session, client, loaded, form=form, fields=fields)

    return await _failures_redirected(runtime, session, pending, step, code=303)


async def _form_step(
    request: Request,
    runtime: Runtime,
    session: AsyncSession,
    client: RelyingParty,
    pending: service.AuthorizationRequest,
    *,
    form: dict[str, str | list[str]],
    fields: dict[str, str],
) -> Response:
    step = fields.get("step")
    if step == "login":
        return await _login(request, runtime, session, client, pending, fields=fields)
    if step == "consent" and pending.card_id is not None:
        decision = fields.get("decision")
        if decision == "deny":
            await service.drop_pending(runtime, pending.id)
            return _redirect_error(
                runtime,
                pending.redirect_uri,
                "access_denied",
                "the holder denied",
                state=pending.state,
                code=303,
            )
        if decision == "approve":
            ticked = form.get("scope", [])
            chosen = ticked if isinstance(ticked, list) else [ticked]
            granted = ordered([s for s in pending.scopes if s == REQUIRED_SCOPE or s in chosen])
            await service.remember_consent(session, _card(pending), client.client_id, granted)
            return await _code(runtime, pending, granted, 303)
    return _message(request, "forbidden", 400)


async def _login(
    request: Request,
    runtime: Runtime,
    session: AsyncSession,
    client: RelyingParty,
    pending: service.AuthorizationRequest,
    *,
    fields: dict[str, str],
) -> Response:
    t = texts(request)
    # Printable characters only: PostgreSQL refuses NUL in text (a 500, not an answer).
    card_number = "".join(ch for ch in fields.get("card_number", "")[:32] if ch.isprintable())
    if fields.get("via") == "phone":
        pending.phone_code, user_code = await device.start_for_browser(
            session, runtime, client, pending.scopes, card_number
        )
        await service.save_pending(runtime, pending)
        return _waiting_page(request, runtime, client, pending, user_code)
    pin = fields.get("pin", "")[:32]
    try:
        card = await authenticate_on_the_web(runtime, card_number, pin)
        await service.ensure_card_active(session, card.id)
    except InvalidCredentials:
        return await _login_page(
            request,
            runtime,
            client,
            pending,
            error=t["wrong"],
            status_code=401,
            card_number=card_number,
        )
    except PinLocked:
        return await _login_page(
            request,
            runtime,
            client,
            pending,
            error=t["locked"],
            status_code=423,
            card_number=card_number,
        )
    except CardNotActive:
        return await _login_page(
            request, runtime, client, pending, error=t["inactive"], status_code=403
        )
    raw, login = await service.open_login(runtime, card.id)
    pending.card_id, pending.auth_time = str(card.id), login.auth_time
    response = await _proceed(
        request, runtime, session, client, pending, login=login, redirect_code=303
    )
    _set_cookie(response, runtime, LOGIN_COOKIE, raw, runtime.settings.oidc_login_ttl)
    return response


def _waiting_page(
    request: Request,
    runtime: Runtime,
    client: RelyingParty,
    pending: service.AuthorizationRequest,
    user_code: str,
) -> Response:
    secret, _ = _browser_secret(request)
    query = urlencode(
        {
            "request_id": pending.id,
            "csrf_token": service.csrf_token(runtime, secret, pending.id),
            "user_code": user_code,
        }
    )
    return _page(
        request,
        "waiting.html",
        client=client,
        user_code=user_code,
        poll=f"/oidc/authorize/phone?{query}",
    )


@router.get("/oidc/authorize/phone", include_in_schema=False)
async def authorize_by_phone(
    request: Request, runtime: RuntimeDep, session: SessionDep
) -> Response:
    """Where the "approve on my phone" page polls (a meta refresh: no JavaScript needed)."""
    params = _query(request) or {}
    request_id = params.get("request_id", "")
    pending = await service.load_pending(runtime, request_id)
    if pending is None or pending.phone_code is None:
        return _message(request, "expired", 400)
    if not service.csrf_ok(
        runtime, request.cookies.get(BROWSER_COOKIE), request_id, params.get("csrf_token", "")
    ):
        return _message(request, "forbidden", 403)
    client = await rp.find_client(session, pending.client_id)
    if client is None:
        return _message(request, "expired", 400)
    approval = await device.browser_approval(runtime, pending.phone_code)
    if approval.status == device.PENDING:
        return _waiting_page(request, runtime, client, pending, params.get("user_code", "")[:9])
    if approval.status == device.DENIED:
        await service.drop_pending(runtime, pending.id)
        return _redirect_error(
            runtime, pending.redirect_uri, "access_denied", "the holder denied", state=pending.state
        )
    if approval.status != device.APPROVED or approval.card_id is None:
        return await _login_page(request, runtime, client, pending, error=texts(request)["expired"])
    await service.ensure_card_active(session, approval.card_id)
    raw, login = await service.open_login(runtime, approval.card_id)
    pending.card_id, pending.auth_time = str(approval.card_id), login.auth_time
    response = await _code(runtime, pending, list(approval.scopes), 302)
    _set_cookie(response, runtime, LOGIN_COOKIE, raw, runtime.settings.oidc_login_ttl)
    return response


# --- token, userinfo, revocation, introspection, device authorization ------------------------


async def _form_and_client(request: Request) -> tuple[dict[str, str], rp.PresentedClient]:
    form = single_values(await _read(request))
    return form, rp.presented_client(form, request.headers.get("authorization"))


async def _read(request: Request) -> dict[str, str | list[str]]:
    return read_form(await request.body(), request.headers.get("content-type"))


def _endpoint(runtime: Runtime, path: str) -> str:
    return f"{service.issuer(runtime)}{path}"


def _tokens(tokens: service.TokenSet) -> Response:
    return _json(
        {
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token,
            "id_token": tokens.id_token,
            "scope": tokens.scope,
        }
    )


@router.post("/oidc/token", include_in_schema=False, dependencies=TOKEN_LIMITS)
async def token(request: Request, runtime: RuntimeDep) -> Response:
    try:
        form, presented = await _form_and_client(request)

        async def work(session: AsyncSession) -> service.TokenSet:
            client = await rp.authenticate_client(
                session, runtime, presented, _endpoint(runtime, "/oidc/token")
            )
            grant_type = form.get("grant_type")
            try:
                if grant_type == AUTHORIZATION_CODE:
                    return await service.redeem_code(
                        session,
                        runtime,
                        client,
                        form.get("code", ""),
                        redirect_uri=form.get("redirect_uri"),
                        verifier=form.get("code_verifier"),
                    )
                if grant_type == REFRESH_TOKEN:
                    return await service.refresh(
                        session, runtime, client, form.get("refresh_token", ""), form.get("scope")
                    )
                if grant_type == DEVICE_CODE:
                    return await device.poll(session, runtime, client, form.get("device_code", ""))
            except CardNotActive as error:
                raise InvalidGrant(error.detail) from None
            if not grant_type:
                raise InvalidOAuthRequest("grant_type is required")
            raise UnsupportedGrantType(f"grant_type {grant_type[:60]!r} is not supported")

        return _tokens(await service.settle(runtime, work))
    except OAuthError as error:
        return _oauth_error(error)


async def _bearer(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "POST":
        try:
            form = single_values(await _read(request))
        except OAuthError:
            return ""
        return form.get("access_token", "")
    return ""


@router.api_route("/oidc/userinfo", methods=["GET", "POST"], include_in_schema=False)
async def userinfo(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    try:
        claims = await service.userinfo(session, runtime, await _bearer(request))
    except CardNotActive:
        return _oauth_error(InvalidToken("the card is no longer active"))
    except OAuthError as error:
        return _oauth_error(error)
    return _json(claims)


@router.post("/oidc/revoke", include_in_schema=False, dependencies=TOKEN_LIMITS)
async def revoke(request: Request, runtime: RuntimeDep) -> Response:
    """RFC 7009: 200 whether or not the token was known."""
    try:
        form, presented = await _form_and_client(request)
        if not form.get("token"):
            raise InvalidOAuthRequest("token is required")

        async def work(session: AsyncSession) -> None:
            client = await rp.authenticate_client(
                session, runtime, presented, _endpoint(runtime, "/oidc/revoke")
            )
            await service.revoke_token(session, runtime, client, form["token"])

        await service.settle(runtime, work)
    except OAuthError as error:
        return _oauth_error(error)
    return Response(status_code=200, headers=NO_STORE)


@router.post("/oidc/introspect", include_in_schema=False, dependencies=TOKEN_LIMITS)
async def introspect(request: Request, runtime: RuntimeDep) -> Response:
    try:
        form, presented = await _form_and_client(request)
        if not form.get("token"):
            raise InvalidOAuthRequest("token is required")

        async def work(session: AsyncSession) -> dict[str, Any]:
            client = await rp.authenticate_client(
                session, runtime, presented, _endpoint(runtime, "/oidc/introspect")
            )
            return await service.introspect(session, runtime, client, form["token"])

        return _json(await service.settle(runtime, work))
    except OAuthError as error:
        return _oauth_error(error)


@router.post("/oidc/device_authorization", include_in_schema=False, dependencies=TOKEN_LIMITS)
async def device_authorization(request: Request, runtime: RuntimeDep) -> Response:
    try:
        form, presented = await _form_and_client(request)

        async def work(session: AsyncSession) -> device.DeviceAuthorization:
            client = await rp.authenticate_client(
                session, runtime, presented, _endpoint(runtime, "/oidc/device_authorization")
            )
            return await device.start(runtime, client, form.get("scope"))

        started = await service.settle(runtime, work)
    except OAuthError as error:
        return _oauth_error(error)
    return _json(
        {
            "device_code": started.device_code,
            "user_code": started.user_code,
            "verification_uri": started.verification_uri,
            "verification_uri_complete": started.verification_uri_complete,
            "expires_in": started.expires_in,
            "interval": started.interval,
        }
    )


@router.post("/oidc/kiosk_authorization", include_in_schema=False, dependencies=TOKEN_LIMITS)
async def kiosk_authorization(request: Request, runtime: RuntimeDep) -> Response:
    """The service-hall kiosk scanned the holder's e-card code (`qr_token`): a device-grant
    request that only that holder can approve, on the phone; the kiosk polls `/oidc/token`."""
    try:
        form, presented = await _form_and_client(request)
        if not form.get("qr_token"):
            raise InvalidOAuthRequest("qr_token (the scanned e-card code) is required")

        async def work(session: AsyncSession) -> device.DeviceAuthorization:
            client = await rp.authenticate_client(
                session, runtime, presented, _endpoint(runtime, "/oidc/kiosk_authorization")
            )
            return await device.start_for_scanned_card(
                session, runtime, client, form.get("scope"), form["qr_token"]
            )

        started = await service.settle(runtime, work)
    except OAuthError as error:
        return _oauth_error(error)
    return _json(
        {
            "device_code": started.device_code,
            "expires_in": started.expires_in,
            "interval": started.interval,
        }
    )


@router.get("/oidc/device", include_in_schema=False)
async def device_page(request: Request) -> Response:
    """Where the verification URI leads a browser: approve in the app."""
    t = texts(request)
    return _page(request, "message.html", heading=t["login_title"], message=t["device"])


@router.api_route("/oidc/logout", methods=["GET", "POST"], include_in_schema=False)
async def logout(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """RP-initiated logout 1.0: ends the browser's login session; back to the client's
    registered post-logout URI (with `state`) when it names one."""
    params = _query(request) or {}
    if request.method == "POST":
        try:
            params = {**params, **single_values(await _read(request))}
        except OAuthError:
            return _message(request, "forbidden", 400)
    client_id = params.get("client_id")
    hint = params.get("id_token_hint")
    if hint:
        try:
            claims = verify_id_token(
                runtime.oidc_keyring, hint, issuer=service.issuer(runtime), verify_expiry=False
            )
        except IdTokenError:
            return _message(request, "forbidden", 400)
        audience = claims.get("aud")
        hinted = audience if isinstance(audience, str) else None
        if client_id is not None and client_id != hinted:
            return _message(request, "forbidden", 400)
        client_id = hinted
    target = params.get("post_logout_redirect_uri")
    client = None if client_id is None else await rp.find_client(session, client_id)
    if target is not None and (client is None or not service.registered_logout_uri(client, target)):
        return _message(request, "forbidden", 400)
    await service.end_login(runtime, request.cookies.get(LOGIN_COOKIE))
    if target is not None:
        response: Response = _redirect(target, {"state": params.get("state")}, 303)
    else:
        t = texts(request)
        response = _page(request, "message.html", heading=t["logged_out"], message=t["logged_out"])
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


# --- administrators: relying parties ---------------------------------------------------------

_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Not a provincial administrator", **_PROBLEM},
}
ClientIdPath = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


def _rp_out(client: RelyingParty) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "logo_uri": client.logo_uri,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "scopes": client.scopes,
        "token_endpoint_auth_method": client.auth_method,
        "sector_identifier": client.sector_identifier,
        "subject_type": client.subject_type,
        "grant_types": client.grant_types,
        "enabled": client.enabled,
        "created_at": client.created_at,
    }


@router.post(
    "/v1/admin/relying-parties",
    status_code=status.HTTP_201_CREATED,
    summary="Register a relying party (an app that logs holders in with the card)",
    description="Rules beyond the schema: redirect URIs are absolute https URIs (plain http "
    "only for a loopback host) without a fragment, matched exactly; the scopes include "
    "`openid`; a `jwks` comes with `private_key_jwt` only, and then holds 1 to 10 usable "
    "public keys. The client secret (secret methods) is in the answer once.",
    responses={
        **_ADMIN_ERRORS,
        422: {"description": "validation-error, invalid-relying-party", **_PROBLEM},
    },
)
async def register_relying_party(
    body: RelyingPartyCreate, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> RelyingPartyCreated:
    registered = await rp.register(
        session,
        runtime,
        admin.client_id,
        rp.Registration(
            name=body.name,
            logo_uri=body.logo_uri,
            redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            scopes=body.scopes,
            auth_method=body.token_endpoint_auth_method,
            jwks=body.jwks,
            sector_identifier=body.sector_identifier,
            subject_type=body.subject_type,
            grant_types=body.grant_types,
        ),
    )
    await session.commit()
    return RelyingPartyCreated(**_rp_out(registered.client), client_secret=registered.client_secret)


@router.get(
    "/v1/admin/relying-parties",
    summary="Relying parties",
    responses=_ADMIN_ERRORS,
)
async def list_relying_parties(admin: CurrentAdmin, session: SessionDep) -> list[RelyingPartyOut]:
    return [RelyingPartyOut(**_rp_out(client)) for client in await rp.list_clients(session)]


@router.get(
    "/v1/admin/relying-parties/{client_id}",
    summary="One relying party",
    responses={**_ADMIN_ERRORS, 404: {"description": "relying-party-not-found", **_PROBLEM}},
)
async def get_relying_party(
    client_id: ClientIdPath, admin: CurrentAdmin, session: SessionDep
) -> RelyingPartyOut:
    return RelyingPartyOut(**_rp_out(await rp.get_client(session, client_id)))


@router.delete(
    "/v1/admin/relying-parties/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disable a relying party (its tokens stop working)",
    responses={**_ADMIN_ERRORS, 404: {"description": "relying-party-not-found", **_PROBLEM}},
)
async def disable_relying_party(
    client_id: ClientIdPath, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> None:
    await rp.disable_client(session, runtime, admin.client_id, client_id)
    await session.commit()


# --- the holder: consents and device sign-ins ------------------------------------------------


@router.get(
    "/v1/me/consents",
    summary="The apps you allowed to log you in with the card, and what each receives",
    responses={401: {"description": "No or invalid holder token", **_PROBLEM}},
)
async def my_consents(holder: CurrentHolder, session: SessionDep) -> list[ConsentOut]:
    return [
        ConsentOut(
            client_id=consent.client_id,
            client_name=client.name if client is not None else consent.client_id,
            scopes=consent.scopes,
            granted_at=consent.granted_at,
        )
        for consent, client in await service.list_consents(session, holder.card_id)
    ]


@router.delete(
    "/v1/me/consents/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw a consent: the app's tokens for you are revoked",
    responses={
        401: {"description": "No or invalid holder token", **_PROBLEM},
        404: {"description": "consent-not-found", **_PROBLEM},
    },
)
async def withdraw_consent(
    client_id: ClientIdText, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> None:
    await service.withdraw_consent(session, runtime, holder.card_id, client_id)
    await session.commit()


UserCodePath = Annotated[UserCode, PathParam(description="The code the site shows, e.g. BCDF-GHJK")]


@router.get(
    "/v1/me/oidc/device-requests",
    summary="Sign-ins waiting for your approval: service-hall kiosks that scanned your e-card code",
    responses={401: {"description": "No or invalid holder token", **_PROBLEM}},
)
async def kiosk_requests(
    holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> list[DeviceRequestOut]:
    return [
        _device_out(seen)
        for seen in await device.pending_for_card(session, runtime, holder.card_id)
    ]


def _device_out(seen: device.DeviceRequestView) -> DeviceRequestOut:
    return DeviceRequestOut(
        user_code=seen.user_code,
        client_id=seen.client.client_id,
        client_name=seen.client.name,
        logo_uri=seen.client.logo_uri,
        scopes=seen.scopes,
        expires_in=max(seen.expires_at - state.now(), 0),
    )


@router.get(
    "/v1/me/oidc/device-requests/{user_code}",
    summary="A scan-to-login request (RFC 8628): the app and the claims it asks for",
    responses={
        401: {"description": "No or invalid holder token", **_PROBLEM},
        404: {"description": "device-request-not-found (unknown or expired)", **_PROBLEM},
    },
)
async def device_request(
    user_code: UserCodePath, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> DeviceRequestOut:
    seen = await device.view(session, runtime, user_code, card_id=holder.card_id)
    return _device_out(seen)


@router.post(
    "/v1/me/oidc/device-requests/{user_code}",
    summary="Approve or deny a scan-to-login request with the PIN",
    responses={
        401: {"description": "invalid-credentials (wrong PIN), or no holder token", **_PROBLEM},
        404: {"description": "device-request-not-found", **_PROBLEM},
        409: {"description": "device-request-decided", **_PROBLEM},
        423: {"description": "pin-locked", **_PROBLEM},
    },
)
async def decide_device_request(
    user_code: UserCodePath, body: DeviceDecision, holder: CurrentHolder, runtime: RuntimeDep
) -> DeviceDecided:
    async def work(session: AsyncSession) -> list[str]:
        return await device.decide(
            session,
            runtime,
            holder.card_id,
            user_code,
            pin=body.pin,
            approve=body.decision == "approve",
            scopes=body.scopes,
        )

    granted = await service.settle(runtime, work)
    return DeviceDecided(decision=body.decision, scopes=granted)
