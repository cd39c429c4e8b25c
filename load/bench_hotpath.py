"""Micro-benchmark of the verify routes in process: the ASGI app called directly, no HTTP server.

Run: `.venv/bin/python -m load.bench_hotpath [memory|redis] [profile|profile-batch] [cose]`
(LOAD_TOKENS: scans per route, default 4000; SSC_BENCH_REDIS_URL: the Redis to use, default a
local one, under a fresh namespace that is dropped afterwards). It seeds a demo holder and
scanner through the real services, then sends `POST /v1/verify` one scan at a time (32
concurrent senders) and `POST /v1/verify/batch` 100 scans at a time (4 senders; with `cose`
the scans carry binary COSE, not the scanned string) through the whole app, and prints this
process's CPU time per scan beside a raw ES256 check of the same tokens: what is left is the
server's own cost (Redis's CPU is not in it; the in-process audit consumer's is, for the part
of its work done during the run). With `profile` (`profile-batch`), cProfile's top functions
of the single-scan (batch) loop are printed too.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import select

from api.app import create_app
from app.cards.models import Card
from app.config import load_settings
from app.db import migrate
from app.demo import seed_demo
from app.runtime import Runtime
from app.store.redis import RedisStore
from load.bench_verify import cose_of
from token_service import TokenIssuer
from token_service.codec import decode_token

BATCH = 100
CONNECTIONS = 32
BATCH_CONNECTIONS = 4
Call = Callable[[bytes, list[tuple[bytes, bytes]]], Awaitable[tuple[int, bytes]]]


def asgi_caller(app: Any) -> Call:
    """POSTs `b"<path> <body>"` through the ASGI app itself; returns (status, body)."""

    async def send_one(request: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        path, _, body = request.partition(b" ")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path.decode(),
            "raw_path": path,
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "app": app,
        }
        delivered = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.sleep(3600)
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(chunks)

    return send_one


async def run(kind: str, count: int, profile: str, *, cose: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="ssc-hotpath-") as root:
        var = Path(root) / "var"
        namespace = f"bench-{secrets.token_hex(4)}"
        redis_url = os.environ.get("SSC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        settings = load_settings(
            environment="development",
            var_dir=var,
            key_dir=var / "keys",
            database_url=f"sqlite+aiosqlite:///{var / 'ssc.db'}",
            redis_url=redis_url if kind == "redis" else None,
            redis_namespace=namespace,
            token_lifetime=600,
            log_level="warning",
        )
        var.mkdir(parents=True, exist_ok=True)
        await migrate(settings.database_url)
        app = create_app(settings)
        try:
            async with app.router.lifespan_context(app):
                await measure(app, app.state.runtime, count, profile, cose=cose)
        finally:
            if kind == "redis":
                cleanup = RedisStore.from_url(redis_url, namespace=namespace)
                await cleanup.drop_namespace()
                await cleanup.close()


async def measure(app: Any, runtime: Runtime, count: int, profile: str, *, cose: bool) -> None:
    seed = await seed_demo(runtime)
    async with runtime.database.session() as session:
        card = (await session.exec(select(Card).where(Card.card_number == seed.card_number))).one()
    issuer = TokenIssuer(
        runtime.keyring, runtime.settings.issuer, runtime.card_handle_key, lifetime=600
    )
    handle = bytes.fromhex(card.handle)
    headers = [
        (b"authorization", f"Bearer {seed.scanner_access_token}".encode()),
        (b"content-type", b"application/json"),
    ]
    post = asgi_caller(app)
    raw = raw_es256_seconds(runtime, [issuer.issue(handle).token for _ in range(count)])

    singles = [
        b"/v1/verify " + orjson.dumps({"token": issuer.issue(handle).token, "scene": "hospital"})
        for _ in range(count)
    ]
    await post(singles[0], headers)  # warm caches
    profiler = cProfile.Profile()
    single, single_cpu = await timed(
        post, singles[1:], headers, CONNECTIONS, profiler if profile == "single" else None
    )

    batches = []
    for start in range(0, count, BATCH):
        scans = [
            {**scanned(issuer.issue(handle).token, cose), "scene": "hospital", "scan_id": f"s{n}"}
            for n in range(start, min(count, start + BATCH))
        ]
        batches.append(b"/v1/verify/batch " + orjson.dumps({"scans": scans}))
    batch, batch_cpu = await timed(
        post, batches, headers, BATCH_CONNECTIONS, profiler if profile == "batch" else None
    )
    batch, batch_cpu = batch / BATCH, batch_cpu / BATCH

    print(f"raw ES256 check:              {raw * 1e6:8.1f} us/token   {1 / raw:8.0f} /s")
    print(f"POST /v1/verify, wall:        {single * 1e6:8.1f} us/request")
    print(
        f"POST /v1/verify, our CPU:     {single_cpu * 1e6:8.1f} us/request {1 / single_cpu:8.0f} /s"
    )
    print(f"batch (100), wall:            {batch * 1e6:8.1f} us/scan")
    print(
        f"batch (100), our CPU:         {batch_cpu * 1e6:8.1f} us/scan    {1 / batch_cpu:8.0f} /s"
    )
    print(f"single CPU beyond signature:  {(single_cpu - raw) * 1e6:8.1f} us")
    print(f"batch CPU beyond signature:   {(batch_cpu - raw) * 1e6:8.1f} us per scan")
    print(f"batch per CPU / raw:          {raw / batch_cpu:8.1%}")
    if profile:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)


def scanned(token: str, cose: bool) -> dict[str, str]:
    return {"cose": cose_of(token)} if cose else {"token": token}


async def timed(
    post: Call,
    requests: list[bytes],
    headers: list[tuple[bytes, bytes]],
    connections: int,
    profiler: cProfile.Profile | None,
) -> tuple[float, float]:
    """Wall and CPU seconds per request of sending `requests` (profiled if asked)."""
    started, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    await concurrently(post, requests, headers, connections, b'"valid"')
    if profiler is not None:
        profiler.disable()
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    return wall / len(requests), used / len(requests)


async def concurrently(
    post: Call,
    requests: list[bytes],
    headers: list[tuple[bytes, bytes]],
    connections: int,
    expected: bytes,
) -> None:
    """Sends `requests` over `connections` concurrent senders, as a load generator would."""

    async def sender(share: list[bytes]) -> None:
        for request in share:
            status, answer = await post(request, headers)
            if status != 200 or expected not in answer:
                raise SystemExit(f"unexpected answer {status} {answer[:200]!r}")

    await asyncio.gather(*(sender(requests[n::connections]) for n in range(connections)))


def raw_es256_seconds(runtime: Runtime, tokens: list[str]) -> float:
    public_key = runtime.keyring.signing_key.private_key.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())
    inputs = [(item.der_signature(), item.signed_bytes()) for item in map(decode_token, tokens)]
    started = time.perf_counter()
    for signature, message in inputs:
        public_key.verify(signature, message, algorithm)
    return (time.perf_counter() - started) / len(inputs)


def main() -> None:
    kind = "redis" if "redis" in sys.argv[1:] else "memory"
    count = int(os.environ.get("LOAD_TOKENS", "4000"))
    profile = "batch" if "profile-batch" in sys.argv else "single" if "profile" in sys.argv else ""
    uvloop.run(run(kind, count, profile, cose="cose" in sys.argv[1:]))


if __name__ == "__main__":
    main()
