"""Liveness, readiness and metrics for the orchestrator and Prometheus."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from api.auth import MetricsAccess
from api.deps import RuntimeDep
from api.json_bodies import StrictJsonRoute
from app.store.durability import Durability, DurabilityState

router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database and the store are reachable (and whether the store persists)",
    responses={
        503: {
            "description": "A dependency is down",
            "content": {
                "application/json": {
                    "example": {
                        "status": "unavailable",
                        "database": "ok",
                        "store": "down",
                        "store_persistence": "ok",
                    }
                }
            },
        }
    },
)
async def readyz(runtime: RuntimeDep, request: Request) -> Response:
    """`store_persistence` is what start-up found (`app.store.durability`): `ok`, `degraded`
    (no AOF, or an eviction policy that may evict), `unknown` (INFO refused) or `in-process`
    (the memory store); `degraded` and `unknown` make `status` `degraded`, still 200."""

    async def probe(check: Awaitable[None]) -> str:
        try:
            await asyncio.wait_for(check, timeout=2)
        except Exception:
            return "down"
        return "ok"

    database, store = await asyncio.gather(
        probe(runtime.database.ping()), probe(runtime.store.ping())
    )
    ready = database == store == "ok"
    durability: Durability | None = request.app.state.store_durability
    persistence = "unknown" if durability is None else durability.state.value
    status = "ok" if ready else "unavailable"
    if ready and persistence in {DurabilityState.DEGRADED, DurabilityState.UNKNOWN}:
        # Still 200: the service works; it would lose replay records on a store restart.
        status = "degraded"
    body = {
        "status": status,
        "database": database,
        "store": store,
        "store_persistence": persistence,
    }
    return Response(
        orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
    )


_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}


@router.get(
    "/metrics",
    summary="Prometheus metrics (bearer SSC_METRICS_TOKEN, or the metrics listener)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}},
        401: {"description": "SSC_METRICS_TOKEN is set and was not presented", **_PROBLEM},
        404: {"description": "Metrics are not served on this listener", **_PROBLEM},
    },
)
async def metrics(request: Request, _: MetricsAccess) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
