"""The FastAPI application factory. Heavy pieces are built in `lifespan`, never at import."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware import RequestContextMiddleware, RequestMetrics
from api.openapi import install_openapi
from api.problems import install_problem_handlers
from api.routes import (
    access_log,
    applications,
    audit,
    banks,
    catalog,
    channels,
    clients,
    complaints,
    consents,
    departments,
    docs,
    entitlements,
    family,
    h5,
    health,
    holder,
    keys,
    licences,
    lifecycle,
    misuse,
    notifications,
    oidc,
    payments,
    trust,
    vault,
    verify,
)
from api.routes.verify import PlainRoute
from app.audit.consumer import AuditConsumer
from app.catalog.background import catalog_sync
from app.config import Environment, Settings, load_settings
from app.long_lived import freeze_long_lived
from app.runtime import Runtime
from app.store import StoreUnavailable
from app.store.durability import StoreNotDurable, inspect_durability, report_durability
from app.trust.background import trust_sync
from app.verification.epoch import epoch_watch
from app.warmup import warm_store
from app.workers import watched_audit_consumer


class EcardApi(FastAPI):
    """The API. Every route, the verify hot path included, is served through one middleware
    stack (`tests/api/test_one_pipeline.py` proves no route skips a middleware)."""

    def build_middleware_stack(self) -> ASGIApp:
        """The app's own middlewares around the router (its exact POST paths looked up first,
        `ExactPostRoutes`), and nothing else: FastAPI's stack
        adds five layers that do nothing here or whose duty `RequestContextMiddleware`
        (the innermost of ours) does itself, once for every route:

        - Starlette's `ServerErrorMiddleware` (the 500 answer of what nothing mapped) and
          `ExceptionMiddleware` (the app's exception handlers): `RequestContextMiddleware`
          maps exceptions with the same handlers, picked the same way;
        - FastAPI's `AsyncExitStackMiddleware` (the stack that closes uploaded files):
          `ExactPostRoutes` sets it in the scope of every request bound for the router;
        - the exception telemetry (telemetry is off, `create_app`) and the app-wide body limit
          (none is set; `RequestContextMiddleware` enforces `SSC_MAX_REQUEST_BYTES`).

        Every layer costs on each request and on each suspension of one: a coroutine resumed
        after an `await` (the store's round trip) is re-entered through every frame of the
        stack. Measured with load/bench_pipeline.py. In debug mode, with telemetry or an
        app-wide body limit, or when `RequestContextMiddleware` is not the innermost
        middleware, FastAPI's own stack is built."""
        innermost = self.user_middleware[-1] if self.user_middleware else None
        factory: object = None if innermost is None else innermost.cls
        if (
            innermost is None
            or innermost.args
            or factory is not RequestContextMiddleware
            or self.debug
            or self.max_body_size is not None
            or self._native_telemetry.enabled()
        ):
            return super().build_middleware_stack()
        options: dict[str, Any] = dict(innermost.kwargs)
        app: ASGIApp = RequestContextMiddleware(
            ExactPostRoutes(self.router), exception_handlers=self.exception_handlers, **options
        )
        for outer in reversed(self.user_middleware[:-1]):
            app = outer.cls(app, *outer.args, **outer.kwargs)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Starlette's entry, without FastAPI's per-request telemetry check when telemetry is
        off (`create_app`); lifespan and everything else go through FastAPI's."""
        if scope["type"] != "http" or self.root_path or self._native_telemetry.enabled():
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        await self.middleware_stack(scope, receive, send)


class ExactPostRoutes:
    """The router, with its `PlainRoute`s (the verify routes, which carry the load) found by
    their exact path first: what the router would pick for them (they are its first routes,
    `verify.install`), without walking its layers (Starlette's router, FastAPI's, the route's
    method check: about 5 % of a scan's CPU, load/PROFILE.md). Inside the app's one
    middleware stack, like the router: nothing outside it changes."""

    __slots__ = ("router", "routes")

    def __init__(self, router: Router) -> None:
        self.router = router
        self.routes: dict[str, PlainRoute] = {}
        for route in router.routes:
            if not isinstance(route, PlainRoute) or route.param_convertors:
                continue  # only plain routes with an exact path, no parameters in it
            if route.methods == {"POST"}:
                self.routes.setdefault(route.path, route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None:
            # FastAPI's AsyncExitStackMiddleware duty, for its routes: the stack that closes
            # the request's uploaded files. The plain routes upload nothing.
            async with AsyncExitStack() as files:
                scope["fastapi_middleware_astack"] = files
                await self.router(scope, receive, send)
            return
        # What the router and the route's match would have put in the scope.
        scope.setdefault("router", self.router)
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        scope["route"] = route
        await route.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, freeze_after_start: bool = False) -> EcardApi:
    """`freeze_after_start`: move what the start built out of the GC's reach (see
    `serving_app`); only for a process that serves one app until it exits."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings)
        app.state.runtime = runtime
        durability = await inspect_durability(runtime.store)
        app.state.store_durability = durability
        try:
            report_durability(durability, required=settings.require_persistent_store)
        except StoreNotDurable:
            await runtime.close()
            raise
        await warm_store(runtime)
        try:
            await runtime.store_epochs.check()
        except StoreUnavailable as error:  # The verify path reads it before its first claim.
            logging.getLogger("ssc.store.epoch").warning("store epoch not read at start: %s", error)
        try:
            async with (
                watched_audit_consumer(runtime)
                if settings.audit_consumer_in_api
                else nullcontext() as consumer,
                trust_sync(runtime),
                catalog_sync(runtime),
                epoch_watch(runtime.store_epochs),
            ):
                app.state.audit_consumer = consumer
                if freeze_after_start:
                    freeze_long_lived()
                yield
        finally:
            await runtime.close()

    app = EcardApi(
        title="Electronic social security card API",
        version="0.1.0",
        description="Signed rotating QR tokens, verification for venue scanners, card lifecycle.",
        lifespan=lifespan,
        # Served by api.routes.docs (assets from a package, no CDN), when exposed.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # The service's metrics are its own (`/metrics`, Prometheus). FastAPI's OpenTelemetry
        # hooks, on by default, ask the tracer, meter and logger providers on every request
        # whether they are configured: about 8 us per request, for nothing here.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    metrics = RequestMetrics(CollectorRegistry())
    app.state.metrics = metrics
    app.state.audit_consumer = None
    app.state.store_durability = None
    Gauge(
        "ssc_audit_backlog_entries",
        "Audit stream entries not yet persisted by every consumer group, at this worker's "
        "consumer's last trim (NaN: the consumer runs in another process)",
        registry=metrics.registry,
    ).set_function(lambda: _audit_backlog(app))
    metrics.registry.register(_EpochResets(app))
    metrics.registry.register(_NotificationsGivenUp(app))
    app.state.settings = settings
    upload_limit = 2 * max(settings.vault_max_document_bytes, settings.vault_max_bulk_bytes)
    app.add_middleware(
        RequestContextMiddleware,
        max_body=settings.max_request_bytes,
        metrics=metrics,
        large_bodies={
            licences.BULK_PATH: settings.licence_bulk_max_bytes,
            vault.PUSH_PATH: upload_limit,
        },
    )
    install_problem_handlers(app)
    install_openapi(app)
    verify.install(app)  # first: the router tries routes in order, and these carry the load
    app.include_router(health.router)
    app.include_router(keys.router)
    app.include_router(applications.router)
    app.include_router(holder.router)
    app.include_router(clients.router)
    app.include_router(lifecycle.router)
    app.include_router(entitlements.router)
    app.include_router(misuse.router)
    app.include_router(trust.router)
    app.include_router(access_log.router)
    app.include_router(complaints.router)
    app.include_router(audit.router)
    app.include_router(catalog.router)
    app.include_router(vault.router)
    app.include_router(departments.router)
    app.include_router(licences.router)
    app.include_router(consents.router)
    app.include_router(oidc.router)
    app.include_router(family.router)
    app.include_router(channels.router)
    app.include_router(banks.router)
    app.include_router(payments.router)
    app.include_router(notifications.router)
    h5.install(app)
    if settings.docs_exposed:
        # SSC_EXPOSE_DOCS; off in production by default: the schema maps the attack surface.
        app.include_router(docs.router)
    logging.getLogger("ssc").setLevel(settings.log_level.upper())
    if (
        settings.environment is Environment.production
        and settings.metrics_token is None
        and settings.metrics_port is None
    ):
        logging.getLogger("ssc.api").warning(
            "/metrics is refused (404): set SSC_METRICS_TOKEN or SSC_METRICS_PORT to serve it"
        )
    if settings.environment is Environment.production and settings.public_url_is_loopback:
        logging.getLogger("ssc.api").warning(
            "SSC_PUBLIC_URL is %s, a loopback address: the status list URL in tokens and the "
            "trust list reaches no verifier; set SSC_PUBLIC_URL to the public base URL",
            settings.public_url,
        )
    return app


class _EpochResets(Collector):
    """`ssc_store_epoch_resets_total`: the store data losses this worker noticed."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterable[Metric]:
        runtime: Runtime | None = getattr(self._app.state, "runtime", None)
        yield CounterMetricFamily(
            "ssc_store_epoch_resets",
            "Times this worker found that the store had lost its data and a new store epoch "
            "began (tokens valid from before it are answered reissue_required)",
            value=0 if runtime is None else runtime.store_epochs.resets,
        )


class _NotificationsGivenUp(Collector):
    """`ssc_notification_deliveries_given_up_total`: deliveries by a sender besides the inbox
    (SMS, push) this worker gave up after `SSC_NOTIFICATION_DELIVERY_ATTEMPTS` attempts."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterable[Metric]:
        runtime: Runtime | None = getattr(self._app.state, "runtime", None)
        yield CounterMetricFamily(
            "ssc_notification_deliveries_given_up",
            "Notification deliveries besides the inbox (SMS, push) this worker gave up after "
            "SSC_NOTIFICATION_DELIVERY_ATTEMPTS failed attempts (the inbox copy stays)",
            value=0 if runtime is None else runtime.notification_senders.given_up,
        )


def _audit_backlog(app: FastAPI) -> float:
    consumer: AuditConsumer | None = app.state.audit_consumer
    return math.nan if consumer is None else float(consumer.backlog)


def serving_app() -> EcardApi:
    """The API for `ssc serve`, built in each worker: what exists after the imports, and again
    after the start, is frozen for the GC (`app.long_lived`)."""
    app = create_app(freeze_after_start=True)
    freeze_long_lived()
    return app
