"""The phone's QR path: `GET /v1/me/qr` against `/healthz` of the same worker, in one run.

Run: `.venv/bin/python -m load.qr_path` (about 4 x LOAD_SECONDS, default 10). It starts, on
127.0.0.1, its own `redis-server` and one `ssc serve` worker (uvicorn) on a throw-away
PostgreSQL database (created on the server at LOAD_POSTGRES_URL, default the local one,
and dropped afterwards), seeds LOAD_QR_HOLDERS holders (default 8) with `ssc demo --json`,
warms the store (one QR each) and measures:

- wrk (closed loop, 32 connections) on `/healthz`, then on `/v1/me/qr` (the holders'
  tokens in turn), then on `/v1/me/qr.png`: requests per second, and the server's CPU per
  request, which a busy machine disturbs less than wall-clock rates;
- open loop (`load.latency`'s generator, GET) on `/v1/me/qr` at half the measured QR rate,
  server pinned to core 0 and generator to core 1: p50 / p99.

Targets (issue 18): QR at >= 40 % of `/healthz` in the same run, p99 < 10 ms at half load.
Prints one JSON line per measurement and a summary; `load/run_benchmarks.py` calls `run`
and puts `markdown_section` into load/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import resource
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from load.bench_verify import WrkResult
from load.latency import LatencyResult, _open_loop, _percentile, schedule
from load.servers import ROOT, Stack, Started, cpu_meter, pin, settle, write_lines

SECONDS = int(os.environ.get("LOAD_SECONDS", "10"))
HOLDERS = int(os.environ.get("LOAD_QR_HOLDERS", "8"))
POSTGRES_URL = os.environ.get("LOAD_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CONNECTIONS = 32
QR_TARGET_SHARE = 0.40
P99_TARGET_MS = 10.0


@dataclass(frozen=True)
class RouteRun:
    route: str
    wrk: WrkResult
    server_cpu_us: float
    """Server CPU (user + system, the worker's process tree) per request."""


@dataclass(frozen=True)
class QrPathResult:
    healthz: RouteRun
    qr: RouteRun
    qr_png: RouteRun
    latency: LatencyResult
    holders: int

    @property
    def share(self) -> float:
        """QR req/s over /healthz req/s, same worker, same run (wall clock)."""
        return self.qr.wrk.requests_per_s / self.healthz.wrk.requests_per_s

    @property
    def cpu_share(self) -> float:
        """The same ratio from server CPU per request (1 / CPU per request each)."""
        return self.healthz.server_cpu_us / self.qr.server_cpu_us


@dataclass
class PostgresStack(Stack):
    """`Stack` with the API on a PostgreSQL database instead of SQLite."""

    database_url: str = ""
    holders: list[str] = field(default_factory=list)

    def api_env(self) -> dict[str, str]:
        env = super().api_env()
        env["SSC_DATABASE_URL"] = self.database_url
        return env


@contextlib.contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of `admin_url`, dropped afterwards; its SQLAlchemy URL."""
    name = f"ssc_bench_qr_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(admin_url)
    try:
        yield f"postgresql+asyncpg://{parts.netloc}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_wrk_get(url: str, values_file: Path, *, seconds: int) -> WrkResult:
    """wrk GET on `url`, one Authorization value per request from `values_file`."""
    command = ["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds}s"]
    command += ["-s", str(ROOT / "load" / "wrk_get.lua"), url, "--", str(values_file), "1"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    duration = summary["duration_us"] / 1e6
    return WrkResult(
        requests_per_s=summary["requests"] / duration,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=summary["non_2xx"] + summary["socket_errors"],
        generator_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        seconds=duration,
    )


def open_loop_get(
    url: str,
    authorizations: Sequence[str],
    *,
    rate: float,
    seconds: float,
    connections: int = 64,
) -> LatencyResult:
    """`load.latency.run` for GET: open loop, latency from the scheduled send time."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    send_times = schedule(rate, seconds, poisson=True)
    heads = [
        f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {value}\r\n\r\n"
        for value in authorizations
    ]
    requests = [heads[i % len(heads)].encode("latin-1") for i in range(len(send_times))]
    loop_factory = None
    with contextlib.suppress(ImportError):
        loop_factory = importlib.import_module("uvloop").new_event_loop
    before = resource.getrusage(resource.RUSAGE_SELF)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        latencies, lags, errors, elapsed = runner.run(
            _open_loop(host, port, requests, send_times, connections)
        )
    after = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    lags.sort()
    return LatencyResult(
        target_rate=rate,
        achieved_rate=len(latencies) / seconds,
        sent=len(lags),
        answered=len(latencies),
        errors=errors + len(send_times) - len(latencies),
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p90_ms=_percentile(latencies, 0.90) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] if latencies else float("nan")) * 1000,
        send_lag_p99_ms=_percentile(lags, 0.99) * 1000,
        generator_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        seconds=elapsed,
        connections=connections,
    )


