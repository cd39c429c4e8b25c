"""CPU per request of the verify routes through the whole ASGI app, in process.

Run: `.venv/bin/python -m load.bench_pipeline` (PIPELINE_REQUESTS, default 4000;
PIPELINE_REDIS_URL: a Redis to use, default a `redis-server` of its own). It builds the app
with `api.app.create_app` against SQLite and Redis (the audit consumer off: its cost is
`load.bench_audit`'s), seeds with `app.demo.seed_demo`, and sends `POST /v1/verify` (no scene,
and the `hospital` scene, which discloses the sealed attribute view) and `POST
/v1/verify/batch` (100 binary COSE scans) straight into the ASGI app, 8 requests in flight,
with distinct fresh tokens. What it reports is CPU time of this process (`time.process_time`,
all threads) per request and per scan, which a loaded shared machine changes much less than
wall time; uvicorn's own cost is not in it. Each figure is the best of `ROUNDS` rounds.

It imports only what every version of the service since issue 9 has, so it runs on an older
commit checked out elsewhere (`load.run_benchmarks --against`: this file run by its path,
with that checkout as working directory and `PYTHONPATH`): the figures of two commits come
from the same script. It prints one JSON line; with PIPELINE_SERVE=1 it runs rounds on
request instead (`serve_rounds`), which `load.against` interleaves with the other tree's.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import importlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import select

from api.app import create_app
from app.cards.models import Card
from app.config import load_settings
from app.db import migrate
from app.demo import seed_demo
from load.servers import Stack
from token_service._base45 import b45decode

REQUESTS = int(os.environ.get("PIPELINE_REQUESTS", "4000"))
IN_FLIGHT = 8
SINGLE_ONLY = os.environ.get("PIPELINE_SINGLE_ONLY", "") == "1"
"""Only `POST /v1/verify` (what `--against` compares), not the batch route."""
ROUNDS = 3
SERVE = os.environ.get("PIPELINE_SERVE", "") == "1"
"""Rounds on request (`serve_rounds`) instead of the figures of `measure`."""
BATCH = 100


def _settings_env(var: Path, redis_url: str) -> dict[str, str]:
    return {
        "SSC_ENVIRONMENT": "development",
        "SSC_VAR_DIR": str(var),
        "SSC_KEY_DIR": str(var / "keys"),
        "SSC_DATABASE_URL": f"sqlite+aiosqlite:///{var / 'ssc.db'}",
        "SSC_REDIS_URL": redis_url,
        "SSC_REDIS_NAMESPACE": "pipeline",
        "SSC_TOKEN_LIFETIME": "600",
        "SSC_LOG_LEVEL": "warning",
        "SSC_AUDIT_CONSUMER_IN_API": "false",
    }


class _Sink:
    """An ASGI `send` that keeps the status of the answer."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]


def _request(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> Callable[[], Awaitable[int]]:
    scope_template = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }

    async def call() -> int:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        sink = _Sink()
        await app(dict(scope_template), receive, sink)
        return sink.status

    return call


