"""The ONE benchmark command: micro and HTTP benchmarks, a table of ratios, load/RESULTS.md.

Run: `.venv/bin/python -m load.run_benchmarks` (about 3 minutes on 2 cores; LOAD_SECONDS per
HTTP run, default 10). `--against <commit>` adds the verify throughput of an older commit,
measured in the same run (`load/against.py`); `--only-against <commit>` measures that alone
and prints it without rewriting load/RESULTS.md.

It starts, on 127.0.0.1 only, its own `redis-server`, our API through
`ssc serve` (SQLite + Redis; uvicorn with one worker, then two; granian with one and two if
it is installed) and the naive baseline (`uvicorn load.baseline_app:app`, one worker), seeds
with `ssc demo --json`, pre-generates distinct fresh tokens in this process, and measures:

- micro, one core: raw ES256 verify, `TokenVerifier.verify`, `verify_cose`;
- wrk (closed loop, distinct tokens per request, load/wrk_bodies.lua): naive vs ours on one
  worker, the batch route (100 scans per request) on one worker, ours on two workers;
- load/latency.py (open loop, latency from the scheduled send time): ours at half the
  one-worker maximum, once with the generator and Redis pinned to one core and the server to
  the other, once unpinned;

waits before each run until the servers are idle (the audit consumer writes a saturating
run's backlog after it), then stops everything it started and writes load/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from load import (
    against,
    charts,
    peak,
    qr_path,
    qr_render,
    results_file,
    status_list_size,
    vault_memory,
)
from load.bench_verify import (
    MicroResult,
    WrkResult,
    cose_of,
    micro,
    raw_es256_rate,
    run_wrk,
    verify_bodies,
)
from load.latency import LatencyResult
from load.servers import (
    BIN,
    ROOT,
    Stack,
    Started,
    busy_cores_meter,
    cpu_meter,
    pin,
    process_cpu,
    process_tree,
    settle,
    write_lines,
)

SECONDS = int(os.environ.get("LOAD_SECONDS", "10"))
CURVE_SECONDS = int(os.environ.get("LOAD_CURVE_SECONDS", "4"))
CURVE_SHARES = (0.25, 0.5, 0.75, 1.0, 1.25)
"""Offered load of the throughput curves, as shares of ours' one-worker wrk maximum."""
BATCH = 100
COMMAND = ".venv/bin/python -m load.run_benchmarks"


@dataclass(frozen=True)
class Ratio:
    """One row of the ratio table: what was compared, its figures, the value and its target."""

    name: str
    figures: str
    value: float
    unit: str
    """`%` (a share), `x` (a multiple) or `ms`, how `value` is shown."""
    target: str

    def shown(self, value: float) -> str:
        if self.unit == "%":
            return f"{value:.0%}"
        if self.unit == "x":
            return f"{value:.2f}x"
        if self.unit == "ms":
            return f"{value:,.1f} ms"
        return f"{value:,.0f} {self.unit}"


@dataclass(frozen=True)
class HttpRun:
    """One wrk run, with the CPU each party used: server, its workers, Redis, wrk, and the
    rest of the machine (other people's processes on a shared machine show up there)."""

    name: str
    generator: str
    wrk: WrkResult
    server_cpu_s: float
    redis_cpu_s: float
    machine_cpu_s: float
    worker_cores: tuple[float, ...]
    backlog_cpu_s: float = 0.0
    """Server CPU after wrk stopped, until idle: the audit backlog the run left behind."""
    raw_es256_per_s: float = 0.0
    """Raw ES256 verifications per second measured just before wrk started: the limit at
    the machine's speed of that moment (a shared machine's speed drifts within a run)."""

    def cores(self, cpu_s: float) -> float:
        return cpu_s / self.wrk.seconds

    @property
    def per_cpu_second(self) -> float:
        """Requests per server CPU-second, the work the run left behind included."""
        requests = self.wrk.requests_per_s * self.wrk.seconds
        return requests / max(self.server_cpu_s + self.backlog_cpu_s, 1e-9)

    @property
    def server_cores(self) -> float:
        return self.cores(self.server_cpu_s)

    @property
    def generator_cores(self) -> float:
        return self.cores(self.wrk.generator_cpu_s)

    @property
    def redis_cores(self) -> float:
        return self.cores(self.redis_cpu_s)

    @property
    def other_cores(self) -> float:
        """Busy CPU of the machine not used by server, Redis or wrk."""
        used = self.server_cpu_s + self.redis_cpu_s + self.wrk.generator_cpu_s
        return max(0.0, self.cores(self.machine_cpu_s - used))

    @property
    def available_cores(self) -> float:
        """The cores the server could have used: all of them minus everyone else's share."""
        return (os.cpu_count() or 1) - self.generator_cores - self.redis_cores - self.other_cores


