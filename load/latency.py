"""Open-loop latency: requests sent at a fixed arrival rate, latency from the scheduled send time.

Why not Locust or wrk: a closed-loop generator sends the next request only after the previous
answer, so a slow answer delays the requests behind it and they are never counted as late
(coordinated omission); and a generator that shares the machine's two cores adds its own
scheduling delay. This one is lean: one asyncio loop (uvloop if installed), a pool of
keep-alive HTTP/1.1 connections on raw streams, request bytes encoded before the clock starts
(each with its own token), and a schedule fixed in advance (Poisson or constant). A request
whose connection is still busy waits in the queue, and that wait counts in its latency. The
generator reports the CPU it used itself (getrusage), and how late it sent (`send_lag`), so a
reader can tell server latency from generator delay.

Run: `.venv/bin/python -m load.latency URL BODIES_FILE --rate R --seconds S
[--header 'Authorization: Bearer ...'] [--connections N] [--constant] [--cpu C]`
(one JSON body per line; prints one JSON summary). `load/run_benchmarks.py` runs it at half
the measured one-worker maximum, pinned to one core with the server on the other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import random
import resource
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

DRAIN_SECONDS = 5.0
"""How long after the last scheduled send answers are still awaited before they count as lost."""


@dataclass(frozen=True)
class LatencyResult:
    target_rate: float
    achieved_rate: float
    sent: int
    answered: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    send_lag_p99_ms: float
    generator_cpu_s: float
    seconds: float
    """Elapsed from the first scheduled send to the last answer (the generator's CPU share
    is taken over it); the achieved rate is over the scheduled duration."""
    connections: int

    @property
    def generator_cores(self) -> float:
        return self.generator_cpu_s / self.seconds


def encode_requests(
    host: str, path: str, headers: dict[str, str], bodies: Sequence[bytes]
) -> list[bytes]:
    """Complete HTTP/1.1 POST requests, one per body, ready to write to a socket."""
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    prefix = head.encode("latin-1")
    return [prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body for body in bodies]


def schedule(rate: float, seconds: float, *, poisson: bool, seed: int = 6) -> list[float]:
    """Send times (seconds from the start): exponential gaps (Poisson) or constant gaps."""
    draw = random.Random(seed)
    times: list[float] = []
    moment = 0.0
    while True:
        moment += draw.expovariate(rate) if poisson else 1.0 / rate
        if moment >= seconds:
            return times
        times.append(moment)


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Reads one response (Content-Length or chunked body) and returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status
    await reader.readexactly(max(length, 0))
    return status


async def _open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    send_times: Sequence[float],
    connections: int,
) -> tuple[list[float], list[float], int, float]:
    """Latencies (s), send lags (s), error count and the elapsed time of one open-loop run."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (item := await queue.get()) is not None:
                due, request = item
                writer.write(request)
                try:
                    status = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(loop.time() - due)
                if status >= 300:
                    errors += 1
        finally:
            writer.close()

    pool = [asyncio.create_task(connection()) for _ in range(connections)]
    await asyncio.sleep(0.2)
    start = loop.time()
    for offset, request in zip(send_times, requests, strict=False):
        due = start + offset
        wait = due - loop.time()
        # Late or not, yield: a generator that falls behind must still let connections send.
        await asyncio.sleep(max(wait, 0.0))
        lags.append(loop.time() - due)
        queue.put_nowait((due, request))
    for _ in pool:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(pool, timeout=DRAIN_SECONDS)
    for task in pending:
        task.cancel()
    elapsed = loop.time() - start
    return latencies, lags, errors, elapsed


def _percentile(ordered: Sequence[float], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    rate: float,
    seconds: float,
    connections: int = 64,
    poisson: bool = True,
) -> LatencyResult:
    """One open-loop run of `POST url` at `rate` requests per second for `seconds`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    send_times = schedule(rate, seconds, poisson=poisson)
    if len(bodies) < len(send_times):
        raise ValueError(f"{len(send_times)} requests scheduled but only {len(bodies)} bodies")
    requests = encode_requests(f"{host}:{port}", parts.path or "/", headers, bodies)
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
        errors=errors + len(send_times) - len(latencies),  # error statuses + never answered
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p90_ms=_percentile(latencies, 0.90) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] if latencies else float("nan")) * 1000,
        send_lag_p99_ms=_percentile(lags, 0.99) * 1000,
        generator_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        seconds=elapsed,
        connections=connections,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("bodies", type=Path, help="one JSON request body per line")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--constant", action="store_true", help="constant gaps, not Poisson")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--cpu", type=int, help="pin this generator to one core")
    arguments = parser.parse_args()
    if arguments.cpu is not None:
        os.sched_setaffinity(0, {arguments.cpu})
    headers = dict(item.split(": ", 1) for item in arguments.header)
    bodies = [line for line in arguments.bodies.read_bytes().splitlines() if line]
    result = run(
        arguments.url,
        bodies,
        headers,
        rate=arguments.rate,
        seconds=arguments.seconds,
        connections=arguments.connections,
        poisson=not arguments.constant,
    )
    print(json.dumps({**asdict(result), "generator_cores": result.generator_cores}))


if __name__ == "__main__":
    main()