async def _drive(calls: list[Callable[[], Awaitable[int]]]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to run `calls`, IN_FLIGHT at a time; every answer 200."""
    pending = iter(calls)
    failures: list[int] = []

    async def worker() -> None:
        for call in pending:
            status = await call()
            if status != 200:
                failures.append(status)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if len(failures) > len(calls) // 50:
        raise SystemExit(f"{len(failures)} answers were not 200: {sorted(set(failures))}")
    if failures:  # a store answer later than 0.5 s (503) on a machine others load heavily
        print(
            f"{len(failures)} of {len(calls)} answers were {sorted(set(failures))}", file=sys.stderr
        )
    return cpu, wall


@asynccontextmanager
async def _pipeline(redis_url: str) -> AsyncIterator[_Pipeline]:
    """The app, started and seeded, with what a round of requests needs."""
    with tempfile.TemporaryDirectory(prefix="ssc-pipeline-") as directory:
        var = Path(directory)
        env = _settings_env(var, redis_url)
        os.environ.update(env)
        settings = load_settings()
        await migrate(settings.database_url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            seed = await seed_demo(runtime)
            async with runtime.database.session() as session:
                wanted = select(Card.handle).where(Card.card_number == seed.card_number)
                handle = (await session.exec(wanted)).one()
            headers = [
                (b"authorization", f"Bearer {seed.scanner_access_token}".encode()),
                (b"content-type", b"application/json"),
            ]
            # As a serving worker does after its start (`ssc serve`): what lives as long as the
            # process is kept out of the collector's walks, whose pauses would otherwise land
            # in some rounds and not others.
            _as_serving_worker()
            yield _Pipeline(app, runtime.token_issuer, bytes.fromhex(handle), headers)


def _as_serving_worker() -> None:
    """The collector set as this tree's `ssc serve` sets it after the start: its
    `app.long_lived.freeze_long_lived` where it has one (which also sets the thresholds),
    otherwise a collection and a freeze, as older trees did."""
    try:
        long_lived = importlib.import_module("app.long_lived")
    except ImportError:
        gc.collect()
        gc.freeze()
    else:
        long_lived.freeze_long_lived()


@dataclass(frozen=True)
class _Pipeline:
    app: Any
    issuer: Any
    card: bytes
    headers: list[tuple[bytes, bytes]]

    async def verify_round(self, scene: str | None, requests: int) -> float:
        """CPU microseconds per `POST /v1/verify` over `requests` fresh tokens."""
        bodies = [
            json.dumps({"token": self.issuer.issue(self.card).token, "scene": scene}).encode()
            for _ in range(requests)
        ]
        calls = [_request(self.app, "/v1/verify", self.headers, body) for body in bodies]
        cpu, _ = await _drive(calls)
        return cpu / requests * 1e6

    async def batch_round(self, batches: int) -> float:
        """CPU microseconds per scan of `POST /v1/verify/batch` (BATCH binary scans each)."""
        calls = []
        for _ in range(batches):
            scans = []
            for _ in range(BATCH):
                cose = b45decode(self.issuer.issue(self.card).token.removeprefix("SSC1:"))
                scans.append({"cose": base64.urlsafe_b64encode(cose).rstrip(b"=").decode()})
            body = json.dumps({"scans": scans}).encode()
            calls.append(_request(self.app, "/v1/verify/batch", self.headers, body))
        cpu, _ = await _drive(calls)
        return cpu / (batches * BATCH) * 1e6


SCENES: dict[str, str | None] = {"verify": None, "verify_scene": "hospital"}
"""The figures of `POST /v1/verify`: no scene, and a scene that discloses the sealed view."""


async def measure(redis_url: str, requests: int) -> dict[str, float]:
    """CPU microseconds per request (and per scan for the batch), best of ROUNDS."""
    results: dict[str, list[float]] = {}
    async with _pipeline(redis_url) as pipeline:
        for _ in range(ROUNDS):
            for name, scene in SCENES.items():
                results.setdefault(name, []).append(await pipeline.verify_round(scene, requests))
            if SINGLE_ONLY:
                continue
            batches = max(4, requests // BATCH)
            results.setdefault("batch_per_scan", []).append(await pipeline.batch_round(batches))
            results.setdefault("raw_es256", []).append(_raw_es256_us())
    return {name: min(values) for name, values in results.items()}


async def serve_rounds(redis_url: str) -> None:
    """Rounds on request, for a caller that interleaves two trees' rounds finely
    (`load.against`): prints `{"ready": true}`, then reads lines `<figure> <requests>`
    (a name of `SCENES`) from stdin and answers each with one JSON line of the CPU
    microseconds per request, until stdin closes."""
    async with _pipeline(redis_url) as pipeline:
        print(json.dumps({"ready": True}), flush=True)
        while line := sys.stdin.readline():
            name, requests = line.split()
            cpu_us = await pipeline.verify_round(SCENES[name], int(requests))
            print(json.dumps({"figure": name, "cpu_us": round(cpu_us, 2)}), flush=True)


def _raw_es256_us(count: int = 3000) -> float:
    """CPU microseconds of one raw ES256 verification, now."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())
    messages = [secrets.token_bytes(150) for _ in range(count)]
    signatures = [key.sign(message, algorithm) for message in messages]
    started = time.process_time()
    for signature, message in zip(signatures, messages, strict=True):
        public.verify(signature, message, algorithm)
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    redis_url = os.environ.get("PIPELINE_REDIS_URL", "")
    if redis_url:
        _run(redis_url)
        return
    with Stack() as stack:
        stack.start_redis()
        _run(stack.redis_url)


def _run(redis_url: str) -> None:
    if SERVE:
        uvloop.run(serve_rounds(redis_url))
        return
    figures = uvloop.run(measure(redis_url, REQUESTS))
    tree = str(Path.cwd())
    print(json.dumps({"tree": tree, **{k: round(v, 1) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