def _measure(
    name: str,
    stack: Stack,
    server: Started,
    path: str,
    bodies: Path,
    headers: dict[str, str],
    *,
    connections: int = 32,
    threads: int = 1,
) -> HttpRun:
    redis = stack.started[0]
    settle([server.process.pid, redis.process.pid])
    raw_now = raw_es256_rate()
    workers = process_tree(server.process.pid)
    before_workers = [process_cpu(pid) for pid in workers]
    machine_before, _ = busy_cores_meter()
    with cpu_meter([server.process.pid, redis.process.pid]) as used:
        result = run_wrk(
            server.url + path,
            bodies,
            headers,
            seconds=SECONDS,
            connections=connections,
            threads=threads,
        )
    machine_after, _ = busy_cores_meter()
    spread = tuple(
        (process_cpu(pid) - start) / result.seconds
        for pid, start in zip(workers, before_workers, strict=True)
    )
    with cpu_meter([server.process.pid]) as backlog:
        settle([server.process.pid, redis.process.pid])
    run = HttpRun(
        name,
        f"wrk -t{threads} -c{connections}",
        result,
        used[0],
        used[1],
        machine_after - machine_before,
        tuple(round(share, 2) for share in spread if share >= 0.01),
        backlog[0],
        raw_now,
    )
    print(
        f"{name:40} {result.requests_per_s:9.0f} req/s  p99 {result.p99_ms:6.1f} ms  "
        f"errors {result.errors}  server {run.server_cores:.2f} cores {run.worker_cores}  "
        f"backlog {run.backlog_cpu_s:.1f} CPU-s  per CPU-s {run.per_cpu_second:.0f}  "
        f"wrk {run.generator_cores:.2f}  Redis {run.redis_cores:.2f}  "
        f"others {run.other_cores:.2f}",
        flush=True,
    )
    return run


