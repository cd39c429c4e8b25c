"""One pure-ASGI middleware for what every request needs: a request id, a body size limit,
the security headers, Prometheus metrics, an access log line, and the mapping of exceptions
to problem+json by the app's exception handlers (Starlette's `ExceptionMiddleware` and
`ServerErrorMiddleware` duties, `EcardApi.build_middleware_stack`). Pure ASGI (not
BaseHTTPMiddleware) keeps the verify hot path cheap.
"""

from __future__ import annotations

import logging
import math
import re
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, unexpected_error
from app.unique_ids import unique_ids

logger = logging.getLogger("ssc.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
ExceptionHandler = Callable[[Request, Exception], Any]
"""An app exception handler (`FastAPI.add_exception_handler`): a coroutine answering a
`Response`."""


# Sent on every response, by this middleware and by the verify fast path (one definition):
# no MIME sniffing of our JSON, no Referer leaving with our URLs, never framed.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)
# Over TLS only (RFC 6797 8.1: a browser ignores it over plain HTTP). One year; not
# includeSubDomains: the API does not speak for its parent domain's other hosts.
HSTS_HEADER = (b"strict-transport-security", b"max-age=31536000")
_TLS_SECURITY_HEADERS = (*SECURITY_HEADERS, HSTS_HEADER)
_FRAMING = (b"x-frame-options", b"content-security-policy")


def security_headers(scope: Scope) -> tuple[tuple[bytes, bytes], ...]:
    """The security headers for this request's response, precomputed: with HSTS when the
    request came over TLS. `scope["scheme"]` is `https` when uvicorn terminated TLS or when a
    trusted proxy said so (`X-Forwarded-Proto`, believed only from `SSC_TRUSTED_PROXIES`,
    see `ssc serve`)."""
    return _TLS_SECURITY_HEADERS if scope.get("scheme") == "https" else SECURITY_HEADERS


class RequestTooLarge(Exception):
    pass


LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
)