def _route_run(stack: Stack, server: Started, route: str, values: Path) -> RouteRun:
    settle([server.process.pid])
    with cpu_meter([server.process.pid]) as used:
        result = run_wrk_get(server.url + route, values, seconds=SECONDS)
    requests = result.requests_per_s * result.seconds
    run = RouteRun(route, result, used[0] / max(requests, 1) * 1e6)
    print(
        json.dumps({"route": route, **asdict(result), "server_cpu_us": run.server_cpu_us}),
        flush=True,
    )
    return run  # errors (non-2xx, wrk's 2 s timeouts on the slow PNG) are reported, not fatal


def measure_qr_path(stack: PostgresStack, server: Started) -> QrPathResult:
    """Seeds holders on `server` and measures; `stack` has Redis, PostgreSQL and `server`."""
    tokens = []
    for _ in range(HOLDERS):
        seeded = stack.demo(server.url)
        holder = seeded["holder"]
        assert isinstance(holder, dict)
        tokens.append(f"Bearer {holder['access_token']}")
    for token in tokens:  # the first QR of each holder fills the store from SQL
        warm = httpx.get(f"{server.url}/v1/me/qr", headers={"Authorization": token}, timeout=10)
        warm.raise_for_status()
    values = write_lines(stack.root / "authorizations.txt", tokens)
    nothing = write_lines(stack.root / "none.txt", [])
    healthz = _route_run(stack, server, "/healthz", nothing)
    qr = _route_run(stack, server, "/v1/me/qr", values)
    qr_png = _route_run(stack, server, "/v1/me/qr.png", values)
    settle([server.process.pid])
    everything = set(range(os.cpu_count() or 1))
    pin(server.process.pid, {0})
    os.sched_setaffinity(0, {1} if len(everything) > 1 else everything)
    try:
        latency = open_loop_get(
            server.url + "/v1/me/qr", tokens, rate=qr.wrk.requests_per_s / 2, seconds=SECONDS
        )
    finally:
        pin(server.process.pid, everything)
        os.sched_setaffinity(0, everything)
    print(json.dumps({"open_loop": "/v1/me/qr", **asdict(latency)}), flush=True)
    return QrPathResult(healthz, qr, qr_png, latency, HOLDERS)


def markdown_section(result: QrPathResult) -> list[str]:
    """The QR path's lines for load/RESULTS.md."""
    verdict = "met" if result.share >= QR_TARGET_SHARE else "NOT met"
    latency_verdict = "met" if result.latency.p99_ms < P99_TARGET_MS else "NOT met"
    lines = [
        "## The phone's QR path (`load/qr_path.py`)",
        "",
        f"One `ssc serve` worker, PostgreSQL and Redis, {result.holders} holders, wrk "
        f"{CONNECTIONS} connections, {SECONDS} s per route.",
        "",
        "| route | req/s | p50 ms | p99 ms | errors | server CPU per request |",
        "|---|---|---|---|---|---|",
    ]
    for run in (result.healthz, result.qr, result.qr_png):
        lines.append(
            f"| `{run.route}` | {run.wrk.requests_per_s:.0f} | {run.wrk.p50_ms:.1f} | "
            f"{run.wrk.p99_ms:.1f} | {run.wrk.errors} | {run.server_cpu_us:.0f} us |"
        )
    lines += [
        "",
        f"- QR / healthz: {result.share:.0%} by req/s, {result.cpu_share:.0%} by server CPU "
        f"per request (target >= {QR_TARGET_SHARE:.0%}: {verdict}).",
        f"- Open loop at {result.latency.target_rate:.0f} req/s (half the QR rate), server "
        f"on core 0, generator on core 1: p50 {result.latency.p50_ms:.1f} ms, p99 "
        f"{result.latency.p99_ms:.1f} ms, errors {result.latency.errors} (target p99 < "
        f"{P99_TARGET_MS:.0f} ms: {latency_verdict}).",
        "",
    ]
    return lines


def run() -> QrPathResult:
    """The whole measurement on its own servers (a throw-away database, its own Redis)."""
    with throwaway_database(POSTGRES_URL) as database_url, PostgresStack() as stack:
        stack.database_url = database_url
        stack.start_redis()
        server = stack.start_api(workers=1)
        return measure_qr_path(stack, server)


def main() -> None:
    print("\n".join(markdown_section(run())))


if __name__ == "__main__":
    main()
