"""The ONE benchmark command: micro and HTTP benchmarks, a table of ratios, load/RESULTS.md.

Run: `.venv/bin/python -m load.run_benchmarks` (about 3 minutes on 2 cores; LOAD_SECONDS per
HTTP run, default 10). It starts, on 127.0.0.1 only, its own `redis-server`, our API through
`ssc serve` (SQLite + Redis, one worker, later two) and the naive baseline
(`uvicorn load.baseline_app:app`, one worker), seeds with `ssc demo --json`, pre-generates
distinct fresh tokens in this process, and measures:

- micro, one core: raw ES256 verify, `TokenVerifier.verify`, `verify_cose`;
- wrk (distinct tokens per request, load/wrk_bodies.lua): naive vs ours on one worker,
  the batch route (100 scans per request) on one worker, ours on two workers;
- Locust (FastHttpUser, paced): p99 latency of ours at half the one-worker maximum;

then stops everything it started and writes load/RESULTS.md with the command and machine.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from load.bench_verify import MicroResult, WrkResult, micro, run_wrk, verify_bodies
from load.servers import BIN, ROOT, Stack, Started, cpu_meter, write_lines

SECONDS = int(os.environ.get("LOAD_SECONDS", "10"))
BATCH = 100
RESULTS = ROOT / "load" / "RESULTS.md"
COMMAND = ".venv/bin/python -m load.run_benchmarks"


@dataclass(frozen=True)
class HttpRun:
    name: str
    generator: str
    wrk: WrkResult
    server_cpu_s: float
    redis_cpu_s: float

    @property
    def server_cores(self) -> float:
        return self.server_cpu_s / self.wrk.seconds

    @property
    def generator_cores(self) -> float:
        return self.wrk.generator_cpu_s / self.wrk.seconds


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
    with cpu_meter([server.process.pid, redis.process.pid]) as used:
        result = run_wrk(
            server.url + path,
            bodies,
            headers,
            seconds=SECONDS,
            connections=connections,
            threads=threads,
        )
    run = HttpRun(name, "wrk", result, used[0], used[1])
    print(
        f"{name:40} {result.requests_per_s:9.0f} req/s  p99 {result.p99_ms:6.1f} ms  "
        f"errors {result.errors}  server {run.server_cores:.2f} cores  "
        f"wrk {run.generator_cores:.2f} cores",
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


def _paced_p99(
    stack: Stack, server: Started, scanner_token: str, target: float
) -> dict[str, float]:
    """Locust (FastHttpUser) at `target` req/s in total: achieved rate and p99 (ms)."""
    users = 50
    seconds = SECONDS + 5
    card = stack.card_number
    tokens = stack.issue_tokens(card, int(target * seconds * 1.2) + 100)
    prefix = stack.root / "paced"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOAD_TOKENS_FILE": str(write_lines(stack.root / "paced.txt", tokens)),
        "LOAD_SCANNERS_FILE": str(write_lines(stack.root / "paced-scanner.txt", [scanner_token])),
        "LOAD_RATE": str(target / users),
    }
    subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "load" / "locustfile.py"),
            "VerifyAtRate",
            "--headless",
            "--host",
            server.url,
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "ERROR",
        ],
        env=env,
        cwd=ROOT,
        check=False,
        capture_output=True,
    )
    with open(f"{prefix}_stats.csv") as stats:
        row = next(item for item in csv.DictReader(stats) if item["Name"] == "Aggregated")
    return {
        "rate": float(row["Requests/s"]),
        "p99_ms": float(row["99%"]),
        "p50_ms": float(row["50%"]),
        "failures": float(row["Failure Count"]),
    }


def main() -> None:
    started = time.time()
    print("micro benchmarks (one core) ...", flush=True)
    micro_result = micro(20000)
    runs: dict[str, HttpRun] = {}
    with Stack() as stack:
        stack.start_redis()
        api = stack.start_api(workers=1)
        seeded = stack.demo(api.url)
        holder, scanner = seeded["holder"], seeded["scanner"]
        assert isinstance(holder, dict) and isinstance(scanner, dict)
        stack.card_number = holder["card_number"]
        ours_headers = {"Authorization": f"Bearer {scanner['access_token']}"}

        public_pem, jwts = _baseline_tokens(3000 * SECONDS)
        baseline = stack.start_baseline(public_pem)
        naive_bodies = write_lines(stack.root / "naive.jsonl", verify_bodies(jwts))
        runs["naive"] = _measure("naive, 1 worker", stack, baseline, "/v1/verify", naive_bodies, {})
        stack.stop(baseline)

        tokens = stack.issue_tokens(stack.card_number, 4000 * SECONDS)
        bodies = write_lines(stack.root / "ours.jsonl", verify_bodies(tokens))
        runs["ours"] = _measure(
            "ours /v1/verify, 1 worker", stack, api, "/v1/verify", bodies, ours_headers
        )

        batch_tokens = stack.issue_tokens(stack.card_number, 12000 * SECONDS)
        batch_bodies = write_lines(
            stack.root / "batch.jsonl",
            [
                json.dumps({"scans": [{"token": t} for t in batch_tokens[i : i + BATCH]]})
                for i in range(0, len(batch_tokens), BATCH)
            ],
        )
        runs["batch"] = _measure(
            "ours /v1/verify/batch (100), 1 worker",
            stack,
            api,
            "/v1/verify/batch",
            batch_bodies,
            ours_headers,
            connections=4,
        )
        half = runs["ours"].wrk.requests_per_s / 2
        print(f"paced run at {half:.0f} req/s (Locust) ...", flush=True)
        paced = _paced_p99(stack, api, scanner["access_token"], half)
        print(f"paced: {paced}", flush=True)
        stack.stop(api)

        api2 = stack.start_api(workers=2)
        tokens2 = stack.issue_tokens(stack.card_number, 7000 * SECONDS)
        bodies2 = write_lines(stack.root / "ours2.jsonl", verify_bodies(tokens2))
        runs["two"] = _measure(
            "ours /v1/verify, 2 workers",
            stack,
            api2,
            "/v1/verify",
            bodies2,
            ours_headers,
            connections=64,
            threads=2,
        )
    elapsed = time.time() - started
    report = _report(micro_result, runs, paced, elapsed)
    RESULTS.write_text(report)
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
    micro_result: MicroResult, runs: dict[str, HttpRun], paced: dict[str, float], elapsed: float
) -> str:
    raw = micro_result.raw_per_s
    naive, ours, batch, two = runs["naive"], runs["ours"], runs["batch"], runs["two"]
    batch_tokens = batch.wrk.requests_per_s * BATCH
    batch_per_core = batch_tokens / max(batch.server_cores, 1e-9)
    scaling = two.wrk.requests_per_s / ours.wrk.requests_per_s
    per_cpu_1 = ours.wrk.requests_per_s / ours.server_cores
    per_cpu_2 = two.wrk.requests_per_s / two.server_cores
    rows = [
        (
            "token_service.verify / raw ES256 (one core)",
            f"{micro_result.verify_per_s:,.0f} / {raw:,.0f} per s",
            micro_result.verify_per_s / raw,
            ">= 80 %",
        ),
        (
            "verify_cose / raw ES256 (one core)",
            f"{micro_result.verify_cose_per_s:,.0f} / {raw:,.0f} per s",
            micro_result.verify_cose_per_s / raw,
            "-",
        ),
        (
            "batch tokens/s per server core / raw ES256",
            f"{batch_per_core:,.0f} / {raw:,.0f} per s "
            f"({batch_tokens:,.0f} tokens/s on {batch.server_cores:.2f} cores)",
            batch_per_core / raw,
            ">= 80 %",
        ),
        (
            "ours / naive req/s, 1 worker each (wrk)",
            f"{ours.wrk.requests_per_s:,.0f} / {naive.wrk.requests_per_s:,.0f} req/s",
            ours.wrk.requests_per_s / naive.wrk.requests_per_s,
            ">= 2x",
        ),
        (
            "2 workers / 1 worker req/s (wrk)",
            f"{two.wrk.requests_per_s:,.0f} / {ours.wrk.requests_per_s:,.0f} req/s "
            f"(wrk used {two.generator_cores:.2f} cores, "
            f"Redis {two.redis_cpu_s / two.wrk.seconds:.2f})",
            scaling,
            ">= 1.8x",
        ),
        (
            "2 workers / 1 worker, req per server CPU-second",
            f"{per_cpu_2:,.0f} / {per_cpu_1:,.0f}",
            per_cpu_2 / per_cpu_1,
            "(efficiency)",
        ),
    ]
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{COMMAND}` (from the repository root; {elapsed:.0f} s for the whole run).",
        f"Machine: {_machine()}.",
        f"Measured: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Figures vary from run "
        "to run; the ratios are what the targets of issue 6 are about. Every figure below was "
        "measured in this one run.",
        "",
        "## Ratios",
        "",
        "| ratio | figures | measured | target |",
        "| --- | --- | --- | --- |",
    ]
    for name, figures, ratio, target in rows:
        shown = f"{ratio:.2f}x" if "x" in target else f"{ratio:.0%}"
        lines.append(f"| {name} | {figures} | **{shown}** | {target} |")
    lines += [
        f"| p99 at half the 1-worker maximum (Locust FastHttpUser, paced) | "
        f"{paced['rate']:,.0f} req/s achieved, p50 {paced['p50_ms']:.0f} ms, "
        f"{paced['failures']:.0f} failures | **{paced['p99_ms']:.0f} ms** | < 10 ms |",
        "",
        "## HTTP runs",
        "",
        "| run | generator | req/s | p50 ms | p99 ms | errors | server cores | generator cores "
        "| Redis cores |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs.values():
        lines.append(
            f"| {run.name} | {run.generator} | {run.wrk.requests_per_s:,.0f} | "
            f"{run.wrk.p50_ms:.1f} | {run.wrk.p99_ms:.1f} | {run.wrk.errors} | "
            f"{run.server_cores:.2f} | {run.generator_cores:.2f} | "
            f"{run.redis_cpu_s / run.wrk.seconds:.2f} |"
        )
    lines += ["", PROFILE_NOTES.strip(), ""]
    return "\n".join(lines)


PROFILE = ROOT / "load" / "PROFILE.md"
PROFILE_NOTES = PROFILE.read_text() if PROFILE.exists() else ""


if __name__ == "__main__":
    main()
