"""CPU per request of the request pipeline alone: the verify route's place in the app, with a
trivial endpoint (reads its body, answers a fixed JSON) instead of the verification.

Run: `.venv/bin/python -m load.bench_stack`. It builds the app (`api.app.create_app`, memory
store, SQLite, nothing started), swaps the handler of `POST /v1/verify` for the trivial one,
and calls, in process, 3,000 requests x 5 rounds each (CPU time, `time.process_time`, min and
median of the rounds):

- the whole app (every middleware, the router, the route);
- the router alone (no middleware);
- the route's own ASGI handler;
- a bare ASGI function doing the same (the floor).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.app import create_app
from app.config import load_settings
from load.bench_pipeline import _request, _settings_env

REQUESTS = 3000
ROUNDS = 5


async def _trivial(request: Request) -> Response:
    await request.body()
    return Response(b'{"verdict":"valid"}', media_type="application/json")


async def _bare(scope: Scope, receive: Receive, send: Send) -> None:
    response = await _trivial(Request(scope, receive, send))
    await response(scope, receive, send)


async def measure() -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="ssc-stack-") as directory:
        env = _settings_env(Path(directory), "")
        env.pop("SSC_AUDIT_CONSUMER_IN_API")  # the memory store keeps it in the API
        os.environ.update(env)
        app = create_app(load_settings())
        route: Any = next(r for r in app.router.routes if getattr(r, "path", "") == "/v1/verify")
        route.app = _bare
        targets: dict[str, Any] = {
            "whole app": app,
            "router only": app.router,
            "route handler": route.app,
            "bare ASGI": _bare,
        }
        headers = [(b"authorization", b"Bearer x")]
        calls: dict[str, Callable[[], Awaitable[int]]] = {
            name: _request(target, "/v1/verify", headers, b'{"token":"x"}')
            for name, target in targets.items()
        }
        app.state.runtime = None  # not started: the trivial endpoint needs nothing
        figures: dict[str, list[float]] = {name: [] for name in calls}
        for name, call in calls.items():
            if await call() != 200:
                raise SystemExit(f"{name}: the trivial endpoint did not answer 200")
        for _ in range(ROUNDS):
            for name, call in calls.items():
                started = time.process_time()
                for _ in range(REQUESTS):
                    await call()
                figures[name].append((time.process_time() - started) / REQUESTS * 1e6)
    return figures


def main() -> None:
    figures = uvloop.run(measure())
    for name, values in figures.items():
        ordered = sorted(values)
        print(f"{name:14} min {ordered[0]:6.1f} us  median {ordered[len(ordered) // 2]:6.1f} us")


if __name__ == "__main__":
    main()
