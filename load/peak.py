"""The national-peak run and the load curves of `load.run_benchmarks`.

National peak (issue 18): about 11.7k scans per second (8.41 M daily users, 10 scans each
in a two-hour peak); one 2-core machine should carry 10,000 verified scans per second for
60 s through `POST /v1/verify/batch` with 2 workers, the audit consumer included, every event
persisted. `national_peak` drives the batch route with wrk for LOAD_PEAK_SECONDS (default
60), samples the audit backlog (stream entries pending or not yet delivered to the
consumers' group) and the persisted rows every second, waits after the run until the
backlog is written (at most LOAD_PEAK_DRAIN_SECONDS, default 240), then counts the audit
rows of the verify events and the valid ones among them.

LOAD_PEAK_TOKENS (default 15,000 per second of the run) distinct tokens are signed in
advance, so that the scans are what the peak brings: first presentations, each audited with
its access-log entry and watched for misuse. wrk cycles through their bodies; a scan beyond
them presents a used token: still a full verification (signature, claim, audit event),
answered `replayed`, and cheaper to audit, so the report counts the valid ones apart.

Verdicts alone are not the peak carried: an audit consumer that falls behind only defers its
work (and the backlog waits in Redis's memory). The report also gives the rate including the
time the backlog took to be written after the run, and calls the target met only when that
rate reaches it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field

import redis

from load.bench_verify import cose_of, run_wrk
from load.servers import Stack, cpu_meter, write_lines

PEAK_SECONDS = int(os.environ.get("LOAD_PEAK_SECONDS", "60"))
PEAK_TOKENS = int(os.environ.get("LOAD_PEAK_TOKENS", str(15_000 * PEAK_SECONDS)))
PEAK_DRAIN_SECONDS = float(os.environ.get("LOAD_PEAK_DRAIN_SECONDS", "240"))
BATCH = 100
TARGET = 10_000


@dataclass
class PeakRun:
    seconds: float
    requests: int
    scans: int
    errors: int
    p99_ms: float
    server_cpu_s: float
    drain_seconds: float
    backlog_end: int
    in_flight: int = 0
    """Scans that may have been sent when wrk stopped and not counted by it (connections x
    batch): processed and audited, but not in `scans`."""
    audit_rows: int = 0
    valid_rows: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    """(seconds since the start, backlog entries, persisted verify rows), every second."""

    @property
    def scans_per_s(self) -> float:
        return self.scans / self.seconds

    @property
    def persisted_per_s(self) -> float:
        """Scans per second from the start of the run until the last audit row was written."""
        return self.scans / (self.seconds + self.drain_seconds)


def _backlog(client: redis.Redis, stream: str) -> int:
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return 0
    total = 0
    for group in groups:
        total += int(group.get("pending") or 0) + int(group.get("lag") or 0)
    return total


def _rows(database: str) -> tuple[int, int]:
    """(verify audit rows, those of a first presentation of an active card: valid scans)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        (rows,) = db.execute("SELECT count(*) FROM audit_events WHERE action = 'verify'").fetchone()
        (valid,) = db.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'verify' "
            """AND data LIKE '%"outcome":"first"%' AND data LIKE '%"status":"active|%'"""
        ).fetchone()
    return int(rows), int(valid)


def national_peak(stack: Stack, headers: dict[str, str], *, workers: int = 2) -> PeakRun:
    tokens = stack.issue_tokens(stack.card_number, PEAK_TOKENS)
    bodies = write_lines(
        stack.root / "peak.jsonl",
        [
            json.dumps({"scans": [{"cose": cose_of(t)} for t in tokens[i : i + BATCH]]})
            for i in range(0, len(tokens), BATCH)
        ],
    )
    api = stack.start_api(workers=workers)
    database = str(stack.root / "var" / "ssc.db")
    client = redis.Redis(host="127.0.0.1", port=stack.redis_port)
    stream = "load:audit"
    baseline_rows, baseline_valid = _rows(database)
    samples: list[tuple[float, int, int]] = []
    started = time.monotonic()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                samples.append(
                    (
                        time.monotonic() - started,
                        _backlog(client, stream),
                        _rows(database)[0] - baseline_rows,
                    )
                )
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with cpu_meter([api.process.pid]) as used:
            result = run_wrk(
                api.url + "/v1/verify/batch",
                bodies,
                headers,
                seconds=PEAK_SECONDS,
                connections=4 * workers,
                threads=workers,
            )
        ended = time.monotonic()
        while time.monotonic() - ended < PEAK_DRAIN_SECONDS and _backlog(client, stream) > 0:
            time.sleep(0.5)
        drain = time.monotonic() - ended
        time.sleep(1.5)  # a last trim and sample
    finally:
        stop.set()
        sampler.join()
        backlog_end = _backlog(client, stream)
        client.close()
        stack.stop(api)
    requests = round(result.requests_per_s * result.seconds)
    rows, valid = _rows(database)
    return PeakRun(
        seconds=result.seconds,
        requests=requests,
        scans=requests * BATCH,
        errors=result.errors,
        p99_ms=result.p99_ms,
        server_cpu_s=used[0],
        drain_seconds=drain,
        backlog_end=backlog_end,
        in_flight=4 * workers * BATCH,
        audit_rows=rows - baseline_rows,
        valid_rows=valid - baseline_valid,
        samples=samples,
    )


def report(peak: PeakRun, workers: int = 2) -> list[str]:
    complete = 0 <= peak.audit_rows - peak.scans <= peak.in_flight
    carried = peak.scans_per_s >= TARGET and peak.persisted_per_s >= TARGET and complete
    met = "met" if carried else "not met"
    return [
        f"## National peak: `POST /v1/verify/batch`, {workers} workers, {PEAK_SECONDS} s "
        "(audit consumer in the workers)",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| scans sent and answered (wrk requests x {BATCH}) | {peak.scans:,} in "
        f"{peak.seconds:.1f} s: **{peak.scans_per_s:,.0f} scans/s** (target >= {TARGET:,}: "
        f"{met}) |",
        f"| the same, until the last audit row was written ({peak.seconds:.0f} s + "
        f"{peak.drain_seconds:.0f} s after the run) | {peak.persisted_per_s:,.0f} scans/s |",
        f"| non-2xx answers or socket errors | {peak.errors} |",
        f"| p99 per batch request | {peak.p99_ms:.1f} ms |",
        f"| server CPU during the run | {peak.server_cpu_s:.1f} CPU-s "
        f"({peak.server_cpu_s / peak.seconds:.2f} cores) |",
        f"| audit rows of verify events, counted after the run | {peak.audit_rows:,}: "
        + (
            f"every scan answered is audited (valid, replayed or refused), and at most "
            f"{peak.in_flight:,} more were in flight when wrk stopped counting"
            if complete
            else f"NOT the {peak.scans:,} scans answered (+ at most {peak.in_flight:,} in "
            "flight): audit events missing"
        )
        + " |",
        f"| of which valid scans (first presentation of an active card) | {peak.valid_rows:,} |",
        f"| consumer backlog at the end of wrk / after waiting {peak.drain_seconds:.0f} s | "
        f"{max((b for t, b, _ in peak.samples if t <= peak.seconds + 1), default=0):,} at most "
        f"during the run / {peak.backlog_end:,} |",
        "",
        "![Audit backlog over the national-peak run](peak_backlog.png)",
    ]