class RequestMetrics:
    """The service's request series. Per-request counts are plain integers, updated by the
    event loop's thread and turned into Prometheus families only when scraped (`collect`):
    prometheus_client's `Counter` and `Histogram` take a lock on every update (a request
    counter, a histogram's sum and bucket, a verdict: four locks and their Python per scan,
    about 3 % of a scan's CPU, load/PROFILE.md). The exposition is the same series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.store_unavailable = Counter(
            "ssc_store_unavailable_total",
            "Requests answered 503 because the fast store could not be reached (fail closed)",
            registry=registry,
        )
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latencies: dict[tuple[str, str], list[float]] = {}
        """Per bucket of `LATENCY_BUCKETS` (and +Inf) the requests that fell in it, not
        cumulated, then the sum of their seconds."""
        self._verdicts: dict[str, int] = {}
        registry.register(_RequestSeries(self))

    def count_verdict(self, verdict: str) -> None:
        verdicts = self._verdicts
        verdicts[verdict] = verdicts.get(verdict, 0) + 1

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Counts one request and its latency."""
        requests = self._requests
        key = (method, route, status)
        requests[key] = requests.get(key, 0) + 1
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self._latencies[method, route] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        latency[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency[-1] += seconds


class _RequestSeries(Collector):
    """`RequestMetrics`' counts as Prometheus families. Each dict is copied first (one C call
    under the GIL): a scrape from another thread never sees one change size under it."""

    def __init__(self, metrics: RequestMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        metrics = self._metrics
        requests = CounterMetricFamily(
            "ssc_http_requests",
            "HTTP requests by route template, method and status",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in dict(metrics._requests).items():
            requests.add_metric([method, route, str(status)], float(count))
        yield requests
        latency = HistogramMetricFamily(
            "ssc_http_request_duration_seconds",
            "HTTP request latency by route template",
            labels=["method", "route"],
        )
        for (method, route), observed in dict(metrics._latencies).items():
            counts = list(observed)
            buckets: list[tuple[str, float]] = []
            running = 0.0
            for bound, in_bucket in zip((*LATENCY_BUCKETS, math.inf), counts, strict=False):
                running += in_bucket
                buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), running))
            latency.add_metric([method, route], buckets, counts[-1])
        yield latency
        verdicts = CounterMetricFamily(
            "ssc_verify_verdicts",
            "Verdicts given by POST /v1/verify and /v1/verify/batch (one per scan), by verdict",
            labels=["verdict"],
        )
        for verdict, count in dict(metrics._verdicts).items():
            verdicts.add_metric([verdict], float(count))
        yield verdicts


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        metrics: RequestMetrics,
        large_bodies: Mapping[str, int] | None = None,
        exception_handlers: Mapping[Any, ExceptionHandler] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.large_bodies: Mapping[str, int] = large_bodies or {}
        """Paths (exact) that take larger bodies than `max_body`, with their own limit (bulk
        uploads such as `POST /v1/licences/bulk`)."""
        self.handlers: dict[Any, ExceptionHandler] | None = None
        """Exception classes to handlers, when this middleware maps exceptions itself
        (`exception_handlers` given) instead of Starlette's `ExceptionMiddleware` inside it:
        the app's handlers, without `Exception` (anything unmapped answers 500 here)."""
        self.status_handlers: dict[int, ExceptionHandler] = {}
        self.unexpected: ExceptionHandler = unexpected_error
        if exception_handlers is not None:
            self.handlers = {}
            for key, handler in exception_handlers.items():
                if key in (500, Exception):
                    self.unexpected = handler
                elif isinstance(key, int):
                    self.status_handlers[key] = handler
                else:
                    self.handlers[key] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        extra_headers = (*security_headers(scope), (b"x-request-id", request_id.encode()))
        status = 500
        response_started = False

        max_body = self.large_bodies.get(scope["path"], self.max_body)
        declared = declared_length(scope)
        if declared is not None and declared > max_body:
            status = 413
            await send_too_large(send, scope, request_id, max_body)
            self._observe(scope, status, started)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise RequestTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = with_security_headers(
                    message.get("headers", []), extra_headers
                )
            await send(message)

        handlers = self.handlers
        try:
            if handlers is None:
                await self.app(scope, limited_receive, send_with_id)
            else:
                # What Starlette's ExceptionMiddleware would set for the routes: the handlers
                # (each FastAPI route maps its own errors with them). FastAPI's stack that
                # closes uploaded files is set on the way to its router (`ExactPostRoutes`).
                scope["starlette.exception_handlers"] = (handlers, self.status_handlers)
                await self.app(scope, limited_receive, send_with_id)
        except RequestTooLarge:
            if response_started:
                raise
            status = 413
            await send_too_large(send, scope, request_id, max_body)
        except Exception as error:
            # What no exception handler mapped: a bug. Answered here, as problem+json with the
            # request id and the security headers, rather than by Starlette's outermost
            # layer (which sends neither and re-raises into the server).
            if response_started:
                raise
            handler = None if handlers is None else self._handler(error)
            request = Request(scope, limited_receive, send_with_id)
            response = await (handler or self.unexpected)(request, error)
            if handler is not None:
                error.__traceback__ = None  # as Starlette: a reused exception keeps no frames
            if isinstance(response, Response):
                status = response.status_code
                await response(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, started)
            log_access(scope, status, started, request_id)

    def _handler(self, error: Exception) -> ExceptionHandler | None:
        """The handler Starlette's `ExceptionMiddleware` would pick: by status for an
        `HTTPException`, else by the error's class or its nearest base."""
        assert self.handlers is not None
        if isinstance(error, HTTPException):
            handler = self.status_handlers.get(error.status_code)
            if handler is not None:
                return handler
        for kind in type(error).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)


def with_security_headers(
    headers: list[tuple[bytes, bytes]], extra: tuple[tuple[bytes, bytes], ...]
) -> list[tuple[bytes, bytes]]:
    """The response's headers plus the security headers. A response with a policy of its own
    (the `/h5/` pages: a full CSP whose `frame-ancestors` names the channel apps) keeps it:
    a second CSP header would be enforced as well and forbid the framing it allows."""
    for name, _ in headers:
        if name == b"content-security-policy":
            return [*headers, *(header for header in extra if header[0] not in _FRAMING)]
    return [*headers, *extra]


def request_id_of(scope: Scope) -> str:
    """The caller's `X-Request-ID` when well-formed, else a new one; kept in the request
    state, where problem responses find it."""
    request_id = _incoming_request_id(scope) or unique_ids.next()
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


def log_access(scope: Scope, status: int, started: float, request_id: str) -> None:
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "%s %s %s %.1fms rid=%s",
            scope["method"],
            scope["path"],
            status,
            (time.perf_counter() - started) * 1000,
            request_id,
        )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else None
    return None


def declared_length(scope: Scope) -> int | None:
    """The request's `Content-Length`, or None when absent or not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_too_large(send: Send, scope: Scope, request_id: str, limit: int) -> None:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + "request-too-large",
        "title": "Request too large",
        "status": 413,
        "detail": f"The request body exceeds {limit} bytes.",
        "request_id": request_id,
    }
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id.encode()),
                (b"connection", b"close"),
                *security_headers(scope),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
