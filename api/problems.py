"""RFC 9457 problem+json for every error the API can answer, mapped in one place."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path

from app.db import DRIVER_ERRORS, Database, is_unavailable_error
from app.errors import DomainError
from app.store import StoreUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"
logger = logging.getLogger("ssc.api")

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_HTTP_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "request-too-large",
    415: "unsupported-media-type",
    429: "too-many-requests",
}


def domain_problem(error: DomainError) -> dict[str, Any]:
    """The problem body of `error`, without a request: also one line's result in a bulk push."""
    return {
        "type": PROBLEM_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        **error.extensions,
    }


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    request: Request | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = request.scope.get("state", {}).get("request_id")
        if request_id:
            body["request_id"] = request_id
    body.update(extensions)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


RETRY_AFTER_SECONDS = "1"
"""`Retry-After` of every 503: a store or database outage, which the service outlives."""


async def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    headers = error.headers()
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    elif error.status == 503:
        headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
    return problem_response(
        error.status,
        error.code,
        error.title,
        error.detail,
        request,
        headers=headers,
        **error.extensions,
    )


async def _store_unavailable(request: Request, error: Exception) -> Response:
    logger.warning("store unavailable: %r", error)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.store_unavailable.inc()
    return problem_response(
        503,
        "store-unavailable",
        "Service temporarily unavailable",
        "The fast store is unreachable; no verdict can be given. Retry shortly.",
        request,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for item in error.errors():
        if item.get("type") == "json_invalid":  # FastAPI's: the body's JSON (json_bodies)
            reason = item.get("ctx", {}).get("error", "")
            errors.append({"location": ["body"], "message": f"not valid JSON: {reason}"})
            continue
        location = [str(part) for part in item.get("loc", ())]
        errors.append({"location": location, "message": item.get("msg", "invalid")})
    return errors


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = _validation_errors(error)
    first = errors[0] if errors else {"location": [], "message": "invalid request"}
    detail = f"{'.'.join(first['location'])}: {first['message']}"
    return problem_response(
        422, "validation-error", "The request is not valid", detail, request, errors=errors
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, f"http-{error.status_code}")
    title = code.replace("-", " ").capitalize()
    detail = error.detail if isinstance(error.detail, str) else title
    headers = dict(error.headers or {})
    if error.status_code == 405:
        methods = allowed_methods(request.app, request.url.path)
        if methods is not None:
            headers["Allow"] = ", ".join(methods)
    return problem_response(error.status_code, code, title, detail, request, headers=headers)


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the OpenAPI document lists for the path `path` falls under (HEAD with GET,
    as the router serves it), or None when it falls under no documented path.

    The router's own `Allow` names only the methods of the first route matching the path,
    though a path may have one route per method.
    """
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        app.state, "allowed_methods", None
    )
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            methods = sorted(method.upper() for method in item if method in _HTTP_METHODS)
            if "GET" in methods and "HEAD" not in methods:
                methods.append("HEAD")
            table.append((compile_path(template)[0], methods))
        app.state.allowed_methods = table
    for pattern, methods in table:
        if pattern.match(path):
            return methods
    return None


async def _database_error(request: Request, error: Exception) -> Response:
    """A driver error that escaped `Database.session()` (which maps its own): an outage answers
    503 like there, anything else is a bug."""
    if is_unavailable_error(error):
        database: Database = request.app.state.runtime.database
        return await _domain_error(request, database.unavailable(error))
    return await unexpected_error(request, error)


async def unexpected_error(request: Request, error: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500, "internal-error", "Internal error", "An unexpected error occurred.", request
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    for driver_error in DRIVER_ERRORS:
        app.add_exception_handler(driver_error, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, unexpected_error)