def _baseline_tokens(count: int) -> tuple[bytes, list[str]]:
    """ES256 JWTs for the naive endpoint, each with its own jti, and its public key (PEM)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    tokens = [
        jwt.encode(
            {"jti": secrets.token_hex(8), "iat": now, "exp": now + 600}, private_key, "ES256"
        )
        for _ in range(count)
    ]
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public, tokens


@dataclass(frozen=True)
class LatencyRun:
    pinned: bool
    result: LatencyResult
    server_cores: float
    redis_cores: float
    other_cores: float
    settle_s: float
    external_audit: bool = False

    @property
    def placement(self) -> str:
        where = "generator + Redis on core 1, server on core 0" if self.pinned else "unpinned"
        if self.external_audit:
            where += "; audit consumer in its own process (`ssc audit consume`)"
        return where


def _open_loop(
    stack: Stack,
    server: Started,
    scanner_token: str,
    rate: float,
    *,
    pinned: bool,
    external_audit: bool = False,
) -> LatencyRun:
    """load/latency.py in its own process at `rate` req/s, pinned or not (see LatencyRun)."""
    pinned = pinned and (os.cpu_count() or 1) >= 2
    tokens = stack.issue_tokens(stack.card_number, int(rate * SECONDS * 1.2) + 100)
    bodies = write_lines(stack.root / "open-loop.jsonl", verify_bodies(tokens))
    redis = stack.started[0]
    pids = [server.process.pid, redis.process.pid]
    settle_s = settle(pids)
    everything = set(range(os.cpu_count() or 1))
    command = [
        str(BIN / "python"),
        "-m",
        "load.latency",
        server.url + "/v1/verify",
        str(bodies),
        "--rate",
        f"{rate:.0f}",
        "--seconds",
        str(SECONDS),
        "--header",
        f"Authorization: Bearer {scanner_token}",
    ]
    if pinned:
        pin(server.process.pid, {0})
        pin(redis.process.pid, {1})
        command += ["--cpu", "1"]
    machine_before, _ = busy_cores_meter()
    try:
        with cpu_meter(pids) as used:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    finally:
        pin(server.process.pid, everything)
        pin(redis.process.pid, everything)
    machine_after, _ = busy_cores_meter()
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    summary.pop("generator_cores")
    result = LatencyResult(**summary)
    others = machine_after - machine_before - sum(used) - result.generator_cpu_s
    run = LatencyRun(
        pinned,
        result,
        used[0] / result.seconds,
        used[1] / result.seconds,
        max(0.0, others / result.seconds),
        settle_s,
        external_audit,
    )
    print(
        f"open loop at {result.target_rate:.0f} req/s, {run.placement}: "
        f"{result.achieved_rate:.0f} req/s, p50 {result.p50_ms:.1f} p99 {result.p99_ms:.1f} "
        f"max {result.max_ms:.1f} ms, errors {result.errors}, server {run.server_cores:.2f} "
        f"cores, generator {result.generator_cores:.2f}, others {run.other_cores:.2f} "
        f"(waited {settle_s:.0f} s for the audit backlog)",
        flush=True,
    )
    return run


def _curve(
    stack: Stack, server: Started, bodies: list[str], headers: dict[str, str], top: float
) -> list[LatencyResult]:
    """load/latency.py (open loop) at CURVE_SHARES of `top` req/s, CURVE_SECONDS each."""
    points = []
    for share in CURVE_SHARES:
        rate = top * share
        count = int(rate * CURVE_SECONDS * 1.2) + 100
        path = write_lines(
            stack.root / "curve.jsonl", (bodies * (count // len(bodies) + 1))[:count]
        )
        settle([server.process.pid, stack.started[0].process.pid])
        command = [
            str(BIN / "python"),
            "-m",
            "load.latency",
            server.url + "/v1/verify",
            str(path),
            "--rate",
            f"{rate:.0f}",
            "--seconds",
            str(CURVE_SECONDS),
        ]
        for name, value in headers.items():
            command += ["--header", f"{name}: {value}"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
        summary.pop("generator_cores")
        points.append(LatencyResult(**summary))
        print(
            f"curve {server.name} at {rate:.0f} req/s: {points[-1].achieved_rate:.0f} req/s, "
            f"p50 {points[-1].p50_ms:.1f} p99 {points[-1].p99_ms:.1f} ms",
            flush=True,
        )
    return points


def _granian_installed() -> bool:
    return (BIN / "granian").exists()


def _verify_run(
    stack: Stack, server: Started, name: str, headers: dict[str, str], *, workers: int
) -> HttpRun:
    tokens = stack.issue_tokens(stack.card_number, 4000 * SECONDS * workers)
    bodies = write_lines(stack.root / "ours.jsonl", verify_bodies(tokens))
    return _measure(
        name,
        stack,
        server,
        "/v1/verify",
        bodies,
        headers,
        connections=32 * workers,
        threads=workers,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="load.run_benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--against", metavar="COMMIT", help="also measure verify at COMMIT")
    parser.add_argument("--only-against", metavar="COMMIT", help="measure only that, print it")
    arguments = parser.parse_args()
    if arguments.only_against:
        compared = against.measure(arguments.only_against, seconds=SECONDS)
        print("\n".join(against.report(compared)))
        return
    started = time.time()
    print("micro benchmarks (one core) ...", flush=True)
    micro_result = micro(20000)
    runs: dict[str, HttpRun] = {}
    latency: list[LatencyRun] = []
    with Stack() as stack:
        stack.start_redis()
        api = stack.start_api(workers=1)
        seeded = stack.demo(api.url)
        holder, scanner = seeded["holder"], seeded["scanner"]
        assert isinstance(holder, dict) and isinstance(scanner, dict)
        stack.card_number = holder["card_number"]
        ours_headers = {"Authorization": f"Bearer {scanner['access_token']}"}

        # The naive endpoint runs before and after ours and counts as their mean, so a drift
        # of the machine's speed during the run does not favour either side.
        public_pem, jwts = _baseline_tokens(6000 * SECONDS)
        baseline = stack.start_baseline(public_pem)
        before, after = jwts[: len(jwts) // 2], jwts[len(jwts) // 2 :]
        naive_before = write_lines(stack.root / "naive-1.jsonl", verify_bodies(before))
        naive_after = write_lines(stack.root / "naive-2.jsonl", verify_bodies(after))
        runs["naive"] = _measure(
            "naive, 1 worker (before ours)", stack, baseline, "/v1/verify", naive_before, {}
        )
        runs["ours"] = _verify_run(
            stack, api, "ours /v1/verify, uvicorn 1 worker", ours_headers, workers=1
        )
        runs["naive_after"] = _measure(
            "naive, 1 worker (after ours)", stack, baseline, "/v1/verify", naive_after, {}
        )
        top = runs["ours"].wrk.requests_per_s
        curve_tokens = stack.issue_tokens(stack.card_number, int(top * CURVE_SECONDS * 1.6))
        curves = {
            "naive": _curve(stack, baseline, verify_bodies(after), {}, top),
            "ours": _curve(stack, api, verify_bodies(curve_tokens), ours_headers, top),
        }
        stack.stop(baseline)
        half = runs["ours"].wrk.requests_per_s / 2
        for pinned in (True, False):
            latency.append(_open_loop(stack, api, scanner["access_token"], half, pinned=pinned))

        batch_tokens = stack.issue_tokens(stack.card_number, 12000 * SECONDS)
        batch_bodies = write_lines(
            stack.root / "batch.jsonl",
            [
                json.dumps({"scans": [{"cose": cose_of(t)} for t in batch_tokens[i : i + BATCH]]})
                for i in range(0, len(batch_tokens), BATCH)
            ],
        )
        stack.stop(api)
        external = stack.start_api(workers=1, external_audit=True)
        runs["external"] = _verify_run(
            stack,
            external,
            "ours /v1/verify, uvicorn 1 worker, audit consumer in its own process",
            ours_headers,
            workers=1,
        )
        latency.append(
            _open_loop(
                stack, external, scanner["access_token"], half, pinned=True, external_audit=True
            )
        )
        runs["batch_external"] = _measure(
            "ours /v1/verify/batch (100 binary COSE scans), 1 worker, audit consumer in its "
            "own process",
            stack,
            external,
            "/v1/verify/batch",
            batch_bodies,
            ours_headers,
            connections=4,
        )
        stack.stop(external)
        stack.stop_audit_consumers()
        api = stack.start_api(workers=1)

        runs["batch"] = _measure(
            "ours /v1/verify/batch (100 binary COSE scans), 1 worker",
            stack,
            api,
            "/v1/verify/batch",
            batch_bodies,
            ours_headers,
            connections=4,
        )
        stack.stop(api)

        api2 = stack.start_api(workers=2)
        runs["two"] = _verify_run(
            stack, api2, "ours /v1/verify, uvicorn 2 workers", ours_headers, workers=2
        )
        stack.stop(api2)
        peak_run = peak.national_peak(stack, ours_headers)
        print(
            f"national peak: {peak_run.scans_per_s:,.0f} scans/s, {peak_run.audit_rows:,} audit "
            f"rows of {peak_run.scans:,} scans, backlog at the end {peak_run.backlog_end}",
            flush=True,
        )
        if _granian_installed():
            for workers in (1, 2):
                server = stack.start_api(workers=workers, server_kind="granian")
                runs[f"granian{workers}"] = _verify_run(
                    stack,
                    server,
                    f"ours /v1/verify, granian {workers} worker{'s' if workers > 1 else ''}",
                    ours_headers,
                    workers=workers,
                )
                stack.stop(server)
    print("the phone's QR path (PostgreSQL + Redis) ...", flush=True)
    qr_run = qr_path.run()
    render_rates = qr_render.measure()
    compared = (
        None if arguments.against is None else against.measure(arguments.against, seconds=SECONDS)
    )
    elapsed = time.time() - started
    charts.throughput(curves)
    charts.peak_backlog(peak_run)
    report = _report(micro_result, runs, latency, qr_run, peak_run, elapsed)
    report += "\n" + "\n".join([*_curve_report(curves), "", *peak.report(peak_run)]) + "\n"
    if compared is not None:
        report += "\n" + "\n".join(against.report(compared)) + "\n"
    report += "\n" + "\n".join(qr_path.markdown_section(qr_run))
    report += "\n" + "\n".join(_render_report(render_rates)) + "\n"
    # Measured by their own commands: kept as they are.
    kept = results_file.kept_sections((status_list_size.TITLE, vault_memory.SECTION))
    results_file.RESULTS.write_text("\n\n".join([report.rstrip(), *kept]) + "\n")
    print(report)


def _machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, check=False)
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, {redis.stdout.decode().split(' sha')[0].strip()}"
    )


def _report(
    micro_result: MicroResult,
    runs: dict[str, HttpRun],
    latency: list[LatencyRun],
    qr_run: qr_path.QrPathResult,
    peak_run: peak.PeakRun,
    elapsed: float,
) -> str:
    raw = micro_result.raw_per_s
    ours, batch, two = runs["ours"], runs["batch"], runs["two"]
    naive_runs = (runs["naive"], runs["naive_after"])
    naive_rps = sum(run.wrk.requests_per_s for run in naive_runs) / 2
    naive_per_cpu = sum(run.per_cpu_second for run in naive_runs) / 2
    batch_tokens = batch.wrk.requests_per_s * BATCH
    batch_per_core = batch.per_cpu_second * BATCH
    external = runs["batch_external"]
    external_batch_per_core = external.per_cpu_second * BATCH
    scaling = two.wrk.requests_per_s / ours.wrk.requests_per_s
    normalised = scaling * 2 / two.available_cores
    per_cpu_1 = ours.per_cpu_second
    per_cpu_2 = two.per_cpu_second
    rows = [
        Ratio(
            "token_service.verify / raw ES256 (one core)",
            f"{micro_result.verify_per_s:,.0f} / {raw:,.0f} per s",
            micro_result.verify_per_s / raw,
            "%",
            ">= 80 %",
        ),
        Ratio(
            "verify_cose / raw ES256 (one core)",
            f"{micro_result.verify_cose_per_s:,.0f} / {raw:,.0f} per s",
            micro_result.verify_cose_per_s / raw,
            "%",
            "-",
        ),
        Ratio(
            "batch tokens/s per server core / raw ES256 (raw measured just before the run)",
            f"{batch_per_core:,.0f} / {batch.raw_es256_per_s:,.0f} per s "
            f"({batch_tokens:,.0f} tokens/s on {batch.server_cores:.2f} cores, "
            f"then {batch.backlog_cpu_s:.1f} CPU-s of audit backlog)",
            batch_per_core / batch.raw_es256_per_s,
            "%",
            ">= 80 %",
        ),
        Ratio(
            "the same, API worker only: audit consumer in its own process (its CPU not counted)",
            f"{external_batch_per_core:,.0f} / {external.raw_es256_per_s:,.0f} per s",
            external_batch_per_core / external.raw_es256_per_s,
            "%",
            "(cross-check)",
        ),
        Ratio(
            "ours / naive req/s, 1 worker each (wrk)",
            f"{ours.wrk.requests_per_s:,.0f} / {naive_rps:,.0f} req/s (naive: mean of "
            f"{naive_runs[0].wrk.requests_per_s:,.0f} before and "
            f"{naive_runs[1].wrk.requests_per_s:,.0f} after ours)",
            ours.wrk.requests_per_s / naive_rps,
            "x",
            ">= 3x",
        ),
        Ratio(
            "the same per server CPU-second (ours: audit backlog after the run included)",
            f"{ours.per_cpu_second:,.0f} / {naive_per_cpu:,.0f} req per CPU-s",
            ours.per_cpu_second / naive_per_cpu,
            "x",
            "(cross-check)",
        ),
        Ratio(
            "2 workers / 1 worker req/s (uvicorn, wrk)",
            f"{two.wrk.requests_per_s:,.0f} / {ours.wrk.requests_per_s:,.0f} req/s",
            scaling,
            "x",
            ">= 1.8x",
        ),
        Ratio(
            "the same, normalised to 2 server cores",
            f"x 2 / {two.available_cores:.2f} cores left to the server (of {os.cpu_count()}: "
            f"wrk {two.generator_cores:.2f}, Redis {two.redis_cores:.2f}, "
            f"other processes {two.other_cores:.2f})",
            normalised,
            "x",
            ">= 1.8x",
        ),
        Ratio(
            "2 workers / 1 worker, req per server CPU-second",
            f"{per_cpu_2:,.0f} / {per_cpu_1:,.0f}",
            per_cpu_2 / per_cpu_1,
            "%",
            "(efficiency)",
        ),
    ]
    rows += [
        Ratio(
            f"p99 at half the 1-worker maximum (load/latency.py, open loop), {item.placement}",
            f"{item.result.achieved_rate:,.0f} of {item.result.target_rate:,.0f} req/s, "
            f"p50 {item.result.p50_ms:.1f} ms, {item.result.errors} errors, "
            f"generator {item.result.generator_cores:.2f} cores, "
            f"other processes {item.other_cores:.2f} cores",
            item.result.p99_ms,
            "ms",
            "< 10 ms",
        )
        for item in latency
    ]
    rows += [
        Ratio(
            "GET /v1/me/qr / GET /healthz req/s, 1 worker, PostgreSQL + Redis (load/qr_path.py)",
            f"{qr_run.qr.wrk.requests_per_s:,.0f} / {qr_run.healthz.wrk.requests_per_s:,.0f} "
            f"req/s (by server CPU per request: {qr_run.cpu_share:.0%})",
            qr_run.share,
            "%",
            ">= 40 %",
        ),
        Ratio(
            "p99 of GET /v1/me/qr at half its maximum (open loop, server on core 0)",
            f"{qr_run.latency.achieved_rate:,.0f} of {qr_run.latency.target_rate:,.0f} req/s, "
            f"p50 {qr_run.latency.p50_ms:.1f} ms, {qr_run.latency.errors} errors",
            qr_run.latency.p99_ms,
            "ms",
            "< 10 ms",
        ),
        Ratio(
            f"national peak: verified scans/s through the batch route, 2 workers, "
            f"{peak.PEAK_SECONDS} s, audit consumer included",
            f"{peak_run.scans:,} scans in {peak_run.seconds:.1f} s ({peak_run.valid_rows:,} "
            f"valid), {peak_run.audit_rows:,} audit rows counted after the run",
            peak_run.scans_per_s,
            "scans/s",
            f">= {peak.TARGET:,}",
        ),
        Ratio(
            "the same until the last audit row was written (the consumer's backlog drained)",
            f"{peak_run.scans:,} scans in {peak_run.seconds:.1f} s + "
            f"{peak_run.drain_seconds:.1f} s of backlog after the run",
            peak_run.persisted_per_s,
            "scans/s",
            f">= {peak.TARGET:,}",
        ),
    ]
    history = results_file.record_run({row.name: row.value for row in rows})
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{_command()}` (from the repository root; {elapsed:.0f} s for the whole run).",
        f"Machine: {_machine()}.",
        f"Measured: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Figures vary from run "
        "to run; the ratios are what the targets of issues 6 and 18 are about. Every figure below "
        "was measured in this one run, except the spread table, which adds every earlier run of "
        'the same code (load/runs.jsonl). "other processes" is busy CPU of the machine '
        "(/proc/stat) not used by server, Redis or generator: on a shared machine, other "
        "people's work.",
        "",
        "## Ratios",
        "",
        "| ratio | figures | measured | target |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {row.name} | {row.figures} | **{row.shown(row.value)}** | {row.target} |"
        for row in rows
    ]
    lines += ["", *_spread_report(rows, history)]
    lines += [
        "",
        "## HTTP runs (wrk, closed loop, saturating)",
        "",
        "| run | generator | req/s | p50 ms | p99 ms | errors | server cores (per process) "
        "| server CPU-s after the run (backlog) | req per server CPU-s (backlog included) "
        "| generator cores | Redis cores | other processes | raw ES256/s just before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs.values():
        lines.append(
            f"| {run.name} | {run.generator} | {run.wrk.requests_per_s:,.0f} | "
            f"{run.wrk.p50_ms:.1f} | {run.wrk.p99_ms:.1f} | {run.wrk.errors} | "
            f"{run.server_cores:.2f} {list(run.worker_cores)} | "
            f"{run.backlog_cpu_s:.1f} | {run.per_cpu_second:,.0f} | "
            f"{run.generator_cores:.2f} | "
            f"{run.redis_cores:.2f} | {run.other_cores:.2f} | {run.raw_es256_per_s:,.0f} |"
        )
    lines += [
        "",
        "## Latency runs (load/latency.py, open loop, 64 keep-alive connections, Poisson "
        "arrivals, latency from the scheduled send time)",
        "",
        "| placement | target req/s | achieved | p50 ms | p90 ms | p99 ms | max ms | send lag "
        "p99 ms | errors | server cores | generator cores | Redis cores | other processes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for item in latency:
        result = item.result
        lines.append(
            f"| {item.placement} | {result.target_rate:,.0f} | {result.achieved_rate:,.0f} | "
            f"{result.p50_ms:.1f} | {result.p90_ms:.1f} | {result.p99_ms:.1f} | "
            f"{result.max_ms:.1f} | {result.send_lag_p99_ms:.1f} | {result.errors} | "
            f"{item.server_cores:.2f} | {result.generator_cores:.2f} | {item.redis_cores:.2f} | "
            f"{item.other_cores:.2f} |"
        )
    lines += [
        "",
        f"Before the first latency run the server needed {latency[0].settle_s:.0f} s to become "
        "idle after the saturating wrk run (its audit consumer writing the backlog).",
        "",
        PROFILE_NOTES.strip(),
        "",
    ]
    return "\n".join(lines)


def _spread_report(rows: list[Ratio], history: list[dict[str, float]]) -> list[str]:
    """Each ratio over every recorded run of this code: lowest, median, highest."""
    lines = [
        f"## Spread over {len(history)} run{'s' if len(history) != 1 else ''} of this code "
        f"({results_file.code_version()}, the same command)",
        "",
        "| ratio | runs | lowest | median | highest | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        values = sorted(run[row.name] for run in history if row.name in run)
        lines.append(
            f"| {row.name} | {len(values)} | {row.shown(values[0])} | "
            f"{row.shown(statistics.median(values))} | {row.shown(values[-1])} | {row.target} |"
        )
    return lines


def _command() -> str:
    return " ".join([COMMAND, *sys.argv[1:]])


def _curve_report(curves: dict[str, list[LatencyResult]]) -> list[str]:
    lines = [
        "## Throughput against offered load (load/latency.py, open loop, one worker each, "
        f"{CURVE_SECONDS} s per point)",
        "",
        "![Throughput and latency against offered load, ours and naive](throughput.png)",
        "",
        "| server | offered req/s | achieved | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, points in curves.items():
        lines += [
            f"| {name} | {p.target_rate:,.0f} | {p.achieved_rate:,.0f} | {p.p50_ms:.1f} | "
            f"{p.p99_ms:.1f} | {p.errors} |"
            for p in points
        ]
    return lines


def _render_report(rates: list[qr_render.RenderRate]) -> list[str]:
    lines = [
        "## QR images per CPU second (load/qr_render.py): segno, which `qr` uses, against qrcode",
        "",
        "| library | format | images per CPU-s | bytes |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {rate.library} | {rate.fmt} | {rate.per_cpu_second:,.0f} | {rate.bytes:,} |"
        for rate in rates
    ]
    return lines


PROFILE = ROOT / "load" / "PROFILE.md"
PROFILE_NOTES = PROFILE.read_text() if PROFILE.exists() else ""


if __name__ == "__main__":
    main()
